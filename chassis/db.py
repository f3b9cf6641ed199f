"""PostgreSQL for one service: a green connection pool and a unit of work with outbox and inbox.

    with self.db.transaction() as tx:
        tx.execute("INSERT INTO ...", params)
        tx.publish("returnee.registered", data, subject=returnee_id)

The rows and the outbox entries of the events commit together; right after the commit the relay is
woken to publish them. Inside an event handler the same transaction also records
`(handler, event id)` in the inbox: if the event was handled before, entering the transaction
raises `AlreadyHandled` and the handler's effect is not applied twice.
"""

import logging
import uuid
from collections import deque
from contextlib import contextmanager, suppress

import eventlet
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import psycopg2.sql
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider

from chassis.broker import BrokerUnavailable
from chassis.outbox import OutboxRelay
from chassis.settings import database_url
from chassis.topology import declare_service
from contracts import CATALOG, Event

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)

# UUIDs as query parameters (event data loads ids as uuid.UUID). Only the adapter: uuid columns
# still come back as strings. Alembic's engine registers the same adapter, so without this line
# code that passed in a process that had migrated would fail in one that had not.
psycopg2.extensions.register_adapter(uuid.UUID, psycopg2.extras.UUID_adapter)


class DatabaseUnavailable(ConnectionError):
    pass


class AlreadyHandled(Exception):
    """The event was handled before; the handler must not apply its effect again."""


class TransactionCursor(psycopg2.extras.RealDictCursor):
    """Opens its transaction with its first statement: `BEGIN; <statement>` in one round trip,
    where psycopg2 would send `BEGIN` on its own first."""

    began = False

    def execute(self, query, vars=None):
        if not self.began:
            self.began = True
            if isinstance(query, psycopg2.sql.Composable):
                query = psycopg2.sql.SQL("BEGIN;") + query
            elif isinstance(query, bytes):  # execute_values sends the statement as bytes
                query = b"BEGIN;" + query
            else:
                query = f"BEGIN;{query}"
        return super().execute(query, vars)


class ConnectionPool:
    """At most `size` connections; callers wait for a free one instead of failing."""

    def __init__(self, dsn: str, size: int, acquire_timeout: float = 30.0):
        self.dsn = dsn
        self.acquire_timeout = acquire_timeout
        self._slots = Semaphore(size)
        self._idle: deque = deque()

    @contextmanager
    def connection(self):
        if not self._slots.acquire(timeout=self.acquire_timeout):
            raise DatabaseUnavailable("no database connection free")
        conn = None
        try:
            conn = self._idle.pop() if self._idle else self._connect()
            yield conn
        except CONNECTION_ERRORS:
            # The server went away (restart, failover): the idle ones are as dead as this one.
            self._discard(conn)
            self.clear()
            conn = None
            raise
        finally:
            if conn is not None:
                if conn.closed or conn.info.transaction_status != 0:
                    self._discard(conn)
                else:
                    self._idle.append(conn)
            self._slots.release()

    def _connect(self):
        try:
            conn = psycopg2.connect(self.dsn, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(f"database unavailable: {exc}".strip()) from exc
        conn.autocommit = True  # transactions are opened by TransactionCursor
        return conn

    @staticmethod
    def _discard(conn) -> None:
        if conn is not None and not conn.closed:
            with suppress(psycopg2.Error):
                conn.close()

    def clear(self) -> None:
        while self._idle:
            self._discard(self._idle.pop())

    @contextmanager
    def cursor(self):
        """A cursor in a transaction committed on success and rolled back on any error."""
        with self.connection() as conn, conn.cursor(cursor_factory=TransactionCursor) as cur:
            try:
                yield cur
            except BaseException:
                if cur.began and not conn.closed:
                    with suppress(psycopg2.Error):
                        cur.execute("ROLLBACK")
                raise
            if cur.began:
                cur.execute("COMMIT")

    def ping(self) -> None:
        """Raise `DatabaseUnavailable` unless the database answers; one retry on a fresh
        connection, since a pooled one may predate a server restart."""
        for attempt in (1, 2):
            try:
                timeout = eventlet.Timeout(5, DatabaseUnavailable("database did not answer in 5 s"))
                with timeout, self.cursor() as cur:
                    cur.execute("SELECT 1")
                return
            except CONNECTION_ERRORS as exc:
                if attempt == 2:
                    raise DatabaseUnavailable(str(exc).strip()) from exc


class Transaction:
    def __init__(self, cursor, service: str, cause: Event | None, correlation_id: str | None):
        self.cursor = cursor
        self.service = service
        self.cause = cause
        self.correlation_id = correlation_id
        self.published: list[Event] = []

    def execute(self, sql: str, params=None):
        self.cursor.execute(sql, params)
        return self.cursor

    def one(self, sql: str, params=None) -> dict | None:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params=None) -> list[dict]:
        return self.execute(sql, params).fetchall()

    def publish(self, event_type: str, data: dict, subject=None, version: int = 1) -> Event:
        """Write an event to the outbox; it is published when (and only if) this commits."""
        return self.publish_many(event_type, [(data, subject)], version)[0]

    def publish_many(self, event_type: str, items, version: int = 1) -> list[Event]:
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
            psycopg2.extras.execute_values(
                self.cursor,
                "INSERT INTO outbox (id, exchange, routing_key, subject, body) VALUES %s",
                [(e.id, f"{self.service}.events", e.type, e.subject, e.to_json()) for e in events],
                page_size=1000,
            )
        self.published.extend(events)
        return events

    def forget_published(self, subject) -> int:
        """Erasure: delete the already published events about `subject` kept for retention, so
        personal data they carry does not outlive the person's account. Unpublished ones stay:
        they must still reach their consumers (the erasure event among them)."""
        self.cursor.execute(
            "DELETE FROM outbox WHERE subject = %s AND published_at IS NOT NULL", (str(subject),)
        )
        return self.cursor.rowcount


