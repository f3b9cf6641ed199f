"""Every insights use case in memory, against scripted histories of events: duplicates (the
inbox), replays with new ids (the natural keys), events out of order, an erasure and the late
events after it; the figures, the series and the export they make. Events are created by their
producers' contract and loaded as the subscriber loads them; time is frozen."""

import copy
import inspect
import io
import re
import uuid
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from chassis.clock import SHANGHAI, FrozenClock
from chassis.errors import HttpError
from chassis.operable import CHASSIS_HANDLERS
from chassis.topology import subscriptions_of
from chassis.uow import MemoryDatabase
from contracts import CATALOG, Event
from contracts.examples import EXAMPLES
from services.insights import figures, handlers
from services.insights.memory import MemoryStore
from services.insights.schemas import ExportQuery, PeriodQuery, SeriesQuery
from services.insights.service import SOURCES, InsightsService
from services.insights.store import InsightsStore

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
DAY1, DAY2, DAY3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)
GRANT, SUBSIDY, RENT = "pujiang-talent", "national-startup", "changning-rent-subsidy"
PROFILE = EXAMPLES[("returnee.registered", 1)].data
EDUCATION = [
    {"institution": "Tsinghua", "country": "CN", "degree": "bachelor", "field": "Physics",
     "start_date": "2012-09-01", "end_date": "2016-07-01", "qs_rank": 20, "overseas": False},
    {"institution": "Imperial", "country": "GB", "degree": "phd", "field": "Biology",
     "start_date": "2016-09-01", "end_date": "2020-07-01", "qs_rank": 8, "overseas": True},
    {"institution": "MIT", "country": "US", "degree": "master", "field": "Biology",
     "start_date": "2020-09-01", "end_date": "2021-07-01", "qs_rank": 1, "overseas": True},
]  # fmt: skip
# The service's routing table, spelled out (a test below holds it to the service's).
ROUTES = {
    "returnee.registered": [handlers.count_registration],
    "returnee.updated": [handlers.see_returnee],
    "returnee.erased": [handlers.erase_returnee],
    "policy.published": [handlers.learn_policy],
    "eligibility.assessed": [handlers.count_eligibility],
    **dict.fromkeys(
        ("consultation.requested", "consultation.answered", "consultation.waiting_on_returnee",
         "consultation.closed", "consultation.rated", "consultation.sla_breached"),
        [handlers.count_consultation],
    ),
    "appointment.booked": [handlers.count_appointment],
    "appointment.cancelled": [handlers.count_appointment],
    **dict.fromkeys(
        ("application.submitted", "application.approved", "application.rejected",
         "application.awarded", "application.withdrawn"),
        [handlers.count_application],
    ),
    "matches.proposed": [handlers.count_matches],
    **dict.fromkeys(
        ("intention.expressed", "intention.accepted", "intention.declined"),
        [handlers.count_intention],
    ),
    **dict.fromkeys(
        ("activity.published", "activity.cancelled", "activity.closed"),
        [handlers.count_activity],
    ),
    **dict.fromkeys(
        ("registration.confirmed", "registration.cancelled", "attendance.recorded"),
        [handlers.count_activity_registration],
    ),
    "agreement.signed": [handlers.count_agreement],
}  # fmt: skip


def at(day: int, hour: int = 9) -> datetime:
    return MONDAY + timedelta(days=day - 1, hours=hour - 9)


def received(producer, type_, data, time, version=1):
    """The event as its producer publishes it (the contract, strictly), loaded as the
    subscriber loads it."""
    subject = data.get("returnee_id")
    event = CATALOG.create(producer, type_, data, version=version, time=time,
                           subject=None if subject is None else str(subject))  # fmt: skip
    return CATALOG.check(event)


def example(type_, version=1, **changes):
    return {**copy.deepcopy(EXAMPLES[(type_, version)].data), **changes}


