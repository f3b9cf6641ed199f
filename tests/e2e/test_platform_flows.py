"""The whole platform as returnees, providers and advisors use it: every service a real process."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, quote_plus

import jwt
import pytest

from chassis.settings import FRONTS, SERVICES
from tests.platform import STAFF_PASSWORD
from tests.support import EventSpy, RabbitAdmin, WebhookReceiver, query, wait_until

PROVIDER = "provider@linkong-park.example.cn"  # deploy/reference/organizations.yml
ADVISORS = ("wang.min@station.example", "david.chen@station.example")


def notifications(platform, returnee_id, headers) -> list[dict]:
    response = platform.call(
        "GET", "notify", "/notifications", headers, params={"recipient_id": returnee_id}
    )
    assert response.status_code == 200, response.text
    return response.json()


def templates(platform, returnee_id, headers, channel="in_app") -> set[str]:
    return {n["template"] for n in notifications(platform, returnee_id, headers)
            if n["channel"] == channel}  # fmt: skip


@pytest.fixture
def spies(platform):
    made = []

    def spy(producer, *types):
        made.append(EventSpy(platform.amqp_uri, producer, *types))
        return made[-1]

    yield spy
    for item in made:
        item.close()


def test_registration_is_assessed_matched_and_welcomed(platform, spies):
    assessed = spies("consulting", "eligibility.assessed")
    proposed = spies("matching", "matches.proposed")
    returnee, headers, body = platform.register(locale="zh-CN")
    rid = returnee["id"]

    assessment = assessed.wait_for("eligibility.assessed", lambda e: str(e.subject) == rid, 30)
    assert assessment.data["eligible"], "the example returnee qualifies for some programmes"
    matches = proposed.wait_for("matches.proposed", lambda e: str(e.subject) == rid, 30)
    assert matches.data["matches"]

    eligibility = platform.call("GET", "consulting", f"/returnees/{rid}/eligibility", headers)
    assert eligibility.status_code == 200
    assert all(item["reasons"] for item in eligibility.json())
    listed = platform.call("GET", "matching", f"/returnees/{rid}/matches", headers).json()
    assert listed and all(m["reasons"] for m in listed)

    expected = {"welcome", "matches_found", "policies_eligible"}
    try:
        wait_until(lambda: expected <= templates(platform, rid, headers), 30, 0.2)
    except AssertionError:
        raise AssertionError(f"inbox: {notifications(platform, rid, headers)}") from None
    wait_until(lambda: platform.smtp.to(body["email"]), 30, 0.1, "the welcome email")
    welcome = next(m for m in platform.smtp.to(body["email"]) if "欢迎" in m["Subject"])
    assert welcome.get_body(("plain",)) is not None and welcome.get_body(("html",)) is not None


def test_a_new_resource_reaches_the_returnees_it_fits(platform, spies):
    proposed = spies("matching", "matches.proposed")
    returnee, headers, _ = platform.register(needs=["legal", "mentorship"], industry="fintech")
    rid = returnee["id"]
    proposed.wait_for("matches.proposed", lambda e: str(e.subject) == rid, 30)
    provider = platform.token(PROVIDER, STAFF_PASSWORD)
    organization = jwt.decode(provider["Authorization"][7:], options={"verify_signature": False})
    resource = platform.call(
        "POST",
        "matching",
        "/resources",
        provider,
        json={
            "title": "Fintech legal clinic for returnee founders",
            "kind": "legal",
            "organization_id": organization["org"],
            "needs_served": ["legal"],
            "industries": ["fintech"],
            "stages": [],
            "capacity": 5,
            "description": "Cross-border compliance hours with partner lawyers.",
        },
    )
    assert resource.status_code == 201, resource.text
    resource_id = resource.json()["id"]
    rematched = proposed.wait_for(
        "matches.proposed",
        lambda e: str(e.subject) == rid and resource_id in map(str, e.data["added_resource_ids"]),
        30,
    )
    assert rematched
    wait_until(
        lambda: (
            len(
                [
                    n
                    for n in notifications(platform, rid, headers)
                    if n["template"] == "matches_found" and n["channel"] == "in_app"
                ]
            )
            >= 2
        ),  # fmt: skip
        30,
        0.2,
        "a second matches_found notification",
    )


def test_intention_accepted_by_the_provider_is_counted(platform):
    returnee, headers, _ = platform.register(needs=["office_space"], industry="biotech")
    rid = returnee["id"]
    provider = platform.token(PROVIDER, STAFF_PASSWORD)
    organization = jwt.decode(provider["Authorization"][7:], options={"verify_signature": False})

    def park_match():
        matches = platform.call("GET", "matching", f"/returnees/{rid}/matches", headers).json()
        return next((m for m in matches if m["organization_id"] == organization["org"]), None)

    match = wait_until(park_match, 30, 0.2, "a match with the park")
    intention = platform.call(
        "POST",
        "matching",
        "/intentions",
        headers,
        json={"resource_id": match["resource_id"], "message": "想了解入驻条件"},
    )
    assert intention.status_code == 201, intention.text
    intention_id = intention.json()["intention_id"]
    accepted = platform.call(
        "POST", "matching", f"/intentions/{intention_id}/accept", provider, json={}
    )
    assert accepted.status_code == 200, accepted.text
    wait_until(
        lambda: "intention_update" in templates(platform, rid, headers),
        30,
        0.2,
        "the returnee told of the acceptance",
    )
    statistics = platform.call("GET", "matching", "/statistics/intentions", platform.admin()).json()
    assert statistics["accepted"] >= 1


def test_an_exchange_session_from_invitation_to_its_report(platform):
    """An advisor publishes an exchange session organized by the park; an invited returnee
    registers and gets their code, the park's provider registers for the park; both are checked
    in at the door; the park and the WRSA sign an agreement; the returnee expresses an
    intention toward the park there, which the park accepts; the closing report counts it all."""
    returnee, headers, _ = platform.register(industry="biotech")
    rid = returnee["id"]
    advisor = platform.token(ADVISORS[0], STAFF_PASSWORD)
    provider = platform.token(PROVIDER, STAFF_PASSWORD)
    park = jwt.decode(provider["Authorization"][7:], options={"verify_signature": False})["org"]
    wrsa = str(uuid.uuid5(uuid.UUID("5b0f4c52-6a7e-4d0e-9a51-0d3c2f6f1a10"),
                          "organization:wrsa-changning"))  # fmt: skip
    starts = datetime.now(UTC) + timedelta(seconds=12)
    published = platform.call(
        "POST", "activities", "/activities", advisor,
        json={
            "kind": "exchange",
            "title": {"zh-CN": "海归人才交流会", "en": "Returnee exchange session"},
            "summary": {"zh-CN": "校友会与海归面对面", "en": "Alumni associations meet returnees"},
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "venue": {"name": "Changning Returnee Service Station", "address": "Changning"},
            "capacity": 40,
            "organizer_ids": [park],
            "audience": {"industries": ["biotech"]},
        },
    )  # fmt: skip
    assert published.status_code == 201, published.text
    activity = published.json()["id"]
    path = f"/activities/{activity}"
    wait_until(
        lambda: "activity_invitation" in templates(platform, rid, headers),
        30, 0.2, "the returnee invited",
    )  # fmt: skip

    mine = platform.call("POST", "activities", f"{path}/registrations", headers)
    assert mine.status_code == 201 and mine.json()["status"] == "confirmed", mine.text
    code = mine.json()["check_in_code"]
    theirs = platform.call("POST", "activities", f"{path}/registrations", provider)
    assert theirs.status_code == 201, theirs.text
    confirmation = wait_until(
        lambda: next((n for n in notifications(platform, rid, headers)
                      if n["template"] == "registration_confirmed" and n["channel"] == "in_app"),
                     None),
        30, 0.2, "the confirmation with the code",
    )  # fmt: skip
    assert code in confirmation["body"]

    wait_until(lambda: datetime.now(UTC) > starts, 20, 0.2, "the session begins")
    door = f"{path}/check-ins"
    first = platform.call("POST", "activities", door, advisor, json={"code": code}).json()
    assert first["already_checked_in"] is False and first["name"] == returnee["name"]
    again = platform.call("POST", "activities", door, advisor, json={"code": code}).json()
    assert again["already_checked_in"] is True
    assert (
        platform.call("POST", "activities", door, advisor, json={"code": "NOPE"}).status_code == 422
    )
    platform.call(
        "POST", "activities", door, advisor, json={"code": theirs.json()["check_in_code"]}
    )

    signed = platform.call(
        "POST", "activities", f"{path}/agreements", advisor,
        json={"title": "Cooperation agreement", "signed_on": starts.date().isoformat(),
              "parties": [{"organization_id": park}, {"organization_id": wrsa}]},
    )  # fmt: skip
    assert signed.status_code == 201, signed.text

    def expressed():  # once matching has learnt of the attendance
        response = platform.call(
            "POST", "matching", "/intentions", headers,
            json={"organization_id": park, "activity_id": activity, "message": "会上聊得很好"},
        )  # fmt: skip
        return response if response.status_code == 201 else None

    intention = wait_until(expressed, 30, 0.3, "an intention at the session").json()
    assert intention["resource_id"] is None and intention["activity_id"] == activity
    accepted = platform.call(
        "POST", "matching", f"/intentions/{intention['intention_id']}/accept", provider, json={}
    )
    assert accepted.status_code == 200, accepted.text

    def counted():
        report = platform.call("GET", "activities", f"{path}/report", advisor).json()
        return report if report["intentions"]["accepted"] == 1 else None

    wait_until(counted, 30, 0.2, "the intention in the activity's report")
    closed = platform.call("POST", "activities", f"{path}/close", advisor, json={})
    assert closed.status_code == 200, closed.text
    report = closed.json()
    assert (report["registered"], report["attended"], report["attendance_rate"]) == (2, 2, 1.0)
    assert report["organizations"] == [{"organization_id": park, "name": "Linkong Economic Park"}]
    assert (report["agreements"], report["intentions"]["total"]) == (1, 1)
    wait_until(
        lambda: "intention_update" in templates(platform, rid, headers),
        30, 0.2, "the returnee told of the acceptance",
    )  # fmt: skip


def test_consultation_answered_by_an_advisor(platform):
    returnee, headers, _ = platform.register()
    rid = returnee["id"]
    asked = platform.call(
        "POST",
        "consulting",
        "/consultations",
        headers,
        json={"topic": "funding", "question": "启动资金申请需要哪些材料？"},
    )
    assert asked.status_code == 201, asked.text
    consultation = asked.json()
    assert consultation["advisor_id"], "assigned round-robin to a seeded advisor"
    advisor = next(
        h
        for h in (platform.token(email, STAFF_PASSWORD) for email in ADVISORS)
        if jwt.decode(h["Authorization"][7:], options={"verify_signature": False})["sub"]
        == consultation["advisor_id"]
    )
    answered = platform.call(
        "POST",
        "consulting",
        f"/consultations/{consultation['id']}/messages",
        advisor,
        json={"body": "请准备营业执照、股权结构和商业计划书。"},
    )
    assert answered.status_code in (200, 201), answered.text
    # consultation.requested and .assigned made consultation_update notifications already: only
    # one made from consultation.answered tells of the answer.
    wait_until(
        lambda: [
            n
            for n in notifications(platform, rid, headers)
            if n["event_type"] == "consultation.answered" and n["channel"] == "in_app"
        ],
        30,
        0.2,
        "the returnee told of the answer",
    )


# --- erasure -------------------------------------------------------------------------------------
#
# One person uses every service (a consultation answered, an appointment booked, an intention
# accepted), is erased, and every table of every service, the inbox and the outbox included, is
# searched for everything a service keeps of them: their email, name and phone, their id (kept by
# a service only while the person exists), their question, their advisor's answer and their
# message to a provider. Bodies stored as bytea (`outbox.body`, `waiting_events.body`) are
# decoded, and JSON's escaped form of each value is searched too.
#
# What may stay, by design: the tombstones that keep a late event from bringing the person back
# hold only their id (accounts' and matching's `erasures`, notify's `erased_recipients`), as does
# the `returnee.erased` event in accounts' outbox. Inbox records hold event ids only.

TOMBSTONES = {
    ("accounts", "erasures"),
    ("matching", "erasures"),
    ("matching", "returnee_deletions"),  # replicas drop the held returnee (docs/matching.md)
    ("notify", "erased_recipients"),
    ("activities", "erasures"),
    ("consulting", "erasures"),
}
# Every service keeps, for an hour, that the person's tokens are void (chassis.revocation): the id
# alone, so no token of theirs outlives them.
TOMBSTONES |= {(service, "revoked_subjects") for service in SERVICES}


def _text(value) -> str:
    if isinstance(value, memoryview | bytes):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def traces(platform, needles: dict[str, str]) -> list[dict]:
    """Every row of every table of every service that holds one of the `needles` (label ->
    value): `{service, table, found: [labels], row}`."""
    forms = {
        label: {value, json.dumps(value)[1:-1]}  # as stored, and as JSON escapes it
        for label, value in needles.items()
    }
    found = []
    for service in SERVICES:
        url = platform.database_urls[service]
        tables = query(
            url,
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        for table in (t["table_name"] for t in tables):
            for row in query(url, f'SELECT * FROM "{table}"'):
                text = " ".join(_text(v) for v in row.values())
                labels = sorted(
                    label for label, values in forms.items() if any(v in text for v in values)
                )
                if labels:
                    found.append({"service": service, "table": table, "found": labels, "row": row})
    return found


def tables_scanned(platform) -> dict[str, set[str]]:
    return {
        service: {
            t["table_name"]
            for t in query(
                platform.database_urls[service],
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
            )
        }
        for service in SERVICES
    }


def where(found: list[dict]) -> set[tuple[str, str, str]]:
    return {(f["service"], f["table"], label) for f in found for label in f["found"]}


def _is_the_erasure_announcement(item) -> bool:
    row = item["row"]
    return (
        (item["service"], item["table"]) == ("accounts", "outbox")
        and row["routing_key"] in ("returnee.erased", "credentials.revoked")
        and item["found"] == ["id"]
    )


@pytest.fixture(scope="module")
def erased(platform):
    """The person, what the services held of them before the erasure, and after it."""
    spies = [
        EventSpy(platform.amqp_uri, "consulting", "eligibility.assessed"),
        EventSpy(platform.amqp_uri, "matching", "matches.proposed"),
        EventSpy(platform.amqp_uri, "accounts", "returnee.erased"),
    ]
    assessed, proposed, erasures = spies
    # A district system watching registrations, intentions and consultations.
    receiver = WebhookReceiver()
    watched = ["returnee.registered", "intention.expressed", "consultation.requested"]
    subscribed = platform.call(
        "POST", "notify", "/subscriptions", platform.admin(),
        json={"url": receiver.url, "event_types": watched, "secret": "district-crm-secret-1"},
    )  # fmt: skip
    assert subscribed.status_code == 201, subscribed.text
    try:
        marker = uuid.uuid4().hex[:8]
        digits = f"{uuid.uuid4().int % 10**8:08d}"
        returnee, headers, body = platform.register(
            name="钱多多", phone=f"+86 139 {digits[:4]} {digits[4:]}",
            needs=["office_space"], industry="biotech",
        )  # fmt: skip
        rid = returnee["id"]
        assessed.wait_for("eligibility.assessed", lambda e: str(e.subject) == rid, 30)
        proposed.wait_for("matches.proposed", lambda e: str(e.subject) == rid, 30)
        needles = {
            "email": body["email"],
            "name": "钱多多",
            "phone": body["phone"],
            "id": rid,
            "question": f"我的公司{marker}能申请哪些补贴？",
            "answer": f"请准备营业执照{marker}。",
            "message": f"想了解入驻条件{marker}",
        }

        # A consultation answered by the advisor it was assigned to.
        asked = platform.call(
            "POST", "consulting", "/consultations", headers,
            json={"topic": "funding", "question": needles["question"]},
        )  # fmt: skip
        assert asked.status_code == 201, asked.text
        consultation = asked.json()
        advisor = next(
            h
            for h in (platform.token(email, STAFF_PASSWORD) for email in ADVISORS)
            if jwt.decode(h["Authorization"][7:], options={"verify_signature": False})["sub"]
            == consultation["advisor_id"]
        )
        answered = platform.call(
            "POST", "consulting", f"/consultations/{consultation['id']}/messages", advisor,
            json={"body": needles["answer"]},
        )  # fmt: skip
        assert answered.status_code in (200, 201), answered.text

        # A seat booked at the station.
        starts = datetime.now(UTC) + timedelta(days=3)
        slot = platform.call(
            "POST", "consulting", "/slots", advisor,
            json={"starts_at": starts.isoformat(),
                  "ends_at": (starts + timedelta(minutes=30)).isoformat(),
                  "location": "Changning Returnee Service Station, room 201", "capacity": 2},
        )  # fmt: skip
        assert slot.status_code == 201, slot.text
        booked = platform.call(
            "POST", "consulting", "/appointments", headers, json={"slot_id": slot.json()["id"]}
        )
        assert booked.status_code == 201, booked.text

        # An intention the park accepts.
        provider = platform.token(PROVIDER, STAFF_PASSWORD)
        organization = jwt.decode(
            provider["Authorization"][7:], options={"verify_signature": False}
        )["org"]
        matches = platform.call("GET", "matching", f"/returnees/{rid}/matches", headers).json()
        match = next(m for m in matches if m["organization_id"] == organization)
        intention = platform.call(
            "POST", "matching", "/intentions", headers,
            json={"resource_id": match["resource_id"], "message": needles["message"]},
        )  # fmt: skip
        assert intention.status_code == 201, intention.text
        intention_id = intention.json()["intention_id"]
        accepted = platform.call(
            "POST", "matching", f"/intentions/{intention_id}/accept", provider, json={}
        )
        assert accepted.status_code == 200, accepted.text

        # Everything above has reached notify: the person was told of each step, the provider
        # of the intention.
        told = {"consultation.answered", "appointment.booked", "intention.accepted"}
        wait_until(
            lambda: told <= {n["event_type"] for n in notifications(platform, rid, headers)},
            30, 0.2, "notify told the person of every step",
        )  # fmt: skip
        wait_until(
            lambda: query(
                platform.database_urls["notify"],
                "SELECT 1 FROM notifications WHERE context->>'intention_id' = %s"
                " AND event_type = 'intention.expressed'",
                (intention_id,),
            ),
            30, 0.2, "notify told the provider",
        )  # fmt: skip
        wait_until(
            lambda: set(watched) <= {e["type"] for e in receiver.events()}, 30, 0.2,
            "the district system received what it watches",
        )  # fmt: skip
        # An event about them that no handler could take (dead-lettered by every consumer of
        # profiles), and one nobody subscribes to (parked in accounts.unrouted).
        letters = dead_letter_count(platform)
        forge_events(platform, rid, needles)
        wait_until(lambda: dead_letter_count(platform) >= letters + 4, 30, 0.2, "dead letters")
        wait_for_outboxes(platform)
        before = traces(platform, needles)
        queued_before = queue_traces(platform, needles)

        assert platform.call("DELETE", "accounts", f"/returnees/{rid}", headers).status_code == 204
        erasure = erasures.wait_for("returnee.erased", lambda e: str(e.subject) == rid, 30)
        for service in ("consulting", "matching", "notify"):
            wait_until(
                lambda s=service: query(
                    platform.database_urls[s],
                    "SELECT 1 FROM inbox WHERE event_id = %s", (erasure.id,),
                ),
                30, 0.2, f"{service} took in the erasure",
            )  # fmt: skip
        wait_for_outboxes(platform)
        # Every service drops its kept messages about them as the erasure reaches it.
        try:
            wait_until(lambda: not queue_traces(platform, needles), 30, 0.5, "queues scrubbed")
        except AssertionError:
            raise AssertionError(f"left in queues: {queue_traces(platform, needles)}") from None
        yield {
            "id": rid,
            "needles": needles,
            "before": before,
            "after": traces(platform, needles),
            "queued_before": queued_before,
            "queued_after": queue_traces(platform, needles),
            "logged": log_traces(platform, needles),
        }
    finally:
        receiver.stop()
        for spy in spies:
            spy.close()


def forge_events(platform, rid: str, needles: dict) -> None:
    """What the broker may hold about a person outside any database: a `returnee.updated`
    the contract refuses (each consumer dead-letters it, with its error) and an event of a
    type nobody binds (parked by accounts.events' alternate exchange)."""
    from kombu import Connection, Exchange, Producer

    data = {"returnee_id": rid, "name": needles["name"], "email": needles["email"]}
    bad = {"specversion": "1.0", "type": "returnee.updated", "source": "accounts",
           "id": str(uuid.uuid4()), "subject": rid, "data": data}  # fmt: skip
    parked = {**bad, "id": str(uuid.uuid4()), "type": "returnee.noted"}
    with Connection(platform.amqp_uri) as connection:
        producer = Producer(connection.default_channel)
        exchange = Exchange("accounts.events", type="topic", passive=True)
        for body in (bad, parked):
            producer.publish(json.dumps(body, ensure_ascii=False).encode(), exchange=exchange,
                             routing_key=body["type"], message_id=body["id"],
                             content_type="application/cloudevents+json")  # fmt: skip


def _announces_the_erasure(body: bytes) -> bool:
    try:
        event = json.loads(body)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("type") == "returnee.erased" and set(
        event.get("data") or {}) == {"returnee_id"}  # fmt: skip


def dead_letter_count(platform) -> int:
    admin = RabbitAdmin()
    return sum(admin.depth(platform.vhost, f"{s}.dead-letters") or 0 for s in SERVICES)


def queue_traces(platform, needles: dict[str, str]) -> list[tuple[str, str]]:
    """(queue, label) of each message waiting in any queue of the platform that holds one of
    the person's values, in its body or its headers (an error text may quote it)."""
    found = set()
    for message in RabbitAdmin().messages(platform.vhost):
        if _announces_the_erasure(message["body"]):
            continue  # the id alone, for whoever keeps a copy (district systems first)
        text = message["body"].decode("utf-8", "replace") + repr(message["headers"])
        for label, value in needles.items():
            if value in text or json.dumps(value)[1:-1] in text:
                found.add((message["queue"], label))
    return sorted(found)


def log_traces(platform, needles: dict[str, str]) -> list[tuple[str, str, str]]:
    """(process, label, line) of each line any process the platform started logged in the run
    that holds one of the person's values: as written, JSON-escaped or URL-encoded (a path or
    a query in an access line)."""
    found = []
    started = [p for p in (*SERVICES, *FRONTS) if platform.processes[p].process is not None]
    assert set(SERVICES) <= set(started)
    for process in started:
        for line in platform.output(process).splitlines():
            for label, value in needles.items():
                forms = {value, json.dumps(value)[1:-1], quote(value), quote_plus(value)}
                if any(form in line for form in forms):
                    found.append((process, label, line))
    return found


def wait_for_outboxes(platform) -> None:
    for service in SERVICES:
        wait_until(
            lambda s=service: not query(
                platform.database_urls[s], "SELECT 1 FROM outbox WHERE published_at IS NULL"
            ),
            30, 0.2, f"{service}'s outbox published",
        )  # fmt: skip


def test_the_erasure_scan_sees_the_person_where_each_service_keeps_them(platform, erased):
    # The scan can fail: before the erasure it finds each value where the service keeps it,
    # bytea bodies and the inbox included.
    assert {"inbox", "outbox"} <= set.intersection(*tables_scanned(platform).values())
    seen = where(erased["before"])
    assert {
        ("accounts", "accounts", "email"),
        ("accounts", "returnees", "name"),
        ("accounts", "returnees", "phone"),
        ("accounts", "outbox", "email"),  # in the bytea body of returnee.registered
        ("consulting", "returnees", "id"),
        ("consulting", "consultations", "question"),
        ("consulting", "consultation_messages", "answer"),
        ("consulting", "appointments", "id"),
        ("matching", "returnees", "id"),
        ("matching", "intentions", "message"),
        ("matching", "outbox", "message"),
        ("notify", "recipients", "name"),
        ("notify", "recipients", "email"),
        ("notify", "recipients", "phone"),
        ("notify", "notifications", "name"),
        ("notify", "appointments", "id"),
        ("activities", "returnees", "name"),  # the name the door sees at check-in
        ("activities", "invitations", "id"),  # to the seeded exchange session, open to all
    } <= seen, sorted(seen)


def test_the_queue_scan_sees_the_person_in_dead_letters_and_parked_events(erased):
    queues = {queue for queue, _ in erased["queued_before"]}
    assert {"consulting.dead-letters", "matching.dead-letters", "notify.dead-letters",
            "accounts.unrouted"} <= queues, erased["queued_before"]  # fmt: skip


def test_erasure_leaves_nothing_of_the_person_in_any_queue(erased):
    assert erased["queued_after"] == []


def test_no_log_line_of_the_run_holds_the_person_but_by_their_id(erased):
    # The scan reads every process' log: the id is in the access lines of the requests that
    # named it in their path (DELETE /returnees/{id}...), which the services may log.
    assert {label for _, label, _ in erased["logged"]} == {"id"}, erased["logged"]


def test_erasure_leaves_nothing_of_the_person_in_any_service(erased):
    left = [
        f
        for f in erased["after"]
        if (f["service"], f["table"]) not in TOMBSTONES
        and not _is_the_erasure_announcement(f)
        and not _consulting_outbox(f)
        and not _notify_outbox(f)
        and not _others_notifications(f, erased["id"])
    ]
    assert left == [], sorted(where(left))
    # What stays holds the id alone.
    assert all(f["found"] == ["id"] for f in erased["after"] if (f["service"], f["table"]) in
               TOMBSTONES)  # fmt: skip


def _consulting_outbox(item) -> bool:
    return (item["service"], item["table"]) == ("consulting", "outbox")


def _notify_outbox(item) -> bool:
    return (item["service"], item["table"]) == ("notify", "outbox")


def _others_notifications(item, person_id) -> bool:
    return (item["service"], item["table"]) == ("notify", "notifications") and str(
        item["row"]["recipient_id"]
    ) != person_id


def test_consulting_keeps_no_published_event_about_an_erased_person(erased):
    assert [f["row"]["routing_key"] for f in erased["after"] if _consulting_outbox(f)] == []


def test_notify_keeps_no_published_event_about_an_erased_person(erased):
    assert [f["row"]["routing_key"] for f in erased["after"] if _notify_outbox(f)] == []


def test_no_one_elses_notification_quotes_an_erased_person(erased):
    quoted = [f for f in erased["after"] if _others_notifications(f, erased["id"])]
    assert sorted(where(quoted)) == []
