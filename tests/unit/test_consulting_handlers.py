"""Every consulting use case in memory: the state each handler leaves (through the memory store)
and the events it publishes, refusals included. Commands are loaded by the entrypoints' own
schemas and events checked by the contract, as the service receives them; time is frozen."""

import ast
import inspect
import re
import string
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from marshmallow import ValidationError

from chassis.auth import Caller
from chassis.clock import SHANGHAI, FrozenClock
from chassis.errors import Conflict, HttpError, NotFound, Unprocessable
from chassis.uow import MemoryDatabase
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.consulting import eligibility, handlers
from services.consulting import schemas as consulting_schemas
from services.consulting.catalog import load_policies, policy_id
from services.consulting.memory import MemoryStore
from services.consulting.messages import MESSAGES
from services.consulting.schemas import (
    AppointmentIn,
    AssignIn,
    CannedReplyIn,
    CannedReplyQuery,
    ConsultationIn,
    ConsultationQuery,
    EligibilityQuery,
    MessageIn,
    PolicyIn,
    PolicyQuery,
    RatingIn,
    SlotIn,
)
from services.consulting.store import ConsultingStore

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)  # a Saturday
MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)  # the station opens: deadlines run
CATALOG_POLICIES = load_policies()
PROFILE = EXAMPLES[("returnee.registered", 1)].data
# The YAML case "Li Wei ... end of 2026" (services/consulting/cases/eligibility.yaml), as the
# integration test has it.
LI_WEI_ELIGIBLE = {
    "sh-returnee-definition": None,
    "national-startup-support": "key",
    "changning-overseas-talent-2026": "b",
    "guaranteed-startup-loan-2024": "company",
    "changning-free-office-space": None,
    "high-tech-enterprise-tax": None,
}
AI_VOUCHER = {
    "code": "changning-ai-compute-voucher-2026",
    "title": {"zh-CN": "长宁区人工智能算力券", "en": "Changning AI compute voucher"},
    "summary": {"zh-CN": "人工智能企业算力补贴。", "en": "Compute subsidy for AI firms."},
    "citation": {"title": "长宁区人工智能产业扶持办法", "url": "https://www.shcn.gov.cn/"},
    "effective_from": "2026-01-01",
    "criteria": [
        {
            "id": "ai_industry",
            "label": {"zh-CN": "人工智能行业", "en": "AI industry"},
            "field": "industry",
            "op": "eq",
            "value": "ai",
        },
        {
            "id": "in_changning",
            "label": {"zh-CN": "注册在长宁", "en": "In Changning"},
            "field": "company.registered_district",
            "op": "in",
            "value": ["Changning"],
        },
    ],
}
ADMIN = Caller(str(uuid.uuid4()), "admin")


# ---------------------------------------------------------------- helpers


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def db(clock):
    """The service's state with the catalog seeded (its events already relayed)."""
    db = MemoryDatabase("consulting", MemoryStore(clock), clock=clock)
    run(db, handlers.seed_catalog, CATALOG_POLICIES)
    db.outbox.clear()
    return db


def run(db, use_case, *args):
    with db.unit_of_work() as uow:
        return use_case(*args, uow)


def reassess(db, event, batch_size=None) -> int:
    """`policy.published` as the service takes it: the re-assessment recorded, then the loop's
    batches, each its own unit of work. Returns how many returnees were told."""
    told = len(db.published("eligibility.assessed"))
    rung = []
    handlers.reassess_for_policy(event, db, wake_reassessment=lambda: rung.append(True))
    assert rung  # the loop is woken once the re-assessment is recorded
    size = {"batch_size": batch_size} if batch_size else {}
    while True:
        with db.unit_of_work() as uow:
            if not handlers.reassess_batch(uow, **size):
                break
    assert db.store.reassessments == {}
    return len(db.published("eligibility.assessed")) - told


def received(type_, data, producer="accounts", time=None):
    """An event as a subscriber receives it: created by its producer, loaded by the contract."""
    subject = data.get("returnee_id") or data.get("staff_id") or data.get("policy_id")
    attrs = {"time": time} if time else {}
    return CATALOG.check(CATALOG.create(producer, type_, data, subject=str(subject), **attrs))


def registered(returnee_id=None, time=None, **changes):
    data = {**PROFILE, **changes, "returnee_id": returnee_id or str(uuid.uuid4())}
    return received("returnee.registered", data, time=time)


def register(db, returnee_id=None, time=None, **changes):
    event = registered(returnee_id, time, **changes)
    db.handle(handlers.assess_returnee, event)
    return str(event.data["returnee_id"])


