"""Revoked subjects: the bearer tokens of a person that no longer count (`chassis.revocation`).

Revision ID: notify_0008
Revises: notify_0007
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_revocation_table, drop_revocation_table

revision = "notify_0008"
down_revision = "notify_0007"
branch_labels = None
depends_on = None


def upgrade():
    create_revocation_table(op)


def downgrade():
    drop_revocation_table(op)
