"""Canned replies: per consultation topic, in Chinese and English, which admins keep and
advisors insert into an answer.

Revision ID: consulting_0007
Revises: consulting_0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "consulting_0007"
down_revision = "consulting_0006"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE canned_replies (
            id uuid PRIMARY KEY,
            topic text NOT NULL,
            title_zh text NOT NULL,
            title_en text NOT NULL,
            body_zh text NOT NULL,
            body_en text NOT NULL,
            created_by uuid NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE INDEX canned_replies_topic ON canned_replies (topic, title_en);
        """
    )


def downgrade():
    op.execute("DROP TABLE canned_replies;")
