"""From eligible to awarded, in memory: document checklists, applications and their state
machine (every allowed and refused transition), who may see them, what is still missing,
dated policy versions with `as_of` questions, and the impact preview counted against assessing
the same caseload one by one. Time is frozen; commands are loaded by the entrypoints' schemas
and events checked by the contract, as the service receives them."""

import copy
import itertools
import json
import random
import uuid
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from marshmallow import ValidationError

from chassis.auth import Caller
from chassis.clock import SHANGHAI, FrozenClock
from chassis.errors import Conflict, HttpError, NotFound
from chassis.paging import PageQuery
from chassis.uow import MemoryDatabase
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.consulting import applications as apps
from services.consulting import documents, handlers, missing
from services.consulting.assessing import FACT_KEYS
from services.consulting.catalog import load_policies, policy_id
from services.consulting.eligibility import assess, explain
from services.consulting.memory import MemoryStore
from services.consulting.schemas import (
    ApplicationIn,
    ApplicationQuery,
    AppointmentIn,
    AwardIn,
    ChecklistMarkIn,
    EligibilityQuery,
    Note,
    PolicyIn,
    RejectIn,
    SlotIn,
)
from services.consulting.store import decode_facts, to_json
from tests.unit.test_consulting_eligibility import random_profile
from tests.unit.test_consulting_handlers import reassess

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
TODAY = T0.date()
CATALOG_POLICIES = load_policies()
BY_CODE = {p["code"]: p for p in CATALOG_POLICIES}
PROFILE = EXAMPLES[("returnee.registered", 1)].data
TALENT = policy_id("changning-overseas-talent-2026")  # Li Wei: eligible, tier b
LOAN = policy_id("guaranteed-startup-loan-2024")  # Li Wei: eligible, tier company
RENT = policy_id("changning-rent-subsidy")  # Li Wei: ineligible (graduated in 2016)
ADMIN = Caller(str(uuid.uuid4()), "admin")
ADVISOR = Caller(str(uuid.uuid4()), "advisor")


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def db(clock):
    db = MemoryDatabase("consulting", MemoryStore(clock), clock=clock)
    with db.unit_of_work() as uow:
        handlers.seed_catalog(CATALOG_POLICIES, uow)
    db.outbox.clear()
    return db


def run(db, use_case, *args):
    with db.unit_of_work() as uow:
        return use_case(*args, uow)


def received(type_, data, time=None):
    attrs = {"time": time} if time else {}
    event = CATALOG.create("accounts", type_, data, subject=str(data["returnee_id"]), **attrs)
    return CATALOG.check(event)


def register(db, returnee_id=None, keep_events=False, **changes) -> Caller:
    """A returnee registered and assessed (their `eligibility.assessed` relayed already)."""
    data = {**copy.deepcopy(PROFILE), **changes, "returnee_id": returnee_id or str(uuid.uuid4())}
    db.handle(handlers.assess_returnee, received("returnee.registered", data, db.clock.now()))
    if not keep_events:
        db.outbox.clear()
    return Caller(str(data["returnee_id"]), "returnee")


def start(db, caller, policy=TALENT, locale="en", **body):
    command = ApplicationIn().load({"policy_id": policy, **body})
    return run(db, handlers.start_application, command, caller, locale)


def mark(db, application, caller, document_id, provided=True, reference="counter receipt 17"):
    command = ChecklistMarkIn().load({"provided": provided, "reference": reference})
    return run(db, handlers.mark_document, application["id"], document_id, command, caller, "en")


def mark_all(db, application, caller):
    for item in application["checklist"]:
        application = mark(db, application, caller, item["document_id"])
    return application


NOTE = Note().load({})
ACTIONS = {  # action → (handler, the command it takes, who takes it)
    "submit": (handlers.submit_application, NOTE, "returnee"),
    "withdraw": (handlers.withdraw_application, NOTE, "returnee"),
    "review": (handlers.review_application, Note().load({"note": "Complete."}), "staff"),
    "approve": (handlers.approve_application, NOTE, "staff"),
    "reject": (handlers.reject_application, RejectIn().load({"reason": "Capital not paid in."}),
               "staff"),
    "award": (handlers.award_application,
              AwardIn().load({"amount_cny": 100000, "awarded_on": "2026-12-18"}), "staff"),
}  # fmt: skip


def preview(db, command, batch_size=None):
    with db.unit_of_work() as uow:
        if batch_size is None:
            return handlers.preview_policy(command, uow)
        return handlers.preview_policy(command, uow, batch_size=batch_size)


def act(db, application_id, action, caller):
    use_case, command, _ = ACTIONS[action]
    return run(db, use_case, application_id, command, caller, "en")


# ---------------------------------------------------------------- checklists


