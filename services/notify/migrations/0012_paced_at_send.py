"""The quotas' ledger counts a send when it went out: a claimed notification's row is pending
until its attempt is recorded, and counts against the quota until then however long the attempt
takes; recorded, it takes the time of the recording (after the provider answered).

Revision ID: notify_0012
Revises: notify_0011
Create Date: 2026-12-03
"""

from alembic import op

revision = "notify_0012"
down_revision = "notify_0011"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        ALTER TABLE channel_sends
            ADD COLUMN notification_id uuid,
            ADD COLUMN pending boolean NOT NULL DEFAULT false;
        CREATE INDEX channel_sends_pending ON channel_sends (notification_id) WHERE pending;
        """
    )


def downgrade():
    op.execute(
        """
        DROP INDEX channel_sends_pending;
        ALTER TABLE channel_sends DROP COLUMN pending, DROP COLUMN notification_id;
        """
    )
