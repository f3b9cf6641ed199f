"""The queries insights takes and the figures it answers with."""

from marshmallow import Schema, fields, validate

from services.insights.figures import INTERVALS, METRICS, SOURCES


class PeriodQuery(Schema):
    start = fields.Date(
        data_key="from",
        load_default=None,
        metadata={"description": "First Shanghai day of the period (default: 29 days before to)."},
    )
    end = fields.Date(
        data_key="to",
        load_default=None,
        metadata={"description": "Last Shanghai day of the period (default: today)."},
    )


class SeriesQuery(PeriodQuery):
    metric = fields.String(required=True, validate=validate.OneOf([m.name for m in METRICS]))
    interval = fields.String(load_default="day", validate=validate.OneOf(INTERVALS))


class ExportQuery(PeriodQuery):
    format = fields.String(load_default="xlsx", validate=validate.OneOf(("xlsx", "csv")))


def _counts(description: str):
    return fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": description}
    )


class Intentions(Schema):
    expressed = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    declined = fields.Integer(required=True)


class Consultations(Schema):
    requested = fields.Integer(required=True)
    answered = fields.Integer(
        required=True, metadata={"description": "First answered in the period."}
    )
    first_response_within_sla_pct = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Of first-response deadlines decided in the period, the share "
                  "met (no breach reported); null when none was decided."},
    )  # fmt: skip
    resolved_within_sla_pct = fields.Float(required=True, allow_none=True)
    average_rating = fields.Float(required=True, allow_none=True)


class Appointments(Schema):
    booked = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)
    attended = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Always null: no event says who came to an appointment."},
    )


class Activities(Schema):
    held = fields.Integer(required=True)
    registrations = fields.Integer(required=True)
    attended = fields.Integer(required=True)


class Applications(Schema):
    submitted = fields.Integer(required=True)
    approved = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    awarded = fields.Integer(
        required=True, metadata={"description": "Awarded on a day of the period (awarded_on)."}
    )
    withdrawn = fields.Integer(
        required=True, metadata={"description": "Withdrawn after submission (drafts not)."}
    )
    awarded_amount_cny = fields.Integer(
        required=True, metadata={"description": "The awards' total, whole yuan."}
    )


class FunnelStages(Schema):
    """Returnees reaching each stage of a programme for the first time in the period."""

    eligible = fields.Integer(required=True)
    consulted = fields.Integer(
        required=True, metadata={"description": "Asked a consultation about the programme."}
    )
    applied = fields.Integer(required=True, metadata={"description": "Submitted an application."})
    approved = fields.Integer(required=True)
    awarded = fields.Integer(required=True, metadata={"description": "On the award's day."})


class OverviewOut(Schema):
    start = fields.Date(attribute="from", data_key="from", required=True)
    end = fields.Date(attribute="to", data_key="to", required=True)
    registrations = fields.Integer(required=True)
    returnees_active = fields.Integer(
        required=True, metadata={"description": "Known and not erased at the end of the period."}
    )
    by_industry = _counts("The period's registrations by industry.")
    by_country = _counts("The period's registrations by country of the highest overseas degree.")
    by_stage = _counts("The period's registrations by startup stage.")
    eligible_by_policy = _counts("Returnees who became eligible in the period, by programme.")
    matches_proposed = fields.Integer(required=True)
    intentions = fields.Nested(Intentions, required=True)
    consultations = fields.Nested(Consultations, required=True)
    appointments = fields.Nested(Appointments, required=True)
    activities = fields.Nested(Activities, required=True)
    agreements_signed = fields.Integer(required=True)
    applications = fields.Nested(Applications, required=True)
    funnel_by_policy = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(FunnelStages),
        required=True,
        metadata={"description": "Per programme code: newly eligible → consulted → applied → "
                  "approved → awarded, each stage once per returnee, on the day first reached."},
    )  # fmt: skip
    counted_from = fields.Dict(
        keys=fields.String(validate=validate.OneOf(SOURCES)),
        values=fields.AwareDateTime(allow_none=True),
        required=True,
        metadata={"description": "Per producer, the moment from which insights holds all its "
                  "events; null: not counted."},
    )  # fmt: skip
    complete = fields.Boolean(
        required=True,
        metadata={"description": "Every producer was counted from before the period began."},
    )


class Point(Schema):
    start = fields.Date(required=True)
    end = fields.Date(required=True)
    value = fields.Raw(
        required=True,
        allow_none=True,
        metadata={"description": "A count, a percentage or an average; null when nothing was "
                  "decided (a percentage or average of no cases)."},
    )  # fmt: skip
    complete = fields.Boolean(required=True)


class SeriesOut(Schema):
    metric = fields.String(required=True)
    interval = fields.String(required=True)
    start = fields.Date(attribute="from", data_key="from", required=True)
    end = fields.Date(attribute="to", data_key="to", required=True)
    counted_from = fields.AwareDateTime(required=True, allow_none=True)
    points = fields.List(fields.Nested(Point), required=True)