@pytest.mark.parametrize(
    ("code", "tier", "expected"),
    [
        ("changning-overseas-talent-2026", "a",
         ["application_form", "degree_verification", "passport", "business_licence",
          "articles_and_shareholding", "no_prior_award_pledge", "financing_proof"]),
        ("changning-overseas-talent-2026", "b",
         ["application_form", "degree_verification", "passport", "business_licence",
          "articles_and_shareholding", "no_prior_award_pledge"]),
        ("guaranteed-startup-loan-2024", "company",
         ["application_form", "id_card", "credit_report", "business_licence",
          "business_premises"]),
        ("guaranteed-startup-loan-2024", "pre_startup",
         ["application_form", "id_card", "credit_report", "business_plan"]),
        ("guaranteed-startup-loan-2024", None,  # tier unknown yet: everything, nothing left out
         ["application_form", "id_card", "credit_report", "business_licence",
          "business_premises", "business_plan"]),
        ("sh-hukou-returnees-2020", "direct",
         ["application_form", "passport", "degree_verification", "id_and_hukou_booklet",
          "employment_contract"]),
        ("sh-hukou-returnees-2020", "after_social_insurance",
         ["application_form", "passport", "degree_verification", "id_and_hukou_booklet",
          "employment_contract", "social_insurance_record"]),
        ("national-startup-support", "excellent",
         ["application_form", "degree_verification", "business_licence",
          "articles_and_shareholding", "paid_in_capital", "business_plan"]),
        ("changning-rent-subsidy", None,
         ["application_form", "business_licence", "lease", "rent_receipts",
          "degree_verification"]),
    ],
)  # fmt: skip
def test_the_checklist_is_what_the_tier_needs(code, tier, expected):
    assert [d["id"] for d in documents.needed(BY_CODE[code], tier)] == expected


def test_every_seeded_programme_lists_its_documents_in_both_languages():
    for policy in CATALOG_POLICIES:
        assert policy["documents"], policy["code"]
        for document in policy["documents"]:
            assert set(document["title"]) == {"zh-CN", "en"}, (policy["code"], document)
            assert set(document.get("note") or {"zh-CN": 1, "en": 1}) == {"zh-CN", "en"}


