"""The district's figures after real flows on the whole platform, and the district official's
reach: statistics, and no personal data of any service."""

import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from openpyxl import load_workbook

from chassis.clock import SHANGHAI
from chassis.settings import SERVICES
from tests.platform import PASSWORD, STAFF_PASSWORD
from tests.support import query, wait_until

PROVIDER = "provider@linkong-park.example.cn"  # deploy/reference/organizations.yml
ADVISORS = ("wang.min@station.example", "david.chen@station.example")
GRANT = "changning-overseas-talent-2026"  # the example profile is eligible for it (tier b)
# Reads an official may make beyond the public ones: the figures, and the station's time slots.
OFFICIAL_READS = {
    ("insights", "/statistics/overview"),
    ("insights", "/statistics/timeseries"),
    ("insights", "/statistics/export"),
    ("consulting", "/slots"),
}
# Refused as "not found", so nobody probes for other people's tickets (consulting/access.py)
# or registrations (activities/access.py).
HIDDEN = {
    ("consulting", "/consultations/{consultation_id}"),
    ("activities", "/activities/{activity_id}/registrations/{registration_id}"),
}
# Reads without a token: catalogs of programmes, activities, resources, organizations, topics.
PUBLIC_READS = {
    ("accounts", "/organizations"),
    ("accounts", "/.well-known/jwks.json"),  # the tokens' public keys
    ("consulting", "/policies"),
    ("consulting", "/policies/{policy_id}"),
    ("consulting", "/policies/{policy_id}/versions"),
    ("activities", "/activities"),
    ("activities", "/activities/{activity_id}"),
    ("matching", "/resources"),
    ("matching", "/resources/{resource_id}"),
    ("notify", "/topics"),
}
# What the reads need besides the path (and notify's: whose notifications, the official's own).
QUERIES = {"/statistics/timeseries": {"metric": "registrations"}}
INFRASTRUCTURE = ("/health/live", "/health/ready", "/metrics", "/openapi.json")


def subject(headers) -> str:
    return jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})["sub"]


@pytest.fixture(scope="module")
def official(platform):
    email = f"official.{uuid.uuid4().hex[:8]}@district.example"
    body = {"email": email, "name": "周敏", "role": "official"}
    created, headers = platform.invite(platform.admin(), PASSWORD, **body)
    assert created["role"] == "official"
    return headers


