"""Events published by notify on exchange `notify.events`.

They say that a person was notified and through which channel, never what was sent: subject and
body stay in notify.
"""

from marshmallow import Schema, fields, validate

from contracts.catalog import EventType
from contracts.vocabulary import CHANNELS, SLUG

__all__ = ["EVENT_TYPES", "NotificationFailed", "NotificationSent", "SubscriptionDisabled"]

# The envelope's own pattern for `type`, so a notification names the event it reacted to exactly.
EVENT_TYPE_PATTERN = r"^[a-z_]+(\.[a-z_0-9]+)+$"


class NotificationSent(Schema):
    notification_id = fields.UUID(required=True)
    recipient_id = fields.UUID(
        required=True,
        metadata={"description": "The returnee or staff member; for webhooks, the subscription."},
    )
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    template = fields.String(required=True, validate=validate.Regexp(SLUG))
    event_id = fields.UUID(
        required=True, metadata={"description": "The event the notification reacted to."}
    )
    event_type = fields.String(required=True, validate=validate.Regexp(EVENT_TYPE_PATTERN))


class NotificationFailed(NotificationSent):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Why the last attempt failed; retries are exhausted."},
    )


class SubscriptionDisabled(Schema):
    subscription_id = fields.UUID(required=True)
    url = fields.Url(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    failures = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "Consecutive failed deliveries that disabled it."},
    )


EVENT_TYPES = [
    EventType(
        type="notification.sent",
        version=1,
        producer="notify",
        schema=NotificationSent,
        emitted_when="A notification is delivered to its channel (SMTP accepted it, the inbox "
        "stored it, the webhook answered 2xx).",
    ),
    EventType(
        type="notification.failed",
        version=1,
        producer="notify",
        schema=NotificationFailed,
        emitted_when="A notification could not be delivered after its last retry.",
    ),
    EventType(
        type="subscription.disabled",
        version=1,
        producer="notify",
        schema=SubscriptionDisabled,
        emitted_when="A webhook subscription is disabled after too many consecutive failures.",
    ),
]