def test_every_label_and_title_of_the_catalog_has_exactly_its_two_languages():
    def texts(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("label", "title", "summary", "note") and isinstance(value, dict):
                    yield value
                yield from texts(value)
        elif isinstance(node, list):
            for value in node:
                yield from texts(value)

    for policy in CATALOG_POLICIES:
        for text in texts({k: v for k, v in policy.items() if k != "citation"}):
            assert set(text) == {"zh-CN", "en"}, (policy["code"], text)


@pytest.mark.parametrize(
    ("listed", "errors"),
    [
        ([{"id": "form", "title": {"zh-CN": "表", "en": "Form"}}], {}),
        ([{"id": "form", "title": {"zh-CN": "表", "en": "Form"}}] * 2,
         {"documents[1]": "duplicate id form"}),
        ([{"id": "form", "title": {"zh-CN": "表", "en": "Form"}, "tiers": ["gold"]}],
         {"documents[0]": "unknown tier gold"}),
        ([{"id": "form", "title": {"en": "Form"}}],
         {"documents[0]": "title and note need zh-CN and en"}),
        ([{"id": "Form!", "title": {"zh-CN": "表", "en": "Form"}}],
         {"documents[0]": "needs an id (lower-case letters, digits, _)"}),
    ],
)  # fmt: skip
def test_a_document_list_is_checked(listed, errors):
    policy = {**BY_CODE["changning-overseas-talent-2026"], "documents": listed}
    assert documents.validate(policy) == errors


def test_the_eligibility_answer_shows_the_documents_in_the_callers_language(db):
    me = register(db)
    answers = run(db, handlers.eligibility, me.id, EligibilityQuery().load({}), "zh-CN")
    by_code = {a["code"]: a for a in answers}
    talent = by_code["changning-overseas-talent-2026"]
    assert talent["tier"] == "b" and talent["version"] == 2
    assert [d["id"] for d in talent["documents"]] == [
        d["id"] for d in documents.needed(BY_CODE["changning-overseas-talent-2026"], "b")
    ]
    assert talent["documents"][0]["title"] == "海外高层次人才创业资助申报表"
    # Not eligible: every document the programme asks for, with the tiers needing it.
    rent = by_code["changning-rent-subsidy"]
    assert rent["status"] == "ineligible" and len(rent["documents"]) == 5
    policy = run(db, handlers.get_policy, TALENT)
    assert len(policy["documents"]) == 7


# ---------------------------------------------------------------- starting an application


def test_start_application_makes_a_draft_with_its_checklist_and_history(db, clock):
    me = register(db)
    started = start(db, me, note="First application")
    assert started["status"] == "draft" and started["tier"] == "b"  # the tier reached
    assert started["code"] == "changning-overseas-talent-2026" and started["policy_version"] == 2
    assert [i["document_id"] for i in started["checklist"]] == [
        "application_form", "degree_verification", "passport", "business_licence",
        "articles_and_shareholding", "no_prior_award_pledge",
    ]  # fmt: skip
    assert started["missing_documents"] == [i["document_id"] for i in started["checklist"]]
    assert started["checklist"][0] == {
        "document_id": "application_form",
        "title": "Application form of the overseas talent grant",
        "note": "Received by the district talent office, in one submission.",
        "provided": False,
        "reference": None,
        "marked_at": None,
    }
    assert started["history"] == [
        {"from_status": None, "status": "draft", "actor_id": me.id, "actor_role": "returnee",
         "at": T0, "note": "First application"},
    ]  # fmt: skip
    assert db.published() == []  # a draft is nobody's news yet
    assert db.store.application(started["id"])["returnee_id"] == me.id
    chinese = run(db, handlers.get_application, started["id"], me, "zh-CN")
    assert chinese["checklist"][0]["title"] == "海外高层次人才创业资助申报表"


def test_an_undetermined_returnee_may_apply_for_a_tier_not_ruled_out(db):
    me = register(db, company={**PROFILE["company"], "is_largest_shareholder": None})
    started = start(db, me, tier="a")
    assert started["tier"] == "a" and "financing_proof" in started["missing_documents"]


@pytest.mark.parametrize(
    ("profile", "body", "refusal"),
    [
        ({}, {"policy_id": str(uuid.uuid4())}, (HttpError, {"policy_id": ["No such policy."]})),
        (None, {}, (Conflict, "has not been assessed")),
        ({}, {"policy_id": RENT}, (Conflict, "does not meet")),
        ({}, {"tier": "gold"}, (HttpError, {"tier": ["No such tier of this policy."]})),
        ({}, {"policy_id": LOAN, "tier": "pre_startup"}, (Conflict, "rules out this tier")),
        ({"company": {**PROFILE["company"], "is_largest_shareholder": None,
                      "vc_raised_cny": None}, "startup_stage": "registered"},
         {"policy_id": policy_id("national-startup-support"), "tier": None} | {},
         None),
    ],
    ids=["unknown-policy", "no-facts", "ineligible", "no-such-tier", "tier-ruled-out", "ok"],
)  # fmt: skip
def test_start_application_refusals(db, profile, body, refusal):
    me = register(db, **profile) if profile is not None else Caller(str(uuid.uuid4()), "returnee")
    if refusal is None:
        assert start(db, me, **body)["status"] == "draft"
        return
    kind, detail = refusal
    with pytest.raises(kind) as refused:
        start(db, me, **body)
    if isinstance(detail, dict):
        assert refused.value.fields == detail
    else:
        assert detail in refused.value.message_in("en")
    assert db.store.applications_by_id == {} and db.published() == []


def test_a_tiered_policy_needs_a_tier_when_none_is_reached(db):
    # National start-up support with the QS rank unknown and no tier reachable without it.
    me = register(db, education=[{**PROFILE["education"][1], "qs_rank": None}],
                  industry="biotech")  # fmt: skip
    policy = BY_CODE["national-startup-support"]
    stripped = {**policy, "tiers": policy["tiers"][:1], "version": policy["version"] + 1}
    run(db, handlers.seed_catalog, [stripped])  # only the key tier left
    with pytest.raises(HttpError) as refused:
        start(db, me, policy=policy["id"])
    assert refused.value.fields == {"tier": ["Choose the tier you apply for."]}
    assert start(db, me, policy=policy["id"], tier="key")["tier"] == "key"


def test_one_open_application_per_policy(db):
    me = register(db)
    first = start(db, me)
    with pytest.raises(Conflict, match="open application"):
        start(db, me)
    act(db, first["id"], "withdraw", me)
    again = start(db, me)
    assert again["id"] != first["id"]
    assert start(db, me, policy=LOAN)["tier"] == "company"  # another policy: fine


# ---------------------------------------------------------------- the checklist and submission


def test_documents_are_marked_on_a_draft_and_every_one_is_needed_to_submit(db, clock):
    me = register(db)
    draft = start(db, me)
    clock.advance(minutes=5)
    marked = mark(db, draft, me, "passport", reference="passport E12345678 seen at counter 3")
    item = next(i for i in marked["checklist"] if i["document_id"] == "passport")
    assert item["provided"] and item["marked_at"] == clock.at
    assert item["reference"] == "passport E12345678 seen at counter 3"
    unmarked = mark(db, marked, me, "passport", provided=False, reference=None)
    assert "passport" in unmarked["missing_documents"]
    with pytest.raises(NotFound, match="No such document"):
        mark(db, draft, me, "birth_certificate")
    with pytest.raises(Conflict, match="missing: application_form, degree_verification"):
        act(db, draft["id"], "submit", me)
    assert db.store.application(draft["id"])["status"] == "draft"
    submitted = act(db, mark_all(db, draft, me)["id"], "submit", me)
    assert submitted["status"] == "submitted" and submitted["missing_documents"] == []
    with pytest.raises(Conflict, match="only while the application is a draft"):
        mark(db, submitted, me, "passport", provided=False)
    [event] = db.published("application.submitted")
    assert event.data == {
        "application_id": draft["id"],
        "returnee_id": me.id,
        "policy_id": TALENT,
        "code": "changning-overseas-talent-2026",
        "policy_version": 2,
        "tier": "b",
        "status": "submitted",
    }
    assert "reference" not in json.dumps(event.data)


# ---------------------------------------------------------------- the state machine


def in_status(db, status: str) -> tuple[str, Caller]:
    """An application of a fresh returnee brought to `status` the way people would."""
    me = register(db)
    draft = mark_all(db, start(db, me), me)
    path = {
        "draft": [],
        "submitted": ["submit"],
        "under_review": ["submit", "review"],
        "approved": ["submit", "review", "approve"],
        "rejected": ["submit", "review", "reject"],
        "awarded": ["submit", "review", "approve", "award"],
        "withdrawn": ["withdraw"],
    }[status]
    for action in path:
        act(db, draft["id"], action, me if ACTIONS[action][2] == "returnee" else ADVISOR)
    db.outbox.clear()
    return draft["id"], me


ALLOWED = {
    ("submit", "draft"): "submitted",
    ("review", "submitted"): "under_review",
    ("approve", "under_review"): "approved",
    ("reject", "under_review"): "rejected",
    ("award", "approved"): "awarded",
    ("withdraw", "draft"): "withdrawn",
    ("withdraw", "submitted"): "withdrawn",
    ("withdraw", "under_review"): "withdrawn",
    ("withdraw", "approved"): "withdrawn",
}
STATUSES = ["draft", "submitted", "under_review", "approved", "rejected", "awarded", "withdrawn"]


@pytest.mark.parametrize(
    ("action", "status"),
    list(itertools.product(ACTIONS, STATUSES)),
    ids=[f"{a}-from-{s}" for a, s in itertools.product(ACTIONS, STATUSES)],
)
def test_every_transition_is_allowed_or_refused_with_409(db, clock, action, status):
    application_id, owner = in_status(db, status)
    caller = owner if ACTIONS[action][2] == "returnee" else ADMIN
    steps = len(db.store.history(application_id))
    clock.advance(hours=1)
    if (action, status) not in ALLOWED:
        with pytest.raises(Conflict) as refused:
            act(db, application_id, action, caller)
        assert refused.value.status == 409
        assert f"cannot {action} an application that is {status}" in refused.value.message_in("en")
        assert db.store.application(application_id)["status"] == status
        assert len(db.store.history(application_id)) == steps and db.published() == []
        return
    moved = act(db, application_id, action, caller)
    target = ALLOWED[(action, status)]
    assert moved["status"] == target == db.store.application(application_id)["status"]
    assert moved["history"][-1] == {
        "from_status": status,
        "status": target,
        "actor_id": caller.id,
        "actor_role": caller.role,
        "at": clock.at,
        "note": {"review": "Complete.", "reject": "Capital not paid in."}.get(action),
    }
    assert len(moved["history"]) == steps + 1
    event_type = apps.EVENTS.get(action)
    assert [e.type for e in db.published()] == ([event_type] if event_type else [])
    if action == "award":
        assert moved["amount_cny"] == 100000 and moved["awarded_on"] == date(2026, 12, 18)
        data = db.published()[0].data
        assert (data["amount_cny"], data["awarded_on"]) == (100000, "2026-12-18")
    if action == "reject":
        assert moved["rejection_reason"] == "Capital not paid in."
        assert "Capital" not in json.dumps(db.published()[0].data)  # the text stays here
    if action == "withdraw":
        assert db.published()[0].data["withdrawn_from"] == status


def test_the_whole_history_is_visible_to_the_returnee(db, clock):
    me = register(db)
    draft = mark_all(db, start(db, me), me)
    for action, caller in [("submit", me), ("review", ADVISOR), ("approve", ADMIN),
                           ("award", ADVISOR)]:  # fmt: skip
        clock.advance(days=1)
        act(db, draft["id"], action, caller)
    seen = run(db, handlers.get_application, draft["id"], me, "en")
    assert [(h["from_status"], h["status"], h["actor_role"]) for h in seen["history"]] == [
        (None, "draft", "returnee"),
        ("draft", "submitted", "returnee"),
        ("submitted", "under_review", "advisor"),
        ("under_review", "approved", "admin"),
        ("approved", "awarded", "advisor"),
    ]
    assert [h["at"] for h in seen["history"]] == [T0 + timedelta(days=d) for d in range(5)]
    assert [e.type for e in db.published()] == [
        "application.submitted",
        "application.approved",
        "application.awarded",
    ]


# ---------------------------------------------------------------- who sees what (BOLA)


def test_a_returnee_cannot_see_or_move_anothers_application(db):
    owner, stranger = register(db), register(db)
    draft = start(db, owner)
    attempts = [
        lambda: run(db, handlers.get_application, draft["id"], stranger, "en"),
        lambda: mark(db, draft, stranger, "passport"),
        lambda: act(db, draft["id"], "submit", stranger),
        lambda: act(db, draft["id"], "withdraw", stranger),
        lambda: run(db, handlers.get_application, "not-a-uuid", owner, "en"),
        lambda: run(db, handlers.get_application, str(uuid.uuid4()), ADMIN, "en"),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound, match="No such application"):
            attempt()
    assert db.store.application(draft["id"])["status"] == "draft" and db.published() == []
    assert all(not i["provided"] for i in db.store.checklist(draft["id"]))
    # Listing: a returnee sees their own, whoever they ask for; staff see everyone's.
    mine = start(db, stranger)
    query = ApplicationQuery().load({"returnee_id": owner.id})
    assert [a["id"] for a in run(db, handlers.list_applications, query, stranger)["items"]] == [
        mine["id"]
    ]
    assert [a["id"] for a in run(db, handlers.list_applications, query, ADVISOR)["items"]] == [
        draft["id"]
    ]
    everyone = run(db, handlers.list_applications, ApplicationQuery().load({}), ADMIN)
    assert {a["id"] for a in everyone["items"]} == {draft["id"], mine["id"]}
    assert run(db, handlers.get_application, draft["id"], ADVISOR, "en")["id"] == draft["id"]


def test_listing_pages_newest_first_with_a_cursor(db, clock):
    made = []
    for _ in range(5):
        clock.advance(minutes=1)
        made.append(start(db, register(db))["id"])
    clock.advance(minutes=1)
    same_instant = [start(db, register(db))["id"] for _ in range(2)]
    seen, cursor = [], None
    while True:
        query = ApplicationQuery().load({"limit": 3, **({"cursor": cursor} if cursor else {})})
        page = run(db, handlers.list_applications, query, ADMIN)
        assert len(page["items"]) <= 3
        seen += [a["id"] for a in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(same_instant, reverse=True) + made[::-1]
    filtered = ApplicationQuery().load({"status": "withdrawn"})
    assert run(db, handlers.list_applications, filtered, ADMIN) == {"items": [], "next": None}
    for bad in ({"cursor": "not-a-cursor"}, {"limit": 101}, {"status": "lost"}):
        with pytest.raises(ValidationError):
            ApplicationQuery().load(bad)


def test_erasure_takes_the_applications_too(db):
    me = register(db)
    draft = start(db, me)
    db.handle(handlers.erase_returnee, received("returnee.erased", {"returnee_id": me.id}))
    assert db.store.application(draft["id"]) is None and db.store.checklist(draft["id"]) == []
    assert db.store.history(draft["id"]) == []


# ---------------------------------------------------------------- what is still missing


def facts_of(**changes) -> dict:
    from services.consulting.assessing import facts_of as keep

    profile = copy.deepcopy(PROFILE)
    for dotted, value in changes.items():
        target, *path = dotted.split("__")
        if path:
            profile[target][path[0]] = value
        else:
            profile[target] = value
    return decode_facts(json.loads(to_json(keep(profile))))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"company__is_largest_shareholder": None},
         [("company.is_largest_shareholder", ["changning-overseas-talent-2026"])]),
        ({"education": []},
         [("education", ["changning-free-office-space", "changning-overseas-talent-2026",
                         "changning-rent-subsidy", "national-startup-support",
                         "sh-returnee-definition"])]),
        ({"company__registration_date": None},
         [("company.registration_date", ["changning-free-office-space",
                                         "changning-overseas-talent-2026",
                                         "guaranteed-startup-loan-2024",
                                         "high-tech-enterprise-tax",
                                         "national-startup-support"])]),
        ({"company": None, "startup_stage": "idea", "birth_date": None},
         [("company.registered_district", ["changning-overseas-talent-2026"]),
          ("company.registration_date", ["changning-overseas-talent-2026",
                                         "guaranteed-startup-loan-2024",
                                         "high-tech-enterprise-tax",
                                         "national-startup-support"]),
          ("company.is_legal_representative", ["changning-overseas-talent-2026",
                                               "national-startup-support"]),
          ("company.is_largest_shareholder", ["changning-overseas-talent-2026"]),
          ("birth_date", ["guaranteed-startup-loan-2024"]),
          ("company.registered_capital_cny", ["national-startup-support"]),
          ("company.shareholding_pct", ["national-startup-support"])]),
        # A tier left unknown does not count while another tier is reached.
        ({"education": [{**PROFILE["education"][0]}, {**PROFILE["education"][1],
                                                      "qs_rank": None}]}, []),
    ],
    ids=["complete", "one-flag", "no-education", "no-registration-date", "no-company-yet",
         "unknown-tier-with-a-tier-reached"],
)  # fmt: skip
def test_missing_facts_are_what_decides_each_undetermined_policy(changes, expected):
    facts = facts_of(**changes)
    policies = {p["id"]: p for p in CATALOG_POLICIES}
    assessments = [assess(p, facts, TODAY) for p in CATALOG_POLICIES]
    found = missing.missing_facts(assessments, policies, "en")
    assert [(f["fact"], [p["code"] for p in f["policies"]]) for f in found] == expected
    undetermined = {a.code for a in assessments if a.status == "undetermined"}
    assert undetermined == {code for _, codes in expected for code in codes}