def returnee(returnee_id=None):
    return Caller(returnee_id or str(uuid.uuid4()), "returnee")


def advisor(db, name="Zhang Min"):
    staff_id = str(uuid.uuid4())
    data = {"staff_id": staff_id, "email": "a@station.example.cn", "name": name, "role": "advisor"}
    db.handle(handlers.register_advisor, received("staff.registered", data))
    return Caller(staff_id, "advisor")


def ask(db, caller, topic="funding", **body):
    command = ConsultationIn().load({"topic": topic, "question": "Grants?", **body})
    return run(db, handlers.request_consultation, command, caller)


def write(db, consultation_id, caller, text="Hello", asks=False):
    command = MessageIn().load({"body": text, "asks_returnee": asks})
    return run(db, handlers.post_message, consultation_id, command, caller)


def types(db):
    return [e.type for e in db.published()]


def slot(db, caller, starts="2026-12-03T14:00:00+08:00", capacity=2):
    start = datetime.fromisoformat(starts)
    command = SlotIn().load(
        {
            "starts_at": starts,
            "ends_at": (start + timedelta(minutes=30)).isoformat(),
            "location": "Changning Returnee Service Station, room 201",
            "capacity": capacity,
        }
    )
    return run(db, handlers.publish_slot, command, caller)


def book(db, caller, slot_id):
    command = AppointmentIn().load({"slot_id": slot_id})
    return run(db, handlers.book_appointment, command, caller, "en")


# ---------------------------------------------------------------- the seams


def test_the_memory_store_answers_to_the_sql_stores_methods():
    def public(cls):
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert public(MemoryStore) == public(ConsultingStore)


def test_every_handler_has_a_test_here():
    # Here or in the applications' file (applications, versions, missing facts, preview).
    here = Path(__file__)
    text = here.read_text() + here.with_name("test_consulting_applications.py").read_text()
    used = set(re.findall(r"handlers\.(\w+)", text))
    public = {
        name
        for name, f in inspect.getmembers(handlers, inspect.isfunction)
        if not name.startswith("_") and f.__module__ == handlers.__name__
    }
    assert public - used == set()


def test_every_message_raised_is_in_the_catalog_with_its_placeholders():
    def placeholders(text):
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    raised = set()
    for node in ast.walk(ast.parse(inspect.getsource(handlers))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") in
                ("NotFound", "Conflict", "Forbidden", "HttpError", "Unprocessable")):  # fmt: skip
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        texts = [a.value for a in node.args[:1] if isinstance(a, ast.Constant)]
        if isinstance(keywords.get("fields"), ast.Dict):  # {"field": ["Message."]}
            texts += [e.value for v in keywords["fields"].values for e in v.elts]
        for text in texts:
            assert text in MESSAGES, text
            params = set(keywords) - {"fields", "code", "headers"}
            assert placeholders(text) | placeholders(MESSAGES[text]) <= params, text
            raised.add(text)
    # and none is left over: the rest are the schemas' (a criterion's shape, rules beyond fields)
    schemas = inspect.getsource(consulting_schemas) + inspect.getsource(eligibility)
    assert {text for text in set(MESSAGES) - raised if repr(text)[1:-1] not in schemas} == set()


# ---------------------------------------------------------------- policies


def test_seed_catalog_writes_newer_versions_only(clock):
    db = MemoryDatabase("consulting", MemoryStore(clock), clock=clock)
    assert len(run(db, handlers.seed_catalog, CATALOG_POLICIES)) == len(CATALOG_POLICIES) == 9
    assert len(db.published("policy.published")) == 9
    assert run(db, handlers.seed_catalog, CATALOG_POLICIES) == []  # idempotent
    changed = {**CATALOG_POLICIES[0], "version": CATALOG_POLICIES[0]["version"] + 1}
    assert run(db, handlers.seed_catalog, [changed]) == [changed["code"]]
    assert db.store.policy(changed["id"])["version"] == changed["version"]
    assert len(db.published("policy.published")) == 10


def test_list_policies_all_or_in_effect_today(db):
    old = PolicyIn().load(
        {**AI_VOUCHER, "code": "old-voucher", "effective_from": "2020-01-01",
         "effective_to": "2021-12-31"}
    )  # fmt: skip
    run(db, handlers.publish_policy, old)
    listed = run(db, handlers.list_policies, PolicyQuery().load({}))
    assert [p["code"] for p in listed] == sorted(p["code"] for p in listed)
    assert "old-voucher" in {p["code"] for p in listed} and len(listed) == 10
    in_effect = run(db, handlers.list_policies, PolicyQuery().load({"in_effect": "true"}))
    assert "old-voucher" not in {p["code"] for p in in_effect}
    assert all(p["effective_from"] <= T0.date() for p in in_effect)


