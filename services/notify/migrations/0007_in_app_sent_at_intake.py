"""In-app notifications are stored `sent` when they are taken in; delivery no longer handles
the channel. Rows an older notify queued for delivery are marked sent here, as that delivery
would have done (an in-app notification is delivered by being stored).

Revision ID: notify_0007
Revises: notify_0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "notify_0007"
down_revision = "notify_0006"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        UPDATE notifications SET status = 'sent', sent_at = COALESCE(sent_at, created_at)
        WHERE channel = 'in_app' AND status = 'queued'
        """
    )


def downgrade():
    pass  # nothing to undo: the rows were delivered