def policy_id(code: str) -> str:
    """Every event names a programme by the same policy id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"policy:{code}"))


def registered(returnee_id, day, hour=9, **changes):
    data = {**copy.deepcopy(PROFILE), "education": EDUCATION, **changes}
    return received("accounts", "returnee.registered", {**data, "returnee_id": returnee_id},
                    at(day, hour))  # fmt: skip


def consultation(type_, consultation_id, returnee_id, day, hour=9, **extra):
    data = {"consultation_id": consultation_id, "returnee_id": returnee_id, "topic": "funding",
            "status": "new", **extra}  # fmt: skip
    if type_ in ("consultation.answered", "consultation.waiting_on_returnee"):
        data.update(status="answered", advisor_id=str(uuid.uuid4()), message_id=str(uuid.uuid4()))
    if type_ == "consultation.closed":
        data.update(status="closed", closed_by="returnee")
    if type_ == "consultation.rated":
        data.update(status="closed")
    return received("consulting", type_, data, at(day, hour))


def breach(consultation_id, returnee_id, deadline, day, hour=9):
    data = {"consultation_id": consultation_id, "returnee_id": returnee_id, "topic": "funding",
            "deadline": deadline, "due_at": at(day, hour).isoformat()}  # fmt: skip
    return received("consulting", "consultation.sla_breached", data, at(day, hour))


def assessed(returnee_id, codes, day, newly=None):
    data = {
        "returnee_id": returnee_id,
        "assessed_at": at(day).isoformat(),
        "eligible": [{"policy_id": policy_id(c), "code": c} for c in codes],
        "newly_eligible": newly if newly is not None else codes,
        "no_longer_eligible": [],
    }
    return received("consulting", "eligibility.assessed", data, at(day))


def proposed(returnee_id, resources, day, added=None):
    match = EXAMPLES[("matches.proposed", 1)].data["matches"][0]
    data = {
        "returnee_id": returnee_id,
        "matches": [{**match, "match_id": str(uuid.uuid4()), "resource_id": r} for r in resources],
        "added_resource_ids": added if added is not None else resources,
        "removed_resource_ids": [],
    }
    return received("matching", "matches.proposed", data, at(day))


def intention(type_, intention_id, returnee_id, day, activity_id=None):
    """v1 on a resource; with `activity_id`, v2: met at an activity, without a resource."""
    status = type_.split(".")[1]
    data = {"intention_id": intention_id, "returnee_id": returnee_id,
            "resource_id": str(uuid.uuid4()), "organization_id": str(uuid.uuid4()),
            "status": status, "message": "下周见"}  # fmt: skip
    if activity_id is None:
        return received("matching", type_, data, at(day))
    data.update(resource_id=None, activity_id=str(activity_id))
    return received("matching", type_, data, at(day), version=2)


def published_policy(code, day):
    data = example("policy.published", policy_id=policy_id(code), code=code)
    return received("consulting", "policy.published", data, at(day))


def application(type_, application_id, returnee_id, code, day, hour=9, **extra):
    data = example(type_, application_id=application_id, returnee_id=returnee_id,
                   policy_id=policy_id(code), code=code, **extra)  # fmt: skip
    return received("consulting", type_, data, at(day, hour))


def awarded(application_id, returnee_id, code, day, awarded_on, amount, hour=9):
    return application("application.awarded", application_id, returnee_id, code, day, hour,
                       awarded_on=str(awarded_on), amount_cny=amount)  # fmt: skip


def activity(type_, activity_id, day, hour=9, starts=None):
    """activity.published (taking place at `starts`), .cancelled or .closed."""
    data = example(type_, activity_id=str(activity_id))
    if type_ == "activity.published":
        data.update(starts_at=starts.isoformat(), ends_at=(starts + timedelta(hours=3)).isoformat(),
                    registration_closes_at=None)  # fmt: skip
    return received("activities", type_, data, at(day, hour))


def seat(type_, registration_id, activity_id, day, hour=9, returnee_id=None, **extra):
    """A registration's event: a returnee's, or without `returnee_id` a provider's."""
    data = example(type_, registration_id=str(registration_id), activity_id=str(activity_id))
    if returnee_id is None:
        data.update(registrant_role="provider", returnee_id=None, staff_id=str(uuid.uuid4()),
                    organization_id=str(uuid.uuid4()))  # fmt: skip
    else:
        data.update(registrant_role="returnee", returnee_id=returnee_id, staff_id=None,
                    organization_id=None)  # fmt: skip
    return received("activities", type_, {**data, **extra}, at(day, hour))


def signed(agreement_id, activity_id, signed_on, day, hour=9):
    data = example("agreement.signed", agreement_id=str(agreement_id),
                   activity_id=str(activity_id), signed_on=str(signed_on))  # fmt: skip
    return received("activities", "agreement.signed", data, at(day, hour))


def appointment(type_, appointment_id, returnee_id, day):
    data = {"appointment_id": appointment_id, "slot_id": str(uuid.uuid4()),
            "returnee_id": returnee_id, "starts_at": at(day + 3).isoformat(),
            "ends_at": at(day + 3, 10).isoformat(), "location": "驿站 2 楼"}  # fmt: skip
    if type_ == "appointment.cancelled":
        data["cancelled_by"] = "returnee"
    return received("consulting", type_, data, at(day))


def erased(returnee_id, day, hour=9):
    return received("accounts", "returnee.erased", {"returnee_id": returnee_id}, at(day, hour))


def handle(db, *events):
    """Each event through the use cases the routing table gives it; an event type insights
    does not subscribe to (registration.waitlisted ...) never reaches it."""
    for event in events:
        for use_case in ROUTES.get(event.type, ()):
            db.handle(use_case, event)


def ask(db, use_case, schema, **query):
    with db.unit_of_work() as uow:
        return use_case(schema().load(query), uow)


def overview(db, start=DAY1, end=DAY3):
    return ask(db, handlers.overview, PeriodQuery, **{"from": str(start), "to": str(end)})


@pytest.fixture
def clock():
    return FrozenClock(at(3, 18))


@pytest.fixture
def db(clock):
    db = MemoryDatabase("insights", MemoryStore(), clock=clock)
    with db.unit_of_work() as uow:  # as at the first start, before the history
        uow.store.count_from("accounts", MONDAY - timedelta(days=7))
        uow.store.count_from("consulting", MONDAY - timedelta(days=7))
        uow.store.count_from("matching", MONDAY)
        uow.store.count_from("activities", MONDAY + timedelta(days=1))
    return db


def people():
    return [str(uuid.uuid4()) for _ in range(5)]


# ---------------------------------------------------------------- registrations and returnees


def test_registrations_count_once_by_the_profile_they_registered_with(db):
    r1, r2, r3, r4, _ = people()
    first = registered(r1, 1)
    handle(db, first, first)  # a redelivery: the inbox
    replay = registered(r1, 1, industry="ai")  # the same registration under a new event id
    handle(db, replay, registered(r2, 1, industry="ai", startup_stage="idea", education=[]))
    # r4's update overtakes their registration: seen, then registered with its own profile
    update = {**copy.deepcopy(PROFILE), "returnee_id": r4, "changed_fields": ["industry"],
              "industry": "fintech"}  # fmt: skip
    handle(db, received("accounts", "returnee.updated", update, at(2, 12)))
    handle(db, registered(r3, 2, startup_stage="growth"), registered(r4, 2, hour=8))

    figures_ = overview(db)
    assert figures_["registrations"] == 4
    assert figures_["returnees_active"] == 4
    assert figures_["by_industry"] == {"biotech": 3, "ai": 1}
    # the highest overseas degree: the PhD in GB, although the master in the US is later
    assert figures_["by_country"] == {"GB": 3, "none": 1}
    assert figures_["by_stage"] == {"registered": 2, "growth": 1, "idea": 1}
    assert overview(db, DAY2, DAY2)["registrations"] == 2
    assert overview(db, DAY2, DAY2)["returnees_active"] == 4  # a level, not a count


