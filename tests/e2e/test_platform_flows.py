"""The whole platform as returnees, providers and advisors use it: every service a real process."""

import jwt
import pytest

from tests.platform import STAFF_PASSWORD
from tests.support import EventSpy, query, wait_until

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
    wait_until(
        lambda: "consultation_update" in templates(platform, rid, headers),
        30,
        0.2,
        "the returnee told of the answer",
    )


def test_erasure_removes_the_person_from_all_four_services(platform, spies):
    assessed = spies("consulting", "eligibility.assessed")
    returnee, headers, body = platform.register(name="钱多多")
    rid = returnee["id"]
    assessed.wait_for("eligibility.assessed", lambda e: str(e.subject) == rid, 30)
    wait_until(lambda: "welcome" in templates(platform, rid, headers), 30, 0.2, "welcome")

    erased = platform.call("DELETE", "accounts", f"/returnees/{rid}", headers)
    assert erased.status_code == 204

    def holds_the_person(service) -> list[str]:
        url = platform.database_urls[service]
        tables = query(
            url,
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_name NOT IN ('alembic_version', 'inbox')",
        )
        found = []
        for table in tables:
            name = table["table_name"]
            needle = ("%" + body["email"] + "%", "%钱多多%")
            if query(url, f'SELECT 1 FROM "{name}" t WHERE t::text LIKE %s OR t::text LIKE %s'
                     " LIMIT 1", needle):  # fmt: skip
                found.append(name)
        return found

    for service in ("accounts", "consulting", "matching", "notify"):
        wait_until(lambda s=service: not holds_the_person(s), 30, 0.5, f"{service} forgets")
