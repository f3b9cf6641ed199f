"""Consulting's applications and the funnel per programme: the applications with the moment of
each step, the first moment each returnee reached each stage of a programme, and the code of
each policy id (public: a programme's own identifier).

Revision ID: insights_0003
Revises: insights_0002
Create Date: 2026-12-08
"""

from alembic import op

revision = "insights_0003"
down_revision = "insights_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        -- A policy id's code, from any event that names both (policy.published,
        -- eligibility.assessed, application.*): consultations name their policy by id only.
        CREATE TABLE policies (
            policy_id uuid PRIMARY KEY,
            code text NOT NULL
        );

        -- application_id and returnee_id are NULL once the person is erased.
        CREATE TABLE applications (
            id bigserial PRIMARY KEY,
            application_id uuid UNIQUE,
            returnee_id uuid,
            submitted_at timestamptz,
            approved_at timestamptz,
            rejected_at timestamptz,
            awarded_at timestamptz,
            withdrawn_at timestamptz,
            awarded_on date,
            amount_cny bigint
        );

        -- The first moment a returnee reached each stage of a programme after becoming
        -- eligible (which `eligibilities` holds): once per returnee and policy.
        CREATE TABLE funnel (
            id bigserial PRIMARY KEY,
            returnee_id uuid,
            policy_id uuid NOT NULL,
            consulted_at timestamptz,
            applied_at timestamptz,
            approved_at timestamptz,
            awarded_on date,
            UNIQUE (returnee_id, policy_id)
        );

        CREATE INDEX ON applications (returnee_id);
        CREATE INDEX ON funnel (returnee_id);

        -- consulting's application.* and policy.published reach insights from the first start
        -- of this release on (their queues are new): consulting is counted from then (the
        -- upkeep records it), or from the window a backfill replays.
        DELETE FROM coverage WHERE source = 'consulting';
        """
    )


def downgrade():
    op.execute("DROP TABLE funnel, applications, policies")