def test_get_policy(db):
    found = run(db, handlers.get_policy, policy_id("pujiang-talent"))
    assert found["code"] == "pujiang-talent" and found["tiers"]
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFound, match="No such policy"):
            run(db, handlers.get_policy, unknown)


def test_publish_policy_stores_and_announces_it_once(db):
    created = run(db, handlers.publish_policy, PolicyIn().load(AI_VOUCHER))
    assert created["id"] == policy_id(AI_VOUCHER["code"]) and created["version"] == 1
    [event] = db.published("policy.published")
    assert event.subject == created["id"] and event.data["code"] == AI_VOUCHER["code"]

    with pytest.raises(Conflict, match="exists already"):
        run(db, handlers.publish_policy, PolicyIn().load(AI_VOUCHER))
    bad = {**AI_VOUCHER, "code": "bad-voucher"}
    bad["criteria"] = [{**AI_VOUCHER["criteria"][0], "op": "in", "value": "ai"}]  # not a list
    with pytest.raises(ValidationError) as shape:  # the document's oneOf: the schema refuses it
        PolicyIn().load(bad)
    assert shape.value.messages == {"criteria": {0: {"value": [eligibility.WRONG_VALUE]}}}
    bad["criteria"] = [AI_VOUCHER["criteria"][0], AI_VOUCHER["criteria"][0]]  # one id twice
    with pytest.raises(Unprocessable) as refused:  # a rule the operation states
        run(db, handlers.publish_policy, PolicyIn().load(bad))
    assert refused.value.status == 422 and refused.value.code == "invalid"
    assert refused.value.fields == {"criteria[1]": eligibility.DUPLICATE_ID}
    assert run(db, handlers.list_policies, PolicyQuery().load({}))[-1]["code"] != "bad-voucher"
    assert db.store.policy(policy_id("bad-voucher")) is None
    assert len(db.published()) == 1


# ---------------------------------------------------------------- eligibility


def test_assess_returnee_keeps_only_facts_and_publishes_the_assessment(db):
    profile = registered()
    db.handle(handlers.assess_returnee, profile)
    returnee_id = str(profile.data["returnee_id"])
    [event] = db.published("eligibility.assessed")
    assert event.subject == returnee_id
    assert {e["code"]: e["tier"] for e in event.data["eligible"]} == LI_WEI_ELIGIBLE
    assert [e["code"] for e in event.data["eligible"]] == sorted(LI_WEI_ELIGIBLE)
    assert sorted(event.data["newly_eligible"]) == sorted(LI_WEI_ELIGIBLE)
    assert event.data["no_longer_eligible"] == []
    stored = db.store.returnees[returnee_id]
    assert not {"name", "email", "phone", "consents"} & set(stored["facts"])
    assert "institution" not in stored["facts"]["education"][0]
    assert stored["assessed_at"] == T0

    # The same event again: the inbox absorbs it.
    assert db.handle(handlers.assess_returnee, profile) is None
    assert len(db.published("eligibility.assessed")) == 1

    # An update out of the Changning district loses the district's programmes.
    moved = {**PROFILE, "returnee_id": returnee_id, "changed_fields": ["company"],
             "company": {**PROFILE["company"], "registered_district": "Putuo"}}  # fmt: skip
    db.handle(handlers.assess_returnee, received("returnee.updated", moved))
    update = db.published("eligibility.assessed")[-1]
    assert update.data["newly_eligible"] == []
    assert "changning-free-office-space" in update.data["no_longer_eligible"]
    assert db.store.facts(returnee_id)["company"]["registered_district"] == "Putuo"


def test_a_stale_profile_is_ignored(db):
    returnee_id = register(db, industry="fintech")
    register(db, returnee_id, time=T0 - timedelta(days=1), industry="ai")
    assert db.store.facts(returnee_id)["industry"] == "fintech"
    assert len(db.published("eligibility.assessed")) == 1


def test_assessment_reads_the_day_in_shanghai(clock, db):
    # 00:30 on 1 January 2026 in Shanghai is still 31 December 2025 in UTC: a programme
    # starting on 1 January is in effect already.
    clock.at = datetime(2025, 12, 31, 16, 30, tzinfo=UTC)
    run(db, handlers.publish_policy, PolicyIn().load(AI_VOUCHER))
    register(db, industry="ai")
    [event] = db.published("eligibility.assessed")
    assert AI_VOUCHER["code"] in event.data["newly_eligible"]


