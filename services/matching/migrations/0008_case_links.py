"""The consultations, appointments, applications and activity registrations of each returnee
(`chassis.access`): an advisor reads a returnee's matches through one. Kept from consulting's
and activities' events; deleted on erasure.

Revision ID: matching_0008
Revises: matching_0007
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_case_links_table, drop_case_links_table

revision = "matching_0008"
down_revision = "matching_0007"
branch_labels = None
depends_on = None


def upgrade():
    create_case_links_table(op)


def downgrade():
    drop_case_links_table(op)
