"""The outbox relay: publishes committed outbox rows, exactly once per row across replicas.

Woken right after each commit that wrote events, and every `sweep_seconds` regardless, so rows
left by a crash between commit and publish, or by a broker outage, go out as soon as possible.
Rows are claimed with `FOR UPDATE SKIP LOCKED`: replicas never publish the same row concurrently.
A batch is published with pipelined confirms and marked published in the transaction that
claimed it (the marks sent with its COMMIT). An unroutable or refused row stays in the outbox
with a backoff and its reason.
"""

import contextlib
import logging
import time
from collections import Counter

import eventlet
from eventlet.queue import Empty, Full, LightQueue

from chassis.broker import BrokerPublisher, Outgoing
from chassis.metrics import EVENTS_PUBLISHED, EVENTS_UNDELIVERED
from chassis.topology import declare_producer

log = logging.getLogger(__name__)

MAX_ROW_BACKOFF_SECONDS = 300
PRUNE_EVERY_SECONDS = 600


class OutboxRelay:
    def __init__(
        self,
        pool,
        amqp_uri: str,
        producer: str,
        sweep_seconds: float = 1.0,
        batch_size: int = 500,
        outbox_retention_hours: float = 168,
        inbox_retention_hours: float = 720,
        unrouted_retention_hours: float = 168,
        declare=None,
    ):
        self.pool = pool
        self.producer = producer
        self.sweep_seconds = sweep_seconds
        self.batch_size = batch_size
        self.outbox_retention_hours = outbox_retention_hours
        self.inbox_retention_hours = inbox_retention_hours
        # What to declare on each new connection: by default the producer's exchanges; a
        # service declares its whole topology, so even the events it sends to itself (right at
        # start, before its consumers run) find their queues.
        self.publisher = BrokerPublisher(
            amqp_uri,
            on_connect=declare
            or (lambda channel: declare_producer(channel, producer, unrouted_retention_hours)),
        )
        self._wakeups = LightQueue(maxsize=1)
        self._running = False
        self._thread = None
        self._last_prune = 0.0

    def wake(self) -> None:
        with contextlib.suppress(Full):  # a wake-up is pending already; it sees this row too
            self._wakeups.put_nowait(True)

    def start(self, spawn) -> None:
        self._running = True
        self._thread = spawn(self._run)

    def stop(self) -> None:
        self._running = False
        self.wake()
        if self._thread is not None:
            self._thread.wait()
            self._thread = None
        self.publisher.close()

    def _run(self) -> None:
        failures = 0
        while self._running:
            try:
                self.relay_pending()
                self._prune_if_due()
                failures = 0
            except Exception as exc:  # broker or database down: keep rows, retry later
                failures += 1
                log.warning("outbox relay of %s paused: %s", self.producer, exc)
                eventlet.sleep(min(self.sweep_seconds * 2**failures, 30))
                continue
            with contextlib.suppress(Empty):
                self._wakeups.get(timeout=self.sweep_seconds)

    def ping(self) -> None:
        self.publisher.ping()

    def relay_pending(self) -> int:
        """Publish every due row; returns how many were published."""
        published = 0
        while True:
            with self.pool.cursor() as cur:
                cur.execute(
                    "SELECT id, exchange, routing_key, body, forget_on_publish FROM outbox"
                    " WHERE published_at IS NULL AND next_attempt_at <= now()"
                    " ORDER BY position LIMIT %s FOR UPDATE SKIP LOCKED",
                    (self.batch_size,),
                )
                rows = cur.fetchall()
                if not rows:
                    return published
                outcome = self.publisher.publish(
                    [
                        Outgoing(
                            message_id=str(row["id"]),
                            exchange=row["exchange"],
                            routing_key=row["routing_key"],
                            body=bytes(row["body"]),
                            properties={"type": row["routing_key"], "app_id": self.producer},
                        )
                        for row in rows
                    ]
                )
                types = {str(row["id"]): row["routing_key"] for row in rows}
                for event_type, n in Counter(types[i] for i in outcome.confirmed).items():
                    EVENTS_PUBLISHED.labels(self.producer, event_type).inc(n)
                for event_type, n in Counter(types[i] for i in outcome.failed).items():
                    EVENTS_UNDELIVERED.labels(self.producer, event_type).inc(n)
                # Rows about an erased person (or carrying a credential) go once published (as
                # read above: the rows are locked since, no one marks them meanwhile). The marks
                # go with the COMMIT, in its round trip (`TransactionCursor.hold`).
                forget = {str(row["id"]) for row in rows if row["forget_on_publish"]}
                gone = [i for i in outcome.confirmed if i in forget]
                kept = [i for i in outcome.confirmed if i not in forget]
                if gone:
                    cur.hold("DELETE FROM outbox WHERE id = ANY(%s::uuid[])", (gone,))
                if kept:
                    cur.hold(
                        "UPDATE outbox SET published_at = now(), last_error = NULL"
                        " WHERE id = ANY(%s::uuid[])",
                        (kept,),
                    )
                for message_id, reason in outcome.failed.items():
                    log.error("event %s not delivered, kept in the outbox: %s", message_id, reason)
                    cur.hold(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = %s,"
                        " next_attempt_at = now() + least(%s, power(2, attempts)) * interval '1 s'"
                        " WHERE id = %s",
                        (reason, MAX_ROW_BACKOFF_SECONDS, message_id),
                    )
                published += len(outcome.confirmed)
            if len(rows) < self.batch_size:
                return published

    def _prune_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        self.prune()

    def prune(self) -> tuple[int, int]:
        """Delete published outbox rows and inbox records older than their retention."""
        with self.pool.cursor() as cur:
            cur.execute(
                "DELETE FROM outbox WHERE published_at < now() - %s * interval '1 hour'",
                (self.outbox_retention_hours,),
            )
            outbox = cur.rowcount
            cur.execute(
                "DELETE FROM inbox WHERE handled_at < now() - %s * interval '1 hour'",
                (self.inbox_retention_hours,),
            )
            return outbox, cur.rowcount

    def backlog(self) -> dict:
        """Unpublished rows and the age of the oldest, for readiness and metrics."""
        with self.pool.cursor() as cur:
            cur.execute(
                "SELECT count(*) AS pending,"
                " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest_seconds"
                " FROM outbox WHERE published_at IS NULL"
            )
            row = cur.fetchone()
            return {"pending": row["pending"], "oldest_seconds": float(row["oldest_seconds"])}
