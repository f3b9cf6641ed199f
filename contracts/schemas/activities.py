"""Events published by activities on exchange `activities.events`.

Exchange sessions, site visits, briefings and trainings: who registered, who came, what was
signed there. Registration events name the registrant by id only (the name stays in activities)
and carry what a confirmation needs (the activity's title, time and venue), so a consumer can
tell the person without asking back. `registration.confirmed` carries the check-in code: it is
what the registrant shows at the door, where staff see the name it belongs to.
"""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.catalog import EventType
from contracts.vocabulary import (
    ACTIVITY_KINDS,
    INDUSTRIES,
    NEEDS,
    REGISTRANT_ROLES,
    REGISTRATION_CANCELLERS,
    REGISTRATION_STATUSES,
    STAFF_ROLES,
    STARTUP_STAGES,
)

__all__ = [
    "EVENT_TYPES",
    "ActivityCancelled",
    "ActivityClosed",
    "ActivityPublished",
    "AgreementSigned",
    "AttendanceRecorded",
    "InvitationIssued",
    "RegistrationCancelled",
    "RegistrationConfirmed",
    "RegistrationWaitlisted",
]


class LocalizedText(Schema):
    # Keyed by locale when loaded too, so a consumer picks `title[locale]`.
    zh_cn = fields.String(
        data_key="zh-CN", attribute="zh-CN", required=True, validate=validate.Length(min=1)
    )
    en = fields.String(required=True, validate=validate.Length(min=1))


class Venue(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    address = fields.String(required=True, validate=validate.Length(min=1, max=300))


class Audience(Schema):
    industries = fields.List(
        fields.String(validate=validate.OneOf(INDUSTRIES)),
        required=True,
        metadata={"description": "Industries invited; empty means every industry."},
    )
    stages = fields.List(
        fields.String(validate=validate.OneOf(STARTUP_STAGES)),
        required=True,
        metadata={"description": "Startup stages invited; empty means every stage."},
    )
    needs = fields.List(
        fields.String(validate=validate.OneOf(NEEDS)),
        required=True,
        metadata={"description": "Returnees with one of these needs are invited; empty: any."},
    )


class _Timed(Schema):
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)

    @validates_schema
    def _times_in_order(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("must be after starts_at", "ends_at")


class ActivityPublished(_Timed):
    activity_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(ACTIVITY_KINDS))
    title = fields.Nested(LocalizedText, required=True)
    venue = fields.Nested(Venue, required=True)
    capacity = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "Seats; registrations beyond them are waitlisted."},
    )
    organizer_ids = fields.List(
        fields.UUID(),
        required=True,
        metadata={"description": "The organizations that organize the activity."},
    )
    audience = fields.Nested(Audience, required=True)
    registration_closes_at = fields.AwareDateTime(
        allow_none=True,
        load_default=None,
        metadata={"description": "No registration after this; null: until the start."},
    )


class ActivityCancelled(Schema):
    activity_id = fields.UUID(required=True)
    cancelled_by = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))


class ActivityClosed(Schema):
    """The closing report's counts (the report itself: `GET /activities/{id}/report`)."""

    activity_id = fields.UUID(required=True)
    registered = fields.Integer(
        required=True,
        validate=validate.Range(min=0),
        metadata={"description": "Registrations holding a seat when the activity closed."},
    )
    attended = fields.Integer(required=True, validate=validate.Range(min=0))
    organizations_represented = fields.Integer(required=True, validate=validate.Range(min=0))
    agreements = fields.Integer(required=True, validate=validate.Range(min=0))
    intentions = fields.Integer(
        required=True,
        validate=validate.Range(min=0),
        metadata={"description": "Cooperation intentions expressed at the activity."},
    )


class ActivitySummary(_Timed):
    """What a registrant is told about the activity."""

    title = fields.Nested(LocalizedText, required=True)
    venue = fields.Nested(Venue, required=True)
    organizer_ids = fields.List(fields.UUID(), required=True)