def test_erase_returnee_forgets_everything_and_frees_seats(db):
    returnee_id = register(db)
    me = returnee(returnee_id)
    ask(db, me)
    staff = advisor(db)
    offered = slot(db, staff, capacity=1)
    book(db, me, offered["id"])
    assert db.store.slot(offered["id"])["booked"] == 1
    db.handle(handlers.erase_returnee, received("returnee.erased", {"returnee_id": returnee_id}))
    assert returnee_id not in db.store.returnees
    assert db.store.eligible_policies(returnee_id) == {}
    assert db.store.consultations(returnee_id=returnee_id) == []
    assert db.store.appointments_of(returnee_id) == []
    assert db.store.slot(offered["id"])["booked"] == 0
    # The published events about them are forgotten, those naming them in their body included.
    assert [e.type for e in db.outbox if returnee_id in e.to_json().decode()] == []


def test_after_the_erasure_nothing_about_the_person_comes_back(db):
    returnee_id = register(db)
    me = returnee(returnee_id)
    db.handle(handlers.erase_returnee, received("returnee.erased", {"returnee_id": returnee_id}))
    # A profile event replayed or retried after the erasure stores nothing, assesses nothing.
    register(db, returnee_id, time=T0 + timedelta(days=1))
    assert returnee_id not in db.store.returnees
    assert [e for e in db.published("eligibility.assessed") if e.subject == returnee_id] == []
    # A token still valid for the seconds its revocation takes writes nothing.
    for attempt in (lambda: ask(db, me), lambda: book(db, me, slot(db, advisor(db))["id"])):
        with pytest.raises(HttpError) as refused:
            attempt()
        assert (refused.value.status, refused.value.code) == (403, "erased")
    assert db.store.consultations(returnee_id=returnee_id) == []


def test_reassess_for_policy_tells_only_those_it_changes(db):
    ai = register(db, industry="ai")
    others = [register(db, industry="biotech") for _ in range(4)]
    db.outbox.clear()
    run(db, handlers.publish_policy, PolicyIn().load(AI_VOUCHER))
    [published] = db.published("policy.published")
    changed = reassess(db, published, batch_size=2)  # 3 batches
    assert changed == 1
    [event] = db.published("eligibility.assessed")
    assert event.subject == ai and event.data["newly_eligible"] == [AI_VOUCHER["code"]]
    codes = [e["code"] for e in event.data["eligible"]]
    assert AI_VOUCHER["code"] in codes and codes == sorted(codes)
    assert AI_VOUCHER["code"] not in {c for c, *_ in db.store.eligible_policies(others[0]).values()}

    # The policy tightened: the one eligible is told they are no longer.
    stricter = dict(AI_VOUCHER)
    stricter["criteria"] = [*AI_VOUCHER["criteria"], {**AI_VOUCHER["criteria"][0],
                            "id": "fintech", "value": "fintech"}]  # fmt: skip
    policy = {**PolicyIn().load(stricter), "id": policy_id(AI_VOUCHER["code"]), "version": 2}
    run(db, handlers.seed_catalog, [policy])
    assert reassess(db, db.published("policy.published")[-1]) == 1
    gone = db.published("eligibility.assessed")[-1]
    assert gone.subject == ai and gone.data["no_longer_eligible"] == [AI_VOUCHER["code"]]

    unknown = received(
        "policy.published", {**published.data, "policy_id": str(uuid.uuid4())}, "consulting"
    )
    with pytest.raises(LookupError):
        reassess(db, unknown)


def test_eligibility_explains_every_policy_in_the_callers_language(db):
    returnee_id = register(db)
    zh = run(db, handlers.eligibility, returnee_id, EligibilityQuery().load({}), "zh-CN")
    assert len(zh) == 9
    startup = next(p for p in zh if p["code"] == "national-startup-support")
    assert startup["eligible"] is True and startup["tier"] == "key"
    assert startup["title"] == "留学人员回国创业启动支持计划"
    later = EligibilityQuery().load({"as_of": "2031-01-01"})
    en = run(db, handlers.eligibility, returnee_id, later, "en")
    assert next(p for p in en if p["code"] == "national-startup-support")["eligible"] is False
    for unknown in (str(uuid.uuid4()), "nobody"):
        with pytest.raises(NotFound, match="No eligibility facts"):
            run(db, handlers.eligibility, unknown, EligibilityQuery().load({}), "en")


# ---------------------------------------------------------------- advisors


