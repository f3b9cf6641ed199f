"""The district's figures after real flows on the whole platform, and the district official's
reach: statistics, and no personal data of any service."""

import io
import re
import uuid

import jwt
import pytest
from openpyxl import load_workbook

from chassis.settings import SERVICES
from tests.platform import PASSWORD, STAFF_PASSWORD
from tests.support import query, wait_until

PROVIDER = "provider@linkong-park.example.cn"  # deploy/reference/organizations.yml
ADVISORS = ("wang.min@station.example", "david.chen@station.example")
# Reads an official may make beyond the public ones: the figures, and the station's time slots.
OFFICIAL_READS = {
    ("insights", "/statistics/overview"),
    ("insights", "/statistics/timeseries"),
    ("insights", "/statistics/export"),
    ("consulting", "/slots"),
}
# Refused as "not found", so nobody probes for other people's tickets (consulting/access.py).
HIDDEN = {("consulting", "/consultations/{consultation_id}")}
# Reads without a token: catalogs of programmes, resources, organizations and topics.
PUBLIC_READS = {
    ("accounts", "/organizations"),
    ("consulting", "/policies"),
    ("consulting", "/policies/{policy_id}"),
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
    body = {"email": email, "password": PASSWORD, "name": "周敏", "role": "official"}
    created = platform.call("POST", "accounts", "/staff", platform.admin(), json=body)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "official"
    return platform.token(email, PASSWORD)


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
    assert now["activities"] == {"held": 0, "registrations": 0, "attended": 0}
    assert now["counted_from"]["activities"] is None and now["complete"] is False
    assert set(now["counted_from"]) == {"accounts", "consulting", "matching", "activities"}

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
            found = query(url, f'SELECT 1 FROM "{table}" t WHERE t::text LIKE %s LIMIT 1',
                          (f"%{needle}%",))  # fmt: skip
            assert not found, (table, needle)


def test_an_official_reads_figures_and_no_personal_data_of_any_service(platform, official):
    returnee, headers, _ = platform.register()
    asked = platform.call("POST", "consulting", "/consultations", headers,
                          json={"topic": "funding", "question": "启动资金？"})  # fmt: skip
    assert asked.status_code == 201, asked.text
    known = {
        "returnee_id": returnee["id"],
        "recipient_id": returnee["id"],
        "consultation_id": asked.json()["id"],
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
                if "security" not in operation:
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
                    assert answer.status_code == 404, (service, path, answer.text)
                    # a refusal, not an absence: staff see the same ticket
                    staff = platform.call("GET", service, concrete, platform.admin())
                    assert staff.status_code == 200, (service, path)
                elif method == "get" and path == "/notifications":
                    assert answer.status_code == 200 and answer.json() == []  # their own: none
                    other = platform.call("GET", service, path, official,
                                          params={"recipient_id": returnee["id"]})  # fmt: skip
                    assert other.status_code == 403, other.text
                else:
                    assert answer.status_code in (400, 403, 404), (service, path, answer.text)
                    assert method != "get" or answer.status_code == 403, (service, path)
    services = {s for s, *_ in checked}
    assert services == set(SERVICES) and len(checked) > 25
