"""HTTP payloads of the notify service."""

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from chassis.errors import add_rules
from chassis.fields import HttpUrl
from chassis.paging import PageQuery, limit_field
from contracts import CATALOG
from contracts.partners import PRIVATE_EVENTS
from services.notify import messages  # noqa: F401  (the catalog of the texts raised here)
from services.notify.domain import ACCOUNT_ONLY_TEMPLATES, ANY, MESSENGERS, TEMPLATES, ZONES

WECOM_UNSIGNED = "WeCom robots take no secret."
ONE_EACH = "One destination per messenger."
add_rules(WECOM_UNSIGNED, ONE_EACH)  # beyond the fields: 422 (chassis.web.invalid)
CHANNELS_RULES = ("a wecom destination has no secret", "one destination per messenger")

PERSONAL_CHANNELS = ("email", "in_app", "sms", *MESSENGERS)
STATUSES = ("queued", "accepted", "sent", "failed", "suppressed")
# District systems may subscribe to every other event notify consumes.
SUBSCRIBABLE = tuple(
    sorted(
        {
            t.type
            for t in CATALOG
            if t.producer in ("accounts", "consulting", "matching", "activities")
            and t.type not in PRIVATE_EVENTS
        }
    )
)


class NotificationsQuery(PageQuery):
    limit = limit_field(accepted=200)
    recipient_id = fields.UUID(required=True)
    channel = fields.String(validate=validate.OneOf(PERSONAL_CHANNELS), load_default=None)


class NotificationOut(Schema):
    id = fields.UUID()
    recipient_id = fields.UUID()
    channel = fields.String(metadata={"enum": list(PERSONAL_CHANNELS)})
    template = fields.String(metadata={"enum": [*TEMPLATES, *ACCOUNT_ONLY_TEMPLATES]})
    locale = fields.String()
    subject = fields.String()
    body = fields.String(metadata={"description": "The message as plain text."})
    status = fields.String(
        metadata={
            "enum": list(STATUSES),
            "description": "accepted: the SMS gateway took it; its delivery receipt will say "
            "sent or failed.",
        }
    )
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
        metadata={
            "description": "Email, SMS and work messengers wait until they end; null for none."
        },
    )


class PreferencesOut(PreferencesBody):
    recipient_id = fields.UUID()


TOKEN = r"^[A-Za-z0-9_\-]{8,128}$"


class Destination(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(MESSENGERS))
    token = fields.String(
        required=True,
        load_only=True,
        validate=validate.Regexp(TOKEN, error="Not a robot token."),
        metadata={
            "description": "The robot's token from its webhook address: WeCom's `key`, "
            "DingTalk's `access_token`, Feishu's hook id (the last part of the path)."
        },
    )
    secret = fields.String(
        load_default=None,
        allow_none=True,
        load_only=True,
        validate=validate.Length(min=8, max=256),
        metadata={
            "description": "The secret of the robot's signature check (DingTalk 加签, Feishu 签名"
            "校验); WeCom robots have none."
        },
    )

    @validates_schema(skip_on_field_errors=False)
    def _wecom_unsigned(self, data, **kwargs):
        if data.get("channel") == "wecom" and data.get("secret"):
            raise ValidationError(WECOM_UNSIGNED, "secret")


class ChannelsBody(Schema):
    destinations = fields.List(
        fields.Nested(Destination),
        required=True,
        validate=validate.Length(max=len(MESSENGERS)),
        metadata={"description": "Every messenger destination of the recipient (replaced)."},
    )

    @validates_schema
    def _one_each(self, data, **kwargs):
        channels = [d["channel"] for d in data.get("destinations", [])]
        if len(channels) != len(set(channels)):
            raise ValidationError(ONE_EACH, "destinations")


class DestinationOut(Schema):
    channel = fields.String(metadata={"enum": list(MESSENGERS)})
    signed = fields.Boolean(metadata={"description": "Whether messages to it are signed."})
    updated_at = fields.AwareDateTime()


class ChannelsOut(Schema):
    recipient_id = fields.UUID()
    destinations = fields.List(fields.Nested(DestinationOut))


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
    failure_category = fields.String(
        allow_none=True,
        metadata={"description": "Why the last delivery failed, as a kind: refused_destination, "
                  "unreachable, timeout, response_too_large, http_error or failed."},
    )  # fmt: skip
    created_at = fields.AwareDateTime()


class TopicOut(Schema):
    name = fields.String(metadata={"description": "The template name used in opt-outs."})
    label = fields.String(metadata={"description": "In the caller's language."})
    description = fields.String()
    channels = fields.List(fields.String())
