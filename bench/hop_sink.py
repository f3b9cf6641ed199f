"""The consumer side of the one-hop benchmark: a handler with a DB write and the inbox."""

from chassis.db import Database
from chassis.events import subscribe

SINK_TABLE = """
CREATE TABLE IF NOT EXISTS hops (
    event_id uuid PRIMARY KEY,
    sent_at timestamptz NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


class HopSink:
    name = "matching"
    db = Database()

    @subscribe("accounts", "organization.registered")
    def record(self, event):
        with self.db.unit_of_work() as uow:
            uow.execute(
                "INSERT INTO hops (event_id, sent_at) VALUES (%s, %s)", (event.id, event.time)
            )