@contextmanager
def script_pool(service: str, size: int = 2):
    """A pool on the service's database for a script (seeds, tools), emptied afterwards."""
    pool = ConnectionPool(database_url(service), size)
    try:
        yield pool
    finally:
        pool.clear()


class UnitOfWork:
    """Transactions outside a worker (seeds, start-up jobs, scripts): the same outbox, published
    by the service's relay on its next sweep."""

    def __init__(self, pool: ConnectionPool, service: str):
        self.pool = pool
        self.service = service

    @contextmanager
    def transaction(self):
        with self.pool.cursor() as cursor:
            yield Transaction(cursor, self.service, None, None)


class WorkerDatabase:
    """What a worker sees as `self.db`."""

    def __init__(self, provider: "Database", worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._inbox_recorded = False

    @property
    def pool(self) -> ConnectionPool:
        return self._provider.pool

    def ping(self) -> None:
        self._provider.pool.ping()

    def ping_broker(self) -> None:
        self._provider.relay.ping()

    def backlog(self) -> dict:
        return self._provider.relay.backlog()

    @contextmanager
    def transaction(self):
        cause = self._provider.event_of(self._worker_ctx)
        correlation_id = self._worker_ctx.data.get("correlation_id") or (
            cause.correlation_id if cause else None
        )
        with self.pool.cursor() as cursor:
            tx = Transaction(cursor, self._provider.service_name, cause, correlation_id)
            if cause is not None and not self._inbox_recorded:
                handler = self._provider.handler_of(self._worker_ctx)
                cursor.execute(
                    "INSERT INTO inbox (handler, event_id) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING event_id",
                    (handler, cause.id),
                )
                if cursor.fetchone() is None:
                    raise AlreadyHandled(f"{handler} handled event {cause.id} before")
            yield tx
        self._inbox_recorded = cause is not None
        if tx.published:
            self._provider.relay.wake()


class Database(DependencyProvider):
    """The service's database: a pool, the unit of work, and the outbox relay that drains it."""

    def setup(self):
        config = self.container.config
        self.service_name = self.container.service_name
        self.pool = ConnectionPool(config["DATABASE_URL"], config["DB_POOL_SIZE"])
        self.relay = OutboxRelay(
            self.pool,
            config["AMQP_URI"],
            producer=self.service_name,
            sweep_seconds=config["OUTBOX_SWEEP_SECONDS"],
            batch_size=config["OUTBOX_BATCH_SIZE"],
            outbox_retention_hours=config["OUTBOX_RETENTION_HOURS"],
            inbox_retention_hours=config["INBOX_RETENTION_HOURS"],
            declare=lambda channel: declare_service(channel, self.container.service_cls, config),
        )
        # The relay's first connection declares the service's whole topology. Made here, before
        # any consumer starts, it stops the start on a queue the broker holds with other
        # arguments (`QueueMismatch`, saying what to do); an unreachable broker does not stop
        # it: the topology is declared when the relay reconnects.
        try:
            self.relay.ping()
        except BrokerUnavailable as exc:
            log.warning("broker unavailable at start, queues are declared on reconnect: %s", exc)

    def start(self):
        self.relay.start(self.container.spawn_managed_thread)

    def stop(self):
        self.relay.stop()
        self.pool.clear()

    def kill(self):
        self.relay.stop()
        self.pool.clear()

    def get_dependency(self, worker_ctx):
        return WorkerDatabase(self, worker_ctx)

    @staticmethod
    def event_of(worker_ctx) -> Event | None:
        """The event a subscriber worker handles; None for HTTP, timers and others."""
        if getattr(worker_ctx.entrypoint, "handles_events", False):
            return worker_ctx.args[0]
        return None

    def handler_of(self, worker_ctx) -> str:
        return f"{self.service_name}.{worker_ctx.entrypoint.method_name}"
