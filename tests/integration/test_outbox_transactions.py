"""A transaction's events leave with its commit: one that fails after `uow.publish` publishes
nothing, neither from a worker nor from a script's unit of work.

Each test fails one transaction after its event is written, then commits a second one, and
waits for the second event at a consumer. The relay publishes outbox rows in the order they were
written, so an event of the failed transaction that had got out (its outbox row committed apart
from the transaction, or the event sent to the broker straight away) would reach the consumer
first; its outbox row would also still be there.
"""

import uuid

import pytest
import requests

from chassis.db import Database, ScriptDatabase
from chassis.operable import Operable
from chassis.pool import ConnectionPool
from chassis.web import http
from tests.support import query, service_url


class OrganizationDesk(Operable):
    """Registers organizations as accounts does."""

    name = "accounts"
    db = Database()

    @http("POST", "/organizations/<name>", status=201)
    def register(self, request, name):
        return {"event_id": register_organization(self.db, name)}


def register_organization(db, name: str) -> str:
    """Publish `organization.registered`; a name starting with `doomed` fails after that, before
    the commit, as a later step of a handler would."""
    with db.unit_of_work() as uow:
        organization_id = str(uuid.uuid4())
        event = uow.publish(
            "organization.registered",
            {"organization_id": organization_id, "name": name, "kind": "bank"},
            subject=organization_id,
        )
        if name.startswith("doomed"):
            raise RuntimeError(f"registering {name} failed after its event was written")
    return event.id


@pytest.fixture
def desk(container_factory, config_for):
    """The service's base URL and database URL; its relay publishes what either commits."""
    config = config_for("accounts")
    container = container_factory(OrganizationDesk, config)
    container.start()
    return service_url(container), config["DATABASE_URL"]


def assert_only_event_out(events, database_url: str, event_id: str) -> None:
    events.wait_for("organization.registered", lambda event: event.id == event_id)
    assert [event.id for event in events.events()] == [event_id]
    assert [row["id"] for row in query(database_url, "SELECT id::text FROM outbox")] == [event_id]


def test_a_worker_transaction_failing_after_publish_publishes_nothing(desk, spy):
    url, database_url = desk
    events = spy("accounts", "organization.registered")
    assert requests.post(f"{url}/organizations/doomed-bank").status_code == 500
    assert query(database_url, "SELECT id FROM outbox") == []
    kept = requests.post(f"{url}/organizations/kept-bank")
    assert kept.status_code == 201
    assert_only_event_out(events, database_url, kept.json()["event_id"])


def test_a_script_transaction_failing_after_publish_publishes_nothing(desk, spy):
    _, database_url = desk
    events = spy("accounts", "organization.registered")
    pool = ConnectionPool(database_url, 1)
    try:
        unit_of_work = ScriptDatabase(pool, "accounts")
        with pytest.raises(RuntimeError):
            register_organization(unit_of_work, "doomed-bank")
        assert query(database_url, "SELECT id FROM outbox") == []
        kept = register_organization(unit_of_work, "kept-bank")
    finally:
        pool.clear()
    assert_only_event_out(events, database_url, kept)
