"""The key each sealed ID document was sealed under (`services.accounts.sealing.key_id`); NULL
for values sealed before key ids were recorded, which the re-seal command opens with whichever
known key fits.

Revision ID: accounts_0008
Revises: accounts_0007
Create Date: 2026-12-01
"""

from alembic import op

revision = "accounts_0008"
down_revision = "accounts_0007"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE returnees ADD COLUMN id_document_key text;")


def downgrade():
    op.execute("ALTER TABLE returnees DROP COLUMN id_document_key;")
