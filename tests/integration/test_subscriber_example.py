"""examples/subscriber/ run as a district system would run it, against a running accounts.

The subscriber is started as its own process from its own folder, bound to `accounts.events`
for `returnee.registered`. Returnees register over HTTP; the test then re-publishes one event
with the same id and sends malformed messages, and reads the subscriber's SQLite database.
"""

import ast
import copy
import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from kombu import Connection, Producer

from chassis.topology import declare_producer, events_exchange
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.accounts.service import AccountsService
from tests.support import (
    ROOT,
    UNROUTED_RETENTION_HOURS,
    publish_events,
    service_url,
    wait_until,
)

EXAMPLE = ROOT / "examples" / "subscriber"
QUEUE = "district.changning-crm"


def registration() -> dict:
    body = copy.deepcopy(EXAMPLES[("returnee.registered", 1)].data)
    body.pop("returnee_id")
    body["email"] = f"li.wei.{uuid.uuid4().hex[:8]}@example.com"
    body["password"] = "Returnee2026!"
    return body


@pytest.fixture
def accounts(config_for, container_factory, amqp_uri):
    # The deploy step's part for a producer: its exchanges exist before anyone binds to them.
    with Connection(amqp_uri) as connection:
        declare_producer(connection.default_channel, "accounts", UNROUTED_RETENTION_HOURS)
    container = container_factory(AccountsService, config_for("accounts"))
    container.start()
    return service_url(container)


