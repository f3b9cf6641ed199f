"""Index notifications by digest: recording a delivery updates the digest's members, which
was a sequential scan of every notification.

Revision ID: notify_0005
Revises: notify_0004
Create Date: 2026-11-28
"""

from alembic import op

revision = "notify_0005"
down_revision = "notify_0004"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "CREATE INDEX notifications_digest ON notifications (digest_id) WHERE digest_id IS NOT NULL"
    )


def downgrade():
    op.execute("DROP INDEX notifications_digest")
