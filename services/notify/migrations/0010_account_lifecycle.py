"""Confirmed addresses (until then, an address receives only the emails accounts asks for) and
revoked subjects (`chassis.revocation`).

Revision ID: notify_0010
Revises: notify_0009
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import create_revocation_table, drop_revocation_table

revision = "notify_0010"
down_revision = "notify_0009"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        -- As registration said (people from before confirmation existed: confirmed).
        ALTER TABLE recipients ADD COLUMN email_verified boolean NOT NULL DEFAULT true;
        -- Confirmed since: kept apart, as it may arrive before the directory entry it concerns.
        CREATE TABLE verified_addresses (
            account_id uuid PRIMARY KEY,
            verified_at timestamptz NOT NULL
        );
        """
    )
    create_revocation_table(op)


def downgrade():
    drop_revocation_table(op)
    op.execute("DROP TABLE verified_addresses; ALTER TABLE recipients DROP COLUMN email_verified;")
