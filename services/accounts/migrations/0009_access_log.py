"""The access log (PIPL art. 44-45): each read of a returnee's personal data by staff, with who,
when, what and the case or reason stated; deleted with the account.

Revision ID: accounts_0009
Revises: accounts_0008
Create Date: 2026-12-01
"""

from alembic import op

revision = "accounts_0009"
down_revision = "accounts_0008"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE access_log (
            id bigserial PRIMARY KEY,
            returnee_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            reader_id uuid NOT NULL,
            reader_role text NOT NULL,
            service text NOT NULL,
            what text NOT NULL,
            case_ref text,
            reason text,
            read_at timestamptz NOT NULL
        );
        CREATE INDEX access_log_returnee ON access_log (returnee_id, read_at DESC);
        """
    )


def downgrade():
    op.execute("DROP TABLE access_log;")
