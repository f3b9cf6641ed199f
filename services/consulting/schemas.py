"""HTTP payloads of the consulting service."""

from datetime import UTC

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from chassis.i18n import add_translations
from chassis.web import HttpUrl, add_rules
from contracts.vocabulary import POLICY_CODE, SLUG
from services.consulting.consultations import TOPICS
from services.consulting.eligibility import (
    DUPLICATE_ID,
    FIELDS,
    ISO_DATE,
    KINDS,
    MAX_WITHIN_DAYS,
    ONE_GROUP,
    OP_DOES_NOT_APPLY,
    OPS,
    UNKNOWN_FIELD,
    VALUES,
    WRONG_VALUE,
    criterion_problem,
)

EFFECTIVE_TO_BEFORE_FROM = "must not be before effective_from"
ENDS_BEFORE_START = "must be after starts_at"
add_translations(
    {
        UNKNOWN_FIELD: "未知的比较字段。",
        OP_DOES_NOT_APPLY: "该运算不适用于此字段。",
        WRONG_VALUE: "该运算对此字段不接受这个值。",
        ONE_GROUP: "条件组只能是 all 或 any 之一，且不含 field、op 或 value。",
        DUPLICATE_ID: "同一列表中已有相同 id 的条件。",
        EFFECTIVE_TO_BEFORE_FROM: "不能早于 effective_from",
        ENDS_BEFORE_START: "必须晚于 starts_at",
    }
)
add_rules(EFFECTIVE_TO_BEFORE_FROM, ENDS_BEFORE_START)


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


def _criterion_document(generated: dict) -> dict:
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
            shapes.append((names, same, _value_schema(kind, shape)))
    shapes.append((sorted(KINDS), ["exists"], _value_schema("", "flag")))
    leaves = [
        {
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
        for names, ops, value in shapes
    ]
    member = {"type": "array", "items": {"$ref": "#/components/schemas/Criterion"}}
    groups = [
        {
            "type": "object",
            "properties": {**common, group: member},
            "required": ["id", "label", group],
            "additionalProperties": False,
        }
        for group in ("all", "any")
    ]
    description = (
        "A criterion compares a profile field with a value, in the shape its op takes for the"
        " field's kind, or groups criteria (all of them, or any). Ids are unique among the"
        " criteria of one list."
    )
    return {"description": description, "oneOf": [*leaves, *groups]}


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
    published_at = fields.DateTime()


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


class CloseIn(Schema):
    pass


class RatingIn(Schema):
    rating = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class ConsultationQuery(Schema):
    status = fields.String(validate=validate.Regexp(SLUG))
    returnee_id = fields.UUID()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class Instant(fields.AwareDateTime):
    """An aware date-time, loaded in UTC: PostgreSQL takes offsets only up to ±15:59 (ISO 8601
    allows ±23:59), and a time whose UTC falls outside the years 1-9999 is no valid instant."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


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


class EligibilityQuery(Schema):
    as_of = fields.Date(
        load_default=None,
        metadata={"description": "Evaluate as of this date (default: today, Shanghai time)."},
    )
