"""Returnees waiting to be re-matched: a reverse match (a resource published, withdrawn or full)
queues the returnees it touches here, in the transaction that decides it, and the re-match loop
works through them in short transactions of their own.

Revision ID: matching_0004
Revises: matching_0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "matching_0004"
down_revision = "matching_0003"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE rematch_queue (
            returnee_id uuid PRIMARY KEY,
            queued_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX rematch_queue_order ON rematch_queue (queued_at, returnee_id);
        """
    )


def downgrade():
    op.execute("DROP TABLE rematch_queue")
