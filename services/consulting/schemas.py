"""HTTP payloads of the consulting service."""

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_dump,
    validate,
    validates_schema,
)

from chassis.errors import add_rules
from chassis.fields import HttpUrl, Instant
from contracts.vocabulary import APPLICATION_STATUSES, CONSULTATION_STATUSES, POLICY_CODE, SLUG
from services.consulting import messages  # noqa: F401  (the catalog of the texts below)
from services.consulting.consultations import TOPICS
from services.consulting.eligibility import (
    FIELDS,
    ISO_DATE,
    KINDS,
    MAX_WITHIN_DAYS,
    OPS,
    VALUES,
    criterion_problem,
)
from services.consulting.paging import position_of

EFFECTIVE_TO_BEFORE_FROM = "must not be before effective_from"
ENDS_BEFORE_START = "must be after starts_at"
add_rules(EFFECTIVE_TO_BEFORE_FROM, ENDS_BEFORE_START)  # beyond the fields: 422


class Localized(Schema):
    zh_cn = fields.String(
        data_key="zh-CN", attribute="zh-CN", required=True, validate=validate.Length(min=1, max=500)
    )
    en = fields.String(required=True, validate=validate.Length(min=1, max=500))


class Citation(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    url = HttpUrl(required=True)


_VALUE_SCHEMAS = {
    "number": {"type": "number"},
    "text": {"type": "string"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date", "pattern": ISO_DATE},
}


def _value_schema(kind: str, shape: str) -> dict:
    if shape == "flag":
        return {"type": "boolean", "description": "true: the field has a value; false: it has none"}
    if shape == "days":
        return {"type": "integer", "minimum": 0, "maximum": MAX_WITHIN_DAYS}
    one = _VALUE_SCHEMAS[kind]
    if shape == "one":
        return one
    if shape == "pair":
        return {"type": "array", "items": one, "minItems": 2, "maxItems": 2,
                "description": "[low, high]"}  # fmt: skip
    return {"type": "array", "items": one}


def _criterion_document(generated: dict) -> tuple[dict, dict]:
    """A criterion is one of these shapes (what `eligibility.criterion_problem` checks): a leaf
    comparing a field with the value its op takes for the field's kind, or a group."""
    common = {
        "id": generated["properties"]["id"],
        "label": generated["properties"]["label"],
    }
    shapes = []
    for kind, ops in VALUES.items():
        names = sorted(f for f, k in KINDS.items() if k == kind)
        by_shape: dict[str, list[str]] = {}
        for op, shape in ops.items():
            if shape != "flag":
                by_shape.setdefault(shape, []).append(op)
        for shape, same in by_shape.items():
            shapes.append((f"{kind}_{shape}", names, same, _value_schema(kind, shape)))
    shapes.append(("exists", sorted(KINDS), ["exists"], _value_schema("", "flag")))
    # Each shape a component of its own (`CriterionNumberPair`, `CriterionAll`...): client
    # generators name their models after them and follow the groups' recursion by name.
    named = {
        "Criterion" + "".join(word.capitalize() for word in key.split("_")): {
            "type": "object",
            "properties": {
                **common,
                "field": {"type": "string", "enum": names},
                "op": {"type": "string", "enum": ops},
                "value": value,
            },
            "required": ["id", "label", "field", "op", "value"],
            "additionalProperties": False,
        }
        for key, names, ops, value in shapes
    }
    member = {"type": "array", "items": {"$ref": "#/components/schemas/Criterion"}}
    for group in ("all", "any"):
        named[f"Criterion{group.capitalize()}"] = {
            "type": "object",
            "properties": {**common, group: member},
            "required": ["id", "label", group],
            "additionalProperties": False,
        }
    description = (
        "A criterion compares a profile field with a value, in the shape its op takes for the"
        " field's kind, or groups criteria (all of them, or any). Ids are unique among the"
        " criteria of one list."
    )
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in named]
    return {"description": description, "oneOf": refs}, named


class Criterion(Schema):
    """A criterion, or an `all`/`any` group of criteria."""

    class Meta:
        unknown = RAISE
        openapi = _criterion_document

    id = fields.String(required=True, validate=validate.Regexp(SLUG))
    label = fields.Nested(Localized, required=True)
    field = fields.String(validate=validate.OneOf(FIELDS))
    op = fields.String(validate=validate.OneOf(OPS))
    value = fields.Raw(allow_none=True)
    all = fields.List(fields.Nested(lambda: Criterion()))
    any = fields.List(fields.Nested(lambda: Criterion()))

    @validates_schema
    def _shape(self, data, **kwargs):
        problem = criterion_problem(data)
        if problem is not None:
            raise ValidationError(problem[1], problem[0])


class Tier(Schema):
    code = fields.String(required=True, validate=validate.Regexp(SLUG))
    title = fields.Nested(Localized, required=True)
    award_cny = fields.Integer(allow_none=True, validate=validate.Range(min=0))
    criteria = fields.List(fields.Nested(Criterion), load_default=list)


class Document(Schema):
    """A document an application needs; with `tiers`, only for applications for those tiers."""

    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=validate.Regexp(SLUG))
    title = fields.Nested(Localized, required=True)
    note = fields.Nested(Localized, allow_none=True, load_default=None)
    tiers = fields.List(
        fields.String(validate=validate.Regexp(SLUG)), allow_none=True, load_default=None
    )


