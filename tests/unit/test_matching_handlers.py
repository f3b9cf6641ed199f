"""Every matching use case in memory: the state each handler leaves (through the memory store)
and the events it publishes, refusals included. Commands are loaded by the entrypoints' own
schemas and events checked by the contract, as the service receives them; time is frozen."""

import ast
import inspect
import re
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from marshmallow import ValidationError

from chassis.access import keep_case_link
from chassis.auth import Caller
from chassis.clock import SHANGHAI, FrozenClock
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.paging import PageQuery
from chassis.uow import MemoryDatabase
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.matching import handlers, imports, schemas
from services.matching.engine import NEED_BITS, MatchPolicy
from services.matching.memory import MemoryStore
from services.matching.messages import MESSAGES
from services.matching.schemas import (
    Decision,
    Feedback,
    IntentionIn,
    IntentionQuery,
    ResourceChange,
    ResourceIn,
    ResourceQuery,
)
from services.matching.seed import ORGANIZATIONS, RESOURCES
from services.matching.store import MAX_LOCKED, MatchingStore, match_id

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
TODAY = date(2026, 11, 28)
POLICY = MatchPolicy(
    weights={"need": 0.4, "industry": 0.2, "stage": 0.15, "district": 0.15, "availability": 0.1},
    top_k=20,
    max_organization_share=1.0,
)
PROFILE = EXAMPLES[("returnee.registered", 1)].data  # biotech, registered, Changning, financing..
ICBC = str(uuid.uuid4())
LINKONG = str(uuid.uuid4())
ADMIN = Caller(str(uuid.uuid4()), "admin")
ICBC_PROVIDER = Caller(str(uuid.uuid4()), "provider", ICBC)
LINKONG_PROVIDER = Caller(str(uuid.uuid4()), "provider", LINKONG)


# ---------------------------------------------------------------- helpers


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def db(clock):
    """The service's state with two organizations known."""
    db = MemoryDatabase("matching", MemoryStore(clock), clock=clock)
    for organization_id, name, kind in ((ICBC, "ICBC Changning", "bank"),
                                        (LINKONG, "Linkong park", "industrial_park")):  # fmt: skip
        db.handle(handlers.remember_organization, organization(organization_id, name, kind))
    return db


def run(db, use_case, *args, **kwargs):
    with db.unit_of_work() as uow:
        return use_case(*args, uow, **kwargs)


def received(type_, data, producer="accounts", time=None, version=1):
    """An event as a subscriber receives it: created by its producer, loaded by the contract."""
    subject = next(
        str(data[k])
        for k in ("returnee_id", "resource_id", "activity_id", "organization_id")
        if data.get(k)
    )
    attrs = {"time": time} if time else {}
    created = CATALOG.create(producer, type_, data, subject=subject, version=version, **attrs)
    return CATALOG.check(created)


def organization(organization_id, name, kind="bank", district="Changning"):
    data = {"organization_id": organization_id, "name": name, "kind": kind, "district": district}
    return received("organization.registered", data)


def register(db, returnee_id=None, time=None, type_="returnee.registered", **changes):
    """A returnee registers (or updates their profile) with accounts; matching takes them in."""
    returnee_id = returnee_id or str(uuid.uuid4())
    data = {**PROFILE, **changes, "returnee_id": returnee_id}
    if type_ == "returnee.updated":
        data["changed_fields"] = sorted(changes) or ["needs"]
    db.handle(handlers.match_returnee, received(type_, data, time=time or T0), policy=POLICY)
    return returnee_id


def resource_body(**changes):
    body = {
        "title": "Guaranteed start-up loan",
        "kind": "financing",
        "organization_id": ICBC,
        "needs_served": ["financing"],
        "industries": [],
        "stages": [],
        "district": None,
        "capacity": 2,
    }
    body.update(changes)
    return body


def publish(db, caller=ADMIN, rematch=True, **changes):
    """A resource published, and (as the service's own event and loop would) reverse matched."""
    row = run(db, handlers.publish_resource, ResourceIn().load(resource_body(**changes)), caller)
    if rematch:
        reverse_match(db, row["id"], "resource.published")
    return row


def reverse_match(db, resource_id, type_):
    event = next(e for e in reversed(db.published(type_)) if e.subject == resource_id)
    woken = []
    queued = handlers.rematch_for_resource(
        CATALOG.check(event), db, lambda: woken.append(True), policy=POLICY
    )
    assert woken == [True]
    drain(db)
    return queued


def drain(db, batch_size=25):
    batches = 0
    while run_batch(db, batch_size):
        batches += 1
    return batches


def run_batch(db, batch_size=25):
    with db.unit_of_work() as uow:
        return handlers.rematch_batch(uow, batch_size, POLICY)


def returnee(returnee_id):
    return Caller(returnee_id, "returnee")


def wire(event):
    """The data as published (ids and dates as text), once the contract has checked it."""
    CATALOG.check(event)
    return event.data


