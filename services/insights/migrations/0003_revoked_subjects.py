"""Revoked subjects: the bearer tokens of a person that no longer count (`chassis.revocation`).

Revision ID: insights_0003
Revises: insights_0002
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_revocation_table, drop_revocation_table

revision = "insights_0003"
down_revision = "insights_0002"
branch_labels = None
depends_on = None


def upgrade():
    create_revocation_table(op)


def downgrade():
    drop_revocation_table(op)
