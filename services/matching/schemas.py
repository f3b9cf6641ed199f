"""Payloads of matching's HTTP API."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from chassis.errors import add_rules
from contracts.vocabulary import (
    INDUSTRIES,
    INTENTION_STATUSES,
    NEEDS,
    RESOURCE_KINDS,
    STARTUP_STAGES,
)
from services.matching.messages import MESSAGES  # noqa: F401  (registers the catalog)

MUST_NOT_PRECEDE_VALID_FROM = "Must not be before valid_from."
MUST_NOT_BE_PAST = "Must not be in the past."
UNKNOWN_ORGANIZATION = "Unknown organization."
BELOW_PLACES_TAKEN = "Must not be below the places already taken."
RESOURCE_OR_ACTIVITY = "Give resource_id, or organization_id and activity_id."
NOT_WITH_RESOURCE = "Not with resource_id."
RETURNEE_WHO_ATTENDED = "Name the returnee who attended."
add_rules(MUST_NOT_PRECEDE_VALID_FROM, RESOURCE_OR_ACTIVITY, NOT_WITH_RESOURCE)


MAX_OFFSET = 1_000_000  # far past any catalog; PostgreSQL's OFFSET takes no more than a bigint


def _one_of(values):
    return fields.String(validate=validate.OneOf(values))


class ResourceIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(RESOURCE_KINDS))
    organization_id = fields.UUID(required=True)
    needs_served = fields.List(
        _one_of(NEEDS), required=True, validate=validate.Length(min=1, max=len(NEEDS))
    )
    industries = fields.List(
        _one_of(INDUSTRIES),
        load_default=list,
        metadata={"description": "Industries the resource is for; empty means any."},
    )
    stages = fields.List(
        _one_of(STARTUP_STAGES),
        load_default=list,
        metadata={"description": "Startup stages the resource is for; empty means any."},
    )
    district = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "District the resource is restricted to; null means any."},
    )
    capacity = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000))
    valid_from = fields.Date(allow_none=True, load_default=None)
    valid_until = fields.Date(allow_none=True, load_default=None)
    description = fields.String(load_default="", validate=validate.Length(max=5000))

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end < start:
            raise ValidationError(MUST_NOT_PRECEDE_VALID_FROM, "valid_until")


class ResourceChange(Schema):
    """A change of a published resource's places or validity: only the fields given change."""

    capacity = fields.Integer(
        validate=validate.Range(min=1, max=100_000),
        metadata={"description": "Places in all, taken ones included (not fewer than those)."},
    )
    valid_from = fields.Date(allow_none=True, metadata={"description": "null: from any day."})
    valid_until = fields.Date(allow_none=True, metadata={"description": "null: no end."})

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end < start:
            raise ValidationError(MUST_NOT_PRECEDE_VALID_FROM, "valid_until")


class ResourceOut(Schema):
    id = fields.String()
    organization_id = fields.String()
    organization_name = fields.String()
    title = fields.String()
    kind = fields.String()
    needs_served = fields.List(fields.String())
    industries = fields.List(fields.String())
    stages = fields.List(fields.String())
    district = fields.String(allow_none=True)
    capacity = fields.Integer()
    capacity_left = fields.Integer()
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    description = fields.String()
    published_at = fields.AwareDateTime()
    withdrawn_at = fields.AwareDateTime(allow_none=True)


class ResourceQuery(Schema):
    kind = fields.String(validate=validate.OneOf(RESOURCE_KINDS))
    need = fields.String(validate=validate.OneOf(NEEDS))
    industry = fields.String(validate=validate.OneOf(INDUSTRIES))
    stage = fields.String(validate=validate.OneOf(STARTUP_STAGES))
    district = fields.String(validate=validate.Length(min=1, max=100))
    organization_id = fields.UUID()
    available = fields.Boolean(
        load_default=False, metadata={"description": "Only resources with a place left."}
    )
    include_expired = fields.Boolean(
        load_default=False, metadata={"description": "Also resources outside their validity."}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))


class ReasonOut(Schema):
    factor = fields.String()
    detail = fields.String(metadata={"description": "In the caller's language."})


class MatchOut(Schema):
    match_id = fields.String()
    resource_id = fields.String()
    organization_id = fields.String()
    organization_name = fields.String()
    title = fields.String()
    kind = fields.String()
    score = fields.Float()
    reasons = fields.List(fields.Nested(ReasonOut))
    status = fields.String(metadata={"description": "proposed or interested"})


class Feedback(Schema):
    interest = fields.String(
        required=True, validate=validate.OneOf(("interested", "not_interested"))
    )


class IntentionIn(Schema):
    """On a matched resource (`resource_id`), or toward an organization met at an activity the
    returnee attended (`organization_id` and `activity_id`)."""

    resource_id = fields.UUID(allow_none=True, load_default=None)
    organization_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "With activity_id, instead of resource_id."},
    )
    activity_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "The activity attended, with organization_id."},
    )
    returnee_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "Advisors and admins, with organization_id and activity_id: "
                  "the returnee who attended, for whom the station records the intention met "
                  "there. A returnee leaves it out (or names themself)."},
    )  # fmt: skip
    message = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))

    @validates_schema
    def _resource_or_activity(self, data, **kwargs):
        if data["resource_id"] is not None:
            extra = [
                k for k in ("organization_id", "activity_id", "returnee_id") if data[k] is not None
            ]
            if extra:
                raise ValidationError({k: [NOT_WITH_RESOURCE] for k in extra})
            return
        missing = [k for k in ("organization_id", "activity_id") if data[k] is None]
        if len(missing) == 2:
            raise ValidationError({"resource_id": [RESOURCE_OR_ACTIVITY]})
        if missing:
            raise ValidationError({k: [RESOURCE_OR_ACTIVITY] for k in missing})


class Decision(Schema):
    message = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class IntentionOut(Schema):
    intention_id = fields.String()
    returnee_id = fields.String(allow_none=True)
    resource_id = fields.String(
        allow_none=True, metadata={"description": "Null for an intention met at an activity."}
    )
    resource_title = fields.String(allow_none=True)
    activity_id = fields.String(
        allow_none=True, metadata={"description": "The activity it was met at, if any."}
    )
    organization_id = fields.String()
    status = fields.String(validate=validate.OneOf(INTENTION_STATUSES))
    message = fields.String(allow_none=True)
    response = fields.String(allow_none=True)
    expressed_at = fields.AwareDateTime()
    decided_at = fields.AwareDateTime(allow_none=True)


class IntentionQuery(Schema):
    status = fields.String(validate=validate.OneOf(INTENTION_STATUSES))


class OrganizationIntentions(Schema):
    organization_id = fields.String()
    organization_name = fields.String()
    kind = fields.String()
    accepted = fields.Integer(metadata={"description": "Cooperation intentions reached."})
    expressed = fields.Integer(metadata={"description": "Awaiting the provider's answer."})
    declined = fields.Integer()


class IntentionStatistics(Schema):
    accepted = fields.Integer()
    organizations = fields.List(fields.Nested(OrganizationIntentions))
