"""Topics a person can opt out of, with their names in both languages (seeded).

Revision ID: notify_0003
Revises: notify_0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "notify_0003"
down_revision = "notify_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE topics (
            name text PRIMARY KEY,
            position integer NOT NULL,
            label_zh text NOT NULL,
            label_en text NOT NULL,
            description_zh text NOT NULL,
            description_en text NOT NULL,
            channels text[] NOT NULL
        );
        """
    )


def downgrade():
    op.execute("DROP TABLE topics;")