def test_a_missing_fact_says_what_to_tell_and_bring_in_both_languages():
    facts = facts_of(company__is_largest_shareholder=None)
    assessments = [assess(p, facts, TODAY) for p in CATALOG_POLICIES]
    policies = {p["id"]: p for p in CATALOG_POLICIES}
    [zh] = missing.missing_facts(assessments, policies, "zh-CN")
    [en] = missing.missing_facts(assessments, policies, "en")
    assert (zh["tell_us"], zh["bring"]) == ("本人是否为第一大股东", "股东名册")
    assert (en["tell_us"], en["bring"]) == (
        "Whether you are the largest shareholder",
        "Register of shareholders",
    )
    assert zh["policies"][0]["criteria"] == ["本人为第一大股东"]
    assert en["policies"][0]["title"] == "Changning overseas talent start-up grant (2026)"


def test_every_field_a_rule_may_read_has_a_fact_to_ask_for():
    from services.consulting.eligibility import FIELDS

    assert {missing.fact_of(f) for f in FIELDS} <= set(missing.FACTS)
    assert all(len(texts) == 4 and all(texts) for texts in missing.FACTS.values())


def test_missing_facts_travel_with_the_appointment_and_a_profile_change_reassesses(db, clock):
    gap = {**PROFILE["company"], "is_largest_shareholder": None}
    me = register(db, company=gap)
    listed = run(db, handlers.missing_facts, me.id, "zh-CN")
    assert listed["as_of"] == TODAY
    assert [f["fact"] for f in listed["facts"]] == ["company.is_largest_shareholder"]
    with pytest.raises(NotFound):
        run(db, handlers.missing_facts, str(uuid.uuid4()), "en")

    advisor = Caller(str(uuid.uuid4()), "advisor")
    slot = run(db, handlers.publish_slot, SlotIn().load({
        "starts_at": "2026-12-03T14:00:00+08:00", "ends_at": "2026-12-03T14:30:00+08:00",
        "location": "Changning station, room 201", "capacity": 2}), advisor)  # fmt: skip
    booked = run(db, handlers.book_appointment, AppointmentIn().load({"slot_id": slot["id"]}),
                 me, "en")  # fmt: skip
    assert [f["fact"] for f in booked["missing_facts"]] == ["company.is_largest_shareholder"]
    [shown] = run(db, handlers.list_appointments, me.id, PageQuery().load({}), "zh-CN")
    assert shown["missing_facts"][0]["tell_us"] == "本人是否为第一大股东"

    # The advisor records the fact (the profile changes): re-assessed at once.
    db.outbox.clear()
    clock.advance(minutes=20)
    data = {**copy.deepcopy(PROFILE), "returnee_id": me.id, "changed_fields": ["company"],
            "company": {**gap, "is_largest_shareholder": True}}  # fmt: skip
    db.handle(handlers.assess_returnee, received("returnee.updated", data, time=clock.at))
    [event] = db.published("eligibility.assessed")
    assert event.data["newly_eligible"] == ["changning-overseas-talent-2026"]
    assert run(db, handlers.missing_facts, me.id, "en")["facts"] == []
    assert (
        run(db, handlers.list_appointments, me.id, PageQuery().load({}), "en")[0]["missing_facts"]
        == []
    )


