"""Erasure: outbox rows about an erased person (or carrying a credential) go once published.

Revision ID: matching_0007
Revises: matching_0006
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import add_outbox_forgetting, drop_outbox_forgetting

revision = "matching_0007"
down_revision = "matching_0006"
branch_labels = None
depends_on = None


def upgrade():
    add_outbox_forgetting(op)


def downgrade():
    drop_outbox_forgetting(op)
