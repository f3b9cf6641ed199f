"""Erasure: outbox rows about an erased person (or carrying a credential) go once published.
And the erased returnees' tombstones.

Revision ID: consulting_0006
Revises: consulting_0005
Create Date: 2026-12-01
"""

from alembic import op

from chassis.schema import add_outbox_forgetting, drop_outbox_forgetting

revision = "consulting_0006"
down_revision = "consulting_0005"
branch_labels = None
depends_on = None


def upgrade():
    add_outbox_forgetting(op)

    op.execute(
        """
        -- That a returnee was erased (the id alone): a late or replayed event about them, or a
        -- request with a token still valid, brings nothing back.
        CREATE TABLE erasures (
            returnee_id uuid PRIMARY KEY,
            erased_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade():
    op.execute("DROP TABLE erasures;")
    drop_outbox_forgetting(op)