def test_register_advisor_keeps_advisors_only(db):
    staff = advisor(db)
    assert db.store.advisor_exists(staff.id)
    provider = EXAMPLES[("staff.registered", 1)].data
    db.handle(handlers.register_advisor, received("staff.registered", provider))
    assert not db.store.advisor_exists(provider["staff_id"])
    assert list(db.store.advisors) == [staff.id]


# ---------------------------------------------------------------- consultations


def test_request_consultation_with_deadlines_and_round_robin(db):
    me = returnee()
    lonely = ask(db, me)
    assert lonely["status"] == "new" and lonely["advisor_id"] is None
    # Asked on Saturday: the clock starts on Monday at 09:00, eight working hours to go.
    assert lonely["first_response_due"] == datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI)
    assert lonely["messages"] == [] and lonely["sla_paused"] is False
    assert types(db) == ["consultation.requested"]

    first, second = sorted([advisor(db, "A").id, advisor(db, "B").id])
    startup = policy_id("national-startup-support")
    a = ask(db, me, policy_id=startup)
    b = ask(db, me, topic="hukou")
    assert (a["advisor_id"], b["advisor_id"]) == (first, second)
    assert a["policy_id"] == startup and a["question"] == "Grants?"
    requested = db.published("consultation.requested")[1]
    assert requested.data["policy_id"] == startup and "question" not in requested.data
    assert types(db)[1:] == ["consultation.requested", "consultation.assigned"] * 2
    assert db.store.advisors[first]["last_assigned_at"] == T0

    with pytest.raises(HttpError) as refused:
        ask(db, me, policy_id=str(uuid.uuid4()))
    assert refused.value.fields == {"policy_id": ["No such policy."]}
    assert len(db.store.consultations()) == 3 and len(types(db)) == 5


def test_list_consultations_a_returnees_own_staff_everyones(db):
    me, other = returnee(), returnee()
    mine = ask(db, me)
    ask(db, other)
    query = ConsultationQuery().load({"returnee_id": other.id})
    assert [c["id"] for c in run(db, handlers.list_consultations, query, me)] == [mine["id"]]
    everyone = run(db, handlers.list_consultations, ConsultationQuery().load({}), ADMIN)
    assert len(everyone) == 2 and "messages" not in everyone[0]
    theirs = run(db, handlers.list_consultations, query, ADMIN)
    assert [c["returnee_id"] for c in theirs] == [other.id]
    closed = ConsultationQuery().load({"status": "closed"})
    assert run(db, handlers.list_consultations, closed, ADMIN) == []


def test_get_consultation_for_its_returnee_and_staff_only(db):
    me = returnee()
    cid = ask(db, me)["id"]
    write(db, cid, me, "More details")
    seen = run(db, handlers.get_consultation, cid, me)
    assert [m["body"] for m in seen["messages"]] == ["More details"]
    assert run(db, handlers.get_consultation, cid, ADMIN)["id"] == cid
    for stranger in (returnee(), Caller(str(uuid.uuid4()), "provider")):
        with pytest.raises(NotFound, match="No such consultation"):
            run(db, handlers.get_consultation, cid, stranger)
    with pytest.raises(NotFound):
        run(db, handlers.get_consultation, "nope", ADMIN)


def test_post_message_moves_the_ticket_and_pauses_its_clock(clock, db):
    clock.at = MONDAY
    staff = advisor(db)
    me = returnee()
    cid = ask(db, me)["id"]
    db.outbox.clear()

    clock.advance(hours=1)
    asked = write(db, cid, staff, "Your registered capital?", asks=True)
    assert asked["status"] == "waiting_on_returnee" and asked["sla_paused"]
    assert asked["first_responded_at"] == clock.at
    clock.advance(hours=5)
    replied = write(db, cid, me, "1,000,000 CNY", asks=True)  # a returnee does not ask
    assert replied["status"] == "assigned" and not replied["sla_paused"]
    # Three working days from Monday 09:00 end on Wednesday 17:30; the five working hours of
    # the pause move the deadline to Thursday 14:00.
    assert replied["resolution_due"] == MONDAY + timedelta(days=3, hours=5)
    write(db, cid, staff, "Apply by March.")
    answered = write(db, cid, staff, "And keep the receipts.")  # each answer is told
    assert answered["status"] == "answered"
    write(db, cid, me, "Thanks")
    authors = [m["author_role"] for m in answered["messages"]]
    assert authors == ["advisor", "returnee", "advisor", "advisor"]
    assert [m["asks_returnee"] for m in answered["messages"]] == [True, False, False, False]
    assert types(db) == [
        "consultation.waiting_on_returnee",
        "consultation.assigned",
        "consultation.answered",
        "consultation.answered",
        "consultation.assigned",
    ]
    message_ids = [m["id"] for m in answered["messages"]]
    assert db.published()[0].data["message_id"] == message_ids[0]
    assert db.published()[2].data["message_id"] == message_ids[2]
    assert "message_id" not in db.published()[1].data

    # An admin writes for the assigned advisor; with none assigned they cannot.
    by_admin = write(db, cid, ADMIN, "Also see the rent subsidy.")
    assert by_admin["status"] == "answered" and by_admin["messages"][-1]["author_role"] == "admin"
    db.store.advisors.clear()
    unassigned = ask(db, me)["id"]
    with pytest.raises(Conflict, match="Assign the consultation"):
        write(db, unassigned, ADMIN, "?")
    run(db, handlers.close_consultation, cid, me)
    with pytest.raises(Conflict) as refused:
        write(db, cid, me, "one more thing")
    assert refused.value.message_in("zh-CN") == "该咨询当前状态不允许此操作（closed）。"
    assert "cannot reply to a consultation that is closed" in refused.value.message_in("en")
    with pytest.raises(NotFound):
        write(db, cid, returnee(), "let me in")
    assert len(db.store.messages(cid)) == 6