def test_a_returnee_seen_only_by_an_update_is_active_but_no_registration(db):
    (r1, *_) = people()
    update = {**copy.deepcopy(PROFILE), "returnee_id": r1, "changed_fields": ["needs"]}
    handle(db, received("accounts", "returnee.updated", update, at(2)))
    assert overview(db)["registrations"] == 0
    assert overview(db)["returnees_active"] == 1
    assert overview(db, DAY1, DAY1)["returnees_active"] == 0
    assert overview(db, DAY3, DAY3)["returnees_active"] == 1  # known since before the period


# ---------------------------------------------------------------- eligibility and matches


def test_eligibility_counts_the_first_day_a_returnee_became_eligible_for_a_programme(db):
    r1, r2, *_ = people()
    day2 = assessed(r1, ["pujiang-talent", "sh-returnee-definition", "national-startup"], 2)
    day1 = assessed(r1, ["pujiang-talent", "sh-returnee-definition"], 1)
    handle(db, day2, day1, day1, assessed(r2, ["pujiang-talent"], 3))  # out of order, duplicate
    assert overview(db)["eligible_by_policy"] == {
        "pujiang-talent": 2, "national-startup": 1, "sh-returnee-definition": 1
    }  # fmt: skip
    assert overview(db, DAY2, DAY2)["eligible_by_policy"] == {"national-startup": 1}


def test_matches_count_each_resource_proposed_to_a_returnee_once(db):
    r1, *_ = people()
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    handle(db, proposed(r1, [b, c], 2), proposed(r1, [a, b], 1), proposed(r1, [], 3))
    handle(db, proposed(r1, [a, b], 3))  # a replay: nothing new
    assert overview(db)["matches_proposed"] == 3
    assert overview(db, DAY1, DAY1)["matches_proposed"] == 2


def test_intentions_count_each_step_once_whatever_the_order(db):
    r1, r2, *_ = people()
    i1, i2 = str(uuid.uuid4()), str(uuid.uuid4())
    accepted = intention("intention.accepted", i1, r1, 2)
    handle(db, accepted, intention("intention.expressed", i1, r1, 1), accepted)
    handle(db, intention("intention.accepted", i1, r1, 2))  # replayed with a new id
    handle(
        db, intention("intention.expressed", i2, r2, 2), intention("intention.declined", i2, r2, 3)
    )
    assert overview(db)["intentions"] == {"expressed": 2, "accepted": 1, "declined": 1}
    assert overview(db, DAY1, DAY1)["intentions"] == {"expressed": 1, "accepted": 0, "declined": 0}
    # the message is free text: not kept
    assert "下周见" not in repr(db.store.tables)


# ---------------------------------------------------------------- consultations and appointments


def test_consultations_deadlines_and_ratings(db):
    r1, r2, r3, *_ = people()
    c1, c2, c3, c4, c5 = (str(uuid.uuid4()) for _ in range(5))
    handle(
        db,
        consultation("consultation.requested", c1, r1, 1),
        consultation("consultation.answered", c1, r1, 1, 11),
        consultation("consultation.answered", c1, r1, 2),  # a second answer: not a first
        consultation("consultation.closed", c1, r1, 2),
        consultation("consultation.rated", c1, r1, 2, rating=5),
        # c2: the first response came late (breached first), closed, then resolution breached
        # arrives after the close (out of order)
        consultation("consultation.requested", c2, r2, 1),
        breach(c2, r2, "first_response", 2),
        consultation("consultation.answered", c2, r2, 2, 15),
        consultation("consultation.closed", c2, r2, 3),
        consultation("consultation.rated", c2, r2, 3, rating=2),
        # c3: the advisor asked back in time: a first response
        consultation("consultation.requested", c3, r3, 2),
        consultation("consultation.waiting_on_returnee", c3, r3, 2, 10),
        # c4: requested, still waiting
        consultation("consultation.requested", c4, r3, 3),
    )
    handle(db, breach(c2, r2, "resolution", 3, 8))  # earlier than the close, arriving later
    first_day = overview(db, DAY1, DAY1)["consultations"]
    handle(db, consultation("consultation.answered", c1, r1, 1, 11))  # replayed, new id
    assert overview(db, DAY1, DAY1)["consultations"] == first_day
    assert overview(db)["consultations"] == {
        "requested": 4,
        "answered": 2,
        "first_response_within_sla_pct": 66.7,  # c1 and c3 of c1, c2, c3
        "resolved_within_sla_pct": 50.0,  # c1 of c1, c2
        "average_rating": 3.5,
    }
    assert overview(db, DAY1, DAY1)["consultations"] == {
        "requested": 2, "answered": 1, "first_response_within_sla_pct": 100.0,
        "resolved_within_sla_pct": None, "average_rating": None,
    }  # fmt: skip
    assert "Grants" not in repr(db.store.tables)


def test_appointments_booked_and_cancelled_and_attendance_unknown(db):
    r1, *_ = people()
    a1, a2 = str(uuid.uuid4()), str(uuid.uuid4())
    booked = appointment("appointment.booked", a1, r1, 1)
    handle(db, booked, booked, appointment("appointment.booked", a2, r1, 2))
    handle(db, appointment("appointment.cancelled", a2, r1, 3))
    assert overview(db)["appointments"] == {"booked": 2, "cancelled": 1, "attended": None}


# ---------------------------------------------------------------- activities