class InvitationIssued(Schema):
    activity_id = fields.UUID(required=True)
    returnee_id = fields.UUID(required=True)
    activity = fields.Nested(ActivitySummary, required=True)


class _Registrant(Schema):
    """Who: a returnee for themself, or a provider for their organization."""

    registration_id = fields.UUID(required=True)
    activity_id = fields.UUID(required=True)
    registrant_role = fields.String(required=True, validate=validate.OneOf(REGISTRANT_ROLES))
    returnee_id = fields.UUID(
        allow_none=True, load_default=None, metadata={"description": "When a returnee."}
    )
    staff_id = fields.UUID(
        allow_none=True, load_default=None, metadata={"description": "When a provider."}
    )
    organization_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "The organization a provider represents."},
    )

    @validates_schema
    def _one_registrant(self, data, **kwargs):
        named = "returnee_id" if data.get("registrant_role") == "returnee" else "staff_id"
        if data.get(named) is None:
            raise ValidationError("Missing data for required field.", named)


class _Registration(_Registrant):
    status = fields.String(required=True, validate=validate.OneOf(REGISTRATION_STATUSES))
    activity = fields.Nested(ActivitySummary, required=True)


class RegistrationConfirmed(_Registration):
    check_in_code = fields.String(
        required=True,
        validate=validate.Length(min=4, max=32),
        metadata={"description": "Shown at the door (as text or QR code) to check in."},
    )
    promoted = fields.Boolean(
        required=True, metadata={"description": "True when the seat came from the waitlist."}
    )


class RegistrationWaitlisted(_Registration):
    position = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "Place on the waitlist when registering; 1 is next."},
    )


class RegistrationCancelled(_Registration):
    cancelled_by = fields.String(required=True, validate=validate.OneOf(REGISTRATION_CANCELLERS))
    freed_seat = fields.Boolean(
        required=True, metadata={"description": "True when it was confirmed (a seat came free)."}
    )


class AttendanceRecorded(_Registrant):
    checked_in_at = fields.AwareDateTime(required=True)


class Party(Schema):
    organization_id = fields.UUID(allow_none=True, load_default=None)
    returnee_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "A returnee who signed; null for both once they are erased."},
    )


class AgreementSigned(Schema):
    agreement_id = fields.UUID(required=True)
    activity_id = fields.UUID(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    signed_on = fields.Date(required=True)
    parties = fields.List(fields.Nested(Party), required=True, validate=validate.Length(min=2))


def _activities(type_: str, schema: type[Schema], emitted_when: str) -> EventType:
    return EventType(
        type=type_, version=1, producer="activities", schema=schema, emitted_when=emitted_when
    )


EVENT_TYPES = [
    _activities(
        "activity.published",
        ActivityPublished,
        "Station staff publish an activity: an exchange session, a site visit, a briefing or a "
        "training.",
    ),
    _activities(
        "activity.cancelled",
        ActivityCancelled,
        "An activity is cancelled before it takes place; its registrations lapse.",
    ),
    _activities(
        "activity.closed",
        ActivityClosed,
        "An activity that took place is closed with its report: attendance, agreements, "
        "intentions.",
    ),
    _activities(
        "invitation.issued",
        InvitationIssued,
        "A returnee in an activity's audience who consented to notifications is invited to it.",
    ),
    _activities(
        "registration.confirmed",
        RegistrationConfirmed,
        "A registration holds a seat: at once, or promoted from the waitlist.",
    ),
    _activities(
        "registration.waitlisted",
        RegistrationWaitlisted,
        "A registration arrives when every seat is taken and joins the waitlist.",
    ),
    _activities(
        "registration.cancelled",
        RegistrationCancelled,
        "A registration is cancelled by the registrant or station staff.",
    ),
    _activities(
        "attendance.recorded",
        AttendanceRecorded,
        "A registrant is checked in at the door (once, however often the code is scanned).",
    ),
    _activities(
        "agreement.signed",
        AgreementSigned,
        "Station staff record an agreement its parties signed at an activity.",
    ),
]