class PolicyIn(Schema):
    code = fields.String(required=True, validate=validate.Regexp(POLICY_CODE))
    title = fields.Nested(Localized, required=True)
    summary = fields.Nested(Localized, required=True)
    citation = fields.Nested(Citation, required=True)
    effective_from = fields.Date(required=True)
    effective_to = fields.Date(allow_none=True, load_default=None)
    application_deadline = fields.Date(allow_none=True, load_default=None)
    criteria = fields.List(fields.Nested(Criterion), required=True, validate=validate.Length(min=1))
    tiers = fields.List(fields.Nested(Tier), load_default=list)
    documents = fields.List(
        fields.Nested(Document),
        load_default=list,
        metadata={"description": "What an application needs (tell everything once)."},
    )

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        if data.get("effective_to") and data["effective_to"] < data["effective_from"]:
            raise ValidationError(EFFECTIVE_TO_BEFORE_FROM, "effective_to")


class PolicyOut(Schema):
    id = fields.String()
    code = fields.String()
    version = fields.Integer()
    title = fields.Dict()
    summary = fields.Dict()
    citation = fields.Dict()
    effective_from = fields.Date()
    effective_to = fields.Date(allow_none=True)
    application_deadline = fields.Date(allow_none=True)
    criteria = fields.List(fields.Dict())
    tiers = fields.List(fields.Dict())
    documents = fields.List(fields.Dict())
    published_at = fields.DateTime()


class PolicyVersionOut(PolicyOut):
    in_force_from = fields.Date(
        metadata={"description": "The day (Shanghai) from which these rules were in force."}
    )


class PolicyQuery(Schema):
    in_effect = fields.Boolean(load_default=False)


class ConsultationIn(Schema):
    topic = fields.String(required=True, validate=validate.OneOf(sorted(TOPICS)))
    question = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    policy_id = fields.UUID(allow_none=True, load_default=None)


class MessageIn(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    asks_returnee = fields.Boolean(
        load_default=False,
        metadata={"description": "Advisors only: the message asks the returnee for information "
                  "(the SLA clock pauses until they reply)."},
    )  # fmt: skip


class AssignIn(Schema):
    advisor_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "Omit for round-robin among active advisors."},
    )


class RatingIn(Schema):
    rating = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class ConsultationQuery(Schema):
    status = fields.String(validate=validate.Regexp(SLUG))
    returnee_id = fields.UUID()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class CannedReplyIn(Schema):
    """A canned reply of a topic, in both languages: advisors insert the one the returnee reads."""

    topic = fields.String(required=True, validate=validate.OneOf(sorted(TOPICS)))
    title_zh = fields.String(required=True, validate=validate.Length(min=1, max=120))
    title_en = fields.String(required=True, validate=validate.Length(min=1, max=120))
    body_zh = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    body_en = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class CannedReplyOut(Schema):
    id = fields.UUID(required=True)
    topic = fields.String(required=True)
    title_zh = fields.String(required=True)
    title_en = fields.String(required=True)
    body_zh = fields.String(required=True)
    body_en = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class CannedReplyQuery(Schema):
    topic = fields.String(validate=validate.OneOf(sorted(TOPICS)))


