"""The activity registrations of each returnee (`chassis.access`): an advisor coming from one
reads the returnee's eligibility and appointments through it. Kept from activities'
`registration.*` events; deleted on erasure.

Revision ID: consulting_0008
Revises: consulting_0007
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_case_links_table, drop_case_links_table

revision = "consulting_0008"
down_revision = "consulting_0007"
branch_labels = None
depends_on = None


def upgrade():
    create_case_links_table(op)


def downgrade():
    drop_case_links_table(op)
