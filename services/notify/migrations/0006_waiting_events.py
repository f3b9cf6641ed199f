"""Events that wait for their returnee: consulting and matching answer a registration faster
than notify may take it in, so their events can arrive first. They wait here, in the wire form
their producer published, until the registration is taken (which announces them at once).

Revision ID: notify_0006
Revises: notify_0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "notify_0006"
down_revision = "notify_0005"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE waiting_events (
            event_id uuid PRIMARY KEY,
            returnee_id uuid NOT NULL,
            body bytea NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX waiting_events_returnee ON waiting_events (returnee_id);
        """
    )


def downgrade():
    op.execute("DROP TABLE waiting_events")
