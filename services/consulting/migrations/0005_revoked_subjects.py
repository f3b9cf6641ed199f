"""Revoked subjects: the bearer tokens of a person that no longer count (`chassis.revocation`).

Revision ID: consulting_0005
Revises: consulting_0004
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_revocation_table, drop_revocation_table

revision = "consulting_0005"
down_revision = "consulting_0004"
branch_labels = None
depends_on = None


def upgrade():
    create_revocation_table(op)


def downgrade():
    drop_revocation_table(op)
