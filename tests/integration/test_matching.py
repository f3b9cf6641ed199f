"""The matching service against the real RabbitMQ and PostgreSQL: the catalog, matches proposed
on registration, reverse matching, feedback, intentions under concurrency, consent and erasure."""

import uuid
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
import requests

from chassis.pool import ConnectionPool
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.matching.seed import ICBC, LINKONG_PARK, ORGANIZATIONS, RESOURCES, seed, seed_id
from services.matching.service import MatchingService
from tests.support import (
    publish_events,
    query,
    refuses_bad_pages,
    service_url,
    wait_until,
    walk_pages,
)

PROFILE = {k: v for k, v in EXAMPLES[("returnee.registered", 1)].data.items() if k != "returnee_id"}
PARK = str(uuid.uuid4())
BANK = str(uuid.uuid4())


@pytest.fixture
def matching(config_for, container_factory, amqp_uri):
    config = config_for("matching", OUTBOX_SWEEP_SECONDS=0.2, RETRY_BASE_DELAY_MS=200)
    container = container_factory(MatchingService, config)
    container.start()
    service = Matching(service_url(container), config["DATABASE_URL"], amqp_uri)
    service.register_organization(PARK, "Test Park", "industrial_park")
    service.register_organization(BANK, "Test Bank", "bank")
    wait_until(lambda: len(service.sql("SELECT id FROM organizations")) == 2)
    return service


class Matching:
    def __init__(self, url, db, amqp_uri):
        self.url, self.db, self.amqp_uri = url, db, amqp_uri

    def sql(self, statement, params=None):
        return query(self.db, statement, params)

    def publish(self, type_, data, subject):
        self.last = CATALOG.create("accounts", type_, data, subject=subject)
        publish_events(self.amqp_uri, [self.last])
        return self.last

    def handled(self, event) -> None:
        """Wait until matching took the event in: its inbox record commits with its effect (and
        the events it publishes), so only then does an absence mean something."""
        wait_until(
            lambda: self.sql("SELECT 1 FROM inbox WHERE event_id = %s", (event.id,)),
            message=f"matching took in {event.type} {event.id}",
        )

    def published(self, event_type, subject) -> int:
        """Events of a type about a subject written to the outbox, published or not."""
        return self.sql(
            "SELECT count(*) AS n FROM outbox WHERE routing_key = %s AND subject = %s",
            (event_type, subject),
        )[0]["n"]

    def register_organization(self, org_id, name, kind):
        data = {"organization_id": org_id, "name": name, "kind": kind, "district": "Changning"}
        self.publish("organization.registered", data, org_id)

    def register(self, returnee_id=None, event="returnee.registered", **changes):
        returnee_id = returnee_id or str(uuid.uuid4())
        data = {**PROFILE, **changes, "returnee_id": returnee_id}
        if event == "returnee.updated":
            data["changed_fields"] = sorted(changes) or ["needs"]
        self.publish(event, data, returnee_id)
        return returnee_id

    def post(self, path, body=None, headers=None):
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def get(self, path, headers=None, **params):
        return requests.get(f"{self.url}{path}", headers=headers, params=params, timeout=30)

    def add_resource(self, headers, **fields):
        body = {
            "title": "Office space",
            "kind": "office_space",
            "organization_id": PARK,
            "needs_served": ["office_space"],
            "capacity": 10,
            "description": "desks",
            **fields,
        }
        response = self.post("/resources", body, headers)
        assert response.status_code == 201, response.text
        return response.json()["id"]


def resource_ids(event):
    return [m["resource_id"] for m in event.data["matches"]]


def for_returnee(returnee_id):
    return lambda e: e.data["returnee_id"] == returnee_id