def test_assign_consultation_to_the_named_or_the_next_advisor(db):
    me = returnee()
    cid = ask(db, me)["id"]
    with pytest.raises(Conflict, match="No advisor is available"):
        run(db, handlers.assign_consultation, cid, AssignIn().load({}), ADMIN)
    first, second = sorted([advisor(db, "A").id, advisor(db, "B").id])
    assigned = run(db, handlers.assign_consultation, cid, AssignIn().load({}), ADMIN)
    assert assigned["status"] == "assigned" and assigned["advisor_id"] == first
    named = AssignIn().load({"advisor_id": second})
    assert run(db, handlers.assign_consultation, cid, named, ADMIN)["advisor_id"] == second
    assert [e.data["advisor_id"] for e in db.published("consultation.assigned")] == [first, second]
    with pytest.raises(HttpError) as refused:
        nobody = AssignIn().load({"advisor_id": str(uuid.uuid4())})
        run(db, handlers.assign_consultation, cid, nobody, ADMIN)
    assert refused.value.fields == {"advisor_id": ["No such advisor."]}
    run(db, handlers.close_consultation, cid, me)
    with pytest.raises(Conflict, match="cannot assign"):
        run(db, handlers.assign_consultation, cid, named, ADMIN)
    assert db.store.consultation_row(cid)["advisor_id"] == second


def test_close_consultation(clock, db):
    me = returnee()
    cid = ask(db, me)["id"]
    clock.advance(hours=2)
    closed = run(db, handlers.close_consultation, cid, me)
    assert closed["status"] == "closed" and closed["closed_at"] == clock.at
    [event] = db.published("consultation.closed")
    assert event.data["closed_by"] == "returnee" and event.data["status"] == "closed"
    with pytest.raises(Conflict, match="cannot close"):
        run(db, handlers.close_consultation, cid, ADMIN)
    with pytest.raises(NotFound):
        run(db, handlers.close_consultation, cid, returnee())
    assert len(db.published("consultation.closed")) == 1


def test_reopen_consultation_within_thirty_days(clock, db):
    clock.at = MONDAY
    me = returnee()
    cid = ask(db, me)["id"]
    with pytest.raises(Conflict, match="cannot reopen"):
        run(db, handlers.reopen_consultation, cid, me)
    run(db, handlers.close_consultation, cid, me)
    clock.advance(days=29)
    reopened = run(db, handlers.reopen_consultation, cid, ADMIN)
    assert reopened["status"] == "reopened" and reopened["closed_at"] is None
    # Reopened on Tuesday 29 December at 09:00: three working days to Thursday 17:30.
    assert reopened["resolution_due"] == datetime(2026, 12, 31, 17, 30, tzinfo=SHANGHAI)
    [event] = db.published("consultation.reopened")
    assert event.data["reopened_by"] == "admin"

    run(db, handlers.close_consultation, cid, me)
    clock.advance(days=31)
    with pytest.raises(Conflict, match="closed too long ago"):
        run(db, handlers.reopen_consultation, cid, me)
    assert db.store.consultation_row(cid)["status"] == "closed"


