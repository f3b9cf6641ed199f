"""Activities, registrations and their seats, invitations, agreements, and the copies kept from
other services' events: organizations, providers, returnees (the minimum), intentions.

Revision ID: activities_0002
Revises: activities_0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "activities_0002"
down_revision = "activities_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL
);

-- Providers: the name the door sees at check-in, and the organization they represent.
CREATE TABLE providers (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    organization_id uuid
);

-- Only what activities needs of a returnee (PIPL: minimum necessary): a display name for the
-- check-in answer, what an audience is chosen by, and the consent to be invited.
CREATE TABLE returnees (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    industry text NOT NULL,
    startup_stage text NOT NULL,
    needs text[] NOT NULL,
    notifications_consent boolean NOT NULL,
    consent_at timestamptz NOT NULL,
    profile_time timestamptz NOT NULL
);

-- Erased returnees: only the opaque id, so a late profile event cannot bring the data back.
CREATE TABLE erasures (
    returnee_id uuid PRIMARY KEY,
    erased_at timestamptz NOT NULL
);

CREATE TABLE activities (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    title jsonb NOT NULL,
    summary jsonb NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    venue jsonb NOT NULL,
    capacity integer NOT NULL CHECK (capacity > 0),
    -- seats taken by confirmed registrations; the CHECK is the last line against overbooking
    confirmed integer NOT NULL DEFAULT 0,
    organizer_ids uuid[] NOT NULL DEFAULT '{}',
    audience jsonb NOT NULL,
    registration_closes_at timestamptz,
    status text NOT NULL DEFAULT 'published'
        CHECK (status IN ('published', 'cancelled', 'closed')),
    published_by uuid,
    published_at timestamptz NOT NULL,
    cancelled_at timestamptz,
    closed_at timestamptz,
    closing_summary text,
    CHECK (ends_at > starts_at),
    CHECK (confirmed BETWEEN 0 AND capacity),
    CHECK (registration_closes_at IS NULL OR registration_closes_at <= starts_at)
);
CREATE INDEX activities_calendar ON activities (starts_at, id);

CREATE TABLE registrations (
    id uuid PRIMARY KEY,
    activity_id uuid NOT NULL REFERENCES activities (id),
    position bigserial NOT NULL,  -- the order of arrival: the waitlist's order
    registrant_role text NOT NULL CHECK (registrant_role IN ('returnee', 'provider')),
    person_id uuid,  -- the returnee or the provider; NULL once the returnee is erased
    organization_id uuid,  -- the organization a provider represents
    status text NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    check_in_code text,  -- NULL once the returnee is erased
    registered_at timestamptz NOT NULL,
    confirmed_at timestamptz,
    checked_in_at timestamptz,
    cancelled_at timestamptz,
    cancelled_by text
);
CREATE UNIQUE INDEX registrations_one_per_person ON registrations (activity_id, person_id)
    WHERE status <> 'cancelled';
CREATE UNIQUE INDEX registrations_check_in_code ON registrations (activity_id, check_in_code);
CREATE INDEX registrations_waitlist ON registrations (activity_id, position)
    WHERE status = 'waitlisted';
CREATE INDEX registrations_person ON registrations (person_id);

-- Who was invited, so nobody is invited twice (at publication, or when they join later).
CREATE TABLE invitations (
    activity_id uuid NOT NULL REFERENCES activities (id),
    returnee_id uuid NOT NULL,
    invited_at timestamptz NOT NULL,
    PRIMARY KEY (activity_id, returnee_id)
);
CREATE INDEX invitations_returnee ON invitations (returnee_id);

CREATE TABLE agreements (
    id uuid PRIMARY KEY,
    position bigserial NOT NULL,
    activity_id uuid NOT NULL REFERENCES activities (id),
    title text NOT NULL,
    signed_on date NOT NULL,
    summary text NOT NULL,
    recorded_by uuid,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX agreements_activity ON agreements (activity_id, position);

CREATE TABLE agreement_parties (
    agreement_id uuid NOT NULL REFERENCES agreements (id) ON DELETE CASCADE,
    position integer NOT NULL,
    organization_id uuid,
    returnee_id uuid,  -- NULL once the returnee is erased: the party stays, unnamed
    PRIMARY KEY (agreement_id, position)
);
CREATE INDEX agreement_parties_returnee ON agreement_parties (returnee_id);

-- Cooperation intentions met at an activity, as matching reports them: for the report.
CREATE TABLE intentions (
    id uuid PRIMARY KEY,
    activity_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    status text NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX intentions_activity ON intentions (activity_id);
"""
    )


def downgrade():
    op.execute(
        "DROP TABLE intentions, agreement_parties, agreements, invitations, registrations,"
        " activities, erasures, returnees, providers, organizations"
    )
