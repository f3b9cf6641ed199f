"""Outbox and inbox tables of the chassis.

Revision ID: activities_0001
Revises:
Create Date: 2026-11-28
"""

from alembic import op

from chassis.schema import create_messaging_tables, drop_messaging_tables

revision = "activities_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    create_messaging_tables(op)


def downgrade():
    drop_messaging_tables(op)