# ---------------------------------------------------------------- dated versions


VOUCHER = {
    "code": "changning-ai-compute-voucher-2026",
    "title": {"zh-CN": "长宁区人工智能算力券", "en": "Changning AI compute voucher"},
    "summary": {"zh-CN": "人工智能企业算力补贴。", "en": "Compute subsidy for AI firms."},
    "citation": {"title": "长宁区人工智能产业扶持办法", "url": "https://www.shcn.gov.cn/"},
    "effective_from": "2026-01-01",
    "criteria": [
        {"id": "ai_industry", "label": {"zh-CN": "人工智能行业", "en": "AI industry"},
         "field": "industry", "op": "eq", "value": "ai"},
    ],
    "tiers": [
        {"code": "large", "title": {"zh-CN": "大额", "en": "Large"}, "award_cny": 300000,
         "criteria": [{"id": "funded", "label": {"zh-CN": "已融资", "en": "Funded"},
                       "field": "company.vc_raised_cny", "op": "gte", "value": 1000000}]},
        {"code": "small", "title": {"zh-CN": "小额", "en": "Small"}, "award_cny": 50000,
         "criteria": []},
    ],
    "documents": [
        {"id": "compute_invoice", "title": {"zh-CN": "算力服务发票", "en": "Compute invoices"}},
    ],
}  # fmt: skip


