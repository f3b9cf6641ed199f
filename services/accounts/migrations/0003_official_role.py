"""Staff accounts of the district office: the role `official`.

Revision ID: accounts_0003
Revises: accounts_0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "accounts_0003"
down_revision = "accounts_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
        ALTER TABLE accounts ADD CONSTRAINT accounts_role_check
            CHECK (role IN ('returnee', 'advisor', 'provider', 'admin', 'official'));
        """
    )


def downgrade():
    op.execute(
        """
        ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
        ALTER TABLE accounts ADD CONSTRAINT accounts_role_check
            CHECK (role IN ('returnee', 'advisor', 'provider', 'admin'));
        """
    )
