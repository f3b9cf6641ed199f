"""Services the backbone tests run: a producer posing as accounts, a consumer posing as matching.

The consumer's effect goes to a table without a unique key, so a double-applied event shows up
as two rows; every delivery is also logged outside the effect's transaction, so duplicates the
inbox absorbed can be counted too.
"""

import os
import time

from chassis.db import Database
from chassis.events import on_event, subscribe
from chassis.operable import Operable
from chassis.pool import ConnectionPool
from chassis.uow import SqlUnitOfWork

TEST_TABLES = """
CREATE TABLE IF NOT EXISTS effects (event_id uuid NOT NULL, name text NOT NULL,
                                    applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS deliveries (event_id uuid NOT NULL, name text NOT NULL,
                                       delivered_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS fixes (name text PRIMARY KEY);
"""


def create_test_tables(database_url: str) -> None:
    pool = ConnectionPool(database_url, 1)
    with pool.cursor() as cur:
        cur.execute(TEST_TABLES)
    pool.clear()


class Tally(Operable):
    """Counts `organization.registered` events. Names starting with `poison` fail until a row in
    `fixes` says the bug is fixed; `echo` ones publish an event of their own."""

    name = "matching"
    db = Database()

    @subscribe("accounts", "organization.registered")
    def tally(self, event):
        name = event.data["name"]
        with self.db.pool.cursor() as cur:
            cur.execute("INSERT INTO deliveries (event_id, name) VALUES (%s, %s)", (event.id, name))
            cur.execute("SELECT 1 FROM fixes WHERE name = %s", (name,))
            fixed = cur.fetchone() is not None
        if name.startswith("poison") and not fixed:
            raise RuntimeError(f"cannot handle {name}")
        time.sleep(float(os.environ.get("TALLY_HANDLER_SECONDS", "0")))
        with self.db.unit_of_work() as uow:
            uow.execute("INSERT INTO effects (event_id, name) VALUES (%s, %s)", (event.id, name))
            if name.startswith("echo"):
                uow.publish(
                    "resource.withdrawn",
                    {
                        "resource_id": event.data["organization_id"],
                        "organization_id": event.data["organization_id"],
                    },
                    subject=event.data["organization_id"],
                )


def publish_organizations(pool: ConnectionPool, names, cause=None) -> list[str]:
    """Commit one `organization.registered` per name through the outbox, as accounts would."""
    import uuid

    ids = []
    for name in names:
        with pool.cursor() as cur:
            tx = SqlUnitOfWork(cur, "accounts", cause, None)
            org_id = str(uuid.uuid4())
            event = tx.publish(
                "organization.registered",
                {"organization_id": org_id, "name": name, "kind": "bank"},
                subject=org_id,
            )
            ids.append(event.id)
    return ids


_delivery_pools: dict[str, ConnectionPool] = {}


def take_organization(event, uow):
    """The use case of `Batched`: names starting with `poison` fail until `fixes` names them.
    Each delivery is logged in a transaction of its own, so what a rollback undid shows."""
    name = event.data["name"]
    dsn = uow.cursor.connection.dsn
    pool = _delivery_pools.setdefault(dsn, ConnectionPool(dsn, 2))
    with pool.cursor() as cur:
        cur.execute("INSERT INTO deliveries (event_id, name) VALUES (%s, %s)", (event.id, name))
    uow.execute("SELECT 1 FROM fixes WHERE name = %s", (name,))
    if name.startswith("poison") and uow.cursor.fetchone() is None:
        raise RuntimeError(f"cannot handle {name}")
    time.sleep(float(os.environ.get("BATCHED_EVENT_SECONDS", "0")))
    uow.execute("INSERT INTO effects (event_id, name) VALUES (%s, %s)", (event.id, name))


class Batched(Operable):
    """The same effect through `on_event`, which takes events in batches (`EVENT_BATCH_SIZE`):
    rows committed by one transaction share their `xmin`."""

    name = "matching"
    db = Database()

    tally = on_event("accounts", "organization.registered", use=take_organization)


class Background(Operable):
    """`Batched` declared `background`: its batches wait `BACKGROUND_BATCH_LINGER_MS`."""

    name = "matching"
    db = Database()

    tally = on_event("accounts", "organization.registered", use=take_organization, background=True)
