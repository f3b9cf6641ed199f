"""Events published by consulting on exchange `consulting.events`.

Consultation events carry the state of the ticket (status, topic, advisor), never the question or
answer text: a returnee's free text may hold anything, and events fan out to district systems.
"""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.catalog import EventType
from contracts.vocabulary import (
    ACTORS,
    APPLICATION_STATUSES,
    CONSULTATION_STATUSES,
    POLICY_CODE,
    SLA_DEADLINES,
    SLUG,
)

__all__ = [
    "EVENT_TYPES",
    "ApplicationApproved",
    "ApplicationAwarded",
    "ApplicationRejected",
    "ApplicationSubmitted",
    "ApplicationWithdrawn",
    "AppointmentBooked",
    "AppointmentCancelled",
    "ConsultationAnswered",
    "ConsultationAssigned",
    "ConsultationClosed",
    "ConsultationRated",
    "ConsultationReopened",
    "ConsultationRequested",
    "ConsultationSlaBreached",
    "ConsultationWaitingOnReturnee",
    "EligibilityAssessed",
    "PolicyPublished",
]


def _policy_code(**kwargs):
    return fields.String(validate=validate.Regexp(POLICY_CODE), **kwargs)


class LocalizedTitle(Schema):
    # Keyed by locale when loaded too, so a consumer picks `title[locale]`.
    zh_cn = fields.String(
        data_key="zh-CN", attribute="zh-CN", required=True, validate=validate.Length(min=1)
    )
    en = fields.String(required=True, validate=validate.Length(min=1))


class PolicyPublished(Schema):
    policy_id = fields.UUID(required=True)
    code = _policy_code(required=True)
    title = fields.Nested(LocalizedTitle, required=True)
    effective_from = fields.Date(required=True)
    effective_to = fields.Date(allow_none=True, load_default=None)
    version = fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1),
        metadata={"description": "The version of the policy's rules now in force; a new version "
                  "keeps the older ones (absent from producers before versions were published)."},
    )  # fmt: skip

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        if data["effective_to"] is not None and data["effective_to"] < data["effective_from"]:
            raise ValidationError("must not be before effective_from", "effective_to")


class EligiblePolicy(Schema):
    policy_id = fields.UUID(required=True)
    code = _policy_code(required=True)
    tier = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Regexp(SLUG),
        metadata={"description": "The award tier reached, for tiered programmes (e.g. key)."},
    )
    version = fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1),
        metadata={"description": "The version of the policy's rules this assessment used."},
    )


class EligibilityAssessed(Schema):
    returnee_id = fields.UUID(required=True)
    assessed_at = fields.AwareDateTime(required=True)
    eligible = fields.List(
        fields.Nested(EligiblePolicy),
        required=True,
        metadata={"description": "Every policy the returnee is eligible for now."},
    )
    newly_eligible = fields.List(
        _policy_code(),
        required=True,
        metadata={"description": "Codes eligible now and not at the previous assessment."},
    )
    no_longer_eligible = fields.List(
        _policy_code(),
        required=True,
        metadata={"description": "Codes eligible at the previous assessment and not now."},
    )


class _Consultation(Schema):
    """What every consultation event says: which ticket, whose, about what, and its state now."""

    consultation_id = fields.UUID(required=True)
    returnee_id = fields.UUID(required=True)
    topic = fields.String(required=True, validate=validate.Regexp(SLUG))
    status = fields.String(
        required=True,
        validate=validate.OneOf(CONSULTATION_STATUSES),
        metadata={"description": "The consultation's status after this event."},
    )
    advisor_id = fields.UUID(allow_none=True, load_default=None)


class ConsultationRequested(_Consultation):
    policy_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "The policy the question is about, when opened from one."},
    )


class ConsultationAssigned(_Consultation):
    advisor_id = fields.UUID(required=True)


class ConsultationAnswered(_Consultation):
    advisor_id = fields.UUID(required=True)
    message_id = fields.UUID(required=True, metadata={"description": "The advisor's answer."})


class ConsultationWaitingOnReturnee(_Consultation):
    advisor_id = fields.UUID(required=True)
    message_id = fields.UUID(
        required=True, metadata={"description": "The advisor's message asking for information."}
    )


class ConsultationClosed(_Consultation):
    closed_by = fields.String(required=True, validate=validate.OneOf(ACTORS))


class ConsultationReopened(_Consultation):
    reopened_by = fields.String(required=True, validate=validate.OneOf(ACTORS))


class ConsultationRated(_Consultation):
    # The comment stays in consulting: free text is not minimum necessary data for statistics.
    rating = fields.Integer(required=True, validate=validate.Range(min=1, max=5))


