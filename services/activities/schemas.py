"""HTTP payloads of the activities service."""

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from chassis.errors import add_rules
from chassis.fields import Instant
from contracts.vocabulary import (
    ACTIVITY_KINDS,
    INDUSTRIES,
    INTENTION_STATUSES,
    NEEDS,
    REGISTRANT_ROLES,
    REGISTRATION_STATUSES,
    STARTUP_STAGES,
)
from services.activities.activity import STATUSES, parse_cursor


class Localized(Schema):
    zh_cn = fields.String(
        data_key="zh-CN",
        attribute="zh-CN",
        required=True,
        validate=validate.Length(min=1, max=2000),
    )
    en = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class Venue(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    address = fields.String(required=True, validate=validate.Length(min=1, max=300))


def _one_of(values):
    return fields.String(validate=validate.OneOf(values))


class Audience(Schema):
    industries = fields.List(_one_of(INDUSTRIES), load_default=list)
    stages = fields.List(_one_of(STARTUP_STAGES), load_default=list)
    needs = fields.List(_one_of(NEEDS), load_default=list)


class ActivityIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(ACTIVITY_KINDS))
    title = fields.Nested(Localized, required=True)
    summary = fields.Nested(Localized, required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    venue = fields.Nested(Venue, required=True)
    capacity = fields.Integer(required=True, validate=validate.Range(min=1, max=10_000))
    organizer_ids = fields.List(
        fields.UUID(),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={"description": "Organizations that organize the activity."},
    )
    audience = fields.Nested(
        Audience,
        load_default=lambda: {"industries": [], "stages": [], "needs": []},
        metadata={"description": "Who is invited; an empty list means everyone."},
    )
    registration_closes_at = Instant(
        allow_none=True,
        load_default=None,
        metadata={"description": "No registration after this; omitted: until the start."},
    )

    @validates_schema
    def _times_in_order(self, data, **kwargs):
        errors = {}
        if data["ends_at"] <= data["starts_at"]:
            errors["ends_at"] = ["Must be after starts_at."]
        closes = data.get("registration_closes_at")
        if closes is not None and closes > data["starts_at"]:
            errors["registration_closes_at"] = ["Must not be after starts_at."]
        if errors:
            raise ValidationError(errors)


class Organizer(Schema):
    organization_id = fields.String()
    name = fields.String(allow_none=True)


class PartyOut(Schema):
    kind = fields.String(metadata={"enum": ["organization", "returnee"]})
    organization_id = fields.String()
    name = fields.String(allow_none=True)
    returnee_id = fields.String(
        allow_none=True,
        metadata={"description": "Staff only; null once the returnee is erased."},
    )


class AgreementOut(Schema):
    id = fields.String()
    title = fields.String()
    signed_on = fields.Date()
    summary = fields.String()
    parties = fields.List(fields.Nested(PartyOut))


class ActivityListed(Schema):
    """An activity in a list; its own page adds the waitlist and the agreements."""

    id = fields.String()
    kind = fields.String(metadata={"enum": list(ACTIVITY_KINDS)})
    title = fields.Dict()
    summary = fields.Dict()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    venue = fields.Nested(Venue)
    capacity = fields.Integer()
    seats_left = fields.Integer()
    organizers = fields.List(fields.Nested(Organizer))
    audience = fields.Nested(Audience)
    registration_closes_at = fields.AwareDateTime(allow_none=True)
    status = fields.String(metadata={"enum": list(STATUSES)})
    published_at = fields.AwareDateTime()
    cancelled_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)


class ActivityOut(ActivityListed):
    waitlisted = fields.Integer()
    agreements = fields.List(fields.Nested(AgreementOut))


class ActivityPage(Schema):
    items = fields.List(fields.Nested(ActivityListed))
    next = fields.String(
        allow_none=True, metadata={"description": "Pass as `next` for the following page."}
    )


CURSOR = r"^[A-Za-z0-9_-]{1,200}$"  # base64url: the alphabet `activity.cursor` writes


