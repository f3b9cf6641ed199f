"""The activities service against the real RabbitMQ and PostgreSQL: concurrent sign-ups for the
last seats (two replicas on one database), the waitlist moving up under concurrent
cancellations, and the whole life of an activity over HTTP and the broker: invitations to the
consenting audience, check-in at the door, an agreement, the report, and the erasure of a
registrant that keeps the counts."""

import threading
import uuid
from datetime import UTC, datetime

import pytest
import requests
from kombu import Connection

from chassis.topology import declare_service
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.activities.service import ActivitiesService
from tests.support import publish_events, query, service_url, wait_until

PROFILE = {k: v for k, v in EXAMPLES[("returnee.registered", 1)].data.items() if k != "returnee_id"}
T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
WRSA = str(uuid.uuid4())
BEIXINJING = str(uuid.uuid4())


class MovableClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Activities:
    def __init__(self, urls, db, amqp_uri, clock):
        self.urls, self.db, self.amqp_uri, self.clock = urls, db, amqp_uri, clock

    def sql(self, statement, params=None):
        return query(self.db, statement, params)

    def publish(self, producer, type_, data, subject, version=1):
        event = CATALOG.create(producer, type_, data, subject=subject, version=version)
        publish_events(self.amqp_uri, [event])

    def call(self, method, path, headers=None, replica=0, **kwargs):
        url = f"{self.urls[replica % len(self.urls)]}{path}"
        return requests.request(method, url, headers=headers, timeout=30, **kwargs)

    def join(self, returnee_id=None, **changes):
        """A returnee registers with accounts; waits until activities took them in."""
        returnee_id = returnee_id or str(uuid.uuid4())
        data = {**PROFILE, **changes, "returnee_id": returnee_id}
        self.publish("accounts", "returnee.registered", data, returnee_id)
        wait_until(lambda: self.sql("SELECT 1 FROM returnees WHERE id = %s", (returnee_id,)))
        return returnee_id

    def new_activity(self, staff, **changes):
        body = {
            "kind": "exchange",
            "title": {"zh-CN": "海归人才交流会", "en": "Returnee exchange session"},
            "summary": {"zh-CN": "交流", "en": "Exchange"},
            "starts_at": "2026-12-05T14:00:00+08:00",
            "ends_at": "2026-12-05T17:00:00+08:00",
            "venue": {"name": "Service station", "address": "Changning"},
            "capacity": 3,
            "organizer_ids": [WRSA, BEIXINJING],
            **changes,
        }
        response = self.call("POST", "/activities", staff, json=body)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def activities(config_for, container_factory, amqp_uri):
    clock = MovableClock(T0)
    config = config_for(
        "activities", OUTBOX_SWEEP_SECONDS=0.2, RETRY_BASE_DELAY_MS=200, CLOCK=clock
    )
    with Connection(amqp_uri) as connection:
        declare_service(connection.channel(), ActivitiesService, config)
    containers = []
    for _ in range(2):  # two replicas on one database: sign-ups land on either
        container = container_factory(ActivitiesService, config)
        container.start()
        containers.append(container)
    service = Activities(
        [service_url(c) for c in containers], config["DATABASE_URL"], amqp_uri, clock
    )
    for organization_id, name in ((WRSA, "WRSA Changning"), (BEIXINJING, "Beixinjing")):
        data = {"organization_id": organization_id, "name": name, "kind": "alumni_association"}
        service.publish("accounts", "organization.registered", data, organization_id)
    wait_until(lambda: len(service.sql("SELECT 1 FROM organizations")) == 2)
    return service


