"""Re-assessments under way: a published policy is recorded here with its inbox record, and the
re-assessment loop works through the returnees in short transactions, keeping its place
(`after`, the last returnee id done) so a restart carries on where it stopped.

Revision ID: consulting_0004
Revises: consulting_0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "consulting_0004"
down_revision = "consulting_0003"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE reassessments (
            policy_id uuid PRIMARY KEY REFERENCES policies (id),
            after uuid,
            queued_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade():
    op.execute("DROP TABLE reassessments")
