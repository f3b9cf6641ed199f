"""What consulting and matching write of a profile event, against PostgreSQL, is what their
in-memory twins (`memory.MemoryStore`, which the handler unit tests use) say: the assessment of
a returnee registered, updated, assessed again with another list and re-delivered out of order,
in a batch of events sharing one transaction (the policies read once for all of them) and one
event at a time; an erased returnee's profile refused; a profile older than a withdrawal of
consent refused and a newer one taking its place; a returnee's matches replaced with those kept
keeping their id and status."""

import copy
import uuid
from datetime import date, datetime, timedelta

import pytest

from chassis.clock import SHANGHAI, FrozenClock
from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool
from chassis.uow import MemoryDatabase
from contracts import CATALOG, Event
from contracts.examples import EXAMPLES
from services.consulting import handlers as consulting
from services.consulting.catalog import load_policies
from services.consulting.memory import MemoryStore as ConsultingMemory
from services.consulting.store import ConsultingStore
from services.matching.engine import Match, Reason
from services.matching.memory import MemoryStore as MatchingMemory
from services.matching.store import MatchingStore
from tests.support import query

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
PROFILE = EXAMPLES[("returnee.registered", 1)].data


def twins(databases, service: str, store, memory_store):
    """A fresh migrated database of `service` and its in-memory twin, on one frozen clock."""
    url = databases.create(service)
    pool = ConnectionPool(url, 2)
    clock = FrozenClock(T0)
    sql = ScriptDatabase(pool, service, store=store, clock=clock)
    return url, pool, sql, MemoryDatabase(service, memory_store(clock), clock=clock)


@pytest.fixture
def consulting_db(databases):
    url, pool, sql, memory = twins(databases, "consulting", ConsultingStore, ConsultingMemory)
    for db in (sql, memory):
        with db.unit_of_work() as uow:
            consulting.seed_catalog(load_policies(), uow)
    yield url, sql, memory
    pool.clear()


def profile_event(returnee_id: str, minutes: int, type_="returnee.registered", **changes):
    data = {**copy.deepcopy(PROFILE), "returnee_id": returnee_id, **changes}
    if type_ == "returnee.updated":
        data["changed_fields"] = sorted(changes) or ["industry"]
    event = CATALOG.create(
        "accounts", type_, data, subject=returnee_id, time=T0 + timedelta(minutes=minutes)
    )
    return CATALOG.check(event)


def assessed(db, returnee_id: str) -> dict:
    with db.unit_of_work() as uow:
        return uow.store.eligible_policies(returnee_id)


def test_a_batch_of_assessments_writes_what_the_memory_store_keeps(consulting_db):
    url, sql, memory = consulting_db
    people = [str(uuid.uuid4()) for _ in range(4)]
    # Born too late or too early for some policies, with or without a company: lists that
    # differ between people and between a person's profiles.
    younger = {"birth_date": date(2004, 1, 1).isoformat()}
    older = {"birth_date": date(1970, 1, 1).isoformat(), "company": None}
    events = [
        profile_event(people[0], 1),
        profile_event(people[1], 1, **older),
        profile_event(people[2], 1, **younger),
        profile_event(people[0], 5, "returnee.updated", **older),  # the list shrinks
        profile_event(people[1], 6, "returnee.updated"),  # and grows
        profile_event(people[0], 3, "returnee.updated", **younger),  # older: ignored
        profile_event(people[3], 2),
    ]
    lists = {
        tuple(sorted(entry[0] for entry in assessed_list.values()))
        for assessed_list in [
            consulting.assessing.eligible_now(load_policies(), consulting.assessing.facts_of(
                e.data), T0.date())
            for e in events
        ]
    }  # fmt: skip
    assert len(lists) > 1, "the profiles must make different lists"
    memory.handle_batch(consulting.assess_returnee, events)
    with sql.unit_of_work(batched=True) as uow:
        for event in events:
            consulting.assess_returnee(event, uow)
        assert len(uow.batch.shared["consulting.policies"]) == 1  # read once for the batch
    for person in people:
        assert assessed(sql, person) == assessed(memory, person), person
    assert [e.data for e in _assessments(url)] == [
        e.data for e in memory.published("eligibility.assessed")
    ]
    rows = query(url, "SELECT id::text AS id, assessed_at FROM returnees ORDER BY id")
    assert {r["id"] for r in rows} == set(people)
    assert all(r["assessed_at"] == T0 for r in rows)

    # Each alone afterwards (a batch of one, the usual case when consulting keeps up): the
    # same answers again, the eligibility lists moving back.
    again = [profile_event(people[0], 10, "returnee.updated"),
             profile_event(people[2], 10, "returnee.updated", **older)]  # fmt: skip
    for event in again:
        memory.handle(consulting.assess_returnee, event)
        with sql.unit_of_work() as uow:
            consulting.assess_returnee(event, uow)
    for person in people:
        assert assessed(sql, person) == assessed(memory, person), person