def test_catalog_is_managed_by_the_owning_provider_or_an_admin(matching, token_for, spy):
    events = spy("matching", "resource.published", "resource.withdrawn")
    park = token_for("provider", organization_id=PARK)
    body = {
        "title": "Desks",
        "kind": "office_space",
        "organization_id": PARK,
        "needs_served": ["office_space"],
        "capacity": 3,
    }
    assert matching.post("/resources", body).status_code == 401
    assert matching.post("/resources", body, token_for("returnee")).status_code == 403
    other = token_for("provider", organization_id=BANK)
    assert matching.post("/resources", body, other).status_code == 403
    unknown = matching.post(
        "/resources", {**body, "organization_id": str(uuid.uuid4())}, token_for("admin")
    )
    assert unknown.status_code == 422 and "organization_id" in unknown.json()["fields"]
    invalid = matching.post("/resources", {**body, "kind": "castle", "capacity": 0}, park)
    assert invalid.status_code == 400
    assert set(invalid.json()["fields"]) == {"kind", "capacity"}
    # Allowed by the document, refused by the rules its operation states: 422.
    reversed_dates = {**body, "valid_from": "2027-02-01", "valid_until": "2027-01-01"}
    zh = matching.post("/resources", reversed_dates, {**park, "Accept-Language": "zh-CN"})
    assert zh.status_code == 422
    assert zh.json()["fields"] == {"valid_until": ["不能早于 valid_from。"]}
    past = matching.post("/resources", {**body, "valid_until": "2020-01-01"}, park)
    assert past.status_code == 422 and "valid_until" in past.json()["fields"]
    both = matching.post("/resources", {**reversed_dates, "capacity": 0}, park)
    assert both.status_code == 400  # a field the document refuses: 400, naming both
    assert set(both.json()["fields"]) == {"capacity"}

    created = matching.post("/resources", {**body, "valid_until": "2030-01-01"}, park)
    assert created.status_code == 201
    resource = created.json()
    assert resource["capacity_left"] == 3 and resource["organization_name"] == "Test Park"
    published = events.wait_for("resource.published")
    assert published.data["resource_id"] == resource["id"]
    admin_made = matching.add_resource(
        token_for("admin"), organization_id=BANK, kind="financing", needs_served=["financing"]
    )

    listed = matching.get("/resources", kind="office_space").json()
    assert [r["id"] for r in listed] == [resource["id"]]
    assert {r["id"] for r in matching.get("/resources").json()} == {resource["id"], admin_made}
    assert matching.get("/resources", need="legal").json() == []
    assert matching.get("/resources", kind="castle").status_code == 400
    # every integer parameter is bounded: PostgreSQL's OFFSET takes a bigint at most
    assert matching.get("/resources", offset=9223372036854775808).status_code == 400
    assert matching.get("/resources", offset=1_000_000).status_code == 200

    path = f"/resources/{resource['id']}"
    assert requests.delete(matching.url + path).status_code == 401
    assert requests.delete(matching.url + path, headers=other).status_code == 403
    assert requests.delete(matching.url + path, headers=park).status_code == 204
    assert requests.delete(matching.url + path, headers=park).status_code == 409
    assert events.wait_for("resource.withdrawn").subject == resource["id"]
    assert matching.get(path).json()["withdrawn_at"] is not None
    assert [r["id"] for r in matching.get("/resources").json()] == [admin_made]
    assert matching.get(f"/resources/{uuid.uuid4()}").status_code == 404