def test_activities_held_registrations_attendance_and_agreements(db):
    r1, r2, *_ = people()
    held, cancelled = uuid.uuid4(), uuid.uuid4()
    reg1, reg2, reg3, agreement = (uuid.uuid4() for _ in range(4))
    starts = at(3, 14)
    closed = activity("activity.closed", held, 3, 18)
    # A check-in at the door at 23:50, published after midnight: it counts on its own day.
    door = at(3, 23) + timedelta(minutes=50)
    attended = seat("attendance.recorded", reg1, held, 4, 0, r1, checked_in_at=door.isoformat())
    handle(
        db,
        closed,  # the closing report before the publication: held on the day it took place
        activity("activity.published", held, 1, starts=starts),
        attended,  # the check-in before its confirmation, and delivered twice
        attended,
        seat("registration.confirmed", reg1, held, 1, 10, r1),
        seat("registration.confirmed", reg1, held, 1, 10, r1),  # replayed: a new event id
        # a provider waitlisted (not a seat: not counted), promoted on day 2 (counted then)
        seat("registration.waitlisted", reg2, held, 1, 11, position=1),
        seat("registration.confirmed", reg2, held, 2, 9, promoted=True),
        # r2 confirmed, then cancelled: a registration confirmed all the same
        seat("registration.confirmed", reg3, held, 1, 12, r2),
        seat("registration.cancelled", reg3, held, 2, 8, r2, cancelled_by="registrant",
             freed_seat=True),
        signed(agreement, held, DAY3, 3, 17),
        signed(agreement, held, DAY3, 3, 17),  # replayed: the same agreement
        closed,
    )  # fmt: skip
    handle(
        db,
        activity("activity.published", cancelled, 1, starts=starts),
        activity("activity.cancelled", cancelled, 2),
    )
    assert overview(db)["activities"] == {"held": 1, "registrations": 3, "attended": 1}
    assert overview(db)["agreements_signed"] == 1
    assert overview(db, DAY1, DAY2)["activities"] == {"held": 0, "registrations": 3,
                                                      "attended": 0}  # fmt: skip
    assert overview(db, DAY2, DAY2)["activities"]["registrations"] == 1  # the promotion's day
    assert overview(db, DAY3, DAY3)["activities"] == {"held": 1, "registrations": 0,
                                                      "attended": 1}  # fmt: skip
    # Neither the check-in code nor the agreement's title or parties are kept.
    held_rows = repr(db.store.tables)
    assert EXAMPLES[("registration.confirmed", 1)].data["check_in_code"] not in held_rows
    assert EXAMPLES[("agreement.signed", 1)].data["title"] not in held_rows


def test_an_erased_registrants_attendance_counts_until_then_and_a_late_seat_without_an_id(db):
    r1, *_ = people()
    held, reg1, reg2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    handle(
        db,
        registered(r1, 1),
        activity("activity.published", held, 1, starts=at(3, 14)),
        seat("registration.confirmed", reg1, held, 1, 10, r1),
    )
    handle(db, erased(r1, 2))
    assert r1 not in repr(db.store.tables) and str(reg1) not in repr(db.store.tables)
    # Published before activities handled the erasure: the check-in has nothing to join any
    # more; a new registration counts, without an id.
    handle(
        db,
        seat("attendance.recorded", reg1, held, 3, 15, r1, checked_in_at=at(3, 14).isoformat()),
        seat("registration.confirmed", reg2, held, 2, 10, r1),
    )
    assert overview(db)["activities"] == {"held": 0, "registrations": 2, "attended": 0}
    assert r1 not in repr(db.store.tables) and str(reg2) not in repr(db.store.tables)


def test_intentions_on_a_resource_v1_and_met_at_an_activity_v2_count_alike(db):
    r1, r2, *_ = people()
    met, on_resource = str(uuid.uuid4()), str(uuid.uuid4())
    session = uuid.uuid4()
    accepted = intention("intention.accepted", met, r1, 2, activity_id=session)
    assert accepted.version == 2 and accepted.data["resource_id"] is None
    handle(db, accepted, intention("intention.expressed", met, r1, 1, activity_id=session))
    handle(db, accepted, intention("intention.accepted", met, r1, 2, activity_id=session))
    handle(
        db,
        intention("intention.expressed", on_resource, r2, 1),
        intention("intention.declined", on_resource, r2, 3),
    )
    assert overview(db)["intentions"] == {"expressed": 2, "accepted": 1, "declined": 1}
    assert overview(db, DAY2, DAY2)["intentions"] == {"expressed": 0, "accepted": 1, "declined": 0}


# ---------------------------------------------------------------- applications and the funnel


def test_applications_count_each_step_once_and_awards_on_the_day_granted(db):
    r1, r2, r3, *_ = people()
    a1, a2, a3, draft = (str(uuid.uuid4()) for _ in range(4))
    award = awarded(a1, r1, GRANT, 3, awarded_on=DAY2, amount=100000)
    handle(
        db,
        award,  # the award first (out of order), twice (the inbox), then replayed (new id)
        award,
        awarded(a1, r1, GRANT, 3, awarded_on=DAY2, amount=100000),
        application("application.submitted", a1, r1, GRANT, 1),
        application("application.approved", a1, r1, GRANT, 2),
        application("application.submitted", a2, r2, SUBSIDY, 1),
        application("application.rejected", a2, r2, SUBSIDY, 2),
        application("application.submitted", a3, r2, SUBSIDY, 3),  # applies again
        application("application.withdrawn", a3, r2, SUBSIDY, 3, 15, withdrawn_from="submitted"),
        # a draft withdrawn was never submitted: nothing to count
        application("application.withdrawn", draft, r3, GRANT, 2, withdrawn_from="draft"),
    )  # fmt: skip
    assert overview(db)["applications"] == {
        "submitted": 3, "approved": 1, "rejected": 1, "awarded": 1, "withdrawn": 1,
        "awarded_amount_cny": 100000,
    }  # fmt: skip
    assert overview(db, DAY2, DAY2)["applications"] == {
        "submitted": 0, "approved": 1, "rejected": 1, "awarded": 1, "withdrawn": 0,
        "awarded_amount_cny": 100000,
    }  # fmt: skip
    assert overview(db, DAY3, DAY3)["applications"]["awarded"] == 0  # published on day 3
    assert draft not in repr(db.store.tables)


