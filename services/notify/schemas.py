"""HTTP payloads of the notify service."""

import re

from marshmallow import Schema, fields, validate

from chassis.web import HttpUrl
from contracts import CATALOG
from services.notify import messages  # noqa: F401  (the catalog of the texts raised here)
from services.notify.domain import ANY, TEMPLATES, ZONES

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


CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


class ClockTime(fields.Time):
    """A local time of day as HH:MM or HH:MM:SS (the document's pattern; Python would also
    read "2200" or "22")."""

    def __init__(self, **kwargs):
        metadata = {"pattern": CLOCK_TIME, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.match(CLOCK_TIME, value):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        return super()._deserialize(value, attr, data, **kwargs)


class QuietHours(Schema):
    start = ClockTime(required=True, metadata={"description": "Local time, e.g. 22:00."})
    end = ClockTime(required=True, metadata={"description": "Local time, e.g. 07:30."})
    timezone = fields.String(
        load_default="Asia/Shanghai",
        validate=validate.OneOf(ZONES, error="Unknown time zone."),
        metadata={"description": "An IANA time zone name."},
    )


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
    url = HttpUrl(required=True)
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