def test_rate_consultation_once_after_closing(db):
    me = returnee()
    cid = ask(db, me)["id"]
    rating = RatingIn().load({"rating": 4, "comment": "Clear answers"})
    with pytest.raises(Conflict, match="rated only once"):
        run(db, handlers.rate_consultation, cid, rating, me)
    run(db, handlers.close_consultation, cid, me)
    rated = run(db, handlers.rate_consultation, cid, rating, me)
    assert rated["rating"] == 4 and rated["rating_comment"] == "Clear answers"
    [event] = db.published("consultation.rated")
    assert event.data["rating"] == 4 and "rating_comment" not in event.data
    with pytest.raises(Conflict, match="rated only once"):
        run(db, handlers.rate_consultation, cid, RatingIn().load({"rating": 1}), me)
    with pytest.raises(NotFound):
        run(db, handlers.rate_consultation, cid, rating, returnee())
    assert db.store.consultation_row(cid)["rating"] == 4


def test_check_sla_reports_each_missed_deadline_once(clock, db):
    clock.at = MONDAY
    me = returnee()
    silent = ask(db, me)["id"]
    staff = advisor(db)
    waiting = ask(db, me)["id"]
    write(db, waiting, staff, "Your company name?", asks=True)
    db.outbox.clear()

    clock.advance(hours=7)
    assert run(db, handlers.check_sla) == 0
    clock.advance(hours=2)
    assert run(db, handlers.check_sla) == 1
    assert run(db, handlers.check_sla) == 0
    clock.advance(days=4)
    assert run(db, handlers.check_sla) == 1
    seen = [(e.data["consultation_id"], e.data["deadline"]) for e in db.published()]
    assert seen == [(silent, "first_response"), (silent, "resolution")]
    first = db.published()[0].data
    due = MONDAY + timedelta(hours=8)
    assert first["due_at"] == due.isoformat() and first["topic"] == "funding"
    row = db.store.consultation_row(silent)
    assert row["escalated"] is True and row["resolution_breached_at"] == clock.at
    assert db.store.consultation_row(waiting)["escalated"] is False


def test_check_sla_claims_a_bounded_batch(clock, db):
    clock.at = MONDAY
    me = returnee()
    for _ in range(3):
        ask(db, me)
    clock.advance(hours=9)
    with db.unit_of_work() as uow:
        assert handlers.check_sla(uow, limit=2) == 2
    assert run(db, handlers.check_sla) == 1


# ---------------------------------------------------------------- appointments


CANNED = {
    "topic": "funding",
    "title_zh": "所需材料",
    "title_en": "Documents needed",
    "body_zh": "请带上学位认证。",
    "body_en": "Please bring your degree verification.",
}


def canned(db, topic=None):
    return run(db, handlers.list_canned_replies, CannedReplyQuery().load(
        {} if topic is None else {"topic": topic}))  # fmt: skip


def test_canned_replies_per_topic_kept_by_admins(clock, db):
    documents = run(db, handlers.create_canned_reply, CannedReplyIn().load(CANNED), ADMIN)
    assert documents == {**CANNED, "id": documents["id"], "created_at": T0, "updated_at": T0}
    hukou = run(db, handlers.create_canned_reply, CannedReplyIn().load(
        {**CANNED, "topic": "hukou", "title_en": "Hukou steps"}), ADMIN)  # fmt: skip
    assert [r["id"] for r in canned(db, "funding")] == [documents["id"]]
    assert [r["id"] for r in canned(db)] == [documents["id"], hukou["id"]]  # by topic
    with pytest.raises(ValidationError) as refused:  # every field named at once
        CannedReplyIn().load({**CANNED, "topic": "weather", "body_en": ""})
    assert set(refused.value.messages) == {"topic", "body_en"}

    clock.advance(hours=1)
    changed = {**CANNED, "topic": "hukou", "body_en": "Bring your degree verification."}
    row = run(db, handlers.change_canned_reply, documents["id"],
              CannedReplyIn().load(changed))  # fmt: skip
    assert (row["topic"], row["body_en"], row["created_at"], row["updated_at"]) == (
        "hukou", "Bring your degree verification.", T0, T0 + timedelta(hours=1))  # fmt: skip
    assert canned(db, "funding") == []
    run(db, handlers.delete_canned_reply, hukou["id"])
    assert [r["id"] for r in canned(db, "hukou")] == [documents["id"]]
    for use_case, args in ((handlers.change_canned_reply, (CannedReplyIn().load(CANNED),)),
                           (handlers.delete_canned_reply, ())):  # fmt: skip
        for missing in (hukou["id"], "not-an-id"):
            with pytest.raises(NotFound):
                run(db, use_case, missing, *args)