def test_the_funnel_counts_each_stage_once_per_returnee_and_programme(db):
    r1, r2, r3, *_ = people()
    a1, a2, a3 = (str(uuid.uuid4()) for _ in range(3))
    c1, c2, c3, c4, c5 = (str(uuid.uuid4()) for _ in range(5))
    handle(
        db,
        assessed(r1, [GRANT], 1),
        assessed(r2, [GRANT, SUBSIDY], 1),
        assessed(r2, [GRANT, SUBSIDY], 2),  # again: eligible since day 1
        # r1 asks about the grant twice (consulted once, on the first day), r2 once
        consultation("consultation.requested", c2, r1, 2, policy_id=policy_id(GRANT)),
        consultation("consultation.requested", c1, r1, 1, policy_id=policy_id(GRANT)),
        consultation("consultation.requested", c3, r2, 1, policy_id=policy_id(GRANT)),
        # its code known from r2's eligibility only
        consultation("consultation.requested", c5, r2, 2, policy_id=policy_id(SUBSIDY)),
        application("application.submitted", a1, r1, GRANT, 1, 15),
        application("application.approved", a1, r1, GRANT, 2),
        awarded(a1, r1, GRANT, 3, awarded_on=DAY3, amount=50000),
        # r2 rejected, applies again: applied once, on the first day
        application("application.submitted", a2, r2, GRANT, 1, 16),
        application("application.rejected", a2, r2, GRANT, 2),
        application("application.submitted", a3, r2, GRANT, 3),
    )
    # A question about a programme no event has named yet waits for its code.
    rent_question = consultation("consultation.requested", c4, r3, 2, policy_id=policy_id(RENT))
    handle(db, rent_question)
    assert RENT not in overview(db)["funnel_by_policy"]
    handle(db, published_policy(RENT, 3), published_policy(RENT, 3))
    assert overview(db)["funnel_by_policy"] == {
        RENT: {"eligible": 0, "consulted": 1, "applied": 0, "approved": 0, "awarded": 0},
        SUBSIDY: {"eligible": 1, "consulted": 1, "applied": 0, "approved": 0, "awarded": 0},
        GRANT: {"eligible": 2, "consulted": 2, "applied": 2, "approved": 1, "awarded": 1},
    }
    assert overview(db, DAY1, DAY1)["funnel_by_policy"][GRANT] == {
        "eligible": 2, "consulted": 2, "applied": 2, "approved": 0, "awarded": 0
    }  # fmt: skip
    assert overview(db, DAY3, DAY3)["funnel_by_policy"] == {
        GRANT: {"eligible": 0, "consulted": 0, "applied": 0, "approved": 0, "awarded": 1}
    }
    assert overview(db)["applications"]["submitted"] == 3  # applications, not returnees
    assert overview(db, DAY2, DAY2)["funnel_by_policy"][RENT]["consulted"] == 1


def test_an_erased_returnees_applications_keep_their_counts_and_lose_their_ids(db):
    r1, *_ = people()
    a1, a2, a3 = (str(uuid.uuid4()) for _ in range(3))
    handle(
        db,
        registered(r1, 1),
        assessed(r1, [GRANT], 1),
        application("application.submitted", a1, r1, GRANT, 1),
        application("application.approved", a1, r1, GRANT, 2),
        application("application.submitted", a3, r1, SUBSIDY, 2),
    )
    before = overview(db)
    handle(db, erased(r1, 2, 12))
    assert {**overview(db), "returnees_active": None} == {**before, "returnees_active": None}
    assert r1 not in repr(db.store.tables) and a1 not in repr(db.store.tables)
    # Published before consulting handled the erasure: a new application counts without an id
    # (and outside the funnel, counted once per person); a later step of one counted before
    # has nothing to join any more.
    handle(
        db,
        application("application.submitted", a2, r1, GRANT, 2, 13),
        awarded(a1, r1, GRANT, 3, awarded_on=DAY3, amount=80000),
        application("application.withdrawn", a3, r1, SUBSIDY, 3, withdrawn_from="submitted"),
    )
    assert overview(db)["applications"] == {
        "submitted": 3, "approved": 1, "rejected": 0, "awarded": 0, "withdrawn": 0,
        "awarded_amount_cny": 0,
    }  # fmt: skip
    assert overview(db)["funnel_by_policy"] == before["funnel_by_policy"]
    held = repr(db.store.tables)
    assert r1 not in held and a1 not in held and a2 not in held


# ---------------------------------------------------------------- erasure


def test_an_erasure_is_known_by_its_digest_for_failed_events_to_be_dropped(db):
    r1, r2, *_ = people()
    handle(db, registered(r1, 1), registered(r2, 1), erased(r1, 2))
    with db.unit_of_work() as uow:
        assert handlers.erased_at(uow, r1) == at(2)
        assert handlers.erased_at(uow, r2) is None
        assert InsightsService.erased(uow, r1) and not InsightsService.erased(uow, r2)


def test_an_erased_returnee_leaves_the_counts_and_nothing_personal(db, clock):
    r1, r2, *_ = people()
    c1, i1, a1 = (str(uuid.uuid4()) for _ in range(3))
    resource = str(uuid.uuid4())
    history = [
        registered(r1, 1),
        registered(r2, 1),
        assessed(r1, ["pujiang-talent"], 1),
        proposed(r1, [resource], 1),
        intention("intention.expressed", i1, r1, 1),
        consultation("consultation.requested", c1, r1, 1),
        appointment("appointment.booked", a1, r1, 1),
    ]
    handle(db, *history)
    before = overview(db)
    handle(db, erased(r1, 2))
    after = overview(db)
    assert after["returnees_active"] == 1 and overview(db, DAY1, DAY1)["returnees_active"] == 2
    assert {**after, "returnees_active": None} == {**before, "returnees_active": None}
    held = repr(db.store.tables) + repr(db.store.erasures)
    for their_id in (r1, c1, i1, a1):
        assert their_id not in held
    assert PROFILE["name"] not in held and PROFILE["email"] not in held

    # Late events about them, from another producer: what they start counts, without any id;
    # a later step of something counted before (c1's answer) has nothing to join any more.
    c2 = str(uuid.uuid4())
    handle(db, consultation("consultation.requested", c2, r1, 2, 10))
    handle(db, consultation("consultation.answered", c1, r1, 2, 11))
    handle(db, assessed(r1, ["pujiang-talent", "national-startup"], 2, newly=["national-startup"]))
    assert overview(db)["consultations"]["requested"] == 2
    assert overview(db)["consultations"]["answered"] == 0
    assert overview(db)["eligible_by_policy"] == {"national-startup": 1, "pujiang-talent": 1}
    assert overview(db)["returnees_active"] == 1
    held = repr(db.store.tables)
    assert r1 not in held and c1 not in held and c2 not in held

    # After the grace period the digest goes too.
    clock.advance(days=8)
    with db.unit_of_work() as uow:
        assert handlers.upkeep(uow, SOURCES, grace_days=7) == 1
    assert db.store.erasures == {}


