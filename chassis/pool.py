"""PostgreSQL connections for one service: a green pool whose cursors open their transaction
with their first statement and commit or roll it back as a block. Persistence only: the unit of
work (`chassis.uow`) builds on it, and nothing here knows of the broker."""

import uuid
from collections import deque
from contextlib import contextmanager, suppress

import eventlet
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from eventlet.semaphore import Semaphore

from chassis.settings import database_url

CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)

# UUIDs as query parameters (event data loads ids as uuid.UUID). Only the adapter: uuid columns
# still come back as strings. Alembic's engine registers the same adapter, so without this line
# code that passed in a process that had migrated would fail in one that had not.
psycopg2.extensions.register_adapter(uuid.UUID, psycopg2.extras.UUID_adapter)


class DatabaseUnavailable(ConnectionError):
    pass


# What `TransactionCursor.hold` keeps before it sends it on its own: a bulk publish (a policy
# re-assessing every returnee) is not held in memory whole.
MAX_HELD_BYTES = 1 << 20


class TransactionCursor(psycopg2.extras.RealDictCursor):
    """Opens its transaction with its first statement: `BEGIN; <statement>` in one round trip,
    where psycopg2 would send `BEGIN` on its own first. Statements it was asked to `hold` go in
    front of the next one, or of the `COMMIT`, in its round trip."""

    began = False
    committed = False
    held = b""

    def hold(self, query, vars=None) -> None:
        """Send this statement with the next one (or the `COMMIT`): a write whose result no one
        reads (an outbox row). Order is kept; an error in it is raised by the next statement."""
        self.held += self.mogrify(query, vars) + b";"
        if len(self.held) > MAX_HELD_BYTES:
            held, self.held = self.held, b""
            self.execute(held)

    def execute(self, query, vars=None):
        head = self.held if self.began else b"BEGIN;" + self.held
        self.began, self.held = True, b""
        if head:
            query, vars = head + self.mogrify(query, vars), None
        return super().execute(query, vars)

    def execute_and_commit(self, query, vars=None) -> None:
        """`query` and the `COMMIT` in one round trip. An error in `query` stops PostgreSQL
        before the `COMMIT`: it raises here, and the transaction is rolled back as after any
        other failed statement."""
        self.execute(f"{query};COMMIT", vars)
        self.committed = True


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
                if (cur.began or cur.held) and not cur.committed:
                    cur.execute("COMMIT")
            except BaseException:
                cur.held = b""
                if cur.began and not conn.closed:
                    with suppress(psycopg2.Error):
                        cur.execute("ROLLBACK")
                raise

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


@contextmanager
def script_pool(service: str, size: int = 2):
    """A pool on the service's database for a script (seeds, tools), emptied afterwards."""
    pool = ConnectionPool(database_url(service), size)
    try:
        yield pool
    finally:
        pool.clear()
