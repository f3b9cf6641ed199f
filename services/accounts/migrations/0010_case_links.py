"""The cases that link a staff member's read to a returnee (`chassis.access`): each
consultation, appointment, application and activity registration of a returnee, by id, kept
from the events consulting and activities publish when they open one; deleted on erasure.

Revision ID: accounts_0010
Revises: accounts_0009
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_case_links_table, drop_case_links_table

revision = "accounts_0010"
down_revision = "accounts_0009"
branch_labels = None
depends_on = None


def upgrade():
    create_case_links_table(op)


def downgrade():
    drop_case_links_table(op)
