"""The unit of work: a service's state, the events it publishes and (in an event handler) the
inbox record of the event it handles, committed together or not at all.

    def assess_returnee(event, uow):                     # a use case in handlers.py
        facts = uow.store.facts(event.data["returnee_id"])
        ...
        uow.publish("eligibility.assessed", data, subject=returnee_id)

Two implementations of one interface:
- `SqlUnitOfWork`: one PostgreSQL transaction; `uow.store` is the service's store bound to it
  (only the store writes SQL, through `execute`/`one`/`all`); `publish` writes outbox rows that
  the relay sends after the commit.
- `MemoryUnitOfWork`, opened by a `MemoryDatabase`: the same use case over the service's
  in-memory store, for handler unit tests that take milliseconds. Its commit keeps the store's
  changes, the published events and the inbox record; an exception throws all three away, as a
  rollback would.

Events are built and validated against the contract by the same code in both.

The units of work of a batch of events (`chassis.db.WorkerDatabase.apply_batch`) share one
transaction and a `BatchScope`: their outbox rows are written together in one statement before
the commit, and the store may keep in `scope.shared` what it read once for the whole batch.
"""

import copy
import uuid
from contextlib import contextmanager

import psycopg2.extras

from chassis.clock import Clock
from contracts import CATALOG, Event


class AlreadyHandled(Exception):
    """The event was handled before; the handler must not apply its effect again."""


OUTBOX_INSERT = (
    "INSERT INTO outbox (id, exchange, routing_key, subject, body, forget_on_publish) VALUES "
)
OUTBOX_VALUES = "(%s, %s, %s, %s, %s, %s)"


class BatchScope:
    """What the units of work of one batch share, besides their transaction: the events of the
    batch (those not handled before, in the order they came), a dict the service's store may
    keep what it read for all of them in (`shared`), what to do once they are all applied
    (`at_end`), and the outbox rows written so far, held until `flush` writes them in one
    statement (before the commit, and before anything reads the outbox: `forget_published`)."""

    def __init__(self, events: list[Event]):
        self.events = events
        self.shared: dict = {}
        self.outbox_rows: list[tuple] = []
        self._at_end: list = []

    def at_end(self, callback) -> None:
        """`callback()` once every event of the batch is applied, before its outbox rows are
        written and it commits (in its transaction: what raises there fails the batch); a
        callback given again is called once."""
        if callback not in self._at_end:
            self._at_end.append(callback)

    def end(self) -> None:
        callbacks, self._at_end = self._at_end, []
        for callback in callbacks:
            callback()

    def finish(self, cursor) -> None:
        """The batch's events all applied: `end`, then `flush`."""
        self.end()
        self.flush(cursor)

    def flush(self, cursor) -> None:
        rows, self.outbox_rows = self.outbox_rows, []
        write_outbox_rows(cursor, rows)


def write_outbox_rows(cursor, rows: list[tuple]) -> None:
    """One statement per thousand rows, each held by the cursor to go in front of the next
    statement or the `COMMIT`, in its round trip (`chassis.pool.TransactionCursor.hold`): no one
    reads what inserting outbox rows returns, and a later statement (an erasure's) sees them."""
    for start in range(0, len(rows), 1000):
        values = b",".join(cursor.mogrify(OUTBOX_VALUES, row) for row in rows[start : start + 1000])
        cursor.hold(OUTBOX_INSERT.encode() + values)


