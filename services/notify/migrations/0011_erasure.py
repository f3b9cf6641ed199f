"""Erasure: outbox rows about an erased person (or carrying a credential) go once published;
notifications purged after their retention; returnees' consent to share with partners.

Revision ID: notify_0011
Revises: notify_0010
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import add_outbox_forgetting, drop_outbox_forgetting

revision = "notify_0011"
down_revision = "notify_0010"
branch_labels = None
depends_on = None


def upgrade():
    add_outbox_forgetting(op)
    # The retention purge of settled notifications (`NOTIFICATION_RETENTION_DAYS`).
    op.execute("CREATE INDEX notifications_created ON notifications (created_at);")
    # Whether a returnee shares their data with partners, as of the latest event saying so:
    # what district systems receive of events about them (`services.notify.partners`).
    op.execute(
        """
        CREATE TABLE partner_shares (
            returnee_id uuid PRIMARY KEY,
            granted boolean NOT NULL,
            changed_at timestamptz NOT NULL
        );
        """
    )


def downgrade():
    op.execute("DROP TABLE partner_shares;")
    op.execute("DROP INDEX notifications_created;")
    drop_outbox_forgetting(op)
