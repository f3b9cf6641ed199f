"""The returnees' columns a matching replica holds in memory (reverse matching) are what
PostgreSQL says: after returnees are stored, updated, forgotten (consent withdrawn), erased and
stored again, by another writer or by this replica, while other transactions are still open,
and after a transaction that wrote one rolled back, the held table equals one read whole from
the table, column by column. Units of work that share one transaction (a batch of events) never
make its uncommitted writes the replica's, neither the returnees' nor the catalog's."""

import functools
import random
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool
from chassis.uow import SqlUnitOfWork
from contracts.vocabulary import INDUSTRIES, NEEDS, STARTUP_STAGES
from services.matching.engine import ReturneeTable
from services.matching.store import MatchingStore, Replica, ReplicaReturnees
from tests.support import query

START = datetime(2026, 12, 1, 9, tzinfo=UTC)


def columns(table: ReturneeTable) -> list[tuple]:
    """Each returnee and its columns, district codes read back as the districts' keys."""
    districts = {code: key for key, code in table.district_codes.items()}
    assert list(table.id_array) == table.ids and sorted(table.ids) == table.ids
    assert table.position == {rid: i for i, rid in enumerate(table.ids)}
    return [
        (
            table.ids[i],
            int(table.needs[i]),
            int(table.industry[i]),
            int(table.stage[i]),
            districts.get(int(table.district[i])),
            bool(table.consent[i]),
        )
        for i in range(len(table))
    ]


def from_the_table(url: str) -> ReturneeTable:
    rows = query(
        url,
        "SELECT id::text AS id, industry, startup_stage, needs, district FROM returnees"
        " ORDER BY id",
    )
    return ReturneeTable.from_columns(
        [r["id"] for r in rows],
        [r["industry"] for r in rows],
        [r["startup_stage"] for r in rows],
        [r["needs"] for r in rows],
        [r["district"] for r in rows],
    )


def profile(rng: random.Random) -> dict:
    return {
        "locale": "zh-CN",
        "industry": rng.choice(INDUSTRIES),
        "startup_stage": rng.choice(STARTUP_STAGES),
        "needs": sorted(rng.sample(NEEDS, rng.randint(1, 3))),
        "district": rng.choice(["Changning", "Xuhui", " changning ", "Pudong", None]),
    }


@pytest.fixture
def stored(databases):
    url = databases.create("matching")
    pool = ConnectionPool(url, 3)
    yield url, pool
    pool.clear()


def test_the_held_returnees_follow_every_write_and_ignore_rolled_back_ones(stored):
    url, pool = stored
    rng = random.Random(24)
    replica = Replica()
    held_returnees: ReplicaReturnees = replica.returnees
    held = ScriptDatabase(pool, "matching", store=functools.partial(MatchingStore, replica=replica))
    other = ScriptDatabase(pool, "matching", store=MatchingStore)  # another replica
    ids = [str(uuid.uuid4()) for _ in range(60)]
    time = iter(START + timedelta(minutes=m) for m in range(10_000))
    with other.unit_of_work() as uow:
        for rid in ids[:40]:
            uow.store.save_returnee(rid, profile(rng), next(time))

    def read() -> ReturneeTable:
        with held.unit_of_work() as uow:
            return uow.store.returnee_table()

    assert columns(read()) == columns(from_the_table(url))
    assert held_returnees.builds == 1 and len(held_returnees.table) == 40

    with other.unit_of_work() as uow:
        for rid in ids[40:]:  # new ones, between the old ids
            uow.store.save_returnee(rid, profile(rng), next(time))
        for rid in ids[:10]:  # profiles updated
            uow.store.save_returnee(rid, profile(rng), next(time))
        uow.store.record_withdrawal(ids[10], next(time))  # consent withdrawn
        uow.store.forget_returnee(ids[10])
        uow.store.erase_returnee(ids[11])
    with held.unit_of_work() as uow:  # this replica writes too, in a unit of its own
        uow.store.erase_returnee(ids[12])
        uow.store.save_returnee(ids[13], profile(rng), next(time))
    first = read()
    assert columns(first) == columns(from_the_table(url))
    assert {ids[10], ids[11], ids[12]}.isdisjoint(first.position)
    assert held_returnees.builds == 1  # brought up to date by the changed rows alone

    # Forgotten, then stored again (consent granted again): back in.
    with other.unit_of_work() as uow:
        uow.store.save_returnee(ids[10], profile(rng), next(time))
        uow.store.forget_returnee(ids[14])
        uow.store.save_returnee(ids[14], profile(rng), next(time))
    assert columns(read()) == columns(from_the_table(url))
    assert {ids[10], ids[14]} <= set(read().position)

    # A unit of work that writes sees its own writes; rolled back, the held table is as it was.
    kept = read()
    with pytest.raises(RuntimeError), held.unit_of_work() as uow:
        uow.store.forget_returnee(ids[15])
        uow.store.save_returnee(str(uuid.uuid4()), profile(rng), next(time))
        own = uow.store.returnee_table()
        assert ids[15] not in own.position and len(own) == len(kept)
        raise RuntimeError("rolled back")
    assert held_returnees.table is kept
    assert columns(read()) == columns(from_the_table(url))
    assert read() is read()  # nothing changed: the same columns, no copy
    assert held_returnees.builds == 1