def test_a_new_version_keeps_the_old_one_and_as_of_explains_under_the_rules_of_the_day(db, clock):
    me = register(db, industry="ai")
    published = run(db, handlers.publish_policy, PolicyIn().load(VOUCHER))
    assert published["version"] == 1
    first_day = clock.at.date()
    reassess(db, db.published("policy.published")[0])
    assert db.store.eligible_policies(me.id)[published["id"]] == (VOUCHER["code"], "small", 1)

    clock.advance(days=10)  # 8 December: the voucher is limited to Changning companies
    stricter = copy.deepcopy(VOUCHER)
    stricter["criteria"].append({"id": "in_putuo", "label": {"zh-CN": "注册在普陀", "en":
                                 "Registered in Putuo"}, "field": "company.registered_district",
                                 "op": "eq", "value": "Putuo"})  # fmt: skip
    db.outbox.clear()
    second = run(db, handlers.publish_version, published["id"], PolicyIn().load(stricter))
    assert second["version"] == 2 and second["id"] == published["id"]
    [announced] = db.published("policy.published")
    assert announced.data["version"] == 2
    versions = run(db, handlers.list_policy_versions, published["id"], PageQuery().load({}))
    assert [(v["version"], v["in_force_from"]) for v in versions] == [
        (1, first_day),
        (2, clock.at.date()),
    ]
    assert len(versions[0]["criteria"]) == 1 and len(versions[1]["criteria"]) == 2

    changed = reassess(db, announced)
    assert changed == 1
    [event] = db.published("eligibility.assessed")
    assert event.data["no_longer_eligible"] == [VOUCHER["code"]]

    def voucher_as_of(day):
        query = EligibilityQuery().load({"as_of": day.isoformat()} if day else {})
        answers = run(db, handlers.eligibility, me.id, query, "en")
        return next(a for a in answers if a["code"] == VOUCHER["code"])

    before = voucher_as_of(first_day + timedelta(days=3))  # the rules of 1 December
    assert (before["version"], before["status"], before["tier"]) == (1, "eligible", "small")
    assert [r["criterion"] for r in before["reasons"]] == ["in_effect", "ai_industry"]
    after = voucher_as_of(clock.at.date())
    assert (after["version"], after["status"]) == (2, "ineligible")
    assert voucher_as_of(None)["version"] == 2  # today
    earliest = voucher_as_of(date(2026, 1, 15))  # before any version was published: the first
    assert earliest["version"] == 1

    with pytest.raises(HttpError) as refused:
        run(db, handlers.publish_version, published["id"],
            PolicyIn().load({**stricter, "code": "another-code"}))  # fmt: skip
    assert refused.value.fields == {"code": ["A new version keeps the policy's code."]}
    for unknown in (str(uuid.uuid4()), "nope"):
        with pytest.raises(NotFound):
            run(db, handlers.publish_version, unknown, PolicyIn().load(stricter))
        with pytest.raises(NotFound):
            run(db, handlers.list_policy_versions, unknown, PageQuery().load({}))


