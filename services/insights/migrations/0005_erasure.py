"""Erasure: outbox rows about an erased person (or carrying a credential) go once published.

Revision ID: insights_0005
Revises: insights_0004
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import add_outbox_forgetting, drop_outbox_forgetting

revision = "insights_0005"
down_revision = "insights_0004"
branch_labels = None
depends_on = None


def upgrade():
    add_outbox_forgetting(op)


def downgrade():
    drop_outbox_forgetting(op)
