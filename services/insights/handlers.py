"""insights' use cases: one function per event it counts and per question it answers.

Events (`(event, uow)`) write the step they report into the read model through `uow.store`,
ids as strings, the moment the event's own; nothing else of the event is kept. Questions take
the loaded query and answer figures computed by `figures` from the store's day counts.
`backfill` replays a producer's retained events through the same event use cases.
"""

from datetime import date, timedelta

from chassis.errors import Unprocessable
from chassis.uow import AlreadyHandled
from contracts import Event
from services.insights import export as exports
from services.insights import figures
from services.insights.messages import MESSAGES  # noqa: F401  (registers the catalog)

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 3700  # ten years and some: the export's day sheet stays a few thousand rows
PERIOD_TOO_LONG = "A period is at most 3700 days."

# ---------------------------------------------------------------- accounts


def count_registration(event: Event, uow) -> None:
    """A registration, with the profile it registered with: industry, country of the highest
    overseas degree, startup stage. Never the name, contacts or anything else."""
    data = event.data
    erased = _erased(uow, data["returnee_id"])
    profile = {
        "industry": data["industry"],
        "country": figures.overseas_country(data["education"]),
        "stage": data["startup_stage"],
    }
    returnee_id = None if erased else str(data["returnee_id"])
    uow.store.save_registration(returnee_id, event.time, profile, erased_at=erased)


def see_returnee(event: Event, uow) -> None:
    """A profile update: the returnee exists (registered before insights counted, perhaps)."""
    if _erased(uow, event.data["returnee_id"]) is None:
        uow.store.see_returnee(str(event.data["returnee_id"]), event.time)


def erase_returnee(event: Event, uow) -> None:
    """Every id of the person leaves the read model, the counts stay; a digest of the id is
    remembered for the grace period, so that a late event about them counts without it."""
    returnee_id = str(event.data["returnee_id"])
    uow.store.lock_person(returnee_id)
    uow.store.erase_returnee(returnee_id, event.time)
    uow.store.remember_erasure(figures.digest(returnee_id), event.time, uow.now())


# ---------------------------------------------------------------- consulting


def learn_policy(event: Event, uow) -> None:
    """A policy's code: consultations name the policy they are about by its id only."""
    uow.store.save_policies([(str(event.data["policy_id"]), event.data["code"])])


def count_eligibility(event: Event, uow) -> None:
    """The programmes the returnee is eligible for now: the first moment of each counts."""
    data = event.data
    uow.store.save_policies([(str(p["policy_id"]), p["code"]) for p in data["eligible"]])
    returnee_id = _person(uow, data["returnee_id"])
    codes = sorted({e["code"] for e in data["eligible"]})
    if returnee_id is None:  # erased: count only what they became eligible for now
        codes = sorted(set(data["newly_eligible"]))
    uow.store.save_eligibilities(returnee_id, codes, event.time)


def count_consultation(event: Event, uow) -> None:
    """A consultation's step: requested, first responded, answered, closed, rated, or a
    deadline consulting reported missed. Neither the question nor any message is kept."""
    data = event.data
    returnee_id = _person(uow, data["returnee_id"])
    key = None if returnee_id is None else str(data["consultation_id"])
    if event.type == "consultation.sla_breached":
        steps, extra = (figures.BREACHES[data["deadline"]],), {}
    else:
        steps = figures.STEPS[event.type][1]
        extra = {"rating": data["rating"]} if event.type == "consultation.rated" else {}
        if event.type == "consultation.requested":
            extra = {"topic": data["topic"]}
    if key is None and not figures.FIRST_STEPS.issuperset(steps):
        return  # a later step of an erased person's consultation: nothing to join it to
    for step in steps:
        uow.store.save_step("consultations", key, step, event.time, returnee_id, **extra)
    policy_id = data.get("policy_id") if event.type == "consultation.requested" else None
    if policy_id is not None and returnee_id is not None:  # the funnel: once per returnee
        uow.store.save_funnel(returnee_id, str(policy_id), "consulted_at", event.time)


def count_appointment(event: Event, uow) -> None:
    _count_step(uow, event, "appointment_id")


def count_application(event: Event, uow) -> None:
    """An application submitted, approved, rejected, awarded (its amount, on the day it was
    granted) or withdrawn, and the stage of the programme's funnel its returnee reached. A draft
    withdrawn was never submitted: nothing to count. The rejection reason is not in the event."""
    data = event.data
    if event.type == "application.withdrawn" and data["withdrawn_from"] == "draft":
        return
    policy_id = str(data["policy_id"])
    uow.store.save_policies([(policy_id, data["code"])])
    table, (step,) = figures.STEPS[event.type]
    returnee_id = _person(uow, data["returnee_id"])
    if returnee_id is None and step not in figures.FIRST_STEPS:
        return  # a later step of an erased person's application: nothing to join it to
    key = None if returnee_id is None else str(data["application_id"])
    extra, at = {}, event.time
    if event.type == "application.awarded":
        extra = {"awarded_on": data["awarded_on"], "amount_cny": data["amount_cny"]}
        at = data["awarded_on"]
    uow.store.save_step(table, key, step, event.time, returnee_id, **extra)
    stage = figures.FUNNEL_STEPS.get(event.type)
    if stage is not None and returnee_id is not None:  # the funnel counts once per returnee
        uow.store.save_funnel(returnee_id, policy_id, stage, at)


# ---------------------------------------------------------------- matching


def count_matches(event: Event, uow) -> None:
    """Resources proposed to a returnee: the first moment of each pair counts."""
    data = event.data
    returnee_id = _person(uow, data["returnee_id"])
    resources = [m["resource_id"] for m in data["matches"]]
    if returnee_id is None:
        resources = data["added_resource_ids"]
    uow.store.save_matches(returnee_id, sorted({str(r) for r in resources}), event.time)