class SubscriberProcess:
    def __init__(self, amqp_uri: str, workdir: Path):
        self.database = workdir / "district.sqlite3"
        self.log = workdir / "subscriber.log"
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "subscriber.py",
                "--amqp-uri",
                amqp_uri,
                "--queue",
                QUEUE,
                "--bind",
                "accounts:returnee.registered",
                "--database",
                str(self.database),
                # What is checked here is the reading (envelope, once only, dead letters) of the
                # producer's own bytes; the partner exchange it binds to in production, and that
                # the subscriber user may read nothing else, test_rabbitmq_definitions shows.
                "--exchange",
                "accounts.events",
            ],
            cwd=EXAMPLE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rows(self, sql: str, params=()) -> list[tuple]:
        if not self.database.exists():
            return []
        db = sqlite3.connect(self.database, timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []
        finally:
            db.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def subscriber(amqp_uri, tmp_path):
    process = SubscriberProcess(amqp_uri, tmp_path)
    yield process
    process.stop()


def queue_exists(rabbit_admin, vhost, name):
    return rabbit_admin.depth(vhost, name) is not None


def publish_raw(amqp_uri: str, body: bytes, routing_key: str = "returnee.registered") -> None:
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        Producer(connection.default_channel).publish(
            body,
            exchange=events_exchange("accounts"),
            routing_key=routing_key,
            content_type="application/cloudevents+json",
            content_encoding="utf-8",
            serializer=None,
        )


def test_the_subscriber_imports_nothing_from_the_platform():
    tree = ast.parse((EXAMPLE / "subscriber.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names == {"kombu"}


def test_the_subscriber_receives_each_registration_once_and_survives_bad_messages(
    accounts, subscriber, spy, amqp_uri, vhost, rabbit_admin
):
    events = spy("accounts", "returnee.registered")
    wait_until(
        lambda: queue_exists(rabbit_admin, vhost, QUEUE) or subscriber.process.poll() is not None,
        30,
        message="the subscriber's queue",
    )
    assert subscriber.process.poll() is None, subscriber.output()

    returnees = []
    for _ in range(3):
        response = requests.post(f"{accounts}/returnees", json=registration(), timeout=10)
        assert response.status_code == 201, response.text
        returnees.append(response.json()["id"])

    def processed():
        return subscriber.rows("SELECT subject FROM activity ORDER BY rowid")

    wait_until(lambda: len(processed()) >= 3, 30, message=f"3 events; {subscriber.output()}")

    # At-least-once delivery, played by hand: the very same event (same id) arrives again.
    first = events.wait_for("returnee.registered", lambda e: e.subject == returnees[0])
    published_ids = {e.id for e in events.events("returnee.registered")}
    events.close()  # what follows is no event: the spy would not read it
    publish_events(amqp_uri, [first])
    # And things that are no event at all, or not the platform's.
    publish_raw(amqp_uri, b"this is not json")
    not_cloudevents = json.loads(first.to_json())
    not_cloudevents.update(id=str(uuid.uuid4()), specversion="0.3")
    publish_raw(amqp_uri, json.dumps(not_cloudevents).encode())
    wrong_schema = json.loads(first.to_json())
    wrong_schema.update(id=str(uuid.uuid4()), dataschema="urn:other:returnee.registered:v1")
    publish_raw(amqp_uri, json.dumps(wrong_schema).encode())

    # It keeps going: a later registration is processed after all of that.
    response = requests.post(f"{accounts}/returnees", json=registration(), timeout=10)
    assert response.status_code == 201, response.text
    returnees.append(response.json()["id"])
    wait_until(
        lambda: returnees[3] in {s for (s,) in processed()},
        30,
        message=f"the fourth registration; {subscriber.output()}",
    )
    wait_until(
        lambda: rabbit_admin.depth(vhost, f"{QUEUE}.dead-letters") == 3,
        15,
        message=f"3 dead letters; {subscriber.output()}",
    )

    assert subscriber.process.poll() is None, subscriber.output()
    subjects = [s for (s,) in processed()]
    assert sorted(subjects) == sorted(returnees)  # each once: the duplicate was absorbed
    processed_ids = [i for (i,) in subscriber.rows("SELECT event_id FROM activity")]
    assert len(set(processed_ids)) == len(processed_ids) == 4
    assert published_ids < set(processed_ids)
    stored = subscriber.rows("SELECT returnee_id FROM returnees ORDER BY returnee_id")
    assert [r for (r,) in stored] == sorted(returnees)
    assert rabbit_admin.depth(vhost, QUEUE) == 0  # everything acked
    assert "duplicate returnee.registered v1 " + first.id in subscriber.output()

    # The dead letters keep their body and say why they are there.
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        letters = []
        while (message := channel.basic_get(f"{QUEUE}.dead-letters", no_ack=True)) is not None:
            letters.append(message)
    reasons = [letter.headers["x-reason"] for letter in letters]
    assert reasons[0].startswith("malformed: body is not JSON"), reasons
    assert "specversion '0.3'" in reasons[1], reasons
    assert "dataschema" in reasons[2], reasons
    assert letters[0].body in (b"this is not json", "this is not json")  # amqp decodes utf-8
    assert {letter.headers["x-original-exchange"] for letter in letters} == {"accounts.events"}

    assert subscriber.stop() == 0
    assert "stopped: {'processed': 4, 'duplicate': 1, 'skipped': 0, 'dead_lettered': 3}" in (
        subscriber.output()
    )


def test_a_restarted_subscriber_does_not_process_again(amqp_uri, tmp_path, vhost, rabbit_admin):
    """Dedupe outlives the process: an event redelivered after a restart is skipped."""
    with Connection(amqp_uri) as connection:
        declare_producer(connection.default_channel, "accounts", UNROUTED_RETENTION_HOURS)
    event = CATALOG.create(
        "accounts",
        "returnee.registered",
        EXAMPLES[("returnee.registered", 1)].data,
        subject=EXAMPLES[("returnee.registered", 1)].subject,
    )
    first = SubscriberProcess(amqp_uri, tmp_path)
    try:
        wait_until(lambda: queue_exists(rabbit_admin, vhost, QUEUE), 30, message="the queue")
        publish_events(amqp_uri, [event])
        wait_until(lambda: first.rows("SELECT 1 FROM activity"), 30, message=first.output())
    finally:
        assert first.stop() == 0
    publish_events(amqp_uri, [event])  # arrives while no subscriber runs: the queue keeps it
    second = SubscriberProcess(amqp_uri, tmp_path)
    try:
        wait_until(lambda: "duplicate returnee.registered" in second.output(), 30)
        assert second.rows("SELECT event_id FROM activity") == [(event.id,)]
    finally:
        assert second.stop() == 0