def test_concurrent_sign_ups_never_exceed_the_capacity(activities, token_for):
    shown = activities.new_activity(token_for("advisor"), capacity=3)
    people = [str(uuid.uuid4()) for _ in range(16)]
    answers: dict[str, dict] = {}
    start = threading.Barrier(len(people))

    def sign_up(i, person):
        start.wait()
        response = activities.call(
            "POST",
            f"/activities/{shown['id']}/registrations",
            token_for("returnee", person),
            replica=i,
        )
        answers[person] = {"status_code": response.status_code, **response.json()}

    threads = [threading.Thread(target=sign_up, args=(i, p)) for i, p in enumerate(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {a["status_code"] for a in answers.values()} == {201}
    statuses = sorted(a["status"] for a in answers.values())
    assert statuses == ["confirmed"] * 3 + ["waitlisted"] * 13
    assert sorted(a["position"] for a in answers.values() if a["position"]) == list(range(1, 14))
    row = activities.sql("SELECT confirmed, capacity FROM activities WHERE id = %s", (shown["id"],))
    assert row == [{"confirmed": 3, "capacity": 3}]
    seats = activities.call("GET", f"/activities/{shown['id']}").json()
    assert (seats["seats_left"], seats["waitlisted"]) == (0, 13)


def test_concurrent_cancellations_each_promote_the_next_on_the_waitlist(activities, token_for, spy):
    confirmed = spy("activities", "registration.confirmed")
    shown = activities.new_activity(token_for("advisor"), capacity=2)
    people = [str(uuid.uuid4()) for _ in range(5)]
    mine = {}
    for person in people:  # in this order: two seats, then places 1, 2, 3
        response = activities.call(
            "POST", f"/activities/{shown['id']}/registrations", token_for("returnee", person)
        )
        mine[person] = response.json()
    start = threading.Barrier(2)
    codes = []

    def cancel(i, person):
        start.wait()
        path = f"/activities/{shown['id']}/registrations/{mine[person]['id']}"
        codes.append(activities.call("DELETE", path, token_for("returnee", person), replica=i))

    threads = [threading.Thread(target=cancel, args=(i, p)) for i, p in enumerate(people[:2])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in codes] == [204, 204]
    rows = activities.sql(
        "SELECT person_id::text AS person, status FROM registrations WHERE activity_id = %s",
        (shown["id"],),
    )
    status = {r["person"]: r["status"] for r in rows}
    assert [status[p] for p in people] == [
        "cancelled", "cancelled", "confirmed", "confirmed", "waitlisted",
    ]  # fmt: skip
    assert activities.sql("SELECT confirmed FROM activities")[0]["confirmed"] == 2
    promoted = wait_until(lambda: [e for e in confirmed.events() if e.data["promoted"]])
    wait_until(lambda: len([e for e in confirmed.events() if e.data["promoted"]]) == 2)
    assert {str(e.data["returnee_id"]) for e in confirmed.events() if e.data["promoted"]} == set(
        people[2:4]
    )
    assert promoted[0].data["check_in_code"]
    last = activities.call(
        "GET",
        f"/activities/{shown['id']}/registrations/{mine[people[4]]['id']}",
        token_for("returnee", people[4]),
    ).json()
    assert (last["status"], last["position"]) == ("waitlisted", 1)


def test_an_activity_from_invitation_to_report_and_the_erasure_of_a_registrant(
    activities, token_for, spy
):
    invitations = spy("activities", "invitation.issued")
    attended = spy("activities", "attendance.recorded", "activity.closed", "agreement.signed")
    advisor = token_for("advisor")
    li = activities.join(industry="biotech")
    activities.join(industry="ai")  # outside the audience
    silent = activities.join(
        industry="biotech", consents={**PROFILE["consents"], "notifications": False}
    )
    shown = activities.new_activity(advisor, audience={"industries": ["biotech"]})

    invited = invitations.wait_for("invitation.issued")
    assert (
        str(invited.data["returnee_id"]) == li and str(invited.data["activity_id"]) == shown["id"]
    )
    assert len(invitations.events(wait=0.5)) == 1  # not the returnee without consent
    late = activities.join(industry="biotech")  # joins after the publication: invited too
    wait_until(lambda: len(invitations.events()) == 2)
    assert {str(e.data["returnee_id"]) for e in invitations.events()} == {li, late}
    assert silent not in {str(e.data["returnee_id"]) for e in invitations.events()}

    path = f"/activities/{shown['id']}"
    mine = activities.call("POST", f"{path}/registrations", token_for("returnee", li)).json()
    again = activities.call("POST", f"{path}/registrations", token_for("returnee", li))
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    chen = token_for("provider", organization_id=WRSA)
    chens = activities.call("POST", f"{path}/registrations", chen).json()
    assert mine["status"] == chens["status"] == "confirmed"
    registration = f"{path}/registrations/{mine['id']}"
    assert activities.call("GET", registration, token_for("returnee")).status_code == 404
    assert activities.call("GET", registration, chen).status_code == 404
    assert activities.call("GET", registration).status_code == 401
    assert "check_in_code" not in activities.call("GET", registration, advisor).json()
    assert activities.call("GET", f"{path}/registrations", chen).status_code == 403

    door = f"{path}/check-ins"
    first = activities.call("POST", door, advisor, json={"code": mine["check_in_code"]}).json()
    assert (first["name"], first["already_checked_in"]) == (PROFILE["name"], False)
    second = activities.call("POST", door, advisor, json={"code": mine["check_in_code"]}).json()
    assert second["already_checked_in"] is True
    wrong = activities.call(
        "POST", door, {**advisor, "Accept-Language": "zh-CN"}, json={"code": "NOTACODE"}
    )
    assert wrong.status_code == 422 and wrong.json()["fields"] == {"code": ["该活动没有此签到码。"]}
    assert (
        activities.call("POST", door, token_for("returnee"), json={"code": "X"}).status_code == 403
    )
    activities.call("POST", door, advisor, json={"code": chens["check_in_code"]})
    wait_until(lambda: len(attended.events("attendance.recorded")) == 2)

    agreement = activities.call(
        "POST",
        f"{path}/agreements",
        advisor,
        json={
            "title": "Cooperation agreement on services for returnees",
            "signed_on": "2026-12-05",
            "parties": [{"organization_id": WRSA}, {"organization_id": BEIXINJING}],
        },
    )
    assert agreement.status_code == 201, agreement.text
    invalid = activities.call(
        "POST", f"{path}/agreements", advisor, json={"title": "", "parties": [{}]}
    )
    assert invalid.status_code == 400
    assert set(invalid.json()["fields"]) == {"title", "parties", "signed_on"}
    intention = {
        **EXAMPLES[("intention.accepted", 2)].data,
        "activity_id": shown["id"],
        "returnee_id": li,
        "organization_id": WRSA,
    }
    activities.publish("matching", "intention.accepted", intention, intention["intention_id"], 2)
    wait_until(lambda: activities.sql("SELECT 1 FROM intentions"))

    early = activities.call("POST", f"{path}/close", advisor, json={})
    assert early.status_code == 409
    activities.clock.now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
    closed = activities.call("POST", f"{path}/close", advisor, json={"summary": "Done."})
    assert closed.status_code == 200, closed.text
    report = activities.call("GET", f"{path}/report", advisor).json()
    assert (report["registered"], report["attended"], report["attendance_rate"]) == (2, 2, 1.0)
    assert report["organizations"] == [{"organization_id": WRSA, "name": "WRSA Changning"}]
    assert (report["agreements"], report["intentions"]["accepted"]) == (1, 1)
    closed_event = attended.wait_for("activity.closed")
    assert closed_event.data["attended"] == 2 and closed_event.data["intentions"] == 1

    activities.publish("accounts", "returnee.erased", {"returnee_id": li}, li)
    wait_until(lambda: activities.sql("SELECT 1 FROM erasures WHERE returnee_id = %s", (li,)))
    after = activities.call("GET", f"{path}/report", advisor).json()
    assert (after["registered"], after["attended"]) == (2, 2)  # the counts stay
    assert activities.sql("SELECT 1 FROM returnees WHERE id = %s", (li,)) == []
    assert activities.sql(
        "SELECT person_id, check_in_code FROM registrations WHERE id = %s", (mine["id"],)
    ) == [{"person_id": None, "check_in_code": None}]  # the person is gone
    assert activities.sql("SELECT 1 FROM outbox WHERE subject = %s", (mine["id"],)) == []
    listed = activities.call("GET", f"{path}/registrations", advisor).json()["items"]
    assert [r["name"] for r in listed] == [None, None]  # the erased one, the provider unknown
    assert (
        activities.call("GET", "/activities", params={"from": "2026-11-01T00:00:00Z"}).json()[
            "items"
        ][0]["status"]
        == "closed"
    )


def test_an_invalid_page_cursor_or_time_is_a_400_naming_the_field(activities):
    answer = activities.call("GET", "/activities", params={"next": "x", "from": "yesterday"})
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {"next", "from"}
    assert activities.call("GET", f"/activities/{uuid.uuid4()}").status_code == 404
    assert activities.call("GET", "/activities/not-an-id").status_code == 404
    assert activities.call("POST", "/activities", json={}).status_code == 401


def test_reordered_accounts_events_do_not_bring_back_an_erased_returnee(activities):
    li = activities.join()
    activities.publish("accounts", "returnee.erased", {"returnee_id": li}, li)
    wait_until(lambda: activities.sql("SELECT 1 FROM erasures WHERE returnee_id = %s", (li,)))
    data = {**PROFILE, "returnee_id": li, "changed_fields": ["name"]}
    activities.publish("accounts", "returnee.updated", data, li)
    handled = "SELECT 1 FROM inbox WHERE handler = 'activities.take_returnee'"
    wait_until(lambda: len(activities.sql(handled)) == 2)
    assert activities.sql("SELECT 1 FROM returnees WHERE id = %s", (li,)) == []
