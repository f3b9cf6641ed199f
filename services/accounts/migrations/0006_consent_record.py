"""Consent records that hold: who changed a consent, through what (web, API, import) and under
which version of the consent text. Rows from before are marked as not recorded.

Revision ID: accounts_0006
Revises: accounts_0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "accounts_0006"
down_revision = "accounts_0005"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        ALTER TABLE consent_history
            ADD COLUMN actor_id uuid,
            ADD COLUMN actor_role text,
            ADD COLUMN source text NOT NULL DEFAULT 'unrecorded'
                CHECK (source IN ('web', 'api', 'import', 'unrecorded')),
            ADD COLUMN text_version text NOT NULL DEFAULT 'unrecorded';
        """
    )


def downgrade():
    op.execute(
        "ALTER TABLE consent_history DROP COLUMN actor_id, DROP COLUMN actor_role,"
        " DROP COLUMN source, DROP COLUMN text_version;"
    )
