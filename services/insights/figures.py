"""The district's figures, from day counts: what each one means, the overview of a period, time
series by day, week or month, and whether a figure is complete. Pure: no I/O, no clock.

The read model keeps facts by entity (a registration, a consultation, an intention ...) with the
moment of each step; the store turns them into *day counts*: rows `(measure, key, day, n)`, one
per measure, breakdown key and Shanghai day. Everything here is sums of those rows.
"""

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from chassis.clock import SHANGHAI

DEGREE_RANK = {"bachelor": 1, "master": 2, "phd": 3}
INTERVALS = ("day", "week", "month")
NO_COUNTRY = "none"  # no overseas degree in the profile


def day_of(moment: datetime) -> date:
    """The Shanghai day of a moment: the station's calendar."""
    return moment.astimezone(SHANGHAI).date()


def overseas_country(education: list[dict]) -> str:
    """The country of the highest overseas degree (the latest one among equals)."""
    overseas = [e for e in education if e.get("overseas")]
    if not overseas:
        return NO_COUNTRY
    best = max(overseas, key=lambda e: (DEGREE_RANK.get(e["degree"], 0), str(e["end_date"])))
    return best["country"]


def digest(returnee_id) -> str:
    """What insights keeps of an erased person, for a few days only (`ERASURE_GRACE_DAYS`): a
    one-way digest that recognises late events about them without holding their id."""
    return hashlib.sha256(f"erased:{returnee_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Metric:
    """A figure with a time series: its measures in the day counts and how they combine."""

    name: str
    zh: str
    en: str
    source: str  # the producer whose events it counts
    kind: str = "count"  # count | level | pct | average
    measures: tuple[str, ...] = ()

    def value(self, sums: dict[str, float], level: int = 0):
        if self.kind == "level":
            return level
        if self.kind == "count":
            return int(sums.get(self.measures[0], 0))
        numerator, denominator = (sums.get(m, 0) for m in self.measures)
        if not denominator:
            return None
        if self.kind == "pct":
            return round(100.0 * numerator / denominator, 1)
        return round(numerator / denominator, 2)


def _count(name, zh, en, source, measure=None):
    return Metric(name, zh, en, source, "count", (measure or name,))


METRICS = (
    _count("registrations", "注册人数", "Registrations", "accounts"),
    Metric("returnees_active", "在册留学人员", "Returnees active", "accounts", "level"),
    _count(
        "eligible", "新获政策资格（人次）", "Became eligible (programme × returnee)", "consulting"
    ),  # fmt: skip
    _count("matches_proposed", "推荐匹配", "Matches proposed", "matching"),
    _count("intentions_expressed", "合作意向（提出）", "Intentions expressed", "matching"),
    _count("intentions_accepted", "合作意向（接受）", "Intentions accepted", "matching"),
    _count("intentions_declined", "合作意向（婉拒）", "Intentions declined", "matching"),
    _count("consultations_requested", "咨询（提出）", "Consultations requested", "consulting"),
    _count("consultations_answered", "咨询（已答复）", "Consultations answered", "consulting"),
    Metric(
        "first_response_within_sla_pct",
        "首次响应达标率（%）",
        "First response within deadline (%)",
        "consulting",
        "pct",
        ("first_response_within", "first_response_outcomes"),
    ),  # fmt: skip
    Metric(
        "resolved_within_sla_pct",
        "按期办结率（%）",
        "Resolved within deadline (%)",
        "consulting",
        "pct",
        ("resolution_within", "resolution_outcomes"),
    ),  # fmt: skip
    Metric(
        "average_rating",
        "平均评分",
        "Average rating",
        "consulting",
        "average",
        ("rating_sum", "ratings"),
    ),  # fmt: skip
    _count("appointments_booked", "驿站预约", "Appointments booked", "consulting"),
    _count("appointments_cancelled", "预约取消", "Appointments cancelled", "consulting"),
    _count("activities_held", "举办活动", "Activities held", "activities"),
    _count("activity_registrations", "活动报名", "Activity registrations", "activities"),
    _count("activities_attended", "活动签到", "Activity attendance", "activities"),
    _count("agreements_signed", "签约协议", "Agreements signed", "activities"),
    _count("applications_submitted", "政策申请（提交）", "Applications submitted", "consulting"),
    _count("applications_approved", "政策申请（批准）", "Applications approved", "consulting"),
    _count("applications_rejected", "政策申请（驳回）", "Applications rejected", "consulting"),
    _count("applications_awarded", "政策申请（兑现）", "Applications awarded", "consulting"),
    _count("applications_withdrawn", "政策申请（撤回）", "Applications withdrawn", "consulting"),
    _count("awarded_amount_cny", "兑现金额（元）", "Amount awarded (CNY)", "consulting"),
    _count("funnel_consulted", "咨询过政策（政策 × 人）",
           "Consulted about a programme (programme × returnee)", "consulting"),
    _count("funnel_applied", "申请过政策（政策 × 人）",
           "Applied for a programme (programme × returnee)", "consulting"),
    _count("funnel_approved", "获批政策（政策 × 人）",
           "Approved for a programme (programme × returnee)", "consulting"),
    _count("funnel_awarded", "获兑现政策（政策 × 人）",
           "Awarded a programme (programme × returnee)", "consulting"),
)  # fmt: skip
BY_NAME = {m.name: m for m in METRICS}
SOURCES = ("accounts", "consulting", "matching", "activities")

# Breakdowns of a period's figures: measure in the day counts → overview field.
BREAKDOWNS = {
    "registrations.industry": "by_industry",
    "registrations.country": "by_country",
    "registrations.stage": "by_stage",
    "eligible.policy": "eligible_by_policy",
}
# The funnel of a programme: stage → its measure by policy code in the day counts. Each stage
# counts returnees reaching it for the first time for the programme (once per returnee).
FUNNEL = {
    "eligible": "eligible.policy",
    "consulted": "funnel_consulted.policy",
    "applied": "funnel_applied.policy",
    "approved": "funnel_approved.policy",
    "awarded": "funnel_awarded.policy",
}


def sums(rows: list[dict], start: date, end: date) -> dict[str, float]:
    """Measure totals over [start, end] (rows without a key: the plain counts)."""
    totals: dict[str, float] = {}
    for row in rows:
        if row["key"] is None and start <= row["day"] <= end:
            totals[row["measure"]] = totals.get(row["measure"], 0) + row["n"]
    return totals


def breakdown(rows: list[dict], measure: str, start: date, end: date) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in rows:
        if row["measure"] == measure and start <= row["day"] <= end:
            found[row["key"]] = found.get(row["key"], 0) + int(row["n"])
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def funnel(rows: list[dict], start: date, end: date) -> dict[str, dict[str, int]]:
    """{code: {stage: returnees}} of the period, for every programme with a stage reached."""
    stages = {stage: breakdown(rows, measure, start, end) for stage, measure in FUNNEL.items()}
    codes = sorted({code for found in stages.values() for code in found})
    return {code: {stage: stages[stage].get(code, 0) for stage in FUNNEL} for code in codes}


def level_at(rows: list[dict], active_before: int, start: date, day: date) -> int:
    """Returnees known and not erased at the end of `day`."""
    totals = sums(rows, start, day)
    return active_before + int(totals.get("appeared", 0) - totals.get("erased", 0))


def covered(counted_from: dict, sources, start: date) -> bool:
    """Whether every source was counted from the beginning of `start` (Shanghai) on."""
    midnight = datetime.combine(start, time.min, SHANGHAI)
    return all(counted_from.get(s) is not None and counted_from[s] <= midnight for s in sources)


def overview(rows: list[dict], active_before: int, counted_from: dict, start: date,
             end: date) -> dict:  # fmt: skip
    """The figures of a period, as `GET /statistics/overview` answers them."""
    totals = sums(rows, start, end)
    value = {m.name: m.value(totals) for m in METRICS if m.kind != "level"}
    return {
        "from": start,
        "to": end,
        "registrations": value["registrations"],
        "returnees_active": level_at(rows, active_before, start, end),
        **{field: breakdown(rows, measure, start, end) for measure, field in BREAKDOWNS.items()},
        "matches_proposed": value["matches_proposed"],
        "intentions": {
            "expressed": value["intentions_expressed"],
            "accepted": value["intentions_accepted"],
            "declined": value["intentions_declined"],
        },
        "consultations": {
            "requested": value["consultations_requested"],
            "answered": value["consultations_answered"],
            "first_response_within_sla_pct": value["first_response_within_sla_pct"],
            "resolved_within_sla_pct": value["resolved_within_sla_pct"],
            "average_rating": value["average_rating"],
        },
        # No event says who came to an appointment: attendance is not known.
        "appointments": {
            "booked": value["appointments_booked"],
            "cancelled": value["appointments_cancelled"],
            "attended": None,
        },
        "activities": {
            "held": value["activities_held"],
            "registrations": value["activity_registrations"],
            "attended": value["activities_attended"],
        },
        "agreements_signed": value["agreements_signed"],
        "applications": {
            "submitted": value["applications_submitted"],
            "approved": value["applications_approved"],
            "rejected": value["applications_rejected"],
            "awarded": value["applications_awarded"],
            "withdrawn": value["applications_withdrawn"],
            "awarded_amount_cny": value["awarded_amount_cny"],
        },
        "funnel_by_policy": funnel(rows, start, end),
        "counted_from": {s: counted_from.get(s) for s in SOURCES},
        "complete": covered(counted_from, SOURCES, start),
    }


def buckets(start: date, end: date, interval: str) -> list[tuple[date, date]]:
    """[start, end] cut into days, ISO weeks (Monday first) or calendar months; the first and
    last bucket clipped to the period."""
    found, cursor = [], start
    while cursor <= end:
        if interval == "day":
            last = cursor
        elif interval == "week":
            last = cursor + timedelta(days=6 - cursor.weekday())
        else:
            following = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
            last = following - timedelta(days=1)
        last = min(last, end)
        found.append((cursor, last))
        cursor = last + timedelta(days=1)
    return found


def series(rows: list[dict], active_before: int, counted_from: dict, metric: str,
           interval: str, start: date, end: date) -> dict:  # fmt: skip
    """One figure per bucket; a bucket before its source was counted says so (`complete`)."""
    figure = BY_NAME[metric]
    points = []
    for first, last in buckets(start, end, interval):
        level = level_at(rows, active_before, start, last) if figure.kind == "level" else 0
        points.append(
            {
                "start": first,
                "end": last,
                "value": figure.value(sums(rows, first, last), level),
                "complete": covered(counted_from, (figure.source,), first),
            }
        )
    return {
        "metric": metric,
        "interval": interval,
        "from": start,
        "to": end,
        "counted_from": counted_from.get(figure.source),
        "points": points,
    }


def daily_table(rows: list[dict], active_before: int, start: date, end: date) -> list[dict]:
    """Every figure per day of the period: the export's day sheet."""
    table = []
    for day, _ in buckets(start, end, "day"):
        totals = sums(rows, day, day)
        level = level_at(rows, active_before, start, day)
        table.append({"day": day, **{m.name: m.value(totals, level) for m in METRICS}})
    return table


# The step each event is of: event type → (table, step columns). A consultation's first response
# is an answer or a question back; either meets the first-response deadline.
STEPS = {
    "consultation.requested": ("consultations", ("requested_at",)),
    "consultation.answered": ("consultations", ("first_responded_at", "first_answered_at")),
    "consultation.waiting_on_returnee": ("consultations", ("first_responded_at",)),
    "consultation.closed": ("consultations", ("closed_at",)),
    "consultation.rated": ("consultations", ("rated_at",)),
    "appointment.booked": ("appointments", ("booked_at",)),
    "appointment.cancelled": ("appointments", ("cancelled_at",)),
    "intention.expressed": ("intentions", ("expressed_at",)),
    "intention.accepted": ("intentions", ("accepted_at",)),
    "intention.declined": ("intentions", ("declined_at",)),
    "activity.published": ("activities", ("published_at",)),
    "activity.cancelled": ("activities", ("cancelled_at",)),
    "activity.closed": ("activities", ("closed_at",)),
    "registration.confirmed": ("activity_registrations", ("confirmed_at",)),
    "registration.cancelled": ("activity_registrations", ("cancelled_at",)),
    "attendance.recorded": ("activity_registrations", ("attended_at",)),
    "application.submitted": ("applications", ("submitted_at",)),
    "application.approved": ("applications", ("approved_at",)),
    "application.rejected": ("applications", ("rejected_at",)),
    "application.awarded": ("applications", ("awarded_at",)),
    "application.withdrawn": ("applications", ("withdrawn_at",)),
}
# The funnel stage an application's step reaches (`store.FUNNEL_STAGES`); a rejection or a
# withdrawal reaches none.
FUNNEL_STEPS = {
    "application.submitted": "applied_at",
    "application.approved": "approved_at",
    "application.awarded": "awarded_on",
}
BREACHES = {"first_response": "first_response_breached_at", "resolution": "resolution_breached_at"}
# The steps that start an entity. A late event about an erased person counts only when it is one
# of them: a later step of an entity counted before the erasure cannot be joined to it any more
# (its ids are gone), and counting it alone would count its outcome twice.
FIRST_STEPS = frozenset(
    {"requested_at", "booked_at", "expressed_at", "confirmed_at", "submitted_at"}
)


def flat(overview: dict) -> dict:
    """The overview's figures by metric name (`METRICS`), as the export's overview sheet lists
    them."""
    intentions, consultations = overview["intentions"], overview["consultations"]
    appointments, activities = overview["appointments"], overview["activities"]
    applications, funnels = overview["applications"], overview["funnel_by_policy"].values()
    return {
        "registrations": overview["registrations"],
        "returnees_active": overview["returnees_active"],
        "eligible": sum(overview["eligible_by_policy"].values()),
        "matches_proposed": overview["matches_proposed"],
        "intentions_expressed": intentions["expressed"],
        "intentions_accepted": intentions["accepted"],
        "intentions_declined": intentions["declined"],
        "consultations_requested": consultations["requested"],
        "consultations_answered": consultations["answered"],
        "first_response_within_sla_pct": consultations["first_response_within_sla_pct"],
        "resolved_within_sla_pct": consultations["resolved_within_sla_pct"],
        "average_rating": consultations["average_rating"],
        "appointments_booked": appointments["booked"],
        "appointments_cancelled": appointments["cancelled"],
        "activities_held": activities["held"],
        "activity_registrations": activities["registrations"],
        "activities_attended": activities["attended"],
        "agreements_signed": overview["agreements_signed"],
        "applications_submitted": applications["submitted"],
        "applications_approved": applications["approved"],
        "applications_rejected": applications["rejected"],
        "applications_awarded": applications["awarded"],
        "applications_withdrawn": applications["withdrawn"],
        "awarded_amount_cny": applications["awarded_amount_cny"],
        # The funnel's first stage is `eligible` above.
        **{
            f"funnel_{s}": sum(f[s] for f in funnels)
            for s in ("consulted", "applied", "approved", "awarded")
        },
    }