class SlotIn(Schema):
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    location = fields.String(required=True, validate=validate.Length(min=1, max=200))
    capacity = fields.Integer(required=True, validate=validate.Range(min=1, max=500))

    @validates_schema
    def _times_in_order(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError(ENDS_BEFORE_START, "ends_at")


class SlotOut(Schema):
    id = fields.String()
    advisor_id = fields.String()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    location = fields.String()
    capacity = fields.Integer()
    booked = fields.Integer()
    seats_left = fields.Function(lambda s: s["capacity"] - s["booked"])


class AppointmentIn(Schema):
    slot_id = fields.UUID(required=True)
    topic = fields.String(allow_none=True, load_default=None, validate=validate.Regexp(SLUG))


class AppointmentOut(Schema):
    id = fields.String()
    slot_id = fields.String()
    returnee_id = fields.String()
    status = fields.String()
    topic = fields.String(allow_none=True)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    location = fields.String()
    cancelled_by = fields.String(allow_none=True)
    missing_facts = fields.List(
        fields.Dict(),
        metadata={"description": "For a booked appointment: what the advisor should ask for "
                  "(the returnee's missing facts)."},
    )  # fmt: skip


class EligibilityQuery(Schema):
    as_of = fields.Date(
        load_default=None,
        metadata={"description": "Evaluate as of this date (default: today, Shanghai time)."},
    )


# ---------------------------------------------------------------- applications


CURSOR = r"^[A-Za-z0-9_-]{1,200}$"  # base64url: the alphabet `paging.cursor_of` writes
NOT_A_CURSOR = "Not a valid cursor."
add_rules(NOT_A_CURSOR)  # a cursor is one a listing answered: a reference to something that exists


class Cursor(fields.String):
    """A listing's `next` cursor, loaded as the position it names."""

    def __init__(self, **kwargs):
        metadata = {"pattern": CURSOR, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        validate.Regexp(CURSOR)(text)  # the document's pattern: a 400
        try:
            return position_of(text)
        except ValueError:
            raise ValidationError(NOT_A_CURSOR) from None


class Note(Schema):
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class ApplicationIn(Note):
    policy_id = fields.UUID(required=True)
    tier = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Regexp(SLUG),
        metadata={"description": "The tier applied for; default: the tier the assessment reached."},
    )


class ChecklistMarkIn(Schema):
    provided = fields.Boolean(load_default=True)
    reference = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=500),
        metadata={"description": "Where the document is: a file number, a counter receipt, a "
                  "note (uploads are not taken)."},
    )  # fmt: skip


class RejectIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class AwardIn(Note):
    amount_cny = fields.Integer(required=True, validate=validate.Range(min=0, max=10**12))
    awarded_on = fields.Date(required=True)


class ApplicationQuery(Schema):
    status = fields.String(validate=validate.OneOf(APPLICATION_STATUSES))
    policy_id = fields.UUID()
    returnee_id = fields.UUID(metadata={"description": "Staff only; a returnee sees their own."})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = Cursor(load_default=None, metadata={"description": "`next` of the previous page."})


# ------------------------------------------------------------------ answers (documented, dumped)


def _text(**kwargs):
    return fields.String(required=True, **kwargs)


def _maybe(field_cls, **kwargs):
    return field_cls(required=True, allow_none=True, **kwargs)


class MessageOut(Schema):
    id = fields.UUID(required=True)
    author_id = _text()
    author_role = _text(metadata={"description": "returnee, advisor or admin"})
    body = _text()
    asks_returnee = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class ConsultationOut(Schema):
    """A consultation; with its thread (`messages`) when one is read or written to."""

    id = fields.UUID(required=True)
    returnee_id = _text()
    topic = _text(validate=validate.OneOf(sorted(TOPICS)))
    question = _text()
    policy_id = _maybe(fields.String)
    status = _text(validate=validate.OneOf(CONSULTATION_STATUSES))
    advisor_id = _maybe(fields.String)
    created_at = fields.DateTime(required=True)
    first_response_due = _maybe(fields.DateTime)
    resolution_due = _maybe(fields.DateTime)
    first_responded_at = _maybe(fields.DateTime)
    closed_at = _maybe(fields.DateTime)
    escalated = fields.Boolean(required=True)
    rating = _maybe(fields.Integer)
    rating_comment = _maybe(fields.String)
    sla_paused = fields.Boolean(
        required=True, metadata={"description": "the clock waits for the returnee"}
    )
    messages = fields.List(fields.Nested(MessageOut))


class ChecklistItemOut(Schema):
    document_id = _text()
    title = _text()
    note = _maybe(fields.String)
    provided = fields.Boolean(required=True)
    reference = _maybe(fields.String)
    marked_at = _maybe(fields.DateTime)


class ApplicationStepOut(Schema):
    from_status = _maybe(fields.String)
    status = _text(validate=validate.OneOf(APPLICATION_STATUSES))
    actor_id = _text()
    actor_role = _text()
    at = fields.DateTime(required=True)
    note = _maybe(fields.String)


class ApplicationOut(Schema):
    """An application; with its checklist and history when one is read or changed."""

    id = fields.UUID(required=True)
    returnee_id = _text()
    policy_id = fields.UUID(required=True)
    code = _text()
    policy_version = fields.Integer(required=True)
    tier = _maybe(fields.String)
    status = _text(validate=validate.OneOf(APPLICATION_STATUSES))
    rejection_reason = _maybe(fields.String)
    amount_cny = _maybe(fields.Integer)
    awarded_on = _maybe(fields.Date)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    checklist = fields.List(fields.Nested(ChecklistItemOut))
    missing_documents = fields.List(fields.String())
    history = fields.List(fields.Nested(ApplicationStepOut))


