"""The read model: entities of the platform's events with the moment of each step, coverage,
and the short-lived digests of erased people.

Revision ID: insights_0002
Revises: insights_0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "insights_0002"
down_revision = "insights_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        -- From when each producer's events are all here: the first start, or a backfill.
        CREATE TABLE coverage (
            source text PRIMARY KEY,
            counted_from timestamptz NOT NULL
        );

        -- returnee_id is NULL once the person is erased; the row keeps the counts.
        CREATE TABLE returnees (
            id bigserial PRIMARY KEY,
            returnee_id uuid UNIQUE,
            registered_at timestamptz,
            first_seen_at timestamptz NOT NULL,
            industry text,
            country text,
            stage text,
            erased_at timestamptz
        );

        -- A digest (never the id) of an erased person for a few days, so that a late event
        -- about them is counted without an id; then forgotten.
        CREATE TABLE erasures (
            digest text PRIMARY KEY,
            erased_at timestamptz NOT NULL,
            remembered_at timestamptz NOT NULL
        );

        CREATE TABLE eligibilities (
            id bigserial PRIMARY KEY,
            returnee_id uuid,
            code text NOT NULL,
            first_eligible_at timestamptz NOT NULL,
            UNIQUE (returnee_id, code)
        );

        CREATE TABLE matches (
            id bigserial PRIMARY KEY,
            returnee_id uuid,
            resource_id uuid NOT NULL,
            first_proposed_at timestamptz NOT NULL,
            UNIQUE (returnee_id, resource_id)
        );

        CREATE TABLE intentions (
            id bigserial PRIMARY KEY,
            intention_id uuid UNIQUE,
            returnee_id uuid,
            expressed_at timestamptz,
            accepted_at timestamptz,
            declined_at timestamptz
        );

        CREATE TABLE consultations (
            id bigserial PRIMARY KEY,
            consultation_id uuid UNIQUE,
            returnee_id uuid,
            topic text,
            requested_at timestamptz,
            first_responded_at timestamptz,
            first_answered_at timestamptz,
            closed_at timestamptz,
            rated_at timestamptz,
            rating smallint,
            first_response_breached_at timestamptz,
            resolution_breached_at timestamptz
        );

        CREATE TABLE appointments (
            id bigserial PRIMARY KEY,
            appointment_id uuid UNIQUE,
            returnee_id uuid,
            booked_at timestamptz,
            cancelled_at timestamptz
        );

        CREATE TABLE activities (
            activity_id uuid PRIMARY KEY,
            starts_at timestamptz,
            published_at timestamptz,
            cancelled_at timestamptz,
            closed_at timestamptz
        );

        CREATE TABLE activity_registrations (
            id bigserial PRIMARY KEY,
            registration_id uuid UNIQUE,
            returnee_id uuid,
            activity_id uuid,
            confirmed_at timestamptz,
            attended_at timestamptz,
            cancelled_at timestamptz
        );

        CREATE TABLE agreements (
            agreement_id uuid PRIMARY KEY,
            activity_id uuid,
            signed_on date NOT NULL
        );

        CREATE INDEX ON eligibilities (returnee_id);
        CREATE INDEX ON matches (returnee_id);
        CREATE INDEX ON intentions (returnee_id);
        CREATE INDEX ON consultations (returnee_id);
        CREATE INDEX ON appointments (returnee_id);
        CREATE INDEX ON activity_registrations (returnee_id);
        """
    )


def downgrade():
    op.execute(
        "DROP TABLE agreements, activity_registrations, activities, appointments, consultations,"
        " intentions, matches, eligibilities, erasures, returnees, coverage"
    )