def test_registration_proposes_the_seeded_resources_that_fit(matching, token_for, spy):
    pool = ConnectionPool(matching.db, 2)
    try:
        assert seed(pool) == {"organizations": len(ORGANIZATIONS), "resources": len(RESOURCES)}
        assert seed(pool) == {"organizations": 0, "resources": 0}  # idempotent
    finally:
        pool.clear()
    assert len(RESOURCES) >= 20
    proposed = spy("matching", "matches.proposed")
    li_wei = matching.register()  # biotech, registered, Changning; financing, office_space
    event = proposed.wait_for("matches.proposed", for_returnee(li_wei))
    found = set(resource_ids(event))
    assert {
        seed_id("resource:icbc-startup-loan"),
        seed_id("resource:linkong-office"),
        seed_id("resource:linkong-lab"),
    } <= found
    never = {"hongqiao-angels-fintech", "icbc-tech-credit", "huayan-legal-clinic", "wrsa-mentors"}
    assert not found & {seed_id(f"resource:{slug}") for slug in never}
    assert event.data["added_resource_ids"] == sorted(found)
    orgs = [m["organization_id"] for m in event.data["matches"]]
    assert max(orgs.count(o) for o in orgs) <= 5  # a quarter of the top 20
    assert {str(ICBC), str(LINKONG_PARK)} <= {str(o) for o in orgs}

    own = token_for("returnee", li_wei)
    zh = matching.get(f"/returnees/{li_wei}/matches", {**own, "Accept-Language": "zh-CN"}).json()
    assert [m["resource_id"] for m in zh] == resource_ids(event)
    assert zh[0]["reasons"][0]["detail"].startswith("满足您的需求：")
    assert [m["score"] for m in zh] == sorted((m["score"] for m in zh), reverse=True)
    advisor = token_for("advisor")
    refused = matching.get(f"/returnees/{li_wei}/matches", advisor)  # no case, no reason
    assert refused.status_code == 403 and refused.json()["error"] == "case_or_reason_required"
    stated = {**advisor, "X-Access-Reason": "%E5%9B%9E%E8%AE%BF"}  # 回访, percent-encoded
    en = matching.get(f"/returnees/{li_wei}/matches", stated).json()
    assert en[0]["reasons"][0]["detail"].startswith("serves your need: ")
    path = f"/returnees/{li_wei}/matches"
    assert matching.get(path).status_code == 401
    assert matching.get(path, token_for("returnee")).status_code == 403
    assert matching.get(path, token_for("provider", organization_id=PARK)).status_code == 403
    assert matching.get(path, token_for("admin")).status_code == 200

    # The same profile again changes nothing: no second proposal.
    matching.register(li_wei, "returnee.updated", phone="+86 139 0000 0000")
    matching.handled(matching.last)
    assert matching.published("matches.proposed", li_wei) == 1
    assert len(proposed.events("matches.proposed")) == 1


def test_a_new_resource_reaches_the_returnees_it_fits_and_no_others(matching, token_for, spy):
    proposed = spy("matching", "matches.proposed")
    fits = matching.register(needs=["office_space"])
    fits_too = matching.register(needs=["office_space", "legal"], industry="ai")
    other_district = matching.register(
        needs=["office_space"], company={**PROFILE["company"], "registered_district": "Xuhui"}
    )
    other_need = matching.register(needs=["legal"])
    no_consent = matching.register(
        needs=["office_space"], consents={**PROFILE["consents"], "matching": False}
    )
    wait_until(lambda: len(matching.sql("SELECT id FROM returnees")) == 4)
    assert not matching.sql("SELECT id FROM returnees WHERE id = %s", (no_consent,))

    office = matching.add_resource(
        token_for("provider", organization_id=PARK), district="Changning"
    )
    for returnee_id in (fits, fits_too):
        event = proposed.wait_for("matches.proposed", for_returnee(returnee_id))
        assert event.data["added_resource_ids"] == [office]
    seen = {e.data["returnee_id"] for e in proposed.events("matches.proposed", wait=1.5)}
    assert seen == {fits, fits_too}
    assert not seen & {other_district, other_need, no_consent}

    assert (
        requests.delete(
            f"{matching.url}/resources/{office}", headers=token_for("admin")
        ).status_code
        == 204
    )
    withdrawn = proposed.wait_for(
        "matches.proposed", lambda e: e.data["removed_resource_ids"] == [office]
    )
    assert withdrawn.data["matches"] == []
    wait_until(lambda: not matching.sql("SELECT 1 FROM matches"))