def test_a_registration_first_seen_after_the_erasure_counts_without_an_id(db):
    r1, *_ = people()
    handle(db, erased(r1, 2), registered(r1, 1))  # reordered: the erasure first
    assert overview(db)["registrations"] == 1
    assert overview(db)["returnees_active"] == 0
    assert overview(db, DAY1, DAY1)["returnees_active"] == 1
    assert r1 not in repr(db.store.tables)


def test_erasing_someone_never_counted_changes_no_figure(db):
    (r1, *_) = people()
    handle(db, erased(r1, 2))
    assert overview(db)["returnees_active"] == 0
    assert db.store.tables["returnees"] == []


# ---------------------------------------------------------------- coverage, upkeep, backfill


def test_upkeep_records_when_counting_began_and_keeps_the_first_start(db, clock):
    fresh = MemoryDatabase("insights", MemoryStore(), clock=clock)
    with fresh.unit_of_work() as uow:
        handlers.upkeep(uow, SOURCES, grace_days=7)
    started = clock.now()
    clock.advance(hours=5)
    with fresh.unit_of_work() as uow:
        handlers.upkeep(uow, SOURCES, grace_days=7)
    assert SOURCES == ["accounts", "activities", "consulting", "matching"]
    assert fresh.store.coverage() == dict.fromkeys(SOURCES, started)
    figures_ = overview(fresh, DAY3, DAY3)
    assert figures_["counted_from"] == dict.fromkeys(SOURCES, started)
    assert figures_["complete"] is False  # started during the day
    assert overview(fresh, DAY3 + timedelta(days=1), DAY3 + timedelta(days=1))["complete"]


def test_a_backfill_replays_each_event_once_and_counts_from_the_window_it_covered(db, clock):
    r1, r2, *_ = people()
    live = registered(r1, 2)
    handle(db, live)  # counted live already
    replayed = [live, registered(r2, 1), erased(r2, 1, 12)]
    window = MONDAY - timedelta(days=30)
    result = handlers.backfill("accounts", replayed, ROUTES, db, window)
    assert result["applied"] == 2 and result["already_counted"] == 1
    again = handlers.backfill("accounts", replayed, ROUTES, db, window)
    assert again["applied"] == 0 and again["already_counted"] == 3
    assert again["counted_from"] == window
    assert overview(db)["registrations"] == 2 and overview(db)["returnees_active"] == 1
    assert r2 not in repr(db.store.tables)
    # A later window does not move the start back up.
    handlers.backfill("accounts", [], ROUTES, db, MONDAY)
    assert db.store.coverage()["accounts"] == window


# ---------------------------------------------------------------- series, queries, export


def scripted(db):
    r1, r2, *_ = people()
    a1, a2, session = str(uuid.uuid4()), str(uuid.uuid4()), uuid.uuid4()
    handle(db, registered(r1, 1), registered(r2, 3))
    handle(db, consultation("consultation.requested", str(uuid.uuid4()), r1, 2))
    handle(
        db,
        assessed(r1, [GRANT], 1),
        application("application.submitted", a1, r1, GRANT, 2),
        application("application.approved", a1, r1, GRANT, 2, 15),
        awarded(a1, r1, GRANT, 3, awarded_on=DAY3, amount=60000),
        application("application.submitted", a2, r2, GRANT, 3),
        awarded(a2, r2, GRANT, 3, awarded_on=DAY3, amount=40000),  # (approval not here)
        activity("activity.published", session, 1, starts=at(3, 14)),
        activity("activity.closed", session, 3, 18),
    )


def test_timeseries_by_day_week_and_month_with_completeness(db):
    scripted(db)
    daily = ask(db, handlers.timeseries, SeriesQuery, metric="registrations",
                **{"from": "2026-10-31", "to": "2026-11-04"})  # fmt: skip
    assert [(p["start"], p["value"], p["complete"]) for p in daily["points"]] == [
        (date(2026, 10, 31), 0, True),
        (date(2026, 11, 1), 0, True),
        (DAY1, 1, True),
        (DAY2, 0, True),
        (DAY3, 1, True),
    ]
    weekly = ask(db, handlers.timeseries, SeriesQuery, metric="returnees_active",
                 interval="week", **{"from": "2026-10-31", "to": "2026-11-04"})  # fmt: skip
    assert [(p["start"], p["end"], p["value"]) for p in weekly["points"]] == [
        (date(2026, 10, 31), date(2026, 11, 1), 0),
        (DAY1, DAY3, 2),
    ]
    matching = ask(db, handlers.timeseries, SeriesQuery, metric="matches_proposed",
                   interval="month", **{"from": "2026-10-15", "to": "2026-11-04"})  # fmt: skip
    # matching is counted from Monday 09:00: October and the start of November are not complete
    assert [(p["start"], p["complete"]) for p in matching["points"]] == [
        (date(2026, 10, 15), False),
        (date(2026, 11, 1), False),
    ]
    held = ask(db, handlers.timeseries, SeriesQuery, metric="activities_held",
               **{"from": "2026-11-03", "to": "2026-11-04"})  # fmt: skip
    # activities are counted from Tuesday 09:00: Tuesday is not complete, Wednesday is
    assert held["counted_from"] == MONDAY + timedelta(days=1)
    assert [(p["value"], p["complete"]) for p in held["points"]] == [(0, False), (1, True)]
    money = ask(db, handlers.timeseries, SeriesQuery, metric="awarded_amount_cny",
                **{"from": "2026-11-02", "to": "2026-11-04"})  # fmt: skip
    assert [p["value"] for p in money["points"]] == [0, 0, 100000]
    applied = ask(db, handlers.timeseries, SeriesQuery, metric="funnel_applied", interval="week",
                  **{"from": "2026-11-02", "to": "2026-11-04"})  # fmt: skip
    assert [(p["value"], p["complete"]) for p in applied["points"]] == [(2, True)]
    awards = ask(db, handlers.timeseries, SeriesQuery, metric="applications_awarded",
                 **{"from": "2026-11-04", "to": "2026-11-04"})  # fmt: skip
    assert awards["points"][0]["value"] == 2
    pct = ask(db, handlers.timeseries, SeriesQuery, metric="first_response_within_sla_pct",
              **{"from": "2026-11-02", "to": "2026-11-02"})  # fmt: skip
    assert pct["points"][0]["value"] is None  # no deadline decided that day


