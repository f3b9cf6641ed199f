"""Revoked subjects: the bearer tokens of a person that no longer count (`chassis.revocation`).

Revision ID: insights_0004
Revises: insights_0003
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_revocation_table, drop_revocation_table

revision = "insights_0004"
down_revision = "insights_0003"
branch_labels = None
depends_on = None


def upgrade():
    create_revocation_table(op)


def downgrade():
    drop_revocation_table(op)
