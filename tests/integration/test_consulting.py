"""The consulting service against the real RabbitMQ and PostgreSQL: eligibility on registration,
re-assessment on a new policy (only changes published), erasure, consultations with SLA breaches
under frozen time and two replicas, and appointments booked concurrently."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2.extras
import pytest
import requests
from kombu import Connection
from nameko.testing.services import entrypoint_hook

from chassis.pool import ConnectionPool
from chassis.topology import declare_service
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.consulting.assessing import facts_of
from services.consulting.catalog import policy_id
from services.consulting.seed import seed
from services.consulting.service import ConsultingService
from services.consulting.store import to_json
from tests.support import (
    publish_events,
    query,
    refuses_bad_pages,
    service_url,
    wait_until,
    walk_pages,
)

PROFILE = {k: v for k, v in EXAMPLES[("returnee.registered", 1)].data.items() if k != "returnee_id"}
# The YAML case "Li Wei ... end of 2026" (services/consulting/cases/eligibility.yaml).
LI_WEI_ELIGIBLE = {
    "sh-returnee-definition": None,
    "national-startup-support": "key",
    "changning-overseas-talent-2026": "b",
    "guaranteed-startup-loan-2024": "company",
    "changning-free-office-space": None,
    "high-tech-enterprise-tax": None,
}
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai

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


class FrozenClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Consulting:
    def __init__(self, url, db, amqp_uri, clock, containers):
        self.url, self.db, self.amqp_uri, self.clock = url, db, amqp_uri, clock
        self.containers = containers

    def sql(self, statement, params=None):
        return query(self.db, statement, params)

    def publish(self, type_, data, subject):
        publish_events(self.amqp_uri, [CATALOG.create("accounts", type_, data, subject=subject)])

    def handled(self, event) -> None:
        """Wait until consulting took the event in: its inbox record commits with its effect
        (and the events it publishes), so only then does an absence mean something."""
        wait_until(
            lambda: self.sql("SELECT 1 FROM inbox WHERE event_id = %s", (event.id,)),
            message=f"consulting took in {event.type} {event.id}",
        )

    def published(self, event_type, subject=None) -> int:
        """Events of a type (about a subject) written to the outbox, published or not."""
        return self.sql(
            "SELECT count(*) AS n FROM outbox WHERE routing_key = %s"
            " AND (%s::text IS NULL OR subject = %s)",
            (event_type, subject, subject),
        )[0]["n"]

    def register(self, returnee_id=None, **changes):
        returnee_id = returnee_id or str(uuid.uuid4())
        self.publish(
            "returnee.registered", {**PROFILE, **changes, "returnee_id": returnee_id}, returnee_id
        )
        return returnee_id

    def advisor(self, name="Zhang Min"):
        staff_id = str(uuid.uuid4())
        data = {
            "staff_id": staff_id,
            "email": f"{staff_id[:8]}@station.example.cn",
            "name": name,
            "role": "advisor",
        }
        self.publish("staff.registered", data, staff_id)
        wait_until(lambda: self.sql("SELECT 1 FROM advisors WHERE id = %s", (staff_id,)))
        return staff_id

    def post(self, path, body=None, headers=None):
        return requests.post(f"{self.url}{path}", json=body or {}, headers=headers, timeout=30)

    def get(self, path, headers=None, **params):
        return requests.get(f"{self.url}{path}", headers=headers, params=params, timeout=30)


@pytest.fixture
def consulting(config_for, container_factory, amqp_uri):
    clock = FrozenClock(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
    config = config_for(
        "consulting", OUTBOX_SWEEP_SECONDS=0.2, RETRY_BASE_DELAY_MS=200, CLOCK=clock
    )
    # As the deploy step does: queues first, so the seeded policy.published events find them.
    with Connection(amqp_uri) as connection:
        declare_service(connection.channel(), ConsultingService, config)
    pool = ConnectionPool(config["DATABASE_URL"], 1)
    seed(pool)
    pool.clear()
    containers = []
    for _ in range(2):  # two replicas on one database: competing consumers, two SLA timers
        container = container_factory(ConsultingService, config)
        container.start()
        containers.append(container)
    service = Consulting(
        service_url(containers[0]), config["DATABASE_URL"], amqp_uri, clock, containers
    )
    # The seeded policies' publication is relayed and handled (nobody to re-assess yet).
    wait_until(lambda: len(service.sql("SELECT 1 FROM inbox")) >= 9, message="seed handled")
    return service


def eligible_codes(event):
    return {e["code"]: e["tier"] for e in event.data["eligible"]}


def test_registration_is_assessed_and_explained_in_the_callers_language(consulting, spy, token_for):
    assessed = spy("consulting", "eligibility.assessed")
    returnee = consulting.register()
    event = assessed.wait_for("eligibility.assessed", lambda e: e.subject == returnee)
    assert eligible_codes(event) == LI_WEI_ELIGIBLE
    assert sorted(event.data["newly_eligible"]) == sorted(LI_WEI_ELIGIBLE)
    assert event.data["no_longer_eligible"] == []
    # Only what the rules need is stored: no name, email or phone.
    stored = consulting.sql("SELECT facts FROM returnees WHERE id = %s", (returnee,))[0]["facts"]
    assert "name" not in stored and "email" not in stored and "phone" not in stored

    me = token_for("returnee", returnee)
    zh = consulting.get(f"/returnees/{returnee}/eligibility", {**me, "Accept-Language": "zh-CN"})
    assert zh.status_code == 200, zh.text
    startup = next(p for p in zh.json() if p["code"] == "national-startup-support")
    assert startup["eligible"] is True and startup["tier"] == "key"
    assert startup["title"] == "留学人员回国创业启动支持计划"
    assert {r["criterion"] for r in startup["reasons"]} >= {"capital_500k", "majority_share"}
    assert all(r["detail"] for r in startup["reasons"])
    advisor = token_for("advisor")
    refused = consulting.get(f"/returnees/{returnee}/eligibility", advisor)  # no case, no reason
    assert refused.status_code == 403 and refused.json()["error"] == "case_or_reason_required"
    stated = {**advisor, "X-Access-Reason": "A%20callback"}  # UTF-8, percent-encoded
    en = consulting.get(f"/returnees/{returnee}/eligibility", stated).json()
    hukou = next(p for p in en if p["code"] == "sh-hukou-returnees-2020")
    failed = next(r for r in hukou["reasons"] if r["criterion"] == "no_hukou_yet")
    assert failed["passed"] is False and failed["values"]["actual"] == "hukou"
    assert failed["detail"].startswith("not met")

    path = f"/returnees/{returnee}/eligibility"
    assert consulting.get(path).status_code == 401
    assert consulting.get(path, token_for("returnee")).status_code == 403
    assert consulting.get(path, token_for("provider")).status_code == 403
    unknown = consulting.get(f"/returnees/{uuid.uuid4()}/eligibility", token_for("admin"))
    assert unknown.status_code == 404


def test_a_stale_update_does_not_overwrite_a_newer_profile(consulting, spy):
    assessed = spy("consulting", "eligibility.assessed")
    returnee = str(uuid.uuid4())
    newer = CATALOG.create(
        "accounts",
        "returnee.updated",
        {**PROFILE, "returnee_id": returnee, "industry": "fintech", "changed_fields": ["industry"]},
        subject=returnee,
    )
    older = CATALOG.create(
        "accounts",
        "returnee.registered",
        {**PROFILE, "returnee_id": returnee},
        subject=returnee,
        time=newer.time - timedelta(seconds=5),
    )
    publish_events(consulting.amqp_uri, [newer])
    assessed.wait_for("eligibility.assessed", lambda e: e.subject == returnee)
    publish_events(consulting.amqp_uri, [older])
    consulting.handled(older)
    facts = consulting.sql("SELECT facts FROM returnees WHERE id = %s", (returnee,))[0]["facts"]
    assert facts["industry"] == "fintech"
    assert consulting.published("eligibility.assessed", returnee) == 1


def test_a_new_policy_re_notifies_only_the_returnees_it_changes(consulting, spy, token_for):
    assessed = spy("consulting", "eligibility.assessed")
    published = spy("consulting", "policy.published")
    ai = consulting.register(industry="ai")
    biotech = [consulting.register(industry="biotech") for _ in range(2)]
    for returnee in (ai, *biotech):
        assessed.wait_for("eligibility.assessed", lambda e, r=returnee: e.subject == r)
    policy = AI_VOUCHER
    admin = token_for("admin")
    assert consulting.post("/policies", policy, token_for("advisor")).status_code == 403
    assert consulting.post("/policies", policy).status_code == 401
    bad = consulting.post(
        "/policies",
        {
            **policy,
            "criteria": [
                {
                    "id": "x",
                    "label": {"zh-CN": "x", "en": "x"},
                    "field": "salary",
                    "op": "gte",
                    "value": 1,
                }
            ],
        },
        admin,
    )
    assert bad.status_code == 400 and "criteria" in bad.json()["fields"]
    created = consulting.post("/policies", policy, admin)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == policy_id(policy["code"])
    assert consulting.post("/policies", policy, admin).status_code == 409
    published.wait_for("policy.published", lambda e: e.data["code"] == policy["code"])

    event = assessed.wait_for(
        "eligibility.assessed", lambda e: policy["code"] in e.data["newly_eligible"]
    )
    assert event.subject == ai
    assert policy["code"] in eligible_codes(event) and "national-startup-support" in eligible_codes(
        event
    )
    later = assessed.events("eligibility.assessed", wait=1.5)
    assert [e.subject for e in later[3:]] == [ai]  # nobody else heard about it
    listed = consulting.get("/policies").json()
    assert policy["code"] in {p["code"] for p in listed} and len(listed) == 10
    assert consulting.get(f"/policies/{created.json()['id']}").json()["code"] == policy["code"]
    assert consulting.get(f"/policies/{uuid.uuid4()}").status_code == 404


def test_a_new_policy_reassesses_everyone_a_batch_per_transaction(consulting, token_for):
    """1,200 returnees stored directly: the re-assessment is recorded by the event handler and
    done by the loop, 500 returnees per transaction (events of one commit share its now())."""
    ids = sorted(str(uuid.uuid4()) for _ in range(1200))
    pool = ConnectionPool(consulting.db, 1)
    try:
        with pool.cursor() as cur:
            psycopg2.extras.execute_values(
                cur,
                "INSERT INTO returnees (id, facts, profile_time) VALUES %s",
                [
                    (rid, to_json(facts_of({**PROFILE, "industry": industry})), T0)
                    for rid, industry in zip(ids, ["ai", "biotech"] * 600, strict=True)
                ],
            )
    finally:
        pool.clear()
    policy = {**AI_VOUCHER, "code": "changning-ai-compute-voucher-bulk"}
    assert consulting.post("/policies", policy, token_for("admin")).status_code == 201

    def newly_eligible():
        return consulting.sql(
            "SELECT subject, created_at FROM outbox WHERE routing_key = 'eligibility.assessed'"
            " AND convert_from(body, 'UTF8')::jsonb -> 'data' -> 'newly_eligible' ? %s",
            (policy["code"],),
        )

    wait_until(
        lambda: len(newly_eligible()) == 600 and not consulting.sql("SELECT 1 FROM reassessments"),
        60,
        message="everyone re-assessed",
    )
    rows = newly_eligible()
    assert sorted(r["subject"] for r in rows) == ids[0::2]
    assert len({r["created_at"] for r in rows}) == 3  # 1,200 returnees, 500 per transaction


def test_erasure_deletes_everything_about_the_returnee(consulting, spy, token_for):
    assessed = spy("consulting", "eligibility.assessed")
    returnee = consulting.register()
    assessed.wait_for("eligibility.assessed", lambda e: e.subject == returnee)
    me = token_for("returnee", returnee)
    assert consulting.post("/consultations", {"topic": "funding", "question": "?"}, me).ok
    consulting.publish("returnee.erased", {"returnee_id": returnee}, returnee)
    wait_until(lambda: not consulting.sql("SELECT 1 FROM returnees WHERE id = %s", (returnee,)))
    for table, column in (("eligibilities", "returnee_id"), ("consultations", "returnee_id")):
        assert not consulting.sql(f"SELECT 1 FROM {table} WHERE {column} = %s", (returnee,))
    assert consulting.get(f"/returnees/{returnee}/eligibility", me).status_code == 404


def test_consultation_lifecycle_with_an_event_per_transition(consulting, spy, token_for):
    events = spy("consulting", "consultation.*")
    advisors = sorted([consulting.advisor("A"), consulting.advisor("B")])
    returnee = str(uuid.uuid4())
    me = token_for("returnee", returnee)
    first = consulting.post("/consultations", {"topic": "funding", "question": "Grants?"}, me)
    second = consulting.post("/consultations", {"topic": "hukou", "question": "Hukou?"}, me)
    assert first.status_code == second.status_code == 201
    first, second = first.json(), second.json()
    assert first["status"] == "assigned" and second["status"] == "assigned"
    assert sorted([first["advisor_id"], second["advisor_id"]]) == advisors  # round-robin
    cid, advisor = first["id"], token_for("advisor", first["advisor_id"])

    asked = consulting.post(
        f"/consultations/{cid}/messages",
        {"body": "Your registered capital?", "asks_returnee": True},
        advisor,
    )
    assert asked.json()["status"] == "waiting_on_returnee" and asked.json()["sla_paused"]
    replied = consulting.post(f"/consultations/{cid}/messages", {"body": "1,000,000 CNY"}, me)
    assert replied.json()["status"] == "assigned"
    answered = consulting.post(
        f"/consultations/{cid}/messages", {"body": "Apply by March."}, advisor
    )
    assert answered.json()["status"] == "answered"
    assert [m["author_role"] for m in answered.json()["messages"]] == [
        "advisor",
        "returnee",
        "advisor",
    ]
    assert consulting.post(f"/consultations/{cid}/rating", {"rating": 5}, me).status_code == 409
    assert consulting.post(f"/consultations/{cid}/close", {}, me).json()["status"] == "closed"
    assert consulting.post(f"/consultations/{cid}/close", {}, me).status_code == 409
    bad_rating = consulting.post(f"/consultations/{cid}/rating", {"rating": 9}, me)
    assert bad_rating.status_code == 400 and "rating" in bad_rating.json()["fields"]
    rated = consulting.post(f"/consultations/{cid}/rating", {"rating": 4, "comment": "ok"}, me)
    assert rated.json()["rating"] == 4
    assert consulting.post(f"/consultations/{cid}/reopen", {}, me).json()["status"] == "reopened"

    types = [e.type for e in events.events(wait=1.0) if e.data["consultation_id"] == cid]
    assert types == [
        "consultation.requested",
        "consultation.assigned",
        "consultation.waiting_on_returnee",
        "consultation.assigned",
        "consultation.answered",
        "consultation.closed",
        "consultation.rated",
        "consultation.reopened",
    ]
    assert all("question" not in e.data for e in events.events())

    # Authorization: another returnee cannot see or touch it; providers cannot assign.
    stranger = token_for("returnee")
    assert consulting.get(f"/consultations/{cid}", stranger).status_code == 404
    assert consulting.post(f"/consultations/{cid}/close", {}, stranger).status_code == 404
    assert (
        consulting.post(f"/consultations/{cid}/assign", {}, token_for("provider")).status_code
        == 403
    )
    assert consulting.post("/consultations", {"topic": "x", "question": "?"}, me).status_code == 400
    assert (
        consulting.post(
            "/consultations", {"topic": "funding", "question": "?"}, token_for("advisor")
        ).status_code
        == 403
    )
    mine = consulting.get("/consultations", me).json()
    assert {c["id"] for c in mine} == {cid, second["id"]}
    assert consulting.get("/consultations", stranger).json() == []
    reassigned = consulting.post(
        f"/consultations/{cid}/assign", {"advisor_id": advisors[0]}, token_for("admin")
    )
    assert reassigned.json()["advisor_id"] == advisors[0]


def test_sla_breach_with_frozen_time_is_reported_once_by_two_replicas(consulting, spy, token_for):
    breaches = spy("consulting", "consultation.sla_breached")
    consulting.clock.now = T0
    me = token_for("returnee")
    waiting = consulting.post("/consultations", {"topic": "funding", "question": "a"}, me).json()
    silent = consulting.post("/consultations", {"topic": "funding", "question": "b"}, me).json()
    advisor = consulting.advisor()
    consulting.post(
        f"/consultations/{waiting['id']}/assign", {"advisor_id": advisor}, token_for("admin")
    )
    asked = consulting.post(
        f"/consultations/{waiting['id']}/messages",
        {"body": "Your company name?", "asks_returnee": True},
        token_for("advisor", advisor),
    )
    assert asked.json()["status"] == "waiting_on_returnee"

    def check_from_both_replicas():
        threads = []
        for container in consulting.containers:

            def run(container=container):
                with entrypoint_hook(container, "check_sla") as hook:
                    hook()

            threads.append(threading.Thread(target=run))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    consulting.clock.now = T0 + timedelta(hours=7)  # within the first-response window
    check_from_both_replicas()  # returns when both passes have committed
    assert consulting.published("consultation.sla_breached") == 0
    consulting.clock.now = T0 + timedelta(hours=9)
    check_from_both_replicas()
    check_from_both_replicas()
    breach = breaches.wait_for("consultation.sla_breached")
    assert breach.data["consultation_id"] == silent["id"]
    assert breach.data["deadline"] == "first_response"
    assert breach.data["due_at"] == (T0 + timedelta(hours=8)).isoformat()
    # Four days later: the silent ticket misses resolution; the one waiting on the returnee is
    # off the clock and is not reported.
    consulting.clock.now = T0 + timedelta(days=4)
    check_from_both_replicas()
    seen = breaches.events(wait=1.0)
    assert [(e.data["consultation_id"], e.data["deadline"]) for e in seen] == [
        (silent["id"], "first_response"),
        (silent["id"], "resolution"),
    ]
    escalated = consulting.sql("SELECT escalated FROM consultations WHERE id = %s", (silent["id"],))
    assert escalated[0]["escalated"] is True


def test_concurrent_bookings_never_exceed_capacity(consulting, spy, token_for):
    booked_events = spy("consulting", "appointment.booked", "appointment.cancelled")
    consulting.clock.now = T0
    advisor = token_for("advisor")
    slot = consulting.post(
        "/slots",
        {
            "starts_at": "2026-12-03T14:00:00+08:00",
            "ends_at": "2026-12-03T14:30:00+08:00",
            "location": "Changning Returnee Service Station, room 201",
            "capacity": 3,
        },
        advisor,
    )
    assert slot.status_code == 201, slot.text
    slot_id = slot.json()["id"]
    assert (
        consulting.post(
            "/slots",
            {
                "starts_at": "2026-12-03T14:00:00+08:00",
                "ends_at": "2026-12-03T13:00:00+08:00",
                "location": "x",
                "capacity": 1,
            },
            advisor,
        ).status_code
        == 422  # a rule beyond the schema, stated in the operation
    )
    valid = {
        "starts_at": "2026-12-04T14:00:00+08:00",
        "ends_at": "2026-12-04T15:00:00+08:00",
        "location": "room 201",
        "capacity": 2,
    }
    assert consulting.post("/slots", valid, token_for("returnee")).status_code == 403
    # the role comes before the body: a stranger learns nothing of what a slot looks like
    assert consulting.post("/slots", {"nonsense": 1}, token_for("returnee")).status_code == 403
    # ISO 8601 offsets beyond PostgreSQL's ±15:59 are taken as the instant they name
    far_east = {**valid, "starts_at": "2026-12-05T14:00:00+23:30", "capacity": 1}
    far_east["ends_at"] = "2026-12-05T15:00:00+23:30"
    stored = consulting.post("/slots", far_east, advisor)
    assert stored.status_code == 201, stored.text
    assert stored.json()["starts_at"] == "2026-12-04T14:30:00+00:00"
    # and one whose UTC is outside the years 1-9999 is no instant at all
    too_early = {**valid, "starts_at": "0001-01-01T00:00:00+05:00"}
    rejected = consulting.post("/slots", too_early, advisor)
    assert rejected.status_code == 400 and "starts_at" in rejected.json()["fields"], rejected.text

    returnees = [str(uuid.uuid4()) for _ in range(12)]
    results: dict[str, int] = {}
    start = threading.Barrier(len(returnees))

    def book(returnee):
        start.wait()
        response = consulting.post(
            "/appointments", {"slot_id": slot_id}, token_for("returnee", returnee)
        )
        results[returnee] = response.status_code

    threads = [threading.Thread(target=book, args=(r,)) for r in returnees]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [201] * 3 + [409] * 9
    row = consulting.sql("SELECT booked, capacity FROM slots WHERE id = %s", (slot_id,))[0]
    assert row == {"booked": 3, "capacity": 3}

    lucky = [r for r, status in results.items() if status == 201]
    mine = consulting.get(f"/returnees/{lucky[0]}/appointments", token_for("returnee", lucky[0]))
    appointment = mine.json()[0]
    assert (
        consulting.get(f"/returnees/{lucky[0]}/appointments", token_for("returnee")).status_code
        == 403
    )
    other = consulting.post(f"/appointments/{appointment['id']}/cancel", {}, token_for("returnee"))
    assert other.status_code == 404
    cancelled = consulting.post(
        f"/appointments/{appointment['id']}/cancel", {}, token_for("returnee", lucky[0])
    )
    assert cancelled.json()["status"] == "cancelled"
    again = consulting.post("/appointments", {"slot_id": slot_id}, token_for("returnee", lucky[1]))
    assert again.status_code == 409  # already booked by this returnee, and full anyway
    late = consulting.post("/appointments", {"slot_id": slot_id}, token_for("returnee"))
    assert late.status_code == 201  # the cancelled seat is free again
    seen = booked_events.events(wait=1.0)
    assert [e.type for e in seen].count("appointment.booked") == 4
    assert [e.data["cancelled_by"] for e in seen if e.type == "appointment.cancelled"] == [
        "returnee"
    ]


def test_openapi_document_is_valid(consulting):
    from openapi_spec_validator import validate as validate_openapi

    document = consulting.get("/openapi.json").json()
    validate_openapi(document)
    assert "/returnees/{returnee_id}/eligibility" in document["paths"]


def test_erasure_releases_the_seats_the_returnee_booked(consulting, token_for):
    consulting.clock.now = T0
    slot = consulting.post(
        "/slots",
        {
            "starts_at": "2026-12-03T14:00:00+08:00",
            "ends_at": "2026-12-03T14:30:00+08:00",
            "location": "Changning Returnee Service Station, room 201",
            "capacity": 1,
        },
        token_for("advisor"),
    ).json()
    erased, waiting = str(uuid.uuid4()), str(uuid.uuid4())
    booked = consulting.post(
        "/appointments", {"slot_id": slot["id"]}, token_for("returnee", erased)
    )
    assert booked.status_code == 201, booked.text
    full = consulting.post("/appointments", {"slot_id": slot["id"]}, token_for("returnee", waiting))
    assert full.status_code == 409

    erasure = CATALOG.create("accounts", "returnee.erased", {"returnee_id": erased}, subject=erased)
    publish_events(consulting.amqp_uri, [erasure])
    consulting.handled(erasure)
    assert consulting.sql("SELECT booked FROM slots WHERE id = %s", (slot["id"],)) == [
        {"booked": 0}
    ]
    assert consulting.sql("SELECT 1 FROM appointments WHERE returnee_id = %s", (erased,)) == []
    again = consulting.post(
        "/appointments", {"slot_id": slot["id"]}, token_for("returnee", waiting)
    )
    assert again.status_code == 201, again.text


def test_a_profile_event_arriving_after_the_erasure_brings_nothing_back(consulting):
    returnee = str(uuid.uuid4())
    registered = CATALOG.create(
        "accounts", "returnee.registered", {**PROFILE, "returnee_id": returnee}, subject=returnee
    )
    erasure = CATALOG.create(
        "accounts", "returnee.erased", {"returnee_id": returnee}, subject=returnee,
        time=registered.time + timedelta(seconds=1),
    )  # fmt: skip
    publish_events(consulting.amqp_uri, [erasure])
    consulting.handled(erasure)
    publish_events(consulting.amqp_uri, [registered])  # the registration, delivered late
    consulting.handled(registered)
    assert consulting.sql("SELECT 1 FROM returnees WHERE id = %s", (returnee,)) == []
    assert consulting.published("eligibility.assessed", returnee) == 0


def test_an_application_from_checklist_to_award_over_http(consulting, spy, token_for):
    events = spy("consulting", "application.submitted", "application.approved",
                 "application.awarded", "application.withdrawn")  # fmt: skip
    returnee = consulting.register()
    wait_until(lambda: consulting.sql("SELECT 1 FROM returnees WHERE id = %s", (returnee,)))
    me, advisor = token_for("returnee", returnee), token_for("advisor")
    talent = policy_id("changning-overseas-talent-2026")

    assert consulting.post("/applications", {"policy_id": talent}, advisor).status_code == 403
    started = consulting.post("/applications", {"policy_id": talent}, me)
    assert started.status_code == 201, started.text
    application = started.json()
    assert (application["status"], application["tier"], application["policy_version"]) == (
        "draft", "b", 2)  # fmt: skip
    again = consulting.post("/applications", {"policy_id": talent}, me)
    assert again.status_code == 409
    aid = application["id"]

    # Nobody else's business: another returnee gets 404 on every verb, a provider 403.
    stranger = token_for("returnee")
    assert consulting.get(f"/applications/{aid}", stranger).status_code == 404
    assert consulting.post(f"/applications/{aid}/withdraw", {}, stranger).status_code == 404
    marked_by_stranger = requests.put(
        f"{consulting.url}/applications/{aid}/checklist/passport", json={}, headers=stranger,
        timeout=30)  # fmt: skip
    assert marked_by_stranger.status_code == 404
    assert consulting.get(f"/applications/{aid}", token_for("provider")).status_code == 403
    assert consulting.get("/applications", stranger).json() == {"items": [], "next": None}

    submit = consulting.post(f"/applications/{aid}/submit", {}, me)
    assert submit.status_code == 409 and "application_form" in submit.json()["message"]
    for item in application["checklist"]:
        marked = requests.put(
            f"{consulting.url}/applications/{aid}/checklist/{item['document_id']}",
            json={"reference": "brought to counter 3"}, headers=me, timeout=30)  # fmt: skip
        assert marked.status_code == 200, marked.text
    assert consulting.post(f"/applications/{aid}/submit", {"note": "All here"}, me).ok
    assert consulting.post(f"/applications/{aid}/review", {}, me).status_code == 403
    assert consulting.post(f"/applications/{aid}/review", {}, advisor).ok
    assert consulting.post(f"/applications/{aid}/approve", {}, advisor).ok
    award = {"amount_cny": 100000, "awarded_on": "2026-12-18"}
    assert consulting.post(f"/applications/{aid}/reject", {}, advisor).status_code == 400
    assert consulting.post(f"/applications/{aid}/award", award, advisor).ok
    assert consulting.post(f"/applications/{aid}/award", award, advisor).status_code == 409
    assert consulting.post(f"/applications/{aid}/withdraw", {}, me).status_code == 409

    seen = consulting.get(f"/applications/{aid}", {**me, "Accept-Language": "zh-CN"}).json()
    assert [h["status"] for h in seen["history"]] == [
        "draft", "submitted", "under_review", "approved", "awarded"]  # fmt: skip
    assert seen["checklist"][0]["title"] == "海外高层次人才创业资助申报表"
    assert (seen["amount_cny"], seen["awarded_on"]) == (100000, "2026-12-18")
    awarded = events.wait_for("application.awarded", lambda e: e.subject == aid)
    assert awarded.data["amount_cny"] == 100000 and awarded.data["code"] == (
        "changning-overseas-talent-2026")  # fmt: skip
    assert events.wait_for("application.submitted", lambda e: e.subject == aid)

    # Pages: staff see everyone's, a cursor leads to the next page, a bad one is a 400.
    other = consulting.register()
    wait_until(lambda: consulting.sql("SELECT 1 FROM returnees WHERE id = %s", (other,)))
    assert consulting.post("/applications", {"policy_id": talent},
                           token_for("returnee", other)).status_code == 201  # fmt: skip
    first = consulting.get("/applications", advisor, limit=1).json()
    assert len(first["items"]) == 1 and first["next"]
    second = consulting.get("/applications", advisor, limit=1, cursor=first["next"]).json()
    assert second["items"][0]["id"] != first["items"][0]["id"]
    bad = consulting.get("/applications", advisor, cursor="nope")  # of the alphabet, none of ours
    assert bad.status_code == 422 and "cursor" in bad.json()["fields"]
    odd = consulting.get("/applications", advisor, cursor="no pe!")  # not even the alphabet
    assert odd.status_code == 400 and "cursor" in odd.json()["fields"]


def test_versions_as_of_missing_facts_and_the_preview_over_http(consulting, spy, token_for):
    returnee = consulting.register(
        company={**PROFILE["company"], "is_largest_shareholder": None}, industry="ai"
    )
    wait_until(lambda: consulting.sql("SELECT 1 FROM returnees WHERE id = %s", (returnee,)))
    me, admin = token_for("returnee", returnee), token_for("admin")

    missing = consulting.get(f"/returnees/{returnee}/missing-facts", me)
    assert missing.status_code == 200, missing.text
    assert [f["fact"] for f in missing.json()["facts"]] == ["company.is_largest_shareholder"]
    assert consulting.get(f"/returnees/{returnee}/missing-facts",
                          token_for("returnee")).status_code == 403  # fmt: skip

    # A preview changes nothing: no row, no event.
    talent = policy_id("changning-overseas-talent-2026")
    current = consulting.get(f"/policies/{talent}").json()
    draft = {k: current[k] for k in ("code", "title", "summary", "citation", "criteria",
                                     "tiers", "documents", "effective_from", "effective_to",
                                     "application_deadline")}  # fmt: skip
    draft["criteria"] = [c for c in draft["criteria"] if c["id"] != "largest_shareholder"]
    outbox = len(consulting.sql("SELECT 1 FROM outbox"))
    assert consulting.post("/policies/preview", draft, token_for("advisor")).status_code == 403
    preview = consulting.post("/policies/preview", draft, admin)
    assert preview.status_code == 200, preview.text
    impact = preview.json()
    assert impact["current_version"] == 2 and impact["newly_eligible"]["count"] >= 1
    assert {"tier": "b", "count": impact["newly_eligible"]["count"]} in (
        impact["newly_eligible"]["by_tier"])  # fmt: skip
    assert len(consulting.sql("SELECT 1 FROM outbox")) == outbox
    assert consulting.sql("SELECT version FROM policies WHERE id = %s", (talent,)) == [
        {"version": 2}]  # fmt: skip

    # Published as version 3 the next day: version 2 stays, and explains the day before.
    assessed = spy("consulting", "eligibility.assessed")
    consulting.clock.now = consulting.clock.now + timedelta(days=1)
    published = consulting.post(f"/policies/{talent}/versions", draft, admin)
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 3
    versions = consulting.get(f"/policies/{talent}/versions").json()
    assert [(v["version"], v["in_force_from"]) for v in versions][-1] == (3, "2026-11-29")
    event = assessed.wait_for("eligibility.assessed", lambda e: e.subject == returnee)
    assert event.data["newly_eligible"] == ["changning-overseas-talent-2026"]
    assert {e["version"] for e in event.data["eligible"] if e["policy_id"] == talent} == {3}
    path = f"/returnees/{returnee}/eligibility"
    then = next(p for p in consulting.get(path, me, as_of="2026-11-28").json()
                if p["policy_id"] == talent)  # fmt: skip
    now = next(p for p in consulting.get(path, me).json() if p["policy_id"] == talent)
    assert (then["version"], then["status"]) == (2, "undetermined")
    assert (now["version"], now["status"]) == (3, "eligible")


def test_the_slots_walk_page_by_page_with_slots_published_between_pages(consulting, token_for):
    consulting.clock.now = T0
    advisor = token_for("advisor")

    def publish(day, hour):
        body = {
            "starts_at": f"2026-12-{day:02d}T{hour:02d}:00:00+08:00",
            "ends_at": f"2026-12-{day:02d}T{hour:02d}:30:00+08:00",
            "location": "Changning Returnee Service Station, room 201",
            "capacity": 2,
        }
        created = consulting.post("/slots", body, advisor)
        assert created.status_code == 201, created.text
        return created.json()["id"]

    # ties on starts_at: the id orders them
    first = {publish(3, 9), publish(3, 9), publish(3, 10), publish(4, 9), publish(5, 9)}
    later = []
    seen = walk_pages(f"{consulting.url}/slots", advisor, limit=2,
                      between=lambda n: later.append(publish(20 + n, 9)))  # fmt: skip
    ids = [s["id"] for s in seen]
    # soonest first: later ones come later, all but the one after the last page
    assert first <= set(ids) and set(later[:-1]) <= set(ids) and later[-1] not in ids
    assert [s["starts_at"] for s in seen] == sorted(s["starts_at"] for s in seen)
    refuses_bad_pages(f"{consulting.url}/slots", advisor)
    refuses_bad_pages(f"{consulting.url}/applications", advisor)