def test_not_interested_is_never_shown_again(matching, token_for, spy):
    proposed = spy("matching", "matches.proposed")
    park = token_for("provider", organization_id=PARK)
    first = matching.add_resource(park, title="Desks A")
    second = matching.add_resource(park, title="Desks B", industries=["biotech"])
    li_wei = matching.register(needs=["office_space"])
    own = token_for("returnee", li_wei)
    event = proposed.wait_for(
        "matches.proposed", lambda e: for_returnee(li_wei)(e) and len(e.data["matches"]) == 2
    )
    by_resource = {str(m["resource_id"]): str(m["match_id"]) for m in event.data["matches"]}

    path = f"/matches/{by_resource[second]}/feedback"
    assert matching.post(path, {"interest": "maybe"}, own).status_code == 400
    assert (
        matching.post(path, {"interest": "not_interested"}, token_for("returnee")).status_code
        == 404
    )
    assert (
        matching.post(path, {"interest": "not_interested"}, token_for("admin")).status_code == 403
    )
    liked = matching.post(
        f"/matches/{by_resource[first]}/feedback", {"interest": "interested"}, own
    )
    assert liked.status_code == 200 and liked.json()["status"] == "interested"
    assert matching.post(path, {"interest": "not_interested"}, own).status_code == 200
    removed = proposed.wait_for(
        "matches.proposed", lambda e: e.data["removed_resource_ids"] == [second]
    )
    assert resource_ids(removed) == [first]

    def shown():
        return [m["resource_id"] for m in matching.get(f"/returnees/{li_wei}/matches", own).json()]

    assert shown() == [first]
    # A profile change and a new resource re-match: the dismissed one stays away.
    matching.register(li_wei, "returnee.updated", needs=["office_space", "financing"])
    third = matching.add_resource(park, title="Desks C")
    wait_until(lambda: third in shown(), message="the new resource is matched")
    assert second not in shown()
    statuses = matching.sql("SELECT status FROM matches WHERE resource_id = %s", (first,))
    assert statuses == [{"status": "interested"}]


def test_concurrent_accepts_never_exceed_capacity(matching, token_for, spy):
    decided = spy("matching", "intention.accepted", "intention.expressed", "intention.declined")
    park = token_for("provider", organization_id=PARK)
    desks = matching.add_resource(park, capacity=2)
    returnees = [matching.register(needs=["office_space"]) for _ in range(6)]
    wait_until(lambda: len(matching.sql("SELECT 1 FROM matches")) == 6)

    intentions = []
    for returnee_id in returnees:
        response = matching.post(
            "/intentions",
            {"resource_id": desks, "message": "Hello"},
            token_for("returnee", returnee_id),
        )
        assert response.status_code == 201, response.text
        intentions.append(response.json()["intention_id"])
    again = matching.post(
        "/intentions", {"resource_id": desks}, token_for("returnee", returnees[0])
    )
    assert again.status_code == 409
    unmatched = matching.post("/intentions", {"resource_id": desks}, token_for("returnee"))
    assert unmatched.status_code == 409
    assert matching.post("/intentions", {"resource_id": desks}, park).status_code == 403

    first = f"/intentions/{intentions[0]}/accept"
    assert matching.post(first, {}, token_for("provider", organization_id=BANK)).status_code == 403
    assert matching.post(first, {}, token_for("returnee", returnees[0])).status_code == 403
    assert matching.post(first, {}).status_code == 401

    pool = eventlet.GreenPool(len(intentions))
    statuses = list(
        pool.imap(
            lambda i: (
                matching.post(f"/intentions/{i}/accept", {"message": "Welcome"}, park).status_code
            ),
            intentions,
        )
    )
    assert sorted(statuses) == [200, 200, 409, 409, 409, 409]
    assert matching.sql("SELECT taken FROM resources WHERE id = %s", (desks,)) == [{"taken": 2}]
    accepted = matching.sql("SELECT id FROM intentions WHERE status = 'accepted'")
    assert len(accepted) == 2
    wait_until(lambda: len(decided.events("intention.accepted")) == 2)
    assert len(decided.events("intention.expressed")) == 6
    # Full: it leaves every returnee's matches; still-open intentions can only be declined.
    assert matching.sql("SELECT 1 FROM matches WHERE resource_id = %s", (desks,)) == []
    assert matching.get("/resources/" + desks).json()["capacity_left"] == 0

    still_open = statuses.index(409)
    pending = intentions[still_open]
    assert matching.post(f"/intentions/{pending}/decline", None, park).json()["status"] == (
        "declined"
    )
    assert matching.post(f"/intentions/{pending}/decline", None, park).status_code == 409
    declined = decided.wait_for("intention.declined")
    assert (declined.producer, declined.version, declined.subject) == ("matching", 1, pending)
    # As the contract has it: its schema refuses missing, malformed and undocumented fields.
    assert CATALOG.get("intention.declined").strict_schema.load(declined.data) == {
        "intention_id": uuid.UUID(pending),
        "returnee_id": uuid.UUID(returnees[still_open]),
        "resource_id": uuid.UUID(desks),
        "organization_id": uuid.UUID(PARK),
        "status": "declined",
        "message": None,
    }
    # Not for the 409: its transaction, events included, was rolled back before it answered.
    assert matching.published("intention.declined", pending) == 1

    mine = matching.get("/intentions", token_for("returnee", returnees[0])).json()
    assert [i["intention_id"] for i in mine] == [intentions[0]]
    assert len(matching.get("/intentions", park).json()) == 6
    assert matching.get("/intentions", token_for("provider", organization_id=BANK)).json() == []
    assert len(matching.get("/intentions", park, status="accepted").json()) == 2
    assert len(matching.get("/intentions", token_for("advisor")).json()) == 6  # an export
    assert matching.get("/intentions", token_for("provider")).status_code == 403  # no organization

    stats = matching.get("/statistics/intentions", token_for("advisor")).json()
    assert stats["accepted"] == 2
    assert stats["organizations"][0]["organization_id"] == PARK
    assert stats["organizations"][0]["declined"] == 1
    assert matching.get("/statistics/intentions", park).status_code == 403
    assert matching.get("/statistics/intentions", token_for("returnee")).status_code == 403