class ApplicationPage(Schema):
    items = fields.List(fields.Nested(ApplicationOut), required=True)
    next = _maybe(fields.String, metadata={"description": "cursor of the next page; null: last"})


class ComparedValues(Schema):
    actual = _maybe(fields.String)
    required = _maybe(fields.String)


class ReasonOut(Schema):
    """One criterion's outcome: `criteria` for a group, `values` and `field` for a leaf."""

    criterion = _text()
    label = _text()
    passed = _maybe(fields.Boolean, metadata={"description": "null: a fact is missing"})
    detail = _text()
    text = _text(metadata={"description": "the outcome in plain words"})
    criteria = fields.List(fields.Nested(lambda: ReasonOut()))
    # Read from `compared` (see `pre_dump`): a dict's `values` is its method to marshmallow.
    compared = fields.Nested(ComparedValues, data_key="values")
    field = fields.String()
    field_label = fields.String()

    @pre_dump
    def _compared(self, reason, **kwargs):
        reason = dict(reason)
        if "values" in reason:
            reason["compared"] = reason.pop("values")
        return reason


class TierOutcomeOut(Schema):
    code = _text()
    title = _maybe(fields.String)
    award_cny = _maybe(fields.Integer)
    reached = _maybe(fields.Boolean)
    reasons = fields.List(fields.Nested(ReasonOut), required=True)


class DocumentOut(Schema):
    id = _text()
    title = _text()
    note = _maybe(fields.String)
    tiers = _maybe(fields.List, cls_or_instance=fields.String())


class EligibilityOut(Schema):
    """One policy, assessed for the returnee, every criterion explained."""

    policy_id = fields.UUID(required=True)
    code = _text()
    version = _maybe(fields.Integer)
    title = _text()
    eligible = _maybe(fields.Boolean)
    status = _text(metadata={"description": "eligible, not_eligible or undetermined"})
    tier = _maybe(fields.String)
    citation = _maybe(fields.Nested, nested=Citation)
    application_deadline = _maybe(fields.Date)
    reasons = fields.List(fields.Nested(ReasonOut), required=True)
    tiers = fields.List(fields.Nested(TierOutcomeOut), required=True)
    documents = fields.List(fields.Nested(DocumentOut), required=True)


class MissingPolicyOut(Schema):
    policy_id = fields.UUID(required=True)
    code = _text()
    title = _text()
    criteria = fields.List(fields.String(), required=True)


class MissingFactOut(Schema):
    fact = _text()
    tell_us = _text()
    bring = _maybe(fields.String)
    policies = fields.List(fields.Nested(MissingPolicyOut), required=True)


class MissingFactsOut(Schema):
    returnee_id = _text()
    as_of = fields.Date(required=True)
    facts = fields.List(fields.Nested(MissingFactOut), required=True)


class MovedOut(Schema):
    count = fields.Integer(required=True)
    by_tier = fields.List(fields.Dict(), required=True)
    by_industry = fields.List(fields.Dict(), required=True)
    by_stage = fields.List(fields.Dict(), required=True)
    by_district = fields.List(fields.Dict(), required=True)


class BeforeAfter(Schema):
    before = fields.Integer(required=True)
    after = fields.Integer(required=True)


class BudgetTierOut(Schema):
    tier = _maybe(fields.String)
    count_before = fields.Integer(required=True)
    award_before_cny = _maybe(fields.Integer)
    amount_before_cny = _maybe(fields.Integer)
    count_after = fields.Integer(required=True)
    award_after_cny = _maybe(fields.Integer)
    amount_after_cny = _maybe(fields.Integer)


class BudgetOut(Schema):
    before_cny = fields.Integer(required=True)
    after_cny = fields.Integer(required=True)
    by_tier = fields.List(fields.Nested(BudgetTierOut), required=True)


class PreviewOut(Schema):
    """What publishing the draft would change over the consenting caseload."""

    code = _text()
    as_of = fields.Date(required=True)
    current_version = _maybe(fields.Integer)
    caseload = fields.Integer(required=True)
    eligible = fields.Nested(BeforeAfter, required=True)
    newly_eligible = fields.Nested(MovedOut, required=True)
    no_longer_eligible = fields.Nested(MovedOut, required=True)
    tier_changed = fields.Integer(required=True)
    budget = fields.Nested(BudgetOut, required=True)
