"""A unit of work's writes whose result no one reads (`SqlUnitOfWork.write`, `write_values`),
against the real PostgreSQL: sent with the next statement or the `COMMIT`, in one round trip,
in order, seen by that statement, and failing the unit of work when one of them fails."""

import psycopg2
import pytest

from chassis.pool import ConnectionPool
from chassis.uow import SqlUnitOfWork

TABLE = "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL, meta jsonb)"


@pytest.fixture
def pool(databases):
    made = ConnectionPool(databases.create("accounts"), 1)
    with made.cursor() as cursor:
        cursor.execute(TABLE)
    yield made
    made.clear()


def rows(pool) -> list[tuple]:
    with pool.cursor() as cursor:
        cursor.execute("SELECT id, body, meta FROM notes ORDER BY id")
        return [(r["id"], r["body"], r["meta"]) for r in cursor.fetchall()]


class RoundTrips:
    """Counts what the cursor sends to the server."""

    def __init__(self, cursor):
        self.sent = []
        original = cursor.execute

        def execute(query, vars=None):
            self.sent.append(query)
            return original(query, vars)

        cursor.execute = execute


def test_writes_go_with_the_next_statement_in_order(pool):
    with pool.cursor() as cursor:
        trips = RoundTrips(cursor)
        uow = SqlUnitOfWork(cursor, "accounts")
        uow.write("INSERT INTO notes (id, body) VALUES (%s, %s)", (1, "50% off; it's 'quoted'"))
        uow.write_values(
            "INSERT INTO notes (id, body, meta) VALUES %s ON CONFLICT (id) DO NOTHING",
            [(2, "two", psycopg2.extras.Json({"a": "%s"})), (3, "three", None)],
        )
        uow.write("UPDATE notes SET body = body || '!' WHERE id = %s", (3,))
        assert trips.sent == []  # nothing sent yet
        assert uow.one("SELECT count(*) AS n FROM notes")["n"] == 3
        assert len(trips.sent) == 1  # the three writes went with the read
    assert rows(pool) == [(1, "50% off; it's 'quoted'", None), (2, "two", {"a": "%s"}),
                          (3, "three!", None)]  # fmt: skip


def test_writes_go_with_the_commit(pool):
    with pool.cursor() as cursor:
        SqlUnitOfWork(cursor, "accounts").write(
            "INSERT INTO notes (id, body) VALUES (%s, %s)", (7, "only a write")
        )
    assert rows(pool) == [(7, "only a write", None)]


def test_a_failing_write_fails_the_unit_of_work(pool):
    with pytest.raises(psycopg2.errors.NotNullViolation), pool.cursor() as cursor:
        uow = SqlUnitOfWork(cursor, "accounts")
        uow.write("INSERT INTO notes (id, body) VALUES (%s, %s)", (1, "kept?"))
        uow.write("INSERT INTO notes (id, body) VALUES (%s, %s)", (2, None))
        uow.one("SELECT 1 AS one")
    assert rows(pool) == []


def test_on_a_plain_cursor_a_write_is_sent_at_once(databases):
    connection = psycopg2.connect(databases.create("accounts"))
    try:
        cursor = connection.cursor()
        cursor.execute(TABLE)
        uow = SqlUnitOfWork(cursor, "accounts")
        uow.write_values("INSERT INTO notes (id, body) VALUES %s", [(1, "a"), (2, "b")])
        assert cursor.rowcount == 2
    finally:
        connection.close()