def overview(platform, headers) -> dict:
    answer = platform.call("GET", "insights", "/statistics/overview", headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_overview_after_real_flows_and_an_erasure(platform, official):
    before = overview(platform, official)
    li, li_headers, _ = platform.register(needs=["office_space"], industry="biotech")
    emma, emma_headers, emma_body = platform.register(industry="ai", locale="en")

    # An intention, accepted by the park.
    provider = platform.token(PROVIDER, STAFF_PASSWORD)
    park = jwt.decode(provider["Authorization"][7:], options={"verify_signature": False})["org"]

    def park_match():
        listed = platform.call("GET", "matching", f"/returnees/{li['id']}/matches", li_headers)
        return next((m for m in listed.json() if m["organization_id"] == park), None)

    match = wait_until(park_match, 30, 0.2, "a match with the park")
    wanted = {"resource_id": match["resource_id"], "message": "想参观"}
    expressed = platform.call("POST", "matching", "/intentions", li_headers, json=wanted)
    assert expressed.status_code == 201, expressed.text
    intention_id = expressed.json()["intention_id"]
    accepted = platform.call("POST", "matching", f"/intentions/{intention_id}/accept", provider,
                             json={})  # fmt: skip
    assert accepted.status_code == 200, accepted.text

    # A consultation, answered by its advisor.
    question = {"topic": "funding", "question": "Which grants fit AI?"}
    asked = platform.call("POST", "consulting", "/consultations", emma_headers, json=question)
    assert asked.status_code == 201, asked.text
    ticket = asked.json()
    advisor = next(
        h for h in (platform.token(e, STAFF_PASSWORD) for e in ADVISORS)
        if subject(h) == ticket["advisor_id"]
    )  # fmt: skip
    answered = platform.call("POST", "consulting", f"/consultations/{ticket['id']}/messages",
                             advisor, json={"body": "Come to the station on Monday."})  # fmt: skip
    assert answered.status_code in (200, 201), answered.text

    def grown():
        now = overview(platform, official)
        if (
            now["registrations"] - before["registrations"] >= 2
            and now["intentions"]["accepted"] - before["intentions"]["accepted"] >= 1
            and now["consultations"]["answered"] - before["consultations"]["answered"] >= 1
            and now["matches_proposed"] > before["matches_proposed"]
        ):
            return now
        return None

    now = wait_until(grown, 30, 0.3, "the flows counted")
    assert now["registrations"] - before["registrations"] == 2
    assert now["returnees_active"] - before["returnees_active"] == 2
    assert now["by_industry"]["ai"] - before["by_industry"].get("ai", 0) == 1
    assert now["intentions"]["expressed"] - before["intentions"]["expressed"] == 1
    assert now["consultations"]["requested"] - before["consultations"]["requested"] == 1
    assert now["consultations"]["first_response_within_sla_pct"] == 100.0
    assert sum(now["eligible_by_policy"].values()) > sum(before["eligible_by_policy"].values())
    assert set(now["counted_from"]) == {"accounts", "consulting", "matching", "activities"}
    assert all(now["counted_from"].values())  # from insights' first start, this morning
    assert now["complete"] is False

    # The export holds the same numbers.
    export = platform.call("GET", "insights", "/statistics/export", official)
    assert export.status_code == 200, export.text
    sheet = load_workbook(io.BytesIO(export.content))["概览 Overview"]
    rows = {row[0]: row[3] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows["registrations"] == now["registrations"]
    assert rows["intentions_accepted"] == now["intentions"]["accepted"]
    assert rows["consultations_answered"] == now["consultations"]["answered"]

    # Emma is erased: the counts stay, nothing of her in insights.
    erased = platform.call("DELETE", "accounts", f"/returnees/{emma['id']}", emma_headers)
    assert erased.status_code == 204
    url = platform.database_urls["insights"]
    wait_until(lambda: query(url, "SELECT 1 FROM erasures"), 30, 0.2, "the erasure counted")
    after = overview(platform, official)
    assert after["registrations"] == now["registrations"]
    assert after["consultations"] == now["consultations"]
    assert after["returnees_active"] == now["returnees_active"] - 1
    tables = [t["table_name"] for t in query(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )]  # fmt: skip
    for needle in (emma["id"], ticket["id"], emma_body["email"], emma_body["name"]):
        for table in tables:
            if (table, needle) == ("revoked_subjects", emma["id"]):
                continue  # her tokens void everywhere: the id alone, an hour (chassis.revocation)
            found = query(url, f'SELECT 1 FROM "{table}" t WHERE t::text LIKE %s LIMIT 1',
                          (f"%{needle}%",))  # fmt: skip
            assert not found, (table, needle)


def exchange_session(platform, advisor: dict, organizer: str, starts: datetime) -> str:
    """A new exchange session published by an advisor: its id."""
    published = platform.call(
        "POST", "activities", "/activities", advisor,
        json={
            "kind": "exchange",
            "title": {"zh-CN": "海归人才交流会", "en": "Returnee exchange session"},
            "summary": {"zh-CN": "校友会与海归面对面", "en": "Alumni associations meet returnees"},
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "venue": {"name": "Changning Returnee Service Station", "address": "Changning"},
            "capacity": 10,
            "organizer_ids": [organizer],
        },
    )  # fmt: skip
    assert published.status_code == 201, published.text
    return published.json()["id"]


def grew(now: dict, before: dict, *path) -> int:
    """How much the figure at `path` grew since `before` (absent then, or now: 0)."""
    for key in path[:-1]:
        now, before = now.get(key, {}), before.get(key, {})
    return now.get(path[-1], 0) - before.get(path[-1], 0)


def test_the_overview_after_an_activity_and_an_application(platform, official):
    """A real exchange session (published, a returnee registered and checked in, an agreement
    signed, closed) and a real application (asked about, submitted, approved, awarded) show
    in the overview, the series and the export."""
    before = overview(platform, official)
    returnee, headers, _ = platform.register(industry="biotech")
    advisor = platform.token(ADVISORS[0], STAFF_PASSWORD)
    provider = platform.token(PROVIDER, STAFF_PASSWORD)
    park = jwt.decode(provider["Authorization"][7:], options={"verify_signature": False})["org"]
    today = datetime.now(SHANGHAI).date()

    starts = datetime.now(UTC) + timedelta(seconds=8)
    path = f"/activities/{exchange_session(platform, advisor, park, starts)}"
    seat = platform.call("POST", "activities", f"{path}/registrations", headers)
    assert seat.status_code == 201 and seat.json()["status"] == "confirmed", seat.text
    door = platform.call("POST", "activities", f"{path}/check-ins", advisor,
                         json={"code": seat.json()["check_in_code"]})  # fmt: skip
    assert door.status_code == 200 and door.json()["already_checked_in"] is False, door.text
    signed = platform.call(
        "POST", "activities", f"{path}/agreements", advisor,
        json={"title": "合作协议", "signed_on": today.isoformat(),
              "parties": [{"organization_id": park}, {"returnee_id": returnee["id"]}]},
    )  # fmt: skip
    assert signed.status_code == 201, signed.text

    grant = next(
        p for p in platform.call("GET", "consulting", "/policies").json() if p["code"] == GRANT
    )
    question = {"topic": "funding", "question": "需要哪些材料？", "policy_id": grant["id"]}
    asked = platform.call("POST", "consulting", "/consultations", headers, json=question)
    assert asked.status_code == 201, asked.text

    def started():  # once consulting has assessed the new returnee
        made = platform.call("POST", "consulting", "/applications", headers,
                             json={"policy_id": grant["id"]})  # fmt: skip
        return made.json() if made.status_code == 201 else None

    application = wait_until(started, 30, 0.3, "an application for the grant")
    aid = application["id"]
    for item in application["checklist"]:
        marked = platform.call(
            "PUT", "consulting", f"/applications/{aid}/checklist/{item['document_id']}", headers,
            json={"reference": "窗口3已收"},
        )  # fmt: skip
        assert marked.status_code == 200, marked.text
    steps = [
        (headers, "submit", {}),
        (advisor, "review", {}),
        (advisor, "approve", {}),
        (advisor, "award", {"amount_cny": 100000, "awarded_on": today.isoformat()}),
    ]
    for token, action, body in steps:
        moved = platform.call("POST", "consulting", f"/applications/{aid}/{action}", token,
                              json=body)  # fmt: skip
        assert moved.status_code == 200, (action, moved.text)

    wait_until(lambda: datetime.now(UTC) > starts, 20, 0.2, "the session begins")
    closed = platform.call("POST", "activities", f"{path}/close", advisor, json={})
    assert closed.status_code == 200, closed.text

    def counted():
        now = overview(platform, official)
        wanted = [("activities", "held"), ("activities", "attended"), ("agreements_signed",),
                  ("applications", "awarded"), ("funnel_by_policy", GRANT, "consulted"),
                  ("funnel_by_policy", GRANT, "awarded")]  # fmt: skip
        return now if all(grew(now, before, *path) >= 1 for path in wanted) else None

    now = wait_until(counted, 30, 0.3, "the session and the award counted")
    assert {k: grew(now, before, "activities", k) for k in now["activities"]} == {
        "held": 1, "registrations": 1, "attended": 1
    }  # fmt: skip
    assert grew(now, before, "agreements_signed") == 1
    assert {k: grew(now, before, "applications", k) for k in now["applications"]} == {
        "submitted": 1, "approved": 1, "rejected": 0, "awarded": 1, "withdrawn": 0,
        "awarded_amount_cny": 100000,
    }  # fmt: skip
    stages = {
        k: grew(now, before, "funnel_by_policy", GRANT, k) for k in now["funnel_by_policy"][GRANT]
    }
    # The eligibility of returnees registered earlier in this module may still be arriving:
    # this returnee's is one of the new ones.
    assert stages.pop("eligible") >= 1
    assert stages == {"consulted": 1, "applied": 1, "approved": 1, "awarded": 1}
    assert now["counted_from"]["activities"] is not None

    series = platform.call("GET", "insights", "/statistics/timeseries", official,
                           params={"metric": "awarded_amount_cny"})  # fmt: skip
    assert series.status_code == 200, series.text
    assert series.json()["points"][-1]["value"] >= 100000  # today's
    assert sum(p["value"] for p in series.json()["points"]) == now["applications"][
        "awarded_amount_cny"]  # fmt: skip
    export = platform.call("GET", "insights", "/statistics/export", official)
    assert export.status_code == 200, export.text
    book = load_workbook(io.BytesIO(export.content))
    rows = {r[0]: r[3] for r in book["概览 Overview"].iter_rows(min_row=2, values_only=True)}
    assert rows["activities_attended"] == now["activities"]["attended"]
    assert rows["agreements_signed"] == now["agreements_signed"]
    assert rows["awarded_amount_cny"] == now["applications"]["awarded_amount_cny"]
    funnel = {r[0]: r[1:] for r in book["政策漏斗 Funnel"].iter_rows(min_row=2, values_only=True)}
    assert funnel[GRANT] == tuple(now["funnel_by_policy"][GRANT].values())


def test_an_official_reads_figures_and_no_personal_data_of_any_service(platform, official):
    returnee, headers, _ = platform.register()
    asked = platform.call("POST", "consulting", "/consultations", headers,
                          json={"topic": "funding", "question": "启动资金？"})  # fmt: skip
    assert asked.status_code == 201, asked.text
    advisor = platform.token(ADVISORS[0], STAFF_PASSWORD)
    provider = platform.token(PROVIDER, STAFF_PASSWORD)
    park = jwt.decode(provider["Authorization"][7:], options={"verify_signature": False})["org"]
    activity = exchange_session(platform, advisor, park, datetime.now(UTC) + timedelta(days=3))
    seat = platform.call("POST", "activities", f"/activities/{activity}/registrations", headers)
    assert seat.status_code == 201, seat.text
    known = {
        "returnee_id": returnee["id"],
        "recipient_id": returnee["id"],
        "consultation_id": asked.json()["id"],
        "activity_id": activity,
        "registration_id": seat.json()["id"],
    }
    me = subject(official)
    checked, public = [], set()
    for service in SERVICES:
        document = platform.call("GET", service, "/openapi.json").json()
        for path, operations in document["paths"].items():
            if path in INFRASTRUCTURE:
                continue
            for method, operation in operations.items():
                concrete = re.sub(
                    r"{(\w+)}", lambda m: known.get(m.group(1), str(uuid.uuid4())), path
                )
                if not operation.get("security"):
                    assert method != "get" or (service, path) in PUBLIC_READS, (service, path)
                    public.add((service, path))
                    continue
                params = {**QUERIES, "/notifications": {"recipient_id": me}}.get(path, {})
                answer = platform.call(method.upper(), service, concrete, official,
                                       params=params, json={})  # fmt: skip
                checked.append((service, method, path, answer.status_code))
                if method == "get" and (service, path) in OFFICIAL_READS:
                    assert answer.status_code == 200, (service, path, answer.text)
                elif method == "get" and (service, path) in HIDDEN:
                    assert answer.status_code in (403, 404), (service, path, answer.text)
                    # a refusal, not an absence: staff see the same ticket
                    staff = platform.call("GET", service, concrete, platform.admin())
                    assert staff.status_code == 200, (service, path)
                elif method == "get" and path == "/notifications":
                    # their own: the invitation that set their password, nothing else
                    assert answer.status_code == 200, answer.text
                    assert [n["template"] for n in answer.json()] == ["staff_invitation"]
                    other = platform.call("GET", service, path, official,
                                          params={"recipient_id": returnee["id"]})  # fmt: skip
                    assert other.status_code == 403, other.text
                else:
                    assert answer.status_code in (400, 403, 404), (service, path, answer.text)
                    assert method != "get" or answer.status_code == 403, (service, path)
    services = {s for s, *_ in checked}
    assert services == set(SERVICES) and len(checked) > 25