def proposals(db, returnee_id):
    return [wire(e) for e in db.published("matches.proposed") if e.subject == returnee_id]


def matched(db, returnee_id):
    return [
        m["resource_id"]
        for m in run(db, handlers.list_matches, returnee_id, PageQuery().load({}), "en")
    ]


def express(db, returnee_id, resource_id, message="Interested"):
    command = IntentionIn().load({"resource_id": resource_id, "message": message})
    return run(db, handlers.express_intention, command, returnee(returnee_id))


def decide(db, use_case, intention_id, caller=ICBC_PROVIDER, message=None, **kwargs):
    command = Decision().load({} if message is None else {"message": message})
    return run(db, use_case, intention_id, command, caller, **kwargs)


def accept(db, intention_id, caller=ICBC_PROVIDER, message=None):
    return decide(db, handlers.accept_intention, intention_id, caller, message)


def decline(db, intention_id, caller=ICBC_PROVIDER, message=None):
    return decide(db, handlers.decline_intention, intention_id, caller, message, policy=POLICY)


# ---------------------------------------------------------------- the seams


def test_the_memory_store_answers_to_the_sql_stores_methods():
    def public(cls):
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert public(MemoryStore) == public(MatchingStore)


def test_every_handler_has_a_test_here():
    used = set(re.findall(r"handlers\.(\w+)", Path(__file__).read_text()))
    public = {
        name
        for name, f in inspect.getmembers(handlers, inspect.isfunction)
        if not name.startswith("_") and f.__module__ == handlers.__name__
    }
    assert public - used == set()


