"""Upcoming appointments, kept from consulting's events so reminders need nobody else.

Revision ID: notify_0004
Revises: notify_0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "notify_0004"
down_revision = "notify_0003"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE appointments (
            id uuid PRIMARY KEY,  -- consulting's appointment id
            returnee_id uuid NOT NULL,
            starts_at timestamptz NOT NULL,
            ends_at timestamptz NOT NULL,
            location text NOT NULL,
            -- When the reminder is due; NULL: none (booked inside the window, or cancelled).
            remind_at timestamptz,
            reminded_at timestamptz,
            reminder text CHECK (reminder IN ('queued', 'missed', 'no recipient')),
            -- A cancelled appointment stays as a marker until it is past, so a booking that
            -- arrives after its cancellation (retries reorder events) cannot revive it.
            cancelled_at timestamptz
        );
        CREATE INDEX appointments_due ON appointments (remind_at)
            WHERE reminded_at IS NULL AND remind_at IS NOT NULL;
        CREATE INDEX appointments_returnee ON appointments (returnee_id);
        CREATE INDEX appointments_ends ON appointments (ends_at);
        """
    )


def downgrade():
    op.execute("DROP TABLE appointments;")
