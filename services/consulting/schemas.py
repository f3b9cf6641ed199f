"""HTTP payloads of the consulting service."""

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from chassis.fields import Instant
from contracts.vocabulary import APPLICATION_STATUSES, POLICY_CODE, SLUG
from services.consulting.consultations import TOPICS
from services.consulting.eligibility import FIELDS, OPS
from services.consulting.paging import position_of


class Localized(Schema):
    zh_cn = fields.String(
        data_key="zh-CN", attribute="zh-CN", required=True, validate=validate.Length(min=1, max=500)
    )
    en = fields.String(required=True, validate=validate.Length(min=1, max=500))


class Citation(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    url = fields.Url(required=True, schemes={"http", "https"})


class Criterion(Schema):
    """A criterion, or an `all`/`any` group of criteria."""

    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=validate.Regexp(SLUG))
    label = fields.Nested(Localized, required=True)
    field = fields.String(validate=validate.OneOf(FIELDS))
    op = fields.String(validate=validate.OneOf(OPS))
    value = fields.Raw(allow_none=True)
    all = fields.List(fields.Nested(lambda: Criterion()))
    any = fields.List(fields.Nested(lambda: Criterion()))

    @validates_schema
    def _criterion_or_group(self, data, **kwargs):
        groups = [k for k in ("all", "any") if k in data]
        if len(groups) > 1:
            raise ValidationError("a group is either all or any", "any")
        if not groups:
            for key in ("field", "op"):
                if key not in data:
                    raise ValidationError("Missing data for required field.", key)


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
            raise ValidationError("must not be before effective_from", "effective_to")


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


class SlotIn(Schema):
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    location = fields.String(required=True, validate=validate.Length(min=1, max=200))
    capacity = fields.Integer(required=True, validate=validate.Range(min=1, max=500))

    @validates_schema
    def _times_in_order(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("must be after starts_at", "ends_at")


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


class Cursor(fields.String):
    """A listing's `next` cursor, loaded as the position it names."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return position_of(text)
        except ValueError:
            raise ValidationError("Not a valid cursor.") from None


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
