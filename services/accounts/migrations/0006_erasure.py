"""Erasure: outbox rows about an erased person (or carrying a credential) go once published.

Revision ID: accounts_0006
Revises: accounts_0005
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import add_outbox_forgetting, drop_outbox_forgetting

revision = "accounts_0006"
down_revision = "accounts_0005"
branch_labels = None
depends_on = None


def upgrade():
    add_outbox_forgetting(op)


def downgrade():
    drop_outbox_forgetting(op)
