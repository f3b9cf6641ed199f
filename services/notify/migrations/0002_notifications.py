"""Recipient directory, preferences, notifications, webhook subscriptions.

Revision ID: notify_0002
Revises: notify_0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "notify_0002"
down_revision = "notify_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        -- Who can be notified, kept from accounts' events so delivery never calls back.
        CREATE TABLE recipients (
            id uuid PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('returnee', 'staff', 'organization')),
            name text NOT NULL,
            email text,
            phone text,
            locale text NOT NULL DEFAULT 'zh-CN',
            role text,
            organization_id uuid,
            notifications_consent boolean NOT NULL DEFAULT true,
            -- Event times of the data held, so an older event arriving late changes nothing.
            consent_at timestamptz NOT NULL DEFAULT '-infinity',
            updated_at timestamptz NOT NULL DEFAULT '-infinity'
        );
        -- Erased people, so a late event about them cannot bring their data back.
        CREATE TABLE erased_recipients (
            id uuid PRIMARY KEY,
            erased_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX recipients_staff ON recipients (role, organization_id) WHERE kind = 'staff';

        -- Names that make messages readable: resources and policies as they were published.
        CREATE TABLE resources (
            id uuid PRIMARY KEY,
            organization_id uuid NOT NULL,
            title text NOT NULL
        );
        CREATE TABLE policies (
            id uuid PRIMARY KEY,
            code text NOT NULL UNIQUE,
            title_zh text NOT NULL,
            title_en text NOT NULL
        );

        CREATE TABLE preferences (
            recipient_id uuid PRIMARY KEY,
            opt_outs jsonb NOT NULL DEFAULT '[]',
            quiet_start time,
            quiet_end time,
            timezone text NOT NULL DEFAULT 'Asia/Shanghai',
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE subscriptions (
            id uuid PRIMARY KEY,
            url text NOT NULL,
            event_types text[] NOT NULL,
            secret text NOT NULL,
            active boolean NOT NULL DEFAULT true,
            consecutive_failures integer NOT NULL DEFAULT 0,
            disabled_reason text,
            created_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE notifications (
            id uuid PRIMARY KEY,
            recipient_id uuid NOT NULL,
            channel text NOT NULL CHECK (channel IN ('email', 'in_app', 'webhook', 'sms')),
            template text NOT NULL,
            locale text NOT NULL,
            address text,
            subject text NOT NULL DEFAULT '',
            body text NOT NULL,
            html text,
            context jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL
                CHECK (status IN ('queued', 'sent', 'failed', 'suppressed')),
            reason text,
            event_id uuid NOT NULL,
            event_type text NOT NULL,
            -- A notification merged into a digest follows the lead's fate.
            digest_id uuid REFERENCES notifications (id) ON DELETE CASCADE,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            held_for_quiet_hours boolean NOT NULL DEFAULT false,
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz,
            -- Exactly once: redelivered events cannot add a second notification.
            CONSTRAINT one_per_event_recipient_channel UNIQUE (event_id, recipient_id, channel)
        );
        CREATE INDEX notifications_due ON notifications (next_attempt_at)
            WHERE status = 'queued' AND digest_id IS NULL;
        CREATE INDEX notifications_recipient ON notifications (recipient_id, created_at DESC);
        """
    )


def downgrade():
    op.execute(
        "DROP TABLE notifications; DROP TABLE subscriptions; DROP TABLE preferences;"
        " DROP TABLE policies; DROP TABLE resources; DROP TABLE recipients;"
        " DROP TABLE erased_recipients;"
    )
