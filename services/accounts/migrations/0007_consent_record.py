"""Consent records that hold: who changed a consent, through what (web, API, import) and under
which version of the consent text. Rows from before keep `self` (or `admin`) as their source and
an unrecorded text version.

Revision ID: accounts_0007
Revises: accounts_0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "accounts_0007"
down_revision = "accounts_0006"
branch_labels = None
depends_on = None


def upgrade():
    # accounts_0005 recorded who (`self`) or an import; a source is now through what: `web`
    # (the portal), `api`, `import`. `self` and `admin` stay on the rows from before.
    op.execute(
        """
        ALTER TABLE consent_history DROP CONSTRAINT consent_history_source_check;
        ALTER TABLE consent_history ALTER COLUMN source SET DEFAULT 'api';
        ALTER TABLE consent_history ADD CONSTRAINT consent_history_source_check
            CHECK (source IN ('web', 'api', 'import', 'self', 'admin'));
        ALTER TABLE consent_history
            ADD COLUMN actor_role text,
            ADD COLUMN text_version text NOT NULL DEFAULT 'unrecorded';
        """
    )


def downgrade():
    op.execute(
        """
        ALTER TABLE consent_history DROP COLUMN actor_role, DROP COLUMN text_version;
        UPDATE consent_history SET source = 'self' WHERE source IN ('web', 'api');
        ALTER TABLE consent_history DROP CONSTRAINT consent_history_source_check;
        ALTER TABLE consent_history ALTER COLUMN source SET DEFAULT 'self';
        ALTER TABLE consent_history ADD CONSTRAINT consent_history_source_check
            CHECK (source IN ('self', 'admin', 'import'));
        """
    )
