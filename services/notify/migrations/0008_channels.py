"""Channels people in China read: work messengers (WeCom, DingTalk, Feishu) as destinations of
staff and organizations, SMS accepted by a gateway and waiting for its delivery receipt, and the
ledger of sends that keeps each destination within its provider's quota.

Revision ID: notify_0008
Revises: notify_0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "notify_0008"
down_revision = "notify_0007"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check;
        ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN
            ('email', 'in_app', 'webhook', 'sms', 'wecom', 'dingtalk', 'feishu'));
        -- accepted: the SMS gateway took it; its delivery receipt says sent or failed.
        ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
        ALTER TABLE notifications ADD CONSTRAINT notifications_status_check CHECK (status IN
            ('queued', 'accepted', 'sent', 'failed', 'suppressed'));
        ALTER TABLE notifications ADD COLUMN provider_ref text, ADD COLUMN accepted_at timestamptz;
        CREATE INDEX notifications_receipts ON notifications (next_attempt_at)
            WHERE status = 'accepted';

        -- Where a staff member's or an organization's messages go on a messenger: the robot's
        -- token and, where the messenger checks signatures, its secret. Never returned.
        CREATE TABLE messenger_destinations (
            recipient_id uuid NOT NULL,
            channel text NOT NULL CHECK (channel IN ('wecom', 'dingtalk', 'feishu')),
            token text NOT NULL,
            secret text,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (recipient_id, channel)
        );

        -- One row per attempt on a rate-limited destination (`<channel>:<destination>`, a phone
        -- number only as a hash), kept no longer than the longest quota window.
        CREATE TABLE channel_sends (
            key text NOT NULL,
            sent_at timestamptz NOT NULL
        );
        CREATE INDEX channel_sends_key ON channel_sends (key, sent_at);
        """
    )


def downgrade():
    op.execute(
        """
        DROP TABLE channel_sends;
        DROP TABLE messenger_destinations;
        DROP INDEX notifications_receipts;
        ALTER TABLE notifications DROP COLUMN provider_ref, DROP COLUMN accepted_at;
        DELETE FROM notifications WHERE channel IN ('wecom', 'dingtalk', 'feishu');
        -- Not sent again (the gateway has it), and no longer followed: its fate is unknown.
        UPDATE notifications SET status = 'failed', reason = 'delivery receipt not followed'
        WHERE status = 'accepted';
        ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
        ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
            CHECK (status IN ('queued', 'sent', 'failed', 'suppressed'));
        ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check;
        ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
            CHECK (channel IN ('email', 'in_app', 'webhook', 'sms'));
        """
    )
