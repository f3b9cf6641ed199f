"""The consumer side of the one-hop benchmark: a use case with a DB write and the inbox, taken
in batches as every `on_event` subscriber is (`EVENT_BATCH_SIZE`).

The hop ends at the consumer's COMMIT: once the transaction committed, the time is written to
the file `HOP_COMMITS_FILE` names (`<event id> <epoch seconds>` a line), which `bench.hop`
reads; `applied_at` (the INSERT's clock) is earlier than that by the rest of the transaction.
"""

import os
import time

from chassis.db import Database
from chassis.events import on_event

SINK_TABLE = """
CREATE TABLE IF NOT EXISTS hops (
    event_id uuid PRIMARY KEY,
    sent_at timestamptz NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

_commits = None


def _committed(event_id: str) -> None:
    global _commits
    if _commits is None:
        _commits = open(os.environ["HOP_COMMITS_FILE"], "a", buffering=1)  # noqa: SIM115
    _commits.write(f"{event_id} {time.time():.6f}\n")


def record(event, uow):
    uow.execute("INSERT INTO hops (event_id, sent_at) VALUES (%s, %s)", (event.id, event.time))
    uow.after_commit(lambda: _committed(event.id))


class HopSink:
    name = "matching"
    db = Database()

    record = on_event("accounts", "organization.registered", use=record)