class UnitOfWork:
    """What a use case sees. Subclasses set `store` and write `_write_outbox`."""

    store = None
    batch: BatchScope | None = None  # the batch this unit of work is one event of, if any

    def __init__(self, service: str, cause: Event | None, correlation_id: str | None,
                 clock: Clock | None = None):  # fmt: skip
        self.service = service
        self.cause = cause
        self.correlation_id = correlation_id
        self.clock = clock or Clock()
        self.published: list[Event] = []
        self.relayed: list[tuple[str, Event, bytes]] = []
        self.committed: list = []  # callables run once this unit of work committed

    def after_commit(self, callback) -> None:
        """Run `callback()` once this unit of work committed (not if it rolls back): waking a
        loop about what it queued. An event handler's unit of work may share its transaction
        with other events of a batch, so anything leaving the process belongs here."""
        self.committed.append(callback)

    def now(self):
        return self.clock.now()

    def today(self):
        return self.clock.today()

    def publish(self, event_type: str, data: dict, subject=None, version: int = 1,
                keep: bool = True) -> Event:  # fmt: skip
        """An event published when (and only if) this unit of work commits. `keep=False`: not
        kept in the outbox for retention once published (an event carrying a credential)."""
        return self.publish_many(event_type, [(data, subject)], version, keep=keep)[0]

    def publish_many(self, event_type: str, items, version: int = 1,
                     keep: bool = True) -> list[Event]:  # fmt: skip
        """Events of one type from `(data, subject)` pairs, written in one statement: a batch
        job (a new policy re-assessing every returnee) would otherwise pay a round trip each."""
        events = [
            CATALOG.create(
                self.service,
                event_type,
                data,
                version=version,
                subject=None if subject is None else str(subject),
                correlation_id=self.correlation_id,
                causation_id=self.cause.id if self.cause else None,
            )
            for data, subject in items
        ]
        if events:
            self._write_outbox(events, keep)
        self.published.extend(events)
        return events

    def relay(self, exchange: str, event: Event, body: bytes) -> None:
        """`event` as `body` (a view of it, `services.notify.partners`) to `exchange`, when this
        unit of work commits; not kept in the outbox once published."""
        self._write_relayed(exchange, event, body)
        self.relayed.append((exchange, event, body))

    def _write_relayed(self, exchange: str, event: Event, body: bytes) -> None:
        raise NotImplementedError

    def forget_published(self, subject) -> int:
        """Erasure: forget the events about `subject` (its subject, or naming it anywhere in
        their body) kept for retention, so personal data they carry does not outlive the
        person's account. Unpublished ones must still reach their consumers, in order: they are
        deleted as soon as the broker confirmed them. Returns how many rows were concerned."""
        raise NotImplementedError

    def _write_outbox(self, events: list[Event], keep: bool = True) -> None:
        raise NotImplementedError