def test_withdrawn_consent_removes_the_matches_and_older_profiles_stay_out(
    matching, token_for, spy
):
    proposed = spy("matching", "matches.proposed")
    desks = matching.add_resource(token_for("admin"))
    li_wei = matching.register(needs=["office_space"])
    first = proposed.wait_for("matches.proposed", for_returnee(li_wei))
    withdrawn_at = datetime.now(UTC)
    matching.publish(
        "consent.changed",
        {"returnee_id": li_wei, "purpose": "matching", "granted": False,
         "changed_at": withdrawn_at.isoformat()},
        li_wei,
    )  # fmt: skip
    event = proposed.wait_for(
        "matches.proposed", lambda e: e.data["removed_resource_ids"] == [desks]
    )
    assert event.data["matches"] == []
    assert matching.sql("SELECT 1 FROM returnees UNION ALL SELECT 1 FROM matches") == []

    # A profile event from before the withdrawal, delivered after it, stores nothing ...
    profile = {**PROFILE, "returnee_id": li_wei, "changed_fields": ["needs"]}
    stale = CATALOG.create("accounts", "returnee.updated", profile, subject=li_wei,
                           time=withdrawn_at - timedelta(minutes=5))  # fmt: skip
    publish_events(matching.amqp_uri, [stale])
    wait_until(lambda: matching.sql("SELECT 1 FROM inbox WHERE event_id = %s", (stale.id,)))
    assert matching.sql("SELECT 1 FROM returnees") == []
    # ... and consent given again later brings the matches back.
    matching.register(li_wei, "returnee.updated", needs=["office_space"])
    again = proposed.wait_for(
        "matches.proposed", lambda e: e.id != first.id and e.data["added_resource_ids"] == [desks]
    )
    assert resource_ids(again) == [desks]