def test_periods_default_to_the_30_days_to_today_and_refuse_what_makes_no_sense(db):
    scripted(db)
    default = ask(db, handlers.overview, PeriodQuery)
    assert (default["from"], default["to"]) == (DAY3 - timedelta(days=29), DAY3)
    assert default["registrations"] == 2
    with pytest.raises(HttpError) as backwards:
        ask(db, handlers.overview, PeriodQuery, **{"from": "2026-11-04", "to": "2026-11-01"})
    assert backwards.value.fields == {"from": ["Must not be after to."]}
    with pytest.raises(HttpError) as long:
        ask(db, handlers.overview, PeriodQuery, **{"from": "2000-01-01", "to": "2026-11-01"})
    assert long.value.fields == {"to": ["A period is at most 3700 days."]}


def test_the_xlsx_export_holds_the_overviews_numbers_as_numbers(db):
    scripted(db)
    period = {"from": "2026-11-01", "to": "2026-11-04"}
    found = ask(db, handlers.export, ExportQuery, **period)
    assert found.filename == "insights-2026-11-01-2026-11-04.xlsx"
    book = load_workbook(io.BytesIO(found.content))
    assert book.sheetnames == [
        "概览 Overview", "行业 Industry", "留学国家 Country", "创业阶段 Stage",
        "政策资格 Eligibility", "政策漏斗 Funnel", "每日 Daily", "统计起点 Coverage",
    ]  # fmt: skip
    sheet = book["概览 Overview"]
    assert [c.value for c in sheet[1]] == [
        "指标 / Metric",
        "中文 / Chinese",
        "English",
        "数值 / Value",
    ]
    values = {row[0]: row[3] for row in sheet.iter_rows(min_row=2, values_only=True)}
    figures_ = overview(db, date(2026, 11, 1), DAY3)
    assert values == figures.flat(figures_)
    assert values["registrations"] == 2 and isinstance(values["registrations"], int)
    daily = list(book["每日 Daily"].iter_rows(values_only=True))
    assert daily[0][0] == "日期 / Date" and len(daily) == 1 + 4
    assert daily[2][0].date() == DAY1 and daily[2][1] == 1  # a date cell, a number cell
    industry = list(book["行业 Industry"].iter_rows(values_only=True))
    assert industry == [("行业 / Industry", "注册人数 / Registrations"), ("biotech", 2)]
    assert values["awarded_amount_cny"] == 100000 and values["funnel_applied"] == 2
    assert values["applications_awarded"] == 2 and values["activities_held"] == 1
    funnel = list(book["政策漏斗 Funnel"].iter_rows(values_only=True))
    assert funnel == [
        ("政策代码 / Programme code", "新获资格 / Became eligible", "咨询 / Consulted",
         "申请 / Applied", "批准 / Approved", "兑现 / Awarded"),
        (GRANT, 1, 0, 2, 1, 2),
    ]  # fmt: skip
    columns = daily[0]
    assert "兑现金额（元） / Amount awarded (CNY)" in columns
    assert daily[4][columns.index("兑现金额（元） / Amount awarded (CNY)")] == 100000


def test_the_csv_export_is_a_zip_of_the_same_tables(db):
    scripted(db)
    found = ask(db, handlers.export, ExportQuery, format="csv", **{"from": "2026-11-01"})
    assert found.media_type == "application/zip" and found.filename.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(found.content))
    assert sorted(archive.namelist()) == sorted(
        f"{name}.csv" for name in ("overview", "by_industry", "by_country", "by_stage",
                                   "eligible_by_policy", "funnel_by_policy", "daily", "coverage")
    )  # fmt: skip
    text = archive.read("overview.csv").decode("utf-8")
    assert text.startswith("\ufeff指标 / Metric,")
    assert "registrations,注册人数,Registrations,2\r\n" in text
    assert "awarded_amount_cny,兑现金额（元）,Amount awarded (CNY),100000\r\n" in text
    funnel = archive.read("funnel_by_policy.csv").decode("utf-8")
    assert funnel == (
        "\ufeff政策代码 / Programme code,新获资格 / Became eligible,咨询 / Consulted,"
        f"申请 / Applied,批准 / Approved,兑现 / Awarded\r\n{GRANT},1,0,2,1,2\r\n"
    )


# ---------------------------------------------------------------- pure rules


def test_buckets_cut_a_period_into_days_iso_weeks_and_months():
    assert figures.buckets(date(2026, 12, 30), date(2027, 1, 2), "month") == [
        (date(2026, 12, 30), date(2026, 12, 31)),
        (date(2027, 1, 1), date(2027, 1, 2)),
    ]
    assert figures.buckets(date(2026, 11, 1), date(2026, 11, 10), "week") == [
        (date(2026, 11, 1), date(2026, 11, 1)),
        (date(2026, 11, 2), date(2026, 11, 8)),
        (date(2026, 11, 9), date(2026, 11, 10)),
    ]
    assert len(figures.buckets(date(2026, 11, 1), date(2026, 11, 30), "day")) == 30


def test_a_day_is_a_shanghai_day():
    assert figures.day_of(datetime(2026, 9, 30, 23, 30, tzinfo=SHANGHAI)) == date(2026, 9, 30)
    assert figures.day_of(datetime.fromisoformat("2026-09-30T16:30:00+00:00")) == date(2026, 10, 1)