class SqlUnitOfWork(UnitOfWork):
    """One PostgreSQL transaction (the cursor's)."""

    def __init__(self, cursor, service: str, cause: Event | None = None,
                 correlation_id: str | None = None, clock: Clock | None = None,
                 store=None, batch: BatchScope | None = None):  # fmt: skip
        super().__init__(service, cause, correlation_id, clock)
        self.cursor = cursor
        self.batch = batch
        if store is not None:
            self.store = store(self)

    # The store's access to the transaction.
    def execute(self, sql: str, params=None):
        self.cursor.execute(sql, params)
        return self.cursor

    def write(self, sql: str, params=None) -> None:
        """A write whose result no one reads (no rows, no row count): sent with the unit's next
        statement, or its `COMMIT`, in that statement's round trip (`TransactionCursor.hold`;
        at once on another cursor). Order is kept; an error in it is raised by that statement,
        and fails the unit of work as it would have here."""
        hold = getattr(self.cursor, "hold", None)
        if hold is None:
            self.cursor.execute(sql, params)
        else:
            hold(sql, params)

    def write_values(self, sql: str, rows: list[tuple]) -> None:
        """`write` of `sql`, whose `VALUES %s` takes every row of `rows` (tuples of one length),
        as `psycopg2.extras.execute_values` would write them, in one statement."""
        template = ("(" + ",".join(["%s"] * len(rows[0])) + ")").encode()
        values = b",".join(self.cursor.mogrify(template, row) for row in rows)
        head, tail = sql.encode().split(b"%s", 1)
        self.write(head + values + tail)

    def one(self, sql: str, params=None) -> dict | None:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params=None) -> list[dict]:
        return self.execute(sql, params).fetchall()

    def record_inbox(self, handler: str) -> None:
        """Record that `handler` handles the cause; `AlreadyHandled` if it did before."""
        self.cursor.execute(
            "INSERT INTO inbox (handler, event_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            (handler, self.cause.id),
        )
        if self.cursor.fetchone() is None:
            raise AlreadyHandled(f"{handler} handled event {self.cause.id} before")

    @staticmethod
    def record_inbox_many(cursor, handler: str, events: list[Event]) -> set[str]:
        """Record that `handler` handles `events`, in one statement; the ids of those it had
        not handled before."""
        rows = psycopg2.extras.execute_values(
            cursor,
            "INSERT INTO inbox (handler, event_id) VALUES %s"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            [(handler, e.id) for e in events],
            page_size=len(events) or 1,
            fetch=True,
        )
        return {str(row["event_id"]) for row in rows}

    @staticmethod
    def record_inbox_and_commit(cursor, handler: str, events: list[Event]) -> None:
        """Record that `handler` handled `events` and commit, in one round trip. Without
        `ON CONFLICT`: an event recorded before (or by a transaction still open, which this one
        waits for) fails the statement, and the transaction is rolled back with all it did."""
        rows = ", ".join(["(%s, %s)"] * len(events))
        cursor.execute_and_commit(
            f"INSERT INTO inbox (handler, event_id) VALUES {rows}",
            [value for event in events for value in (handler, event.id)],
        )

    def _write_outbox(self, events: list[Event], keep: bool = True) -> None:
        rows = [
            (e.id, f"{self.service}.events", e.type, e.subject, e.to_json(), not keep)
            for e in events
        ]
        self._write_rows(rows)

    def _write_relayed(self, exchange: str, event: Event, body: bytes) -> None:
        self._write_rows([(str(uuid.uuid4()), exchange, event.type, event.subject, body, True)])

    def _write_rows(self, rows: list[tuple]) -> None:
        """Outbox rows: held for the batch's one statement, or written now."""
        if self.batch is not None:
            self.batch.outbox_rows.extend(rows)
        else:
            write_outbox_rows(self.cursor, rows)

    def forget_published(self, subject) -> int:
        # A scan of what retention keeps (a week of events): an erasure is rare, and an event
        # names the person in its body more often than as its subject.
        if self.batch is not None:
            self.batch.flush(self.cursor)  # the rows of the batch so far are concerned too
        about = "(subject = %s OR position(convert_to(%s, 'UTF8') in body) > 0)"
        subject = str(subject)
        self.cursor.execute(
            f"DELETE FROM outbox WHERE published_at IS NOT NULL AND {about}", (subject, subject)
        )
        forgotten = self.cursor.rowcount
        self.cursor.execute(
            f"UPDATE outbox SET forget_on_publish = true WHERE published_at IS NULL AND {about}",
            (subject, subject),
        )
        return forgotten + self.cursor.rowcount


class MemoryUnitOfWork(UnitOfWork):
    def __init__(self, database: "MemoryDatabase", store, cause, correlation_id):
        super().__init__(database.service, cause, correlation_id, database.clock)
        self.store = store
        self._database = database
        self._pending: list[Event] = []
        self._pending_relayed: list[tuple[str, Event, bytes]] = []

    def _write_outbox(self, events: list[Event], keep: bool = True) -> None:
        self._pending.extend(events)

    def _write_relayed(self, exchange: str, event: Event, body: bytes) -> None:
        self._pending_relayed.append((exchange, event, body))

    def forget_published(self, subject) -> int:
        # The twin publishes at commit: what is pending is "published" then, as the relay would.
        about = str(subject)
        kept = [
            e
            for e in self._database.outbox
            if e.subject != about and about not in e.to_json().decode()
        ]
        forgotten = len(self._database.outbox) - len(kept)
        self._database.outbox[:] = kept
        return forgotten