def test_every_message_raised_is_in_the_catalog():
    """Texts raised by the use cases, and the field errors of the schemas and stated rules; each
    in the catalog, and no catalog entry unused."""
    raisers = ("NotFound", "Conflict", "Forbidden", "Unprocessable")
    raised = set()
    for node in ast.walk(ast.parse(inspect.getsource(handlers))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", "") in raisers
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            raised.add(node.args[0].value)
    for module in (schemas, imports):
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                name = node.targets[0].id
                if name.isupper() and isinstance(node.value.value, str):
                    raised.add(node.value.value)
    assert raised == set(MESSAGES)


# ---------------------------------------------------------------- the resource catalog


def test_publish_resource_stores_it_and_publishes_it(db):
    row = publish(db, ICBC_PROVIDER, rematch=False, valid_until="2027-06-30")
    stored = db.store.resources_by_id[row["id"]]
    assert (stored["organization_id"], stored["taken"], stored["published_at"]) == (ICBC, 0, T0)
    assert row["organization_name"] == "ICBC Changning"
    assert row["capacity_left"] == 2
    [event] = db.published("resource.published")
    assert wire(event) == {
        "resource_id": row["id"],
        "organization_id": ICBC,
        "title": "Guaranteed start-up loan",
        "kind": "financing",
        "needs_served": ["financing"],
        "industries": [],
        "stages": [],
        "district": None,
        "capacity": 2,
        "valid_until": "2027-06-30",
    }


def test_publish_resource_refuses_another_organization_the_past_and_the_unknown(db):
    with pytest.raises(Forbidden):
        publish(db, LINKONG_PROVIDER, rematch=False)
    with pytest.raises(Unprocessable) as refused:
        publish(db, rematch=False, valid_until=(TODAY - timedelta(days=1)).isoformat())
    assert refused.value.fields == {"valid_until": ["Must not be in the past."]}
    publish(db, rematch=False, valid_until=TODAY.isoformat())  # today is not in the past
    with pytest.raises(Unprocessable) as refused:
        publish(db, rematch=False, organization_id=str(uuid.uuid4()))
    assert refused.value.fields == {"organization_id": ["Unknown organization."]}
    assert len(db.published("resource.published")) == 1


def test_list_resources_on_offer_today_filtered_newest_first(db, clock):
    loan = publish(db, rematch=False)
    clock.advance(minutes=1)
    office = publish(db, rematch=False, organization_id=LINKONG, kind="office_space",
                     needs_served=["office_space"], district="Changning",
                     industries=["biotech"])  # fmt: skip
    clock.advance(minutes=1)
    publish(db, rematch=False, title="Next year", valid_from="2027-01-01")

    def listed(**query):
        return [r["id"] for r in run(db, handlers.list_resources, ResourceQuery().load(query))]

    assert listed() == [office["id"], loan["id"]]
    assert len(listed(include_expired="true")) == 3
    assert listed(need="office_space") == [office["id"]]
    assert listed(industry="fintech") == [loan["id"]]  # office is for biotech only
    assert listed(district="changning") == [office["id"], loan["id"]]  # open or the same
    assert listed(district="Xuhui") == [loan["id"]]
    assert listed(organization_id=LINKONG) == [office["id"]]
    assert listed(limit="1", offset="1") == [loan["id"]]


def test_import_resources_row_by_row_once(db):
    rows = [
        {**resource_body(), "capacity": "3"},  # cells as text, as a spreadsheet has them
        {**resource_body(title="Office"), "organization_id": None,
         "organization_name": "Linkong park"},
        {**resource_body(title="Theirs"), "organization_id": LINKONG},
        {**resource_body(title="Nobody's"), "organization_id": str(uuid.uuid4())},
        {**resource_body(title="Past"), "valid_until": (TODAY - timedelta(days=1)).isoformat()},
        {"title": "No organization"},
    ]  # fmt: skip
    answer = run(db, handlers.import_resources, {"rows": rows}, ICBC_PROVIDER)
    assert (answer["created"], answer["existing"], answer["invalid"]) == (1, 0, 5)
    statuses = [(r["row"], r["status"]) for r in answer["results"]]
    assert statuses == [(0, "created"), (1, "invalid"), (2, "invalid"), (3, "invalid"),
                        (4, "invalid"), (5, "invalid")]  # fmt: skip
    fields = {
        r["row"]: {e["field"]: e["message_en"] for e in r["errors"]} for r in answer["results"]
    }
    assert fields[1] == {"organization_name": imports.OWN_ORGANIZATION_ONLY}
    assert fields[2] == {"organization_id": imports.OWN_ORGANIZATION_ONLY}
    assert fields[3] == {"organization_id": "Unknown organization."}
    assert fields[4] == {"valid_until": "Must not be in the past."}
    assert "needs_served" in fields[5]
    [created] = [r["id"] for r in answer["results"] if r["status"] == "created"]
    assert db.store.resources_by_id[created]["capacity"] == 3
    assert [e.subject for e in db.published("resource.published")] == [created]
    # An admin imports anyone's; the same file again creates nothing twice.
    again = run(db, handlers.import_resources, {"rows": rows[:2]}, ADMIN)
    assert [(r["status"], r["id"]) for r in again["results"]][0] == ("exists", created)
    assert again["results"][1]["status"] == "created"
    assert len(db.published("resource.published")) == 2


def test_get_resource_shows_withdrawn_ones_too(db):
    row = publish(db, rematch=False)
    run(db, handlers.withdraw_resource, row["id"], ADMIN)
    assert run(db, handlers.get_resource, row["id"])["withdrawn_at"] == T0
    with pytest.raises(NotFound):
        run(db, handlers.get_resource, str(uuid.uuid4()))


def test_withdraw_resource_by_its_organization_once(db):
    row = publish(db, rematch=False)
    with pytest.raises(Forbidden):
        run(db, handlers.withdraw_resource, row["id"], LINKONG_PROVIDER)
    with pytest.raises(NotFound):
        run(db, handlers.withdraw_resource, str(uuid.uuid4()), ADMIN)
    run(db, handlers.withdraw_resource, row["id"], ICBC_PROVIDER)
    [event] = db.published("resource.withdrawn")
    assert event.data == {"resource_id": row["id"], "organization_id": ICBC}
    with pytest.raises(Conflict):
        run(db, handlers.withdraw_resource, row["id"], ADMIN)
    assert len(db.published("resource.withdrawn")) == 1


def change(db, resource_id, body, caller=ICBC_PROVIDER):
    return run(db, handlers.change_resource, resource_id, ResourceChange().load(body), caller)


def test_change_resource_places_and_validity_by_its_organization_republished(db):
    loan = publish(db, capacity=2)
    li_wei, wang_fang, zhao = register(db), register(db), register(db)
    for returnee_id in (li_wei, wang_fang):
        accept(db, express(db, returnee_id, loan["id"])["intention_id"])
    drain(db)
    assert matched(db, zhao) == []  # full
    with pytest.raises(Forbidden):
        change(db, loan["id"], {"capacity": 5}, LINKONG_PROVIDER)
    with pytest.raises(NotFound):
        change(db, str(uuid.uuid4()), {"capacity": 5})
    past = (TODAY - timedelta(days=1)).isoformat()
    with pytest.raises(Unprocessable) as refused:  # every broken rule at once
        change(db, loan["id"], {"capacity": 1, "valid_until": past})
    assert refused.value.fields == {"capacity": ["Must not be below the places already taken."],
                                    "valid_until": ["Must not be in the past."]}  # fmt: skip
    published = len(db.published("resource.published"))
    assert change(db, loan["id"], {"capacity": 2}) == run(db, handlers.get_resource, loan["id"])
    assert len(db.published("resource.published")) == published  # nothing changed, nothing said

    row = change(db, loan["id"], {"capacity": 3, "valid_until": "2027-03-31"})
    assert (row["capacity"], row["capacity_left"], row["valid_until"]) == (3, 1, date(2027, 3, 31))
    event = db.published("resource.published")[-1]
    assert (event.subject, wire(event)["capacity"], wire(event)["valid_until"]) == (
        loan["id"], 3, "2027-03-31")  # fmt: skip
    reverse_match(db, loan["id"], "resource.published")
    assert matched(db, zhao) == [loan["id"]]  # a place again: proposed to those it fits

    with pytest.raises(Unprocessable) as refused:  # against the stored valid_until
        change(db, loan["id"], {"valid_from": "2027-04-01"})
    assert refused.value.fields == {"valid_until": ["Must not be before valid_from."]}
    assert change(db, loan["id"], {"valid_until": None})["valid_until"] is None
    run(db, handlers.withdraw_resource, loan["id"], ADMIN)
    with pytest.raises(Conflict):
        change(db, loan["id"], {"capacity": 4})


def test_seed_reference_adds_what_is_missing_and_publishes_each_resource_once(clock):
    db = MemoryDatabase("matching", MemoryStore(clock), clock=clock)
    added = run(db, handlers.seed_reference, ORGANIZATIONS, RESOURCES)
    assert added == {"organizations": len(ORGANIZATIONS), "resources": len(RESOURCES)}
    assert sorted(e.subject for e in db.published("resource.published")) == sorted(
        r["id"] for r in RESOURCES
    )
    for event in db.published("resource.published"):
        CATALOG.check(event)
    assert run(db, handlers.seed_reference, ORGANIZATIONS, RESOURCES) == {
        "organizations": 0,
        "resources": 0,
    }
    assert len(db.published("resource.published")) == len(RESOURCES)


# ---------------------------------------------------------------- returnees and their matches


def test_match_returnee_keeps_the_minimum_and_proposes_the_matches(db):
    loan = publish(db)
    elsewhere = publish(db, district="Xuhui")
    li_wei = register(db)
    assert db.store.returnees[li_wei] == {
        "id": li_wei,
        "locale": "zh-CN",
        "industry": "biotech",
        "startup_stage": "registered",
        "needs": ["financing", "office_space", "policy_advice"],
        "district": "Changning",
        "profile_time": T0,
    }
    assert matched(db, li_wei) == [loan["id"]]  # not the Xuhui one
    [proposed] = proposals(db, li_wei)
    assert proposed["added_resource_ids"] == [loan["id"]]
    assert proposed["removed_resource_ids"] == []
    [match] = proposed["matches"]
    assert match["match_id"] == match_id(li_wei, loan["id"])
    assert elsewhere["id"] not in {m["resource_id"] for m in proposed["matches"]}
    # The same set again: nothing to announce.
    register(db, li_wei, T0 + timedelta(minutes=1), type_="returnee.updated")
    assert len(proposals(db, li_wei)) == 1


def test_an_older_profile_is_ignored_and_no_consent_is_a_withdrawal(db):
    loan = publish(db)
    li_wei = register(db)
    register(db, li_wei, T0 - timedelta(hours=1), type_="returnee.updated", industry="fintech")
    assert db.store.returnees[li_wei]["industry"] == "biotech"
    consents = {**PROFILE["consents"], "matching": False}
    register(db, li_wei, T0 + timedelta(hours=1), type_="returnee.updated", consents=consents)
    assert li_wei not in db.store.returnees
    assert db.store.withdrawals[li_wei] == T0 + timedelta(hours=1)
    assert proposals(db, li_wei)[-1]["removed_resource_ids"] == [loan["id"]]
    assert matched(db, li_wei) == []


def test_follow_consent_forgets_on_withdrawal_only(db):
    loan = publish(db)
    li_wei = register(db)

    def consent(purpose, granted, at):
        data = {"returnee_id": li_wei, "purpose": purpose, "granted": granted,
                "changed_at": at.isoformat()}  # fmt: skip
        db.handle(handlers.follow_consent, received("consent.changed", data))

    consent("notifications", False, T0 + timedelta(minutes=1))
    consent("matching", True, T0 + timedelta(minutes=1))
    assert matched(db, li_wei) == [loan["id"]]
    consent("matching", False, T0 + timedelta(minutes=2))
    assert li_wei not in db.store.returnees
    assert proposals(db, li_wei)[-1] == {
        "returnee_id": li_wei,
        "matches": [],
        "added_resource_ids": [],
        "removed_resource_ids": [loan["id"]],
    }
    # A profile older than the withdrawal, delivered after it, stays out.
    register(db, li_wei, T0 + timedelta(minutes=1), type_="returnee.updated")
    assert li_wei not in db.store.returnees
    register(db, li_wei, T0 + timedelta(minutes=3), type_="returnee.updated")
    assert matched(db, li_wei) == [loan["id"]]


def test_give_feedback_marks_or_dismisses_for_good(db):
    loan = publish(db)
    office = publish(db, organization_id=LINKONG, needs_served=["office_space"])
    li_wei = register(db)
    liked = match_id(li_wei, loan["id"])
    row = run(db, handlers.give_feedback, liked, Feedback().load({"interest": "interested"}),
              returnee(li_wei), "zh-CN", policy=POLICY)  # fmt: skip
    assert row["status"] == "interested"
    assert all("factor" in r and "detail" in r for r in row["reasons"])
    assert db.store.matches[(li_wei, loan["id"])]["status"] == "interested"
    with pytest.raises(NotFound):  # another returnee's match
        run(db, handlers.give_feedback, liked, Feedback().load({"interest": "interested"}),
            returnee(str(uuid.uuid4())), "en", policy=POLICY)  # fmt: skip
    disliked = match_id(li_wei, office["id"])
    row = run(db, handlers.give_feedback, disliked,
              Feedback().load({"interest": "not_interested"}), returnee(li_wei), "en",
              policy=POLICY)  # fmt: skip
    assert (row["status"], row["reasons"]) == ("not_interested", [])
    assert matched(db, li_wei) == [loan["id"]]
    assert (li_wei, office["id"]) in db.store.dismissals
    assert proposals(db, li_wei)[-1]["removed_resource_ids"] == [office["id"]]
    register(db, li_wei, T0 + timedelta(minutes=1), type_="returnee.updated")
    assert matched(db, li_wei) == [loan["id"]]  # never proposed again


def test_list_matches_only_those_still_on_offer_with_reasons_in_the_callers_language(db, clock):
    publish(db, valid_until=TODAY.isoformat())
    li_wei = register(db)
    [zh] = run(db, handlers.list_matches, li_wei, PageQuery().load({}), "zh-CN")
    [en] = run(db, handlers.list_matches, li_wei, PageQuery().load({}), "en")
    assert zh["organization_name"] == "ICBC Changning"
    assert [r["factor"] for r in zh["reasons"]] == [r["factor"] for r in en["reasons"]]
    assert zh["reasons"] != en["reasons"]
    clock.advance(days=1)  # expired: hidden at once, although still stored
    assert run(db, handlers.list_matches, li_wei, PageQuery().load({}), "en") == []


def test_erase_returnee_forgets_the_person_and_keeps_accepted_intentions_counted(db):
    loan = publish(db)
    office = publish(db, organization_id=LINKONG, needs_served=["office_space"])
    li_wei = register(db)
    kept = express(db, li_wei, loan["id"])
    accept(db, kept["intention_id"])
    pending = express(db, li_wei, office["id"])
    db.handle(handlers.erase_returnee, received("returnee.erased", {"returnee_id": li_wei}))
    assert li_wei not in db.store.returnees
    assert not [k for k in db.store.matches if k[0] == li_wei]
    assert pending["intention_id"] not in db.store.intentions_by_id
    counted = db.store.intentions_by_id[kept["intention_id"]]
    assert (counted["returnee_id"], counted["message"], counted["status"]) == (
        None,
        None,
        "accepted",
    )
    # Published events naming them are forgotten, the erasure's own way out included.
    subjects = {e.subject for e in db.outbox}
    assert not subjects & {li_wei, kept["intention_id"], pending["intention_id"]}
    register(db, li_wei, T0 + timedelta(days=1), type_="returnee.updated")
    assert li_wei not in db.store.returnees  # a late profile brings nothing back


# ---------------------------------------------------------------- reverse matching


def test_rematch_for_resource_queues_those_it_fits_and_the_loop_proposes_it(db):
    first, second = register(db), register(db, needs=["legal"])
    assert matched(db, first) == []
    row = publish(db, rematch=False)
    event = CATALOG.check(db.published("resource.published")[-1])
    assert handlers.rematch_for_resource(event, db, lambda: None, policy=POLICY) == 1
    assert list(db.store.rematch_queue) == [first]  # not the one with other needs
    assert drain(db) == 1
    assert db.store.rematch_queue == {}
    assert proposals(db, first)[-1]["added_resource_ids"] == [row["id"]]
    assert proposals(db, second) == []
    # Withdrawn: those it was matched to lose it.
    run(db, handlers.withdraw_resource, row["id"], ADMIN)
    assert reverse_match(db, row["id"], "resource.withdrawn") == 1
    assert proposals(db, first)[-1]["removed_resource_ids"] == [row["id"]]
    assert matched(db, first) == []


def test_reverse_matching_reads_the_returnees_as_stored_now(db):
    """The returnees' columns follow every profile stored, updated, forgotten and erased, as
    the store's held ones do: a resource fits whoever is stored with a fitting profile now."""
    stays, moves, withdraws, erased = (register(db) for _ in range(4))
    register(db, moves, T0 + timedelta(minutes=1), "returnee.updated", needs=["legal"])
    data = {"returnee_id": withdraws, "purpose": "matching", "granted": False,
            "changed_at": (T0 + timedelta(minutes=2)).isoformat()}  # fmt: skip
    db.handle(handlers.follow_consent, received("consent.changed", data))
    db.handle(handlers.erase_returnee, received("returnee.erased", {"returnee_id": erased}))
    comes_back = register(db)
    with db.unit_of_work() as uow:
        table = uow.store.returnee_table()
    assert table.ids == sorted([stays, moves, comes_back])
    assert int(table.needs[table.position[moves]]) == NEED_BITS["legal"]
    publish(db, rematch=False)
    event = CATALOG.check(db.published("resource.published")[-1])
    assert handlers.rematch_for_resource(event, db, lambda: None, policy=POLICY) == 2
    assert sorted(db.store.rematch_queue) == sorted([stays, comes_back])


def test_rematch_batch_takes_a_bounded_batch_oldest_first(db, clock):
    returnees = sorted(register(db) for _ in range(5))
    publish(db, rematch=False)
    with db.unit_of_work() as uow:
        uow.store.queue_rematch(returnees[3:])
    clock.advance(seconds=1)
    with db.unit_of_work() as uow:
        uow.store.queue_rematch(returnees[:3])
    assert run_batch(db, batch_size=2)
    assert sorted(db.store.rematch_queue) == returnees[:3]  # the older two went first
    assert drain(db, batch_size=2) == 2
    assert not run_batch(db)
    assert sorted(e.subject for e in db.published("matches.proposed")) == returnees
    with pytest.raises(ValueError), db.unit_of_work() as uow:
        uow.store.lock_matches([str(uuid.uuid4()) for _ in range(MAX_LOCKED + 1)])


# ---------------------------------------------------------------- cooperation intentions


def test_express_intention_on_a_matched_resource_once(db):
    loan = publish(db)
    unmatched = publish(db, needs_served=["legal"])
    li_wei = register(db)
    row = express(db, li_wei, loan["id"], "We need a loan")
    assert (row["status"], row["resource_title"], row["activity_id"]) == (
        "expressed",
        "Guaranteed start-up loan",
        None,
    )
    assert db.store.matches[(li_wei, loan["id"])]["status"] == "interested"
    [event] = db.published("intention.expressed")
    assert (event.version, wire(event)) == (
        1,
        {
            "intention_id": row["intention_id"],
            "returnee_id": li_wei,
            "resource_id": loan["id"],
            "organization_id": ICBC,
            "status": "expressed",
            "message": "We need a loan",
        },
    )
    with pytest.raises(Conflict, match="already"):
        express(db, li_wei, loan["id"])
    with pytest.raises(Conflict, match="only in resources matched to you"):
        express(db, li_wei, unmatched["id"])
    with pytest.raises(NotFound):
        express(db, li_wei, str(uuid.uuid4()))
    run(db, handlers.withdraw_resource, unmatched["id"], ADMIN)
    with pytest.raises(Conflict, match="no longer on offer"):
        express(db, li_wei, unmatched["id"])
    assert len(db.published("intention.expressed")) == 1


def test_an_intention_met_at_an_activity_needs_attendance_and_the_organization_there(db):
    li_wei = register(db)
    activity = EXAMPLES[("activity.published", 1)].data
    activity_id = activity["activity_id"]
    db.handle(
        handlers.remember_activity,
        received("activity.published", {**activity, "organizer_ids": [LINKONG]}, "activities"),
    )

    def attend(returnee_id=None, organization_id=None):
        data = {**EXAMPLES[("attendance.recorded", 1)].data, "registration_id": str(uuid.uuid4()),
                "returnee_id": returnee_id, "organization_id": organization_id,
                "registrant_role": "returnee" if returnee_id else "provider",
                "staff_id": None if returnee_id else str(uuid.uuid4())}  # fmt: skip
        db.handle(handlers.record_attendance, received("attendance.recorded", data, "activities"))

    def toward(organization_id):
        command = IntentionIn().load(
            {"organization_id": organization_id, "activity_id": activity_id, "message": "Hi"}
        )
        return run(db, handlers.express_intention, command, returnee(li_wei))

    with pytest.raises(Conflict, match="only after attending"):
        toward(LINKONG)
    attend(returnee_id=li_wei)
    assert db.store.attendances == {(activity_id, li_wei)}
    with pytest.raises(Conflict, match="neither organized nor attended"):
        toward(ICBC)
    attend(organization_id=ICBC)  # its representative came
    assert db.store.activity_organizations == {(activity_id, LINKONG), (activity_id, ICBC)}
    with pytest.raises(Unprocessable) as refused:
        toward(str(uuid.uuid4()))
    assert refused.value.fields == {"organization_id": ["Unknown organization."]}
    row = toward(ICBC)
    assert (row["resource_id"], row["activity_id"]) == (None, activity_id)
    [event] = db.published("intention.expressed")
    assert event.version == 2
    assert wire(event)["activity_id"] == activity_id
    with pytest.raises(Conflict, match="at this activity already"):
        toward(ICBC)
    # Accepting one takes no place; declining dismisses nothing.
    decided = accept(db, row["intention_id"])
    assert decided["status"] == "accepted"
    assert db.published("intention.accepted")[0].version == 2
    other = toward(LINKONG)
    decline(db, other["intention_id"], LINKONG_PROVIDER)
    assert db.store.dismissals == set()


def test_an_advisor_records_an_intention_met_at_an_activity_for_the_returnee_who_came(db):
    li_wei, wang_fang = register(db), register(db)
    activity = EXAMPLES[("activity.published", 1)].data
    activity_id = activity["activity_id"]
    db.handle(
        handlers.remember_activity,
        received("activity.published", {**activity, "organizer_ids": [LINKONG]}, "activities"),
    )
    data = {**EXAMPLES[("attendance.recorded", 1)].data, "registration_id": str(uuid.uuid4()),
            "returnee_id": li_wei, "organization_id": None, "registrant_role": "returnee",
            "staff_id": None}  # fmt: skip
    db.handle(handlers.record_attendance, received("attendance.recorded", data, "activities"))
    advisor = Caller(str(uuid.uuid4()), "advisor")

    def recorded(caller=advisor, **body):
        command = IntentionIn().load({"organization_id": LINKONG, "activity_id": activity_id,
                                      "message": "Met at the door", **body})  # fmt: skip
        return run(db, handlers.express_intention, command, caller)

    with pytest.raises(Unprocessable) as refused:
        recorded()
    assert refused.value.fields == {"returnee_id": ["Name the returnee who attended."]}
    with pytest.raises(Conflict, match="only after attending"):
        recorded(returnee_id=wang_fang)  # she did not come
    with pytest.raises(Forbidden):  # a returnee records none for another
        recorded(returnee(wang_fang), returnee_id=li_wei)
    row = recorded(returnee_id=li_wei)
    assert (row["returnee_id"], row["organization_id"], row["activity_id"]) == (
        li_wei, LINKONG, activity_id)  # fmt: skip
    [event] = db.published("intention.expressed")
    assert (event.version, wire(event)["returnee_id"]) == (2, li_wei)
    with pytest.raises(Conflict, match="at this activity already"):
        recorded(returnee(li_wei))  # the returnee's own is the same one
    with pytest.raises(ValidationError) as shape:
        IntentionIn().load({"resource_id": str(uuid.uuid4()), "returnee_id": li_wei})
    assert shape.value.messages == {"returnee_id": ["Not with resource_id."]}


def test_accept_intention_takes_a_place_and_the_last_one_requeues_the_matched(db):
    loan = publish(db, capacity=1)
    li_wei, wang_fang = register(db), register(db)
    first = express(db, li_wei, loan["id"])
    second = express(db, wang_fang, loan["id"])
    with pytest.raises(Forbidden):
        accept(db, first["intention_id"], LINKONG_PROVIDER)
    with pytest.raises(NotFound):
        accept(db, str(uuid.uuid4()))
    row = accept(db, first["intention_id"], message="Welcome")
    assert (row["status"], row["response"], row["decided_at"]) == ("accepted", "Welcome", T0)
    assert db.store.resources_by_id[loan["id"]]["taken"] == 1
    assert sorted(db.store.rematch_queue) == sorted([li_wei, wang_fang])  # full: leaves them
    [event] = db.published("intention.accepted")
    assert wire(event)["message"] == "Welcome"
    with pytest.raises(Conflict, match="decided already"):
        accept(db, first["intention_id"])
    with pytest.raises(Conflict, match="no place left"):
        accept(db, second["intention_id"])
    assert db.store.intentions_by_id[second["intention_id"]]["status"] == "expressed"
    drain(db)
    assert matched(db, wang_fang) == []
    assert proposals(db, wang_fang)[-1]["removed_resource_ids"] == [loan["id"]]


def test_decline_intention_is_never_proposed_again(db):
    loan = publish(db)
    li_wei = register(db)
    row = express(db, li_wei, loan["id"])
    declined = decline(db, row["intention_id"], message="Not this year")
    assert (declined["status"], declined["response"]) == ("declined", "Not this year")
    assert (li_wei, loan["id"]) in db.store.dismissals
    assert matched(db, li_wei) == []
    assert proposals(db, li_wei)[-1]["removed_resource_ids"] == [loan["id"]]
    [event] = db.published("intention.declined")
    assert (event.version, wire(event)["status"]) == (1, "declined")
    with pytest.raises(Forbidden):
        decline(db, row["intention_id"], LINKONG_PROVIDER)


def test_list_intentions_a_returnees_own_a_providers_organizations_an_admins_all(db, clock):
    loan = publish(db)
    office = publish(db, organization_id=LINKONG, needs_served=["office_space"])
    li_wei, wang_fang = register(db), register(db)
    mine = express(db, li_wei, loan["id"])
    clock.advance(minutes=1)
    other = express(db, wang_fang, office["id"])
    clock.advance(minutes=1)
    theirs = express(db, wang_fang, loan["id"])
    accept(db, theirs["intention_id"])

    def listed(caller, **query):
        found = run(db, handlers.list_intentions, IntentionQuery().load(query), caller)
        return [i["intention_id"] for i in found]

    assert listed(returnee(li_wei)) == [mine["intention_id"]]
    assert listed(ICBC_PROVIDER) == [theirs["intention_id"], mine["intention_id"]]
    assert listed(ICBC_PROVIDER, status="accepted") == [theirs["intention_id"]]
    everyone = [theirs["intention_id"], other["intention_id"], mine["intention_id"]]
    assert listed(ADMIN) == everyone
    assert listed(Caller(str(uuid.uuid4()), "advisor")) == everyone  # an export
    with pytest.raises(Forbidden):
        listed(Caller(str(uuid.uuid4()), "provider"))


def test_intention_statistics_per_organization_most_accepted_first(db):
    loan = publish(db)
    office = publish(db, organization_id=LINKONG, needs_served=["office_space"])
    li_wei, wang_fang = register(db), register(db)
    accept(db, express(db, li_wei, office["id"])["intention_id"], LINKONG_PROVIDER)
    express(db, wang_fang, office["id"])
    decline(db, express(db, li_wei, loan["id"])["intention_id"])
    assert run(db, handlers.intention_statistics) == {
        "accepted": 1,
        "organizations": [
            {"organization_id": LINKONG, "organization_name": "Linkong park",
             "kind": "industrial_park", "accepted": 1, "expressed": 1, "declined": 0},
            {"organization_id": ICBC, "organization_name": "ICBC Changning", "kind": "bank",
             "accepted": 0, "expressed": 0, "declined": 1},
        ],
    }  # fmt: skip


def test_remember_organization_updates_the_name(db):
    assert db.store.organizations[ICBC]["name"] == "ICBC Changning"
    db.handle(handlers.remember_organization, organization(ICBC, "ICBC Shanghai Changning"))
    assert db.store.organizations[ICBC] == {
        "id": ICBC,
        "name": "ICBC Shanghai Changning",
        "kind": "bank",
        "district": "Changning",
    }


# ---------------------------------------------------------------- staff reads (access log)


def _staff(role="advisor", case_ref=None, reason=None, reader_id=None) -> dict:
    return {"reader_id": reader_id or str(uuid.uuid4()), "reader_role": role,
            "case_ref": case_ref, "reason": reason}  # fmt: skip


def _reads(db) -> list[tuple]:
    return [(str(e.data["returnee_id"]), e.data["reader_role"], e.data["what"],
             e.data["case_ref"], e.data["reason"])
            for e in db.published("matching.personal_data_read")]  # fmt: skip


def test_an_advisor_reads_matches_through_a_case_consulting_or_activities_opened(db):
    publish(db)
    li_wei, wang_fang = register(db), register(db)
    cases = {}
    for returnee_id in (li_wei, wang_fang):
        consultation = str(uuid.uuid4())
        data = {**EXAMPLES[("consultation.requested", 1)].data,
                "consultation_id": consultation, "returnee_id": returnee_id}  # fmt: skip
        db.handle(keep_case_link, received("consultation.requested", data, producer="consulting"))
        cases[returnee_id] = f"consultation:{consultation}"

    def matches_of_li_wei(access):
        return run(db, handlers.list_matches, li_wei, PageQuery().load({}), "en", access=access)

    for access, code in ((_staff(), "case_or_reason_required"),
                         (_staff(case_ref=cases[wang_fang]), "case_not_linked")):  # fmt: skip
        with pytest.raises(Forbidden) as refused:
            matches_of_li_wei(access)
        assert refused.value.code == code
    db.outbox.clear()
    assert matches_of_li_wei(_staff(case_ref=cases[li_wei]))
    matches_of_li_wei(_staff(reason="A park asked"))
    matches_of_li_wei(_staff("returnee", reader_id=li_wei))
    assert _reads(db) == [(li_wei, "advisor", "matches", cases[li_wei], None),
                          (li_wei, "advisor", "matches", None, "A park asked")]  # fmt: skip
    db.handle(handlers.erase_returnee, received("returnee.erased", {"returnee_id": li_wei}))
    assert list(db.store.case_links.values()) == [wang_fang]


def test_staff_reads_of_intentions_are_recorded_per_returnee(db):
    loan = publish(db)
    li_wei = register(db)
    express(db, li_wei, loan["id"])
    db.outbox.clear()
    provider = _staff("provider", reader_id=ICBC_PROVIDER.id)
    run(db, handlers.list_intentions, IntentionQuery().load({}), ICBC_PROVIDER, seen=provider)
    me = _staff("returnee", reader_id=li_wei)
    run(db, handlers.list_intentions, IntentionQuery().load({}), returnee(li_wei), seen=me)
    assert _reads(db) == [(li_wei, "provider", "intentions", None, None)]