def test_each_assessment_records_the_version_it_used(db, clock):
    me = register(db, keep_events=True)
    listed = db.published("eligibility.assessed")[0].data["eligible"]
    assert {e["version"] for e in listed} == {2}
    talent = BY_CODE["changning-overseas-talent-2026"]
    run(db, handlers.seed_catalog, [{**talent, "version": 3}])
    reassess(db, db.published("policy.published")[-1])
    assert db.store.eligible_policies(me.id)[TALENT] == (talent["code"], "b", 3)
    assert [v["version"] for v in db.store.policy_versions(TALENT)] == [2, 3]


# ---------------------------------------------------------------- impact preview


def caseload(db, n=400, seed=20261128):
    """Random returnees straight into the store: a quarter without matching consent."""
    rng = random.Random(seed)
    ids = []
    with db.unit_of_work() as uow:
        for i in range(n):
            returnee_id = str(uuid.UUID(int=rng.getrandbits(128)))
            facts = random_profile(rng)
            facts["company"] = facts["company"] and {
                **facts["company"],
                "registered_district": rng.choice(["Changning", "Putuo", "Xuhui", None]),
            }
            uow.store.save_facts(returnee_id, json.loads(to_json(facts)), T0, i % 4 != 0)
            ids.append(returnee_id)
    return ids


def one_by_one(db, draft: dict, current: dict | None) -> dict:
    """The preview's answer, assessing each consenting returnee with the explaining engine."""
    draft = {**draft, "id": policy_id(draft["code"])}
    rows = db.store.caseload(None, 10**6, FACT_KEYS)
    newly, gone = [], []
    eligible = Counter()
    tiers = {"before": Counter(), "after": Counter()}
    changed_tier = 0
    for row in rows:
        after = assess(draft, row["facts"], TODAY)
        before = assess(current, row["facts"], TODAY) if current else None
        was = before is not None and before.eligible
        eligible["before"] += was
        eligible["after"] += after.eligible
        if was:
            tiers["before"][before.tier] += 1
        if after.eligible:
            tiers["after"][after.tier] += 1
        if after.eligible and not was:
            newly.append((after.tier, row["facts"]))
        elif was and not after.eligible:
            gone.append((before.tier, row["facts"]))
        elif was and after.tier != before.tier:
            changed_tier += 1
    return {"caseload": len(rows), "eligible": dict(eligible), "moved": (newly, gone),
            "tiers": tiers, "tier_changed": changed_tier}  # fmt: skip


def breakdown(moved):
    def counted(key, values):
        found = Counter(values)
        ordered = sorted(found.items(), key=lambda i: (-i[1], str(i[0])))
        return [{key: v, "count": n} for v, n in ordered]

    return {
        "count": len(moved),
        "by_tier": counted("tier", [t for t, _ in moved]),
        "by_industry": counted("industry", [f.get("industry") for _, f in moved]),
        "by_stage": counted("stage", [f.get("startup_stage") for _, f in moved]),
        "by_district": counted(
            "district", [(f.get("company") or {}).get("registered_district") for _, f in moved]
        ),
    }


def test_the_preview_of_a_new_policy_counts_what_assessing_one_by_one_finds(db):
    caseload(db)
    before_store = copy.deepcopy({k: v for k, v in vars(db.store).items() if k != "clock"})
    command = PolicyIn().load(VOUCHER)
    preview = run(db, handlers.preview_policy, command)
    assert preview == globals()["preview"](db, command, batch_size=64)  # batches add up
    expected = one_by_one(db, command, None)
    assert preview["caseload"] == expected["caseload"] == 300
    assert preview["eligible"] == {"before": 0, "after": expected["eligible"]["after"]} != {
        "before": 0, "after": 0}  # fmt: skip
    assert preview["newly_eligible"] == breakdown(expected["moved"][0])
    assert preview["no_longer_eligible"]["count"] == 0
    large, small = expected["tiers"]["after"]["large"], expected["tiers"]["after"]["small"]
    assert preview["budget"]["after_cny"] == large * 300000 + small * 50000 > 0
    assert preview["budget"]["before_cny"] == 0 and preview["current_version"] is None
    # Nothing stored, nothing announced.
    assert db.published() == []
    assert {k: v for k, v in vars(db.store).items() if k != "clock"} == before_store