def _assessments(url):
    rows = query(
        url,
        "SELECT body FROM outbox WHERE routing_key = 'eligibility.assessed' ORDER BY position",
    )
    return [Event.from_json(bytes(r["body"])) for r in rows]


def test_an_erased_returnees_profile_is_refused(consulting_db):
    url, sql, memory = consulting_db
    person = str(uuid.uuid4())
    for db in (sql, memory):
        with db.unit_of_work() as uow:
            uow.store.erase_returnee(person)
        with db.unit_of_work() as uow:
            consulting.assess_returnee(profile_event(person, 1), uow)
        assert assessed(db, person) == {}
    assert query(url, "SELECT count(*) AS n FROM returnees")[0]["n"] == 0
    assert query(url, "SELECT count(*) AS n FROM outbox WHERE routing_key = 'eligibility.assessed'"
                 )[0]["n"] == 0  # fmt: skip


@pytest.fixture
def matching_db(databases):
    url, pool, sql, memory = twins(databases, "matching", MatchingStore, MatchingMemory)
    yield url, sql, memory
    pool.clear()


MATCHING_PROFILE = {"locale": "zh-CN", "industry": "biotech", "startup_stage": "idea",
                    "needs": ["financing", "mentorship"], "district": "Changning"}  # fmt: skip


def test_a_profile_older_than_a_withdrawal_is_refused_and_a_newer_one_stored(matching_db):
    url, sql, memory = matching_db
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for db in (sql, memory):
        with db.unit_of_work() as uow:
            uow.store.record_withdrawal(first, T0)
            uow.store.record_withdrawal(second, T0)
        with db.unit_of_work() as uow:
            assert not uow.store.save_returnee(first, MATCHING_PROFILE, T0 - timedelta(seconds=1))
            assert uow.store.save_returnee(second, MATCHING_PROFILE, T0)  # not after it
            assert uow.store.save_returnee(second, MATCHING_PROFILE, T0 + timedelta(minutes=1))
            assert not uow.store.save_returnee(second, MATCHING_PROFILE, T0)  # older than stored
    withdrawals = query(url, "SELECT returnee_id::text AS id FROM withdrawals")
    assert [r["id"] for r in withdrawals] == [first]
    assert memory.store.withdrawals.keys() == {first}
    stored = query(url, "SELECT id::text AS id, profile_time, needs FROM returnees")
    assert [(r["id"], r["profile_time"], r["needs"]) for r in stored] == [
        (second, T0 + timedelta(minutes=1), ["financing", "mentorship"])
    ]