# ---------------------------------------------------------------- the twins and the coverage


def test_the_memory_store_has_the_sql_stores_methods():
    def public(cls):
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert public(MemoryStore) == public(InsightsStore)


def test_every_handler_has_a_test_here():
    used = set(re.findall(r"handlers\.(\w+)", Path(__file__).read_text()))
    public = {
        name
        for name, f in inspect.getmembers(handlers, inspect.isfunction)
        if not name.startswith("_") and f.__module__ == handlers.__name__
    }
    assert public - used == set()


def test_the_routing_table_is_the_services_and_every_type_is_in_the_contract():
    table = {
        t: [getattr(handlers, s.handler)] for s in subscriptions_of(InsightsService)
        if s.handler not in CHASSIS_HANDLERS  # the chassis' own (chassis.operable.Operable)
        for t in s.event_types
    }  # fmt: skip
    assert table == ROUTES
    assert all(CATALOG.get(t).producer in SOURCES for t in ROUTES)


# ---------------------------------------------------------------- one history for both stores


def scripted_history() -> list[Event]:
    """A week of events of every kind, with redeliveries (the same event twice), replays (the
    same fact under a new event id), events out of order, an erasure and a late event after it.
    The integration tests feed it to PostgreSQL and compare with the memory store."""
    r1, r2, r3 = people()[:3]
    c1, c2, c3, i1, i2, a1, p1, p2 = (str(uuid.uuid4()) for _ in range(8))
    res1, res2 = str(uuid.uuid4()), str(uuid.uuid4())
    session, reg1, reg2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first = registered(r1, 1)
    accepted = intention("intention.accepted", i1, r1, 2)
    award = awarded(p1, r1, GRANT, 3, awarded_on=DAY3, amount=100000)
    checked_in = seat(
        "attendance.recorded", reg1, session, 3, 15, r3, checked_in_at=at(3, 14).isoformat()
    )
    return [
        first, first, registered(r1, 1),
        registered(r2, 1, industry="ai", education=[]),
        received("accounts", "returnee.updated",
                 {**copy.deepcopy(PROFILE), "returnee_id": r3, "changed_fields": ["needs"]},
                 at(2, 8)),
        registered(r3, 2, startup_stage="growth"),
        assessed(r1, [GRANT, "national-startup"], 2),
        assessed(r1, [GRANT], 1),
        proposed(r1, [res1, res2], 1), proposed(r2, [res2], 2),
        accepted, intention("intention.expressed", i1, r1, 1), accepted,
        intention("intention.expressed", i2, r3, 3, activity_id=session),  # v2: at an activity
        consultation("consultation.requested", c1, r1, 1, policy_id=policy_id(GRANT)),
        consultation("consultation.answered", c1, r1, 1, 11),
        consultation("consultation.answered", c1, r1, 2, 10),  # a second answer: not a first
        consultation("consultation.closed", c1, r1, 2),
        consultation("consultation.rated", c1, r1, 2, rating=4),
        consultation("consultation.requested", c2, r2, 1),
        breach(c2, r2, "first_response", 2),
        consultation("consultation.waiting_on_returnee", c2, r2, 2, 12),
        consultation("consultation.requested", c3, r3, 2, 9, policy_id=policy_id(RENT)),
        published_policy(RENT, 2),  # after the question about it
        appointment("appointment.booked", a1, r2, 1),
        appointment("appointment.cancelled", a1, r2, 2),
        award, application("application.submitted", p1, r1, GRANT, 1, 15),
        application("application.approved", p1, r1, GRANT, 2), award,
        application("application.submitted", p2, r3, RENT, 2),
        application("application.withdrawn", p2, r3, RENT, 3, withdrawn_from="submitted"),
        activity("activity.published", session, 1, starts=at(3, 14)),
        seat("registration.confirmed", reg1, session, 2, 9, r3),
        checked_in, checked_in,
        seat("registration.confirmed", reg2, session, 2, 10),  # a provider
        seat("registration.cancelled", reg2, session, 3, 8, cancelled_by="registrant",
             freed_seat=True),
        activity("activity.closed", session, 3, 18),
        signed(uuid.uuid4(), session, DAY3, 3, 17),
        erased(r2, 3),
        consultation("consultation.answered", c2, r2, 3, 10),  # late, after the erasure
    ]  # fmt: skip


def routes_of(event: Event) -> list:
    return ROUTES.get(event.type, [])


def test_the_scripted_history_gives_the_figures_it_scripts(db):
    handle(db, *scripted_history())
    figures_ = overview(db)
    assert figures_["registrations"] == 3 and figures_["returnees_active"] == 2
    assert figures_["eligible_by_policy"] == {"national-startup": 1, "pujiang-talent": 1}
    assert figures_["matches_proposed"] == 3
    assert figures_["intentions"] == {"expressed": 2, "accepted": 1, "declined": 0}
    assert figures_["consultations"] == {
        "requested": 3, "answered": 1, "first_response_within_sla_pct": 50.0,
        "resolved_within_sla_pct": 100.0, "average_rating": 4.0,
    }  # fmt: skip
    assert figures_["appointments"] == {"booked": 1, "cancelled": 1, "attended": None}
    assert figures_["activities"] == {"held": 1, "registrations": 2, "attended": 1}
    assert figures_["agreements_signed"] == 1
    assert figures_["applications"] == {
        "submitted": 2, "approved": 1, "rejected": 0, "awarded": 1, "withdrawn": 1,
        "awarded_amount_cny": 100000,
    }  # fmt: skip
    assert figures_["funnel_by_policy"] == {
        RENT: {"eligible": 0, "consulted": 1, "applied": 1, "approved": 0, "awarded": 0},
        "national-startup": {"eligible": 1, "consulted": 0, "applied": 0, "approved": 0,
                             "awarded": 0},
        GRANT: {"eligible": 1, "consulted": 1, "applied": 1, "approved": 1, "awarded": 1},
    }  # fmt: skip
    assert figures_["complete"] is False  # activities counted from Tuesday