def test_the_preview_of_a_new_version_counts_both_ways_by_tier_industry_stage_district(db):
    caseload(db)
    current = db.store.policy(LOAN)
    draft = copy.deepcopy({k: current[k] for k in ("code", "title", "summary", "citation",
                                                   "criteria", "tiers", "documents")})  # fmt: skip
    draft["effective_from"] = "2024-01-01"
    # Companies up to five years old, no loans for "other" industries, a bigger company loan,
    # and the pre-start-up loan up to 30 years of age.
    draft["criteria"][0]["any"][0]["value"] = 59
    draft["criteria"].append(
        {
            "id": "industry",
            "label": {"zh-CN": "重点行业", "en": "Key industries"},
            "field": "industry",
            "op": "ne",
            "value": "other",
        }
    )
    draft["tiers"][0]["criteria"][0]["value"] = 59
    draft["tiers"][0]["award_cny"] = 600000
    draft["tiers"][1]["criteria"][1]["value"] = 30  # fmt: skip
    command = PolicyIn().load(draft)
    preview = globals()["preview"](db, command, batch_size=50)
    expected = one_by_one(db, command, current)
    newly, gone = expected["moved"]
    assert newly and gone  # the draft moves people both ways
    assert preview["current_version"] == 2 and preview["caseload"] == expected["caseload"]
    assert preview["tier_changed"] > 0
    assert preview["eligible"] == expected["eligible"]
    assert preview["newly_eligible"] == breakdown(newly)
    assert preview["no_longer_eligible"] == breakdown(gone)
    assert preview["tier_changed"] == expected["tier_changed"]
    rows = {r["tier"]: r for r in preview["budget"]["by_tier"]}
    for tier, award_before, award_after in (("company", 500000, 600000),
                                            ("pre_startup", 200000, 200000)):  # fmt: skip
        assert rows[tier]["count_before"] == expected["tiers"]["before"][tier]
        assert rows[tier]["count_after"] == expected["tiers"]["after"][tier]
        assert rows[tier]["amount_before_cny"] == rows[tier]["count_before"] * award_before
        assert rows[tier]["amount_after_cny"] == rows[tier]["count_after"] * award_after
    assert preview["budget"]["after_cny"] == sum(r["amount_after_cny"] for r in rows.values())
    assert db.published() == []
    with pytest.raises(HttpError) as refused:
        bad = copy.deepcopy(draft)
        bad["documents"] = [{"id": "x", "title": {"zh-CN": "x", "en": "x"}, "tiers": ["gold"]}]
        run(db, handlers.preview_policy, PolicyIn().load(bad))
    assert refused.value.fields == {"documents[0]": "unknown tier gold"}


def test_explain_and_preview_agree_on_a_policy_without_tiers(db):
    caseload(db, n=120, seed=7)
    rent = BY_CODE["changning-rent-subsidy"]
    draft = {k: rent[k] for k in ("code", "title", "summary", "citation", "criteria")}
    draft = copy.deepcopy(draft) | {"effective_from": "2023-01-01"}
    draft["criteria"][1]["value"] = 6  # graduated within 7 years
    command = PolicyIn().load(draft)
    preview = run(db, handlers.preview_policy, command)
    expected = one_by_one(db, command, db.store.policy(rent["id"]))
    assert preview["newly_eligible"] == breakdown(expected["moved"][0])
    assert preview["budget"]["by_tier"] == [
        {"tier": None, "count_before": expected["tiers"]["before"][None],
         "award_before_cny": None, "amount_before_cny": None,
         "count_after": expected["tiers"]["after"][None], "award_after_cny": None,
         "amount_after_cny": None},
    ]  # fmt: skip
    assert explain(assess({**command, "id": rent["id"]}, facts_of(), TODAY), rent, "en")


def test_staff_reads_of_applications_are_recorded_through_each_application(db):
    me = register(db)
    draft = start(db, me)
    db.outbox.clear()
    seen = {"reader_id": ADVISOR.id, "reader_role": "advisor", "case_ref": None, "reason": None}
    own = {**seen, "reader_id": me.id, "reader_role": "returnee"}
    page = ApplicationQuery().load({})
    with db.unit_of_work() as uow:
        handlers.get_application(draft["id"], ADVISOR, "en", uow, seen)
        handlers.list_applications(page, ADVISOR, uow, seen)
        handlers.get_application(draft["id"], me, "en", uow, own)  # their own: not recorded
    case = f"application:{draft['id']}"
    assert [(str(e.data["returnee_id"]), e.data["what"], e.data["case_ref"])
            for e in db.published("consulting.personal_data_read")
            ] == [(me.id, "application", case), (me.id, "applications", case)]  # fmt: skip