def test_publish_slot_and_list_the_upcoming_ones(clock, db):
    staff = advisor(db)
    later = slot(db, staff, "2026-12-04T09:00:00+08:00")
    sooner = slot(db, staff, "2026-12-03T09:00:00+08:00", capacity=3)
    assert sooner["advisor_id"] == staff.id and sooner["booked"] == 0
    assert sooner["starts_at"] == datetime(2026, 12, 3, 1, 0, tzinfo=sooner["starts_at"].tzinfo)
    assert [s["id"] for s in run(db, handlers.list_slots)] == [sooner["id"], later["id"]]
    clock.at = datetime(2026, 12, 3, 12, 0, tzinfo=SHANGHAI)
    assert [s["id"] for s in run(db, handlers.list_slots)] == [later["id"]]
    assert db.published() == []


def test_book_appointment_never_overbooks(db):
    staff = advisor(db)
    offered = slot(db, staff, capacity=2)
    me = returnee()
    booked = book(db, me, offered["id"])
    assert booked["status"] == "booked" and booked["location"] == offered["location"]
    [event] = db.published("appointment.booked")
    assert event.data["appointment_id"] == booked["id"] and event.data["returnee_id"] == me.id
    with pytest.raises(Conflict, match="booked this slot already"):
        book(db, me, offered["id"])
    assert db.store.slot(offered["id"])["booked"] == 1  # the seat taken was given back
    book(db, returnee(), offered["id"])
    with pytest.raises(Conflict, match="full or already past"):
        book(db, returnee(), offered["id"])
    past = slot(db, staff, "2026-11-27T14:00:00+08:00")
    with pytest.raises(Conflict, match="full or already past"):
        book(db, me, past["id"])
    with pytest.raises(NotFound, match="No such slot"):
        book(db, me, str(uuid.uuid4()))
    assert len(db.published("appointment.booked")) == 2
    assert db.store.slot(offered["id"])["booked"] == 2


def test_list_appointments_by_start(db):
    staff = advisor(db)
    me = returnee()
    later = slot(db, staff, "2026-12-05T09:00:00+08:00")
    sooner = slot(db, staff, "2026-12-01T09:00:00+08:00")
    book(db, me, later["id"])
    book(db, me, sooner["id"])
    listed = run(db, handlers.list_appointments, me.id, "en")
    assert [a["slot_id"] for a in listed] == [sooner["id"], later["id"]]
    assert run(db, handlers.list_appointments, str(uuid.uuid4()), "en") == []
    with pytest.raises(NotFound):
        run(db, handlers.list_appointments, "me", "en")


def test_list_slot_appointments_booked_and_cancelled(db):
    staff = advisor(db)
    offered = slot(db, staff, capacity=3)
    other = slot(db, staff, "2026-12-05T09:00:00+08:00")
    first, second = returnee(), returnee()
    booked = book(db, first, offered["id"])
    book(db, second, offered["id"])
    book(db, first, other["id"])
    run(db, handlers.cancel_appointment, booked["id"], first)
    listed = run(db, handlers.list_slot_appointments, offered["id"])
    assert {(a["returnee_id"], a["status"]) for a in listed} == {
        (first.id, "cancelled"),
        (second.id, "booked"),
    }
    assert {a["slot_id"] for a in listed} == {offered["id"]}
    with pytest.raises(NotFound, match="No such slot"):
        run(db, handlers.list_slot_appointments, str(uuid.uuid4()))
    with pytest.raises(NotFound):
        run(db, handlers.list_slot_appointments, "not-an-id")


def test_cancel_appointment_frees_the_seat(db):
    staff = advisor(db)
    offered = slot(db, staff, capacity=1)
    me = returnee()
    booked = book(db, me, offered["id"])
    for stranger in (returnee(), Caller(str(uuid.uuid4()), "provider")):
        with pytest.raises(NotFound, match="No such appointment"):
            run(db, handlers.cancel_appointment, booked["id"], stranger)
    cancelled = run(db, handlers.cancel_appointment, booked["id"], me)
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_by"] == "returnee"
    [event] = db.published("appointment.cancelled")
    assert event.data["cancelled_by"] == "returnee" and event.data["slot_id"] == offered["id"]
    assert db.store.slot(offered["id"])["booked"] == 0
    with pytest.raises(Conflict, match="cancelled already"):
        run(db, handlers.cancel_appointment, booked["id"], staff)
    again = book(db, me, offered["id"])
    assert run(db, handlers.cancel_appointment, again["id"], staff)["cancelled_by"] == "advisor"
    with pytest.raises(NotFound):
        run(db, handlers.cancel_appointment, "nope", staff)
    assert db.store.appointments_of(me.id)[0]["cancelled_at"] is not None
    assert date(2026, 12, 3) == offered["starts_at"].astimezone(SHANGHAI).date()
