"""Revoked subjects: the bearer tokens of a person that no longer count (`chassis.revocation`).

Revision ID: activities_0003
Revises: activities_0002
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_revocation_table, drop_revocation_table

revision = "activities_0003"
down_revision = "activities_0002"
branch_labels = None
depends_on = None


def upgrade():
    create_revocation_table(op)


def downgrade():
    drop_revocation_table(op)
