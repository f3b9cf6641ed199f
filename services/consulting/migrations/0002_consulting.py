"""Policies, returnees' eligibility facts and assessments, advisors, consultations, appointments.

Revision ID: consulting_0002
Revises: consulting_0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "consulting_0002"
down_revision = "consulting_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
CREATE TABLE policies (
    id uuid PRIMARY KEY,
    code text NOT NULL UNIQUE,
    version integer NOT NULL DEFAULT 1,
    title jsonb NOT NULL,
    summary jsonb NOT NULL,
    citation jsonb NOT NULL,
    effective_from date NOT NULL,
    effective_to date,
    application_deadline date,
    criteria jsonb NOT NULL,
    tiers jsonb NOT NULL DEFAULT '[]',
    published_at timestamptz NOT NULL DEFAULT now(),
    CHECK (effective_to IS NULL OR effective_to >= effective_from)
);

-- Only the profile fields the rules read (PIPL: minimum necessary), no name or contact data.
CREATE TABLE returnees (
    id uuid PRIMARY KEY,
    facts jsonb NOT NULL,
    profile_time timestamptz NOT NULL,
    assessed_at timestamptz
);

-- The policies each returnee is eligible for at the last assessment: what changes are computed
-- against. Explanations are recomputed on read, from the facts and the rules.
CREATE TABLE eligibilities (
    returnee_id uuid NOT NULL REFERENCES returnees (id) ON DELETE CASCADE,
    policy_id uuid NOT NULL REFERENCES policies (id),
    code text NOT NULL,
    tier text,
    PRIMARY KEY (returnee_id, policy_id)
);
CREATE INDEX eligibilities_policy ON eligibilities (policy_id);

CREATE TABLE advisors (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    last_assigned_at timestamptz
);

CREATE TABLE consultations (
    id uuid PRIMARY KEY,
    returnee_id uuid NOT NULL,
    topic text NOT NULL,
    question text NOT NULL,
    policy_id uuid REFERENCES policies (id),
    status text NOT NULL,
    advisor_id uuid,  -- no foreign key: staff.registered may arrive after an advisor acts
    created_at timestamptz NOT NULL,
    first_response_due timestamptz NOT NULL,
    resolution_due timestamptz NOT NULL,
    first_responded_at timestamptz,
    paused_at timestamptz,
    closed_at timestamptz,
    first_response_breached_at timestamptz,
    resolution_breached_at timestamptz,
    escalated boolean NOT NULL DEFAULT false,
    rating smallint CHECK (rating BETWEEN 1 AND 5),
    rating_comment text,
    updated_at timestamptz NOT NULL
);
CREATE INDEX consultations_returnee ON consultations (returnee_id);
CREATE INDEX consultations_on_the_clock ON consultations (first_response_due, resolution_due)
    WHERE status IN ('new', 'assigned', 'answered', 'reopened');

CREATE TABLE consultation_messages (
    id uuid PRIMARY KEY,
    position bigserial NOT NULL,  -- the thread's order, even for messages written in one instant
    consultation_id uuid NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
    author_id uuid NOT NULL,
    author_role text NOT NULL,
    body text NOT NULL,
    asks_returnee boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL
);
CREATE INDEX consultation_messages_thread ON consultation_messages (consultation_id, position);

CREATE TABLE slots (
    id uuid PRIMARY KEY,
    advisor_id uuid NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    location text NOT NULL,
    capacity integer NOT NULL CHECK (capacity > 0),
    booked integer NOT NULL DEFAULT 0,
    CHECK (ends_at > starts_at),
    CHECK (booked BETWEEN 0 AND capacity)
);
CREATE INDEX slots_starts_at ON slots (starts_at);

CREATE TABLE appointments (
    id uuid PRIMARY KEY,
    slot_id uuid NOT NULL REFERENCES slots (id),
    returnee_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'booked',
    topic text,
    created_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    cancelled_by text
);
CREATE UNIQUE INDEX appointments_one_per_slot ON appointments (slot_id, returnee_id)
    WHERE status = 'booked';
CREATE INDEX appointments_returnee ON appointments (returnee_id);
"""
    )


def downgrade():
    op.execute(
        "DROP TABLE appointments, slots, consultation_messages, consultations, advisors,"
        " eligibilities, returnees, policies"
    )