def test_a_transaction_open_across_reads_is_read_once_it_commits(stored):
    """A transaction that began (and wrote) before a read and commits after it, while later
    transactions committed before it: the next read takes its rows, and meanwhile reads do not
    take again the rows of the transactions they have read."""
    url, pool = stored
    rng = random.Random(7)
    replica = Replica()
    held = ScriptDatabase(pool, "matching", store=functools.partial(MatchingStore, replica=replica))
    other = ScriptDatabase(pool, "matching", store=MatchingStore)
    ids = [str(uuid.uuid4()) for _ in range(20)]
    with other.unit_of_work() as uow:
        for rid in ids[:10]:
            uow.store.save_returnee(rid, profile(rng), START)

    def read() -> ReturneeTable:
        with held.unit_of_work() as uow:
            return uow.store.returnee_table()

    assert columns(read()) == columns(from_the_table(url))
    with ExitStack() as open_transaction:
        cursor = open_transaction.enter_context(pool.cursor())
        slow = SqlUnitOfWork(cursor, "matching", store=MatchingStore)
        slow.store.save_returnee(ids[10], profile(rng), START)  # its id is taken now
        slow.store.erase_returnee(ids[0])
        assert columns(read()) == columns(from_the_table(url))  # not committed: not seen
        with other.unit_of_work() as uow:  # a later transaction, committed first
            uow.store.save_returnee(ids[11], profile(rng), START)
            uow.store.save_returnee(ids[1], profile(rng), START + timedelta(hours=1))
        between = read()
        assert columns(between) == columns(from_the_table(url))
        assert ids[11] in between.position and ids[10] not in between.position
        # The open transaction keeps the horizon back; what was read is not read again.
        assert read() is between and replica.returnees.rows_read == 0
        slow.store.save_returnee(ids[2], profile(rng), START + timedelta(hours=1))
    after = read()  # the open transaction has committed
    assert columns(after) == columns(from_the_table(url))
    assert ids[10] in after.position and ids[0] not in after.position
    assert replica.returnees.builds == 1


def test_units_sharing_a_transaction_never_make_its_writes_the_replicas(stored):
    """A batch of events is one transaction with a unit of work per event: one unit writes, a
    later one reads; the batch rolls back. Neither the held returnees nor the held catalog keep
    what the rolled-back units wrote."""
    url, pool = stored
    rng = random.Random(3)
    replica = Replica()
    store = functools.partial(MatchingStore, replica=replica)
    held = ScriptDatabase(pool, "matching", store=store)
    organization_id = str(uuid.uuid4())
    with held.unit_of_work() as uow:
        uow.store.save_organization(organization_id, "Partner", "enterprise")
        uow.store.save_returnee(str(uuid.uuid4()), profile(rng), START)
    with held.unit_of_work() as uow:
        catalog, table = uow.store.catalog(), uow.store.returnee_table()
    version, horizon = replica.catalog.version, replica.returnees.horizon
    returnee_id, resource_id = str(uuid.uuid4()), str(uuid.uuid4())
    with pytest.raises(RuntimeError), pool.cursor() as cursor:
        writer = SqlUnitOfWork(cursor, "matching", store=store)
        writer.store.save_returnee(returnee_id, profile(rng), START)
        writer.store.insert_resource(
            resource_id,
            {
                "organization_id": organization_id,
                "title": "Mentors",
                "kind": "mentorship",
                "needs_served": ["mentorship"],
                "industries": [],
                "stages": [],
                "district": None,
                "capacity": 2,
                "valid_from": None,
                "valid_until": None,
                "description": "",
            },
        )
        reader = SqlUnitOfWork(cursor, "matching", store=store)  # the next event's unit
        assert resource_id in reader.store.catalog().position  # its transaction's own writes
        assert returnee_id in reader.store.returnee_table().position
        raise RuntimeError("the batch rolls back")
    assert replica.catalog.catalog is catalog and replica.catalog.version == version
    assert replica.returnees.table is table and replica.returnees.horizon == horizon
    with held.unit_of_work() as uow:
        assert resource_id not in uow.store.catalog().position
        assert returnee_id not in uow.store.returnee_table().position
    assert columns(replica.returnees.table) == columns(from_the_table(url))