def test_replaced_matches_keep_the_id_and_status_of_those_kept(matching_db):
    url, sql, memory = matching_db
    organization = str(uuid.uuid4())
    resources = [str(uuid.uuid4()) for _ in range(3)]
    person, other = str(uuid.uuid4()), str(uuid.uuid4())

    def match(resource, score):
        return Match(resource, organization, score, (Reason("need", "need_met", {"n": 1}),))

    with sql.unit_of_work() as uow:
        uow.store.save_organization(organization, "Partner", "enterprise")
        for number, rid in enumerate(resources):
            uow.store.insert_resource(rid, {
                "organization_id": organization, "title": f"Resource {number}",
                "kind": "mentorship", "needs_served": ["mentorship"], "industries": [],
                "stages": [], "district": None, "capacity": 3, "valid_from": None,
                "valid_until": None, "description": "",
            })  # fmt: skip
    steps = [
        {person: [match(resources[0], 0.9), match(resources[1], 0.5)],
         other: [match(resources[1], 0.4)]},
        {person: [match(resources[2], 0.8), match(resources[0], 0.7)]},  # one gone, one new
        {person: [], other: [match(resources[1], 0.6), match(resources[2], 0.2)]},
    ]  # fmt: skip
    ids = {}
    for number, computed in enumerate(steps):
        for db in (sql, memory):
            with db.unit_of_work() as uow:
                uow.store.replace_matches(computed)
        if number == 0:  # feedback on a match that stays
            query(url, "UPDATE matches SET status = 'accepted' WHERE resource_id = %s"
                  " AND returnee_id = %s", (resources[0], person))  # fmt: skip
            memory.store.matches[(person, resources[0])]["status"] = "accepted"
            ids = {(r["returnee_id"], r["resource_id"]): r["id"] for r in _matches(url)}
        rows = _matches(url)
        assert [(r["returnee_id"], r["resource_id"], r["rank"], r["score"], r["status"])
                for r in rows] == sorted(
            (rid, res, m["rank"], m["score"], m["status"])
            for (rid, res), m in memory.store.matches.items()
        )  # fmt: skip
        for r in rows:
            assert ids.get((r["returnee_id"], r["resource_id"]), r["id"]) == r["id"]
        if number == 1:
            kept = [r for r in rows if r["resource_id"] == resources[0]]
            assert kept[0]["status"] == "accepted" and kept[0]["rank"] == 2
            assert kept[0]["reasons"] == [{"factor": "need", "code": "need_met", "args": {"n": 1}}]


def _matches(url):
    return query(
        url,
        "SELECT id::text AS id, returnee_id::text AS returnee_id,"
        " resource_id::text AS resource_id, rank, score, status, reasons FROM matches"
        " ORDER BY returnee_id, resource_id",
    )


def test_a_saved_profile_comes_back_as_stored_with_its_dismissals_and_matches(matching_db):
    """What `save_returnee` returns is what a re-match would otherwise read again (the profile
    with its dismissals, the resources matched now); an erased returnee's profile is refused."""
    url, sql, memory = matching_db
    organization, resource = str(uuid.uuid4()), str(uuid.uuid4())
    person, erased = str(uuid.uuid4()), str(uuid.uuid4())
    found = {}
    for db in (sql, memory):
        with db.unit_of_work() as uow:
            uow.store.save_organization(organization, "Partner", "enterprise")
            uow.store.insert_resource(resource, {
                "organization_id": organization, "title": "Desk", "kind": "office_space",
                "needs_served": ["office_space"], "industries": [], "stages": [],
                "district": None, "capacity": 3, "valid_from": None, "valid_until": None,
                "description": "",
            })  # fmt: skip
            first = uow.store.save_returnee(person, MATCHING_PROFILE, T0)
            assert first.matched == () and first.profile.dismissed == frozenset()
            assert first.profile.needs == ("financing", "mentorship")
            match = Match(resource, organization, 0.5, (Reason("need", "need_met", {"n": 1}),))
            uow.store.replace_matches({person: [match]})
            uow.store.dismiss(person, resource)
            uow.store.save_returnee(erased, MATCHING_PROFILE, T0)
            uow.store.erase_returnee(erased)
        with db.unit_of_work() as uow:
            changed = {**MATCHING_PROFILE, "industry": "fintech", "district": None}
            found[db] = uow.store.save_returnee(person, changed, T0 + timedelta(minutes=1))
            later = T0 + timedelta(hours=1)
            assert uow.store.save_returnee(erased, MATCHING_PROFILE, later) is None
    assert found[sql] == found[memory]
    assert found[sql].matched == (resource,)
    assert found[sql].profile.dismissed == frozenset({resource})
    assert (found[sql].profile.industry, found[sql].profile.district) == ("fintech", None)
    assert query(url, "SELECT count(*) AS n FROM returnees WHERE id = %s", (erased,))[0]["n"] == 0