class ActivityCursor(fields.String):
    """The `next` of a page: where the following one starts."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"pattern": CURSOR, **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        validate.Regexp(CURSOR)(text)  # the document's pattern: a 400
        try:
            return parse_cursor(text)
        except ValueError:
            raise ValidationError("Not a valid cursor.") from None


class ActivityQuery(Schema):
    from_ = Instant(
        data_key="from",
        attribute="from",
        load_default=None,
        metadata={"description": "Activities ending at or after this (default: now)."},
    )
    to = Instant(load_default=None, metadata={"description": "Activities starting by this."})
    kind = fields.String(load_default=None, validate=validate.OneOf(ACTIVITY_KINDS))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    next = ActivityCursor(load_default=None)


class CloseIn(Schema):
    summary = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=5000))


class RegistrationOut(Schema):
    id = fields.String()
    activity_id = fields.String()
    registrant_role = fields.String(metadata={"enum": list(REGISTRANT_ROLES)})
    person_id = fields.String(
        allow_none=True, metadata={"description": "Staff only; null once the returnee is erased."}
    )
    name = fields.String(allow_none=True, metadata={"description": "Staff only."})
    organization_id = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(REGISTRATION_STATUSES)})
    position = fields.Integer(
        allow_none=True, metadata={"description": "On the waitlist: 1 is the next promoted."}
    )
    check_in_code = fields.String(
        metadata={"description": "To the registrant only, once the seat is theirs."}
    )
    registered_at = fields.AwareDateTime()
    checked_in_at = fields.AwareDateTime(allow_none=True)
    cancelled_at = fields.AwareDateTime(allow_none=True)


class RegistrationPage(Schema):
    items = fields.List(fields.Nested(RegistrationOut))
    next = fields.String(allow_none=True)


class RegistrationQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    next = fields.Integer(load_default=None, validate=validate.Range(min=0, max=2**63 - 1))


class CheckInIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=64))


class CheckInOut(Schema):
    registration_id = fields.String()
    name = fields.String(allow_none=True, metadata={"description": "Whom the code belongs to."})
    registrant_role = fields.String(metadata={"enum": list(REGISTRANT_ROLES)})
    organization_id = fields.String(allow_none=True)
    already_checked_in = fields.Boolean()
    checked_in_at = fields.AwareDateTime()


class PartyIn(Schema):
    class Meta:
        unknown = RAISE

    organization_id = fields.UUID(allow_none=True, load_default=None)
    returnee_id = fields.UUID(allow_none=True, load_default=None)

    @validates_schema
    def _one_of_both(self, data, **kwargs):
        if (data["organization_id"] is None) == (data["returnee_id"] is None):
            raise ValidationError("Name either organization_id or returnee_id.", "organization_id")


class AgreementIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    parties = fields.List(fields.Nested(PartyIn), required=True, validate=validate.Length(min=2))
    signed_on = fields.Date(required=True)
    summary = fields.String(load_default="", validate=validate.Length(max=5000))


class IntentionCounts(Schema):
    total = fields.Integer()
    expressed = fields.Integer()
    accepted = fields.Integer()
    declined = fields.Integer()
    items = fields.List(
        fields.Nested(
            Schema.from_dict(
                {
                    "intention_id": fields.String(),
                    "organization_id": fields.String(),
                    "status": fields.String(metadata={"enum": list(INTENTION_STATUSES)}),
                },
                name="ReportIntention",
            )
        )
    )


class ReportOut(Schema):
    activity_id = fields.String()
    title = fields.Dict()
    status = fields.String(metadata={"enum": list(STATUSES)})
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)
    summary = fields.String(allow_none=True)
    capacity = fields.Integer()
    registered = fields.Integer(metadata={"description": "Registrations holding a seat."})
    waitlisted = fields.Integer()
    cancelled = fields.Integer()
    attended = fields.Integer(metadata={"description": "Registrants checked in."})
    attendance_rate = fields.Float(
        allow_none=True, metadata={"description": "attended / registered; null with none."}
    )
    organizations_represented = fields.Integer()
    organizations = fields.List(fields.Nested(Organizer))
    agreements = fields.Integer()
    agreement_titles = fields.List(fields.String())
    intentions = fields.Nested(IntentionCounts)


# Checked beyond the fields (with another field, today or stored data): a 422 (chassis.web.invalid).
add_rules(
    "Must be after starts_at.",
    "Must not be after starts_at.",
    "Must be in the future.",
    "Unknown organization.",
    "Unknown returnee.",
    "Each organization is listed once.",
    "Each returnee is listed once.",
    "Name either organization_id or returnee_id.",
    "Not a valid cursor.",
)
PUBLICATION_RULES = (
    "ends_at is after starts_at; registration_closes_at, when given, is not after starts_at",
    "starts_at is in the future",
    "organizer_ids name organizations registered with the platform",
)
AGREEMENT_RULES = (
    "each party names either an organization_id or a returnee_id",
    "each party is an organization or returnee known to the platform, listed once",
)
