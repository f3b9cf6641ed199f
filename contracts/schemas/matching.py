"""Events published by matching on exchange `matching.events`."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.catalog import EventType
from contracts.vocabulary import (
    INDUSTRIES,
    INTENTION_STATUSES,
    NEEDS,
    RESOURCE_KINDS,
    SLUG,
    STARTUP_STAGES,
)

__all__ = [
    "EVENT_TYPES",
    "IntentionAccepted",
    "IntentionAcceptedV2",
    "IntentionDeclined",
    "IntentionDeclinedV2",
    "IntentionExpressed",
    "IntentionExpressedV2",
    "MatchesProposed",
    "ResourcePublished",
    "ResourceWithdrawn",
]


class ResourcePublished(Schema):
    resource_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(RESOURCE_KINDS))
    needs_served = fields.List(
        fields.String(validate=validate.OneOf(NEEDS)),
        required=True,
        validate=validate.Length(min=1),
    )
    industries = fields.List(
        fields.String(validate=validate.OneOf(INDUSTRIES)),
        required=True,
        metadata={"description": "Industries the resource is for; empty means any industry."},
    )
    stages = fields.List(
        fields.String(validate=validate.OneOf(STARTUP_STAGES)),
        required=True,
        metadata={"description": "Startup stages the resource is for; empty means any stage."},
    )
    district = fields.String(
        allow_none=True,
        load_default=None,
        metadata={"description": "District the resource is restricted to; null means any."},
    )
    capacity = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "How many returnees the resource can take."},
    )
    valid_until = fields.Date(allow_none=True, load_default=None)


class ResourceWithdrawn(Schema):
    resource_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)


class MatchReason(Schema):
    factor = fields.String(
        required=True,
        validate=validate.Regexp(SLUG),
        metadata={"description": "The scoring factor, e.g. need, industry, stage, district."},
    )
    code = fields.String(
        validate=validate.Regexp(SLUG),
        metadata={
            "description": "What the reason says: serves_needs, industry, any_industry, stage, "
            "any_stage, district, any_district, places_left. Subscribers render the reason in "
            "their own language from code and args (the wording is `contracts.reasons`) and "
            "show detail for a code they do not know. Absent in events of older producers."
        },
    )
    args = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "The code's arguments: needs (list of needs) for serves_needs, "
            "industry, stage, district for the codes of those names, left and capacity for "
            "places_left, none for the any_ codes. Absent when code is."
        },
    )
    detail = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The reason in English, whether or not code is there."},
    )


class Match(Schema):
    match_id = fields.UUID(required=True)
    resource_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    score = fields.Float(
        required=True,
        validate=validate.Range(min=0, max=1),
        metadata={"description": "Weighted score, 1 is the best possible match."},
    )
    # PIPL art. 24: an automated decision comes with its explanation.
    reasons = fields.List(fields.Nested(MatchReason), required=True)


class MatchesProposed(Schema):
    returnee_id = fields.UUID(required=True)
    matches = fields.List(
        fields.Nested(Match),
        required=True,
        metadata={"description": "The returnee's current matches, best first."},
    )
    added_resource_ids = fields.List(
        fields.UUID(),
        required=True,
        metadata={"description": "Resources matched now and not at the previous computation."},
    )
    removed_resource_ids = fields.List(
        fields.UUID(),
        required=True,
        metadata={"description": "Resources matched at the previous computation and not now."},
    )


class _Intention(Schema):
    intention_id = fields.UUID(required=True)
    returnee_id = fields.UUID(required=True)
    resource_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(INTENTION_STATUSES))
    message = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=2000),
        metadata={"description": "The returnee's or the provider's note, shown to the other."},
    )


class IntentionExpressed(_Intention):
    pass


class IntentionAccepted(_Intention):
    pass


class IntentionDeclined(_Intention):
    pass


class _IntentionV2(_Intention):
    """v2: an intention is on a resource (as in v1) or, met at an activity, toward an
    organization without a resource. v1 cannot carry the second kind (its `resource_id` is
    required), so those are published as v2 only; intentions on a resource keep coming as v1,
    on the same routing key, until v1 is retired."""

    resource_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "The resource; null for an intention met at an activity."},
    )
    activity_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "The activity the intention arose at; null for a resource's."},
    )

    @validates_schema
    def _resource_or_activity(self, data, **kwargs):
        if data.get("resource_id") is None and data.get("activity_id") is None:
            raise ValidationError("Either resource_id or activity_id is required.", "resource_id")


class IntentionExpressedV2(_IntentionV2):
    pass


class IntentionAcceptedV2(_IntentionV2):
    pass


class IntentionDeclinedV2(_IntentionV2):
    pass


def _matching(type_: str, schema: type[Schema], emitted_when: str, version: int = 1,
              compiled: bool = False) -> EventType:  # fmt: skip
    return EventType(
        type=type_, version=version, producer="matching", schema=schema,
        emitted_when=emitted_when, compiled=compiled,
    )  # fmt: skip


EVENT_TYPES = [
    _matching(
        "resource.published",
        ResourcePublished,
        "A provider or an admin publishes a resource of an organization.",
    ),
    _matching(
        "resource.withdrawn",
        ResourceWithdrawn,
        "A resource is withdrawn; it is no longer matched.",
    ),
    _matching(
        "matches.proposed",
        MatchesProposed,
        "A returnee's matches are (re)computed, after a profile, consent or resource change.",
        compiled=True,  # one per returnee re-matched: checked by the compiled check
    ),
    _matching(
        "intention.expressed",
        IntentionExpressed,
        "A returnee expresses interest in a resource.",
    ),
    _matching(
        "intention.accepted",
        IntentionAccepted,
        "A provider accepts a returnee's intention: a cooperation intention the district counts.",
    ),
    _matching(
        "intention.declined",
        IntentionDeclined,
        "A provider declines a returnee's intention.",
    ),
    _matching(
        "intention.expressed",
        IntentionExpressedV2,
        "A returnee expresses interest in an organization met at an activity (v2: resource_id "
        "may be null, activity_id names the activity).",
        version=2,
    ),
    _matching(
        "intention.accepted",
        IntentionAcceptedV2,
        "A provider accepts a returnee's intention met at an activity: a cooperation intention "
        "the district counts.",
        version=2,
    ),
    _matching(
        "intention.declined",
        IntentionDeclinedV2,
        "A provider declines a returnee's intention met at an activity.",
        version=2,
    ),
]
