"""Erasure: outbox rows about an erased person (or carrying a credential) go once published.

Revision ID: activities_0004
Revises: activities_0003
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import add_outbox_forgetting, drop_outbox_forgetting

revision = "activities_0004"
down_revision = "activities_0003"
branch_labels = None
depends_on = None


def upgrade():
    add_outbox_forgetting(op)


def downgrade():
    drop_outbox_forgetting(op)
