"""examples/node-subscriber/ (Node.js: amqplib, ajv) run against a running accounts: proof that
the contract needs no Python. The subscriber is started with node as its own process, bound to
`accounts.events` on the test's vhost; a returnee registers over HTTP, and the subscriber says
it received the event and that its data is valid against the published JSON Schema
(contracts/pins). An event whose data breaks the schema is reported invalid, so the check can
fail."""

import copy
import json
import shutil
import subprocess
import time
import uuid

import pytest
import requests
from kombu import Connection

from chassis.topology import declare_producer
from contracts import Event
from contracts.examples import EXAMPLES
from services.accounts.service import AccountsService
from tests.support import ROOT, UNROUTED_RETENTION_HOURS, publish_events, service_url

EXAMPLE = ROOT / "examples" / "node-subscriber"
QUEUE = "district.node-crm"


@pytest.fixture
def accounts(config_for, container_factory, amqp_uri):
    with Connection(amqp_uri) as connection:
        declare_producer(connection.default_channel, "accounts", UNROUTED_RETENTION_HOURS)
    container = container_factory(AccountsService, config_for("accounts"))
    container.start()
    return service_url(container)


class NodeSubscriber:
    def __init__(self, amqp_uri: str, workdir):
        if not (EXAMPLE / "node_modules" / "amqplib").exists():
            pytest.fail("the example's npm packages are not installed: run `make tools`")
        self.log = workdir / "node-subscriber.log"
        self._out = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", "subscriber.js", "--amqp-uri", amqp_uri,
             "--queue", QUEUE, "--bind", "accounts:returnee.registered"],
            cwd=EXAMPLE, stdout=self._out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def lines(self) -> list[dict]:
        found = []
        for line in self.log.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def wait_for(self, predicate, timeout=30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if predicate(line):
                    return line
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.2)
        pytest.fail(f"the subscriber did not say it in {timeout} s:\n{self.log.read_text()}")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self._out.close()


@pytest.fixture
def subscriber(amqp_uri, tmp_path):
    running = NodeSubscriber(amqp_uri, tmp_path)
    running.wait_for(lambda line: line.get("ready") == QUEUE)
    yield running
    running.stop()


def test_the_node_subscriber_receives_and_validates_what_the_platform_publishes(
    accounts, subscriber, amqp_uri
):
    body = copy.deepcopy(EXAMPLES[("returnee.registered", 1)].data)
    body.pop("returnee_id")
    body["email"] = f"li.wei.{uuid.uuid4().hex[:8]}@example.com"
    body["password"] = "Returnee2026!"
    created = requests.post(f"{accounts}/returnees", json=body, timeout=10)
    assert created.status_code == 201, created.text

    received = subscriber.wait_for(lambda line: line.get("type") == "returnee.registered")
    assert received == {
        "received": received["received"], "type": "returnee.registered", "known": True,
        "valid": True, "errors": [],
    }  # fmt: skip
    uuid.UUID(received["received"])

    # Data that breaks the published schema, in a well-formed envelope: reported, not accepted.
    broken = dict(EXAMPLES[("returnee.registered", 1)].data, birth_date="yesterday")
    event = Event(type="returnee.registered", source="/accounts", data=broken, subject="x")
    publish_events(amqp_uri, [event])
    refused = subscriber.wait_for(lambda line: line.get("received") == event.id)
    assert refused["valid"] is False
    assert any("birth_date" in error for error in refused["errors"]), refused
