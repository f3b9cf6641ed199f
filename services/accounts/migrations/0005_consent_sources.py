"""Where each consent decision came from: the returnee (`self`), an admin on their behalf
(`admin`) or an import (`import`, with the importing admin as actor and the file's reference to
the signed consent as evidence).

Revision ID: accounts_0005
Revises: accounts_0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "accounts_0005"
down_revision = "accounts_0004"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        ALTER TABLE consent_history ADD COLUMN source text NOT NULL DEFAULT 'self'
            CHECK (source IN ('self', 'admin', 'import'));
        ALTER TABLE consent_history ADD COLUMN actor_id uuid;
        ALTER TABLE consent_history ADD COLUMN evidence text;
        -- Organizations are imported idempotently by name.
        CREATE INDEX organizations_name ON organizations (name);
        """
    )


def downgrade():
    op.execute(
        """
        DROP INDEX organizations_name;
        ALTER TABLE consent_history DROP COLUMN evidence;
        ALTER TABLE consent_history DROP COLUMN actor_id;
        ALTER TABLE consent_history DROP COLUMN source;
        """
    )
