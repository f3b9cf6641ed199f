"""The policies in effect on a day, kept in the consulting process's memory between batches of
events (`store.ConsultingStore.policies`, migration consulting_0009), against the real
PostgreSQL: read again once anything wrote `policies` (the store, a hand-written statement,
a transaction that rolled back), never read again while nothing did, and always what the
database says."""

from datetime import date

import pytest

from chassis.pool import ConnectionPool
from chassis.uow import BatchScope, SqlUnitOfWork
from services.consulting import handlers, store
from services.consulting.catalog import load_policies
from services.consulting.store import ConsultingStore

DAY = date(2026, 12, 2)


@pytest.fixture
def pool(databases):
    made = ConnectionPool(databases.create("consulting"), 2)
    with made.cursor() as cursor:
        handlers.seed_catalog(
            load_policies(), SqlUnitOfWork(cursor, "consulting", store=ConsultingStore)
        )
    yield made
    made.clear()


@pytest.fixture
def reads(monkeypatch):
    """How many times the policies were read from the database."""
    counted = []
    original = ConsultingStore._policies

    def counting(self, effective_on):
        counted.append(effective_on)
        return original(self, effective_on)

    monkeypatch.setattr(ConsultingStore, "_policies", counting)
    monkeypatch.setattr(store, "IN_EFFECT", {})
    return counted


def in_batch(cursor) -> ConsultingStore:
    return SqlUnitOfWork(cursor, "consulting", store=ConsultingStore, batch=BatchScope([])).store


def in_effect(pool, day=DAY) -> list[dict]:
    with pool.cursor() as cursor:
        return in_batch(cursor).policies(effective_on=day)


def from_database(pool, day=DAY) -> list[dict]:
    with pool.cursor() as cursor:
        return SqlUnitOfWork(cursor, "consulting", store=ConsultingStore).store.policies(day)


def test_kept_while_nothing_writes_policies(pool, reads):
    first = in_effect(pool)
    assert first and first == from_database(pool)
    reads.clear()
    for _ in range(3):
        assert in_effect(pool) == first
    assert reads == []  # only the catalog's token was read
    assert in_effect(pool, date(2026, 12, 3)) == from_database(pool, date(2026, 12, 3))


def test_read_again_after_the_store_writes_a_policy(pool, reads):
    kept = in_effect(pool)
    newer = {**load_policies()[0], "version": 99, "title": {"zh": "新版", "en": "Newer"}}
    with pool.cursor() as cursor:
        assert SqlUnitOfWork(cursor, "consulting", store=ConsultingStore).store.upsert_policy(newer)
    now = in_effect(pool)
    assert now != kept and now == from_database(pool)
    assert {p["code"]: p["version"] for p in now}[newer["code"]] == 99


def test_read_again_after_a_hand_written_statement(pool, reads):
    kept = in_effect(pool)
    code = kept[0]["code"]
    with pool.cursor() as cursor:
        cursor.execute(
            "UPDATE policies SET effective_to = %s WHERE code = %s", (date(2026, 1, 1), code)
        )
    now = in_effect(pool)
    assert code not in {p["code"] for p in now}
    assert now == from_database(pool)


def test_a_write_rolled_back_leaves_what_the_database_says(pool, reads):
    kept = in_effect(pool)
    code = kept[0]["code"]
    with pytest.raises(RuntimeError), pool.cursor() as cursor:
        cursor.execute(
            "UPDATE policies SET effective_from = %s WHERE code = %s", (date(2027, 1, 1), code)
        )
        assert code not in {p["code"] for p in in_batch(cursor).policies(effective_on=DAY)}
        raise RuntimeError("rolled back")
    assert in_effect(pool) == kept == from_database(pool)


def test_two_databases_keep_their_own(pool, databases, reads):
    other = ConnectionPool(databases.create("consulting"), 1)
    try:
        assert in_effect(other) == []  # nothing seeded there
        assert in_effect(pool) == from_database(pool) != []
        assert in_effect(other) == []
    finally:
        other.clear()
