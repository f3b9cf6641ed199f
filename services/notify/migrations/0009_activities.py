"""Activities and their registrations, kept from the activities service's events so that
cancellations and reminders need nobody else.

Revision ID: notify_0009
Revises: notify_0008
Create Date: 2026-12-02
"""

from alembic import op

revision = "notify_0009"
down_revision = "notify_0008"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE activities (
            id uuid PRIMARY KEY,  -- the activities service's id
            title jsonb NOT NULL,
            starts_at timestamptz NOT NULL,
            ends_at timestamptz NOT NULL,
            venue jsonb NOT NULL,
            -- When the reminders are due; NULL: none (published inside the reminder window).
            remind_at timestamptz,
            reminded_at timestamptz,
            reminder text CHECK (reminder IN ('queued', 'missed')),
            cancelled_at timestamptz
        );
        CREATE INDEX activities_due ON activities (remind_at)
            WHERE reminded_at IS NULL AND remind_at IS NOT NULL AND cancelled_at IS NULL;
        CREATE INDEX activities_ends ON activities (ends_at);

        -- Who is registered: who hears of a cancellation, who is reminded. No names or codes.
        CREATE TABLE activity_registrations (
            id uuid PRIMARY KEY,  -- the registration's id
            activity_id uuid NOT NULL,
            person_id uuid NOT NULL,  -- the returnee or the provider
            status text NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
            confirmed_at timestamptz
        );
        CREATE INDEX activity_registrations_activity ON activity_registrations (activity_id);
        CREATE INDEX activity_registrations_person ON activity_registrations (person_id);
        """
    )


def downgrade():
    op.execute("DROP TABLE activity_registrations; DROP TABLE activities;")