class ConsultationSlaBreached(Schema):
    consultation_id = fields.UUID(required=True)
    returnee_id = fields.UUID(required=True)
    advisor_id = fields.UUID(allow_none=True, load_default=None)
    topic = fields.String(required=True, validate=validate.Regexp(SLUG))
    deadline = fields.String(required=True, validate=validate.OneOf(SLA_DEADLINES))
    due_at = fields.AwareDateTime(required=True)


class _Appointment(Schema):
    appointment_id = fields.UUID(required=True)
    slot_id = fields.UUID(required=True)
    returnee_id = fields.UUID(required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    location = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Where the appointment takes place: station name and room."},
    )

    @validates_schema
    def _times_in_order(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("must be after starts_at", "ends_at")


class AppointmentBooked(_Appointment):
    pass


class AppointmentCancelled(_Appointment):
    cancelled_by = fields.String(required=True, validate=validate.OneOf(ACTORS))


class _Application(Schema):
    """What every application event says: whose application, for which policy (under which
    version of its rules and for which tier), and its status now. The rejection reason and the
    returnee's document references stay in consulting, as a consultation's text does."""

    application_id = fields.UUID(required=True)
    returnee_id = fields.UUID(required=True)
    policy_id = fields.UUID(required=True)
    code = _policy_code(required=True)
    policy_version = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={
            "description": "The version of the policy's rules the application is made under."
        },
    )
    tier = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Regexp(SLUG),
        metadata={"description": "The tier applied for, for tiered programmes."},
    )
    status = fields.String(
        required=True,
        validate=validate.OneOf(APPLICATION_STATUSES),
        metadata={"description": "The application's status after this event."},
    )


class ApplicationSubmitted(_Application):
    pass


class ApplicationApproved(_Application):
    pass


class ApplicationRejected(_Application):
    pass


class ApplicationAwarded(_Application):
    amount_cny = fields.Integer(
        required=True, validate=validate.Range(min=0), metadata={"description": "Whole yuan."}
    )
    awarded_on = fields.Date(required=True)


class ApplicationWithdrawn(_Application):
    withdrawn_from = fields.String(
        required=True,
        validate=validate.OneOf(("draft", "submitted", "under_review", "approved")),
        metadata={"description": "The status the application was withdrawn from."},
    )


def _consulting(type_: str, schema: type[Schema], emitted_when: str) -> EventType:
    return EventType(
        type=type_, version=1, producer="consulting", schema=schema, emitted_when=emitted_when
    )


EVENT_TYPES = [
    _consulting(
        "policy.published",
        PolicyPublished,
        "An admin publishes a policy (programme) with its criteria.",
    ),
    _consulting(
        "eligibility.assessed",
        EligibilityAssessed,
        "A returnee's eligibility is (re)assessed, after a profile change or a policy publication.",
    ),
    _consulting(
        "consultation.requested",
        ConsultationRequested,
        "A returnee asks a question, optionally about a policy.",
    ),
    _consulting(
        "consultation.assigned",
        ConsultationAssigned,
        "A consultation is assigned or reassigned to an advisor.",
    ),
    _consulting(
        "consultation.answered",
        ConsultationAnswered,
        "An advisor answers a consultation.",
    ),
    _consulting(
        "consultation.waiting_on_returnee",
        ConsultationWaitingOnReturnee,
        "An advisor asks the returnee for information; the SLA clock pauses.",
    ),
    _consulting(
        "consultation.closed",
        ConsultationClosed,
        "A consultation is closed by the returnee, an advisor, an admin or by inactivity.",
    ),
    _consulting(
        "consultation.reopened",
        ConsultationReopened,
        "A closed consultation is reopened.",
    ),
    _consulting(
        "consultation.rated",
        ConsultationRated,
        "A returnee rates a closed consultation from 1 to 5.",
    ),
    _consulting(
        "consultation.sla_breached",
        ConsultationSlaBreached,
        "A consultation misses its first-response or resolution deadline; it is escalated.",
    ),
    _consulting(
        "appointment.booked",
        AppointmentBooked,
        "A returnee books a time slot at the service station.",
    ),
    _consulting(
        "appointment.cancelled",
        AppointmentCancelled,
        "A booked appointment is cancelled by the returnee or the station.",
    ),
    _consulting(
        "application.submitted",
        ApplicationSubmitted,
        "A returnee submits an application for a policy with every document of its checklist.",
    ),
    _consulting(
        "application.approved",
        ApplicationApproved,
        "An advisor or an admin approves an application after review.",
    ),
    _consulting(
        "application.rejected",
        ApplicationRejected,
        "An advisor or an admin rejects an application after review, with a reason.",
    ),
    _consulting(
        "application.awarded",
        ApplicationAwarded,
        "An approved application is awarded: the amount and the day it was granted.",
    ),
    _consulting(
        "application.withdrawn",
        ApplicationWithdrawn,
        "A returnee withdraws an open application.",
    ),
]