class MemoryDatabase:
    """A service's state in memory, for unit tests of its use cases.

        db = MemoryDatabase("consulting", MemoryStore(), clock=FrozenClock(...))
        with db.unit_of_work() as uow:
            handlers.request_consultation(command, caller, uow)
        assert [e.type for e in db.outbox] == ["consultation.requested", ...]
        db.handle(handlers.assess_returnee, event)   # as a subscriber would, inbox included

    `outbox` holds the events of committed units of work (the relay "publishes" at once),
    `inbox` the `(handler, event id)` pairs handled.
    """

    def __init__(self, service: str, store, clock: Clock | None = None):
        self.service = service
        self.store = store
        self.clock = clock or Clock()
        self.outbox: list[Event] = []
        # (exchange, event, body) relayed to another exchange than the service's own.
        self.relayed: list[tuple[str, Event, bytes]] = []
        self.inbox: set[tuple[str, str]] = set()

    @contextmanager
    def unit_of_work(self, cause: Event | None = None, handler: str | None = None,
                     batched: bool = False):  # fmt: skip
        """`batched`: a unit of work standing for several, as `chassis.db`'s (its outbox rows
        written together: here, as always, at the commit)."""
        if cause is not None and handler is not None and (handler, cause.id) in self.inbox:
            raise AlreadyHandled(f"{handler} handled event {cause.id} before")
        working = copy.deepcopy(self.store)
        correlation_id = cause.correlation_id if cause else None
        uow = MemoryUnitOfWork(self, working, cause, correlation_id)
        if batched:
            uow.batch = BatchScope([])
        yield uow
        self.store = working
        self.outbox.extend(uow._pending)
        self.relayed.extend(uow._pending_relayed)
        if cause is not None and handler is not None:
            self.inbox.add((handler, cause.id))
        for callback in uow.committed:
            callback()

    def handle(self, use_case, event: Event, **kwargs):
        """Apply `use_case(event, uow, **kwargs)` as a subscriber does: once per event id;
        a redelivery answers `AlreadyHandled`'s absence with None and changes nothing."""
        handler = f"{self.service}.{use_case.__name__}"
        try:
            with self.unit_of_work(cause=event, handler=handler) as uow:
                return use_case(event, uow, **kwargs)
        except AlreadyHandled:
            return None

    def handle_batch(self, use_case, events: list[Event], **kwargs) -> list:
        """Apply `use_case(event, uow, **kwargs)` to `events` as a batching subscriber does
        (`chassis.db.WorkerDatabase.apply_batch`): one commit for all, each event once, the
        units of work sharing a `BatchScope`; an exception keeps nothing. The results in the
        order of `events`, None for those handled before."""
        handler = f"{self.service}.{use_case.__name__}"
        fresh, seen = [], set()
        for position, event in enumerate(events):
            if (handler, event.id) not in self.inbox and event.id not in seen:
                seen.add(event.id)
                fresh.append((position, event))
        scope = BatchScope([event for _, event in fresh])
        working = copy.deepcopy(self.store)
        units, results = [], [None] * len(events)
        outbox, relayed = list(self.outbox), list(self.relayed)
        try:
            for position, event in fresh:
                uow = MemoryUnitOfWork(self, working, event, event.correlation_id)
                uow.batch = scope
                results[position] = use_case(event, uow, **kwargs)
                units.append(uow)
                # In the batch's outbox at once, as the SQL scope's rows are to the events after
                # (an erasure forgets those naming the person).
                self.outbox.extend(uow._pending)
                self.relayed.extend(uow._pending_relayed)
            scope.end()
        except BaseException:
            self.outbox[:], self.relayed[:] = outbox, relayed
            raise
        self.store = working
        for uow in units:
            self.inbox.add((handler, uow.cause.id))
        for uow in units:
            for callback in uow.committed:
                callback()
        return results

    def published(self, event_type: str | None = None) -> list[Event]:
        return [e for e in self.outbox if event_type is None or e.type == event_type]