def test_erasure_leaves_nothing(matching, token_for, spy):
    proposed = spy("matching", "matches.proposed")
    park = token_for("provider", organization_id=PARK)
    desks = matching.add_resource(park, title="Desks")
    lab = matching.add_resource(park, title="Lab", kind="incubation", needs_served=["incubation"])
    li_wei = matching.register(needs=["office_space", "incubation"])
    own = token_for("returnee", li_wei)
    event = proposed.wait_for(
        "matches.proposed", lambda e: for_returnee(li_wei)(e) and len(e.data["matches"]) == 2
    )
    lab_match = next(m["match_id"] for m in event.data["matches"] if str(m["resource_id"]) == lab)
    assert (
        matching.post(
            f"/matches/{lab_match}/feedback", {"interest": "not_interested"}, own
        ).status_code
        == 200
    )
    accepted = matching.post("/intentions", {"resource_id": desks, "message": "my plans"}, own)
    matching.post(f"/intentions/{accepted.json()['intention_id']}/accept", {}, park)

    wait_until(lambda: not matching.sql("SELECT 1 FROM outbox WHERE published_at IS NULL"))
    assert matching.sql("SELECT 1 FROM outbox WHERE subject = %s", (li_wei,))
    matching.publish("returnee.erased", {"returnee_id": li_wei}, li_wei)
    held = (
        "SELECT 'returnee' FROM returnees WHERE id = %(id)s"
        " UNION ALL SELECT 'match' FROM matches WHERE returnee_id = %(id)s"
        " UNION ALL SELECT 'dismissal' FROM dismissals WHERE returnee_id = %(id)s"
        " UNION ALL SELECT 'intention' FROM intentions WHERE returnee_id = %(id)s"
        " UNION ALL SELECT 'message' FROM intentions WHERE message IS NOT NULL"
    )
    intention_id = accepted.json()["intention_id"]
    wait_until(lambda: matching.sql(held, {"id": li_wei}) == [], message="erased")
    kept = matching.sql(
        "SELECT routing_key FROM outbox WHERE subject IN (%s, %s)", (li_wei, intention_id)
    )
    assert kept == []  # the published events about them are not kept for retention either
    # The cooperation intention still counts, without the person.
    counted = matching.get("/statistics/intentions", token_for("admin")).json()
    assert counted["accepted"] == 1
    # A late profile event does not bring the data back.
    matching.register(li_wei, "returnee.updated", needs=["office_space"])
    matching.handled(matching.last)
    assert matching.sql(held, {"id": li_wei}) == []
    assert matching.published("matches.proposed", li_wei) == 0


def test_openapi_document_is_valid(matching):
    from openapi_spec_validator import validate as validate_openapi

    document = matching.get("/openapi.json").json()
    validate_openapi(document)
    assert {
        "/resources",
        "/returnees/{returnee_id}/matches",
        "/intentions/{intention_id}/accept",
        "/statistics/intentions",
    } <= set(document["paths"])


def test_an_older_profile_arriving_late_does_not_replace_a_newer_one(matching, token_for, spy):
    proposed = spy("matching", "matches.proposed")
    desks = matching.add_resource(token_for("admin"))
    li_wei = matching.register(needs=["office_space"])
    proposed.wait_for("matches.proposed", for_returnee(li_wei))
    stale = {**PROFILE, "returnee_id": li_wei, "needs": ["legal"], "changed_fields": ["needs"]}
    event = CATALOG.create(
        "accounts",
        "returnee.updated",
        stale,
        subject=li_wei,
        time=datetime.now(UTC) - timedelta(hours=1),
    )
    publish_events(matching.amqp_uri, [event])
    wait_until(
        lambda: matching.sql("SELECT 1 FROM inbox WHERE event_id = %s", (event.id,)),
        message="the stale event is handled",
    )
    assert matching.sql("SELECT needs FROM returnees") == [{"needs": ["office_space"]}]
    assert matching.sql("SELECT resource_id::text AS r FROM matches") == [{"r": desks}]


def test_the_resources_walk_page_by_page_with_resources_published_between_pages(
    matching, token_for
):
    admin = token_for("admin")
    listed = {"organization_id": PARK, "include_expired": "true"}
    for n in range(5):
        matching.add_resource(admin, title=f"Desks {n}")
    before = {r["id"] for r in walk_pages(f"{matching.url}/resources", params=listed, limit=2)}
    published = []

    def publish(n):  # newest first: a resource published now is before the boundary
        published.append(matching.add_resource(admin, title=f"Later {n}"))

    seen = walk_pages(f"{matching.url}/resources", params=listed, limit=2, between=publish)
    ids = [r["id"] for r in seen]
    assert before <= set(ids) and not set(published) & set(ids)
    assert [r["published_at"] for r in seen] == sorted(
        (r["published_at"] for r in seen), reverse=True
    )
    refuses_bad_pages(f"{matching.url}/resources", accepted=500)
    assert matching.get("/resources", offset=1, limit=1).status_code == 200  # still taken