def count_intention(event: Event, uow) -> None:
    """A cooperation intention expressed, accepted or declined (never its message)."""
    _count_step(uow, event, "intention_id")


# ---------------------------------------------------------------- activities


def count_activity(event: Event, uow) -> None:
    """An activity published (with when it takes place), cancelled, or closed (held)."""
    data = event.data
    (step,) = figures.STEPS[event.type][1]
    extra = {"starts_at": data["starts_at"]} if event.type == "activity.published" else {}
    uow.store.save_step("activities", str(data["activity_id"]), step, event.time, **extra)


def count_activity_registration(event: Event, uow) -> None:
    """A registration confirmed or cancelled, or its registrant checked in (at the moment of
    the check-in). Providers' registrations count too; only a returnee's id is kept."""
    data = event.data
    returnee_id = _person(uow, data["returnee_id"]) if data.get("returnee_id") else None
    erased = data.get("returnee_id") and returnee_id is None
    key = None if erased else str(data["registration_id"])
    (step,) = figures.STEPS[event.type][1]
    if erased and step not in figures.FIRST_STEPS:
        return
    at = data["checked_in_at"] if event.type == "attendance.recorded" else event.time
    uow.store.save_step(
        "activity_registrations", key, step, at, returnee_id, activity_id=str(data["activity_id"])
    )


def count_agreement(event: Event, uow) -> None:
    """An agreement signed at an activity, on its day; who signed is not kept."""
    data = event.data
    uow.store.save_agreement(str(data["agreement_id"]), str(data["activity_id"]), data["signed_on"])


# ---------------------------------------------------------------- upkeep and backfill


def upkeep(uow, sources: list[str], grace_days: float) -> int:
    """At start and then periodically: the moment counting began for each source (kept from
    the first start on), and digests of erased people past their grace period forgotten."""
    now = uow.now()
    for source in sources:
        uow.store.start_counting(source, now)
    return uow.store.forget_erasures(now - timedelta(days=grace_days))


def backfill(source: str, events, routes: dict, db, counted_from) -> dict:
    """Replay `source`'s retained events (oldest first) through the use cases `routes` maps
    their types to, each once per use case as a subscriber applies it (the inbox skips what was
    counted already), then count `source` from `counted_from`: the start of the retained
    window. `db` opens units of work as `MemoryDatabase` does (`cause=`, `handler=`)."""
    applied = already = 0
    for event in events:
        for use_case in routes.get(event.type, ()):
            try:
                with db.unit_of_work(cause=event, handler=f"insights.{use_case.__name__}") as uow:
                    use_case(event, uow)
                applied += 1
            except AlreadyHandled:
                already += 1
    with db.unit_of_work() as uow:
        uow.store.count_from(source, counted_from)
        counted = uow.store.coverage()[source]
    return {"source": source, "applied": applied, "already_counted": already,
            "counted_from": counted}  # fmt: skip


# ---------------------------------------------------------------- questions


def overview(query: dict, uow) -> dict:
    start, end = _period(query, uow)
    return figures.overview(
        uow.store.day_counts(start, end),
        uow.store.active_before(start),
        uow.store.coverage(),
        start,
        end,
    )


def timeseries(query: dict, uow) -> dict:
    start, end = _period(query, uow)
    return figures.series(
        uow.store.day_counts(start, end),
        uow.store.active_before(start),
        uow.store.coverage(),
        query["metric"],
        query["interval"],
        start,
        end,
    )


def export(query: dict, uow) -> exports.Export:
    """The period's tables as an XLSX workbook, or a zip of CSV files."""
    start, end = _period(query, uow)
    rows, active = uow.store.day_counts(start, end), uow.store.active_before(start)
    coverage = uow.store.coverage()
    tables = exports.tables(
        figures.overview(rows, active, coverage, start, end),
        figures.daily_table(rows, active, start, end),
    )
    return exports.render(tables, query["format"], f"insights-{start}-{end}")


# ---------------------------------------------------------------- shared steps


def erased_at(uow, returnee_id):
    """When the person was erased, if within the grace period (no lock: a failed event's
    check, `InsightsService.erased`)."""
    return uow.store.erased_at(figures.digest(str(returnee_id)))


def _erased(uow, returnee_id):
    """When the person was erased, if they were within the grace period; else None. Locks the
    person first, so an erasure handled at the same time is seen or waits for this one."""
    uow.store.lock_person(returnee_id)
    return uow.store.erased_at(figures.digest(str(returnee_id)))


def _person(uow, returnee_id) -> str | None:
    """The returnee's id to keep, or None for an erased person (their late event counts, with
    no id)."""
    return None if _erased(uow, returnee_id) is not None else str(returnee_id)


def _count_step(uow, event: Event, key_field: str) -> None:
    data = event.data
    table, (step,) = figures.STEPS[event.type]
    returnee_id = _person(uow, data["returnee_id"])
    if returnee_id is None and step not in figures.FIRST_STEPS:
        return  # a later step of an erased person's entity: nothing to join it to
    key = None if returnee_id is None else str(data[key_field])
    uow.store.save_step(table, key, step, event.time, returnee_id)


def _period(query: dict, uow) -> tuple[date, date]:
    """[from, to] in Shanghai days: by default the 30 days to today."""
    end = query.get("end") or uow.today()
    start = query.get("start") or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise Unprocessable(fields={"from": ["Must not be after to."]})
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise Unprocessable(fields={"to": [PERIOD_TOO_LONG]})
    return start, end
