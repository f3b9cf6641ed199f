"""Cooperation intentions met at an activity, in matching against the real RabbitMQ and
PostgreSQL: matching learns attendance and organizers from activities' events; a returnee who
attended expresses an intention toward an organization that organized or attended, without a
resource; that organization's provider accepts it as any other; the statistics count it; the
events are `intention.*` v2 (v1 requires a resource)."""

import uuid

import pytest
import requests

from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.matching.service import MatchingService
from tests.support import publish_events, query, service_url, wait_until

WRSA = str(uuid.uuid4())  # organizes the activity
BANK = str(uuid.uuid4())  # its representative attends
PARK = str(uuid.uuid4())  # has nothing to do with it
ACTIVITY = str(uuid.uuid4())


class Matching:
    def __init__(self, url, db, amqp_uri):
        self.url, self.db, self.amqp_uri = url, db, amqp_uri

    def sql(self, statement, params=None):
        return query(self.db, statement, params)

    def publish(self, producer, type_, data, subject):
        publish_events(self.amqp_uri, [CATALOG.create(producer, type_, data, subject=subject)])

    def post(self, path, body=None, headers=None):
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def get(self, path, headers=None):
        return requests.get(f"{self.url}{path}", headers=headers, timeout=30)

    def attend(self, returnee_id=None, organization_id=None):
        registration = str(uuid.uuid4())
        data = {
            "registration_id": registration,
            "activity_id": ACTIVITY,
            "registrant_role": "returnee" if returnee_id else "provider",
            "returnee_id": returnee_id,
            "staff_id": None if returnee_id else str(uuid.uuid4()),
            "organization_id": organization_id,
            "checked_in_at": "2026-12-05T13:55:00+08:00",
        }
        self.publish("activities", "attendance.recorded", data, registration)


@pytest.fixture
def matching(config_for, container_factory, amqp_uri):
    config = config_for("matching", OUTBOX_SWEEP_SECONDS=0.2, RETRY_BASE_DELAY_MS=200)
    container = container_factory(MatchingService, config)
    container.start()
    service = Matching(service_url(container), config["DATABASE_URL"], amqp_uri)
    for organization_id, name, kind in (
        (WRSA, "WRSA Changning", "alumni_association"),
        (BANK, "Test Bank", "bank"),
        (PARK, "Test Park", "industrial_park"),
    ):
        data = {"organization_id": organization_id, "name": name, "kind": kind}
        service.publish("accounts", "organization.registered", data, organization_id)
    published = {**EXAMPLES[("activity.published", 1)].data, "activity_id": ACTIVITY,
                 "organizer_ids": [WRSA]}  # fmt: skip
    service.publish("activities", "activity.published", published, ACTIVITY)
    wait_until(lambda: len(service.sql("SELECT 1 FROM organizations")) == 3)
    wait_until(lambda: service.sql("SELECT 1 FROM activity_organizations"))
    return service


def test_an_intention_met_at_an_activity_is_accepted_by_the_organization(matching, token_for, spy):
    events = spy("matching", "intention.expressed", "intention.accepted", "intention.declined")
    li, absent = str(uuid.uuid4()), str(uuid.uuid4())
    matching.attend(returnee_id=li)
    matching.attend(organization_id=BANK)
    wait_until(lambda: len(matching.sql("SELECT 1 FROM activity_organizations")) == 2)
    wait_until(lambda: matching.sql("SELECT 1 FROM activity_attendances"))
    me = token_for("returnee", li)

    def express(organization_id, headers=me, **extra):
        body = {"organization_id": organization_id, "activity_id": ACTIVITY,
                "message": "We met at the exchange session.", **extra}  # fmt: skip
        return matching.post("/intentions", body, headers)

    assert express(WRSA, token_for("returnee", absent)).status_code == 409  # did not attend
    assert express(PARK).status_code == 409  # neither organized nor attended
    # rules the operation states beyond its schema: 422
    unknown = express(str(uuid.uuid4()))
    assert unknown.status_code == 422 and set(unknown.json()["fields"]) == {"organization_id"}
    both = express(WRSA, resource_id=str(uuid.uuid4()))
    assert both.status_code == 422
    assert set(both.json()["fields"]) == {"organization_id", "activity_id"}
    half = matching.post("/intentions", {"activity_id": ACTIVITY}, me)
    assert half.status_code == 422 and set(half.json()["fields"]) == {"organization_id"}

    created = express(WRSA)
    assert created.status_code == 201, created.text
    intention = created.json()
    assert (intention["resource_id"], intention["activity_id"]) == (None, ACTIVITY)
    assert express(WRSA).status_code == 409  # one open intention per organization there
    to_bank = express(BANK)
    assert to_bank.status_code == 201  # the bank's representative attended

    expressed = events.wait_for("intention.expressed")
    assert expressed.version == 2 and expressed.data["resource_id"] is None
    assert str(expressed.data["activity_id"]) == ACTIVITY
    assert str(expressed.data["organization_id"]) == WRSA

    path = f"/intentions/{intention['intention_id']}"
    assert (
        matching.post(f"{path}/accept", {}, token_for("provider", organization_id=BANK)).status_code
        == 403
    )
    accepted = matching.post(
        f"{path}/accept", {"message": "Glad to."}, token_for("provider", organization_id=WRSA)
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    event = events.wait_for("intention.accepted")
    assert event.version == 2 and event.data["message"] == "Glad to."
    declined = matching.post(
        f"/intentions/{to_bank.json()['intention_id']}/decline",
        {},
        token_for("provider", organization_id=BANK),
    )
    assert declined.status_code == 200, declined.text
    assert events.wait_for("intention.declined").version == 2

    statistics = matching.get("/statistics/intentions", token_for("admin")).json()
    assert statistics["accepted"] == 1
    wrsa = next(o for o in statistics["organizations"] if o["organization_id"] == WRSA)
    assert wrsa["accepted"] == 1
    mine = matching.get("/intentions", me).json()
    assert {i["activity_id"] for i in mine} == {ACTIVITY} and len(mine) == 2
    theirs = matching.get("/intentions", token_for("provider", organization_id=WRSA)).json()
    assert [i["intention_id"] for i in theirs] == [intention["intention_id"]]

    matching.publish("accounts", "returnee.erased", {"returnee_id": li}, li)
    wait_until(lambda: matching.sql("SELECT 1 FROM erasures WHERE returnee_id = %s", (li,)))
    assert matching.sql("SELECT 1 FROM activity_attendances WHERE returnee_id = %s", (li,)) == []
    counted = matching.get("/statistics/intentions", token_for("admin")).json()
    assert counted["accepted"] == 1  # the accepted intention stays counted, without the person
