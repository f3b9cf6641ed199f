"""HTTP payloads of the notify service."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts import CATALOG
from services.notify import messages  # noqa: F401  (the catalog of the texts raised here)
from services.notify.domain import ANY, TEMPLATES, valid_zone

PERSONAL_CHANNELS = ("email", "in_app", "sms")
STATUSES = ("queued", "sent", "failed", "suppressed")
# District systems may subscribe to every event notify consumes.
SUBSCRIBABLE = tuple(
    sorted(t.type for t in CATALOG if t.producer in ("accounts", "consulting", "matching"))
)


class NotificationsQuery(Schema):
    recipient_id = fields.UUID(required=True)
    channel = fields.String(validate=validate.OneOf(PERSONAL_CHANNELS), load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class NotificationOut(Schema):
    id = fields.UUID()
    recipient_id = fields.UUID()
    channel = fields.String(metadata={"enum": list(PERSONAL_CHANNELS)})
    template = fields.String(metadata={"enum": list(TEMPLATES)})
    locale = fields.String()
    subject = fields.String()
    body = fields.String(metadata={"description": "The message as plain text."})
    status = fields.String(metadata={"enum": list(STATUSES)})
    reason = fields.String(
        allow_none=True, metadata={"description": "Why it was suppressed or failed."}
    )
    event_id = fields.UUID()
    event_type = fields.String()
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)


class OptOut(Schema):
    channel = fields.String(required=True, validate=validate.OneOf((*PERSONAL_CHANNELS, ANY)))
    topic = fields.String(
        required=True,
        validate=validate.OneOf((*TEMPLATES, ANY)),
        metadata={"description": "A template name, or * for every topic."},
    )


class QuietHours(Schema):
    start = fields.Time(required=True, metadata={"description": "Local time, e.g. 22:00."})
    end = fields.Time(required=True, metadata={"description": "Local time, e.g. 07:30."})
    timezone = fields.String(load_default="Asia/Shanghai")

    @validates_schema
    def _known_zone(self, data, **kwargs):
        if not valid_zone(data.get("timezone", "")):
            raise ValidationError("Unknown time zone.", "timezone")


class PreferencesBody(Schema):
    opt_outs = fields.List(
        fields.Nested(OptOut),
        load_default=list,
        validate=validate.Length(max=100),
        metadata={"description": "Channel and topic pairs not to be notified on."},
    )
    quiet_hours = fields.Nested(
        QuietHours,
        allow_none=True,
        load_default=None,
        metadata={"description": "Email and SMS wait until they end; null for none."},
    )


class PreferencesOut(PreferencesBody):
    recipient_id = fields.UUID()


class SubscriptionBody(Schema):
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    event_types = fields.List(
        fields.String(validate=validate.OneOf(SUBSCRIBABLE)),
        required=True,
        validate=validate.Length(min=1),
    )
    secret = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=16, max=256),
        metadata={"description": "Shared secret of the HMAC-SHA256 signature."},
    )


class SubscriptionOut(Schema):
    id = fields.UUID()
    url = fields.String()
    event_types = fields.List(fields.String())
    active = fields.Boolean()
    consecutive_failures = fields.Integer()
    disabled_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


class TopicOut(Schema):
    name = fields.String(metadata={"description": "The template name used in opt-outs."})
    label = fields.String(metadata={"description": "In the caller's language."})
    description = fields.String()
    channels = fields.List(fields.String())
