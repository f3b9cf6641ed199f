"""The match of a newly registered returnee inside the matching service, database included, with
100,000 resources stored: the catalog held by the replica against the catalog read from the
table on every event (the service before it held one), in the same run.

    python -m bench.matching_service [--resources 100000] [--runs 21]

On a scratch database holding the synthetic catalog of `bench.matching_engine` (2,000
organizations), each run is what the service does with one `returnee.registered`: the event's
data checked against the contract, then `handlers.match_returnee` in one unit of work over a
PostgreSQL transaction (the inbox record, the returnee's lock, the profile stored, the catalog,
the match, the matches and `matches.proposed` written, the commit). Three ways, alternated run
by run, each returnee new:

  table     `MatchingStore(uow)`: the live resources read and their columns built per event
  held      `MatchingStore(uow, replica=Replica())`: the replica's catalog, unchanged
            since the last event (one read of the catalog version)
  held+1    the same, after another transaction took a place of one resource: the replica
            reads that row and applies it
  held/mm   as held, with `matches.proposed` checked by marshmallow's load and dump instead of
            its compiled check (`EventType.compiled`): the check as it was before

The held catalog's first build (at the replica's start) is timed apart. Prints medians and p95
of each, and the ratio of the medians.

Then, with `--returnees` returnees stored, the reverse match of a newly published resource as
the service runs it on `resource.published` (`handlers.rematch_for_resource`: the stored
returnees' columns, the fitting ones queued for the re-match loop, one unit of work); the
loop's re-matches that follow are not in it. Three ways, alternated:

  columns   the service before: the stored returnees read 2,000 at a time, each page one row
            of arrays straight into columns (the pages make one table, one engine call)
  held      the replica's returnees (`Replica`), nobody changed since the last reverse match
            (one read of the snapshot's horizon and of the rows changed since)
  held+10   the same after another transaction stored 10 profiles (5 new, 5 updated) and
            withdrew one returnee's consent: the replica reads those rows and applies them

The held returnees' first build (at the replica's start) is timed apart.
"""

import argparse
import dataclasses
import functools
import os
import random
import statistics
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg2
import psycopg2.extras

from bench.consulting_reassess import drop_database, scratch_database
from bench.matching_engine import POLICY, TODAY, synthetic_resources
from chassis.clock import SHANGHAI, FrozenClock
from chassis.db import ScriptDatabase
from chassis.migrate import migrate
from chassis.pool import ConnectionPool
from chassis.uow import SqlUnitOfWork
from contracts import CATALOG
from contracts.examples import EXAMPLES
from contracts.vocabulary import INDUSTRIES, NEEDS, STARTUP_STAGES
from services.matching import handlers
from services.matching.engine import ReturneeTable
from services.matching.events import published_data
from services.matching.store import MatchingStore, Replica

NOW = datetime.combine(TODAY, datetime.min.time(), tzinfo=SHANGHAI) + timedelta(hours=10)
PROFILE = EXAMPLES[("returnee.registered", 1)].data
_NAMESPACE = uuid.UUID("0c5e0a8e-3d51-4d57-9a3e-6f0a4b5c7d21")


def _uuid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def load_catalog(pool: ConnectionPool, n: int) -> list[str]:
    """The synthetic catalog as resource rows (taken = capacity - places left); returns the ids.
    Loaded with the version trigger off (one bulk load), then the counter set past it."""
    resources = synthetic_resources(n)
    organizations = sorted({r.organization_id for r in resources})
    with pool.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO organizations (id, name, kind) VALUES %s",
            [(_uuid(o), f"Partner {o}", "enterprise") for o in organizations],
            page_size=2000,
        )
        cur.execute("ALTER TABLE resources DISABLE TRIGGER resources_versioned")
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO resources (id, organization_id, title, kind, needs_served, industries,"
            " stages, district, capacity, taken, valid_from, valid_until, version) VALUES %s",
            [
                (
                    _uuid(r.id),
                    _uuid(r.organization_id),
                    f"Resource {r.id}",
                    "mentorship",
                    list(r.needs_served),
                    list(r.industries),
                    list(r.stages),
                    r.district,
                    r.capacity,
                    r.capacity - r.capacity_left,
                    r.valid_from,
                    r.valid_until,
                    1,
                )
                for r in resources
            ],
            page_size=2000,
        )
        cur.execute("ALTER TABLE resources ENABLE TRIGGER resources_versioned")
        cur.execute("UPDATE catalog_version SET version = 1")
        cur.execute("ANALYZE")
    return [_uuid(r.id) for r in resources]


def registration(rng: random.Random):
    """A new returnee's `returnee.registered`, as its producer made it (data in wire form)."""
    returnee_id = str(uuid.uuid4())
    company = {**PROFILE["company"], "registered_district": rng.choice(["Changning", "Xuhui"])}
    data = {
        **PROFILE,
        "returnee_id": returnee_id,
        "industry": rng.choice(INDUSTRIES),
        "startup_stage": rng.choice(STARTUP_STAGES),
        "needs": sorted(rng.sample(NEEDS, rng.randint(1, 3))),
        "company": company,
    }
    return CATALOG.create("accounts", "returnee.registered", data, subject=returnee_id)


@contextmanager
def marshmallow_checked():
    """`matches.proposed` checked by marshmallow, as before its compiled check."""
    key = ("matches.proposed", 1)
    compiled = CATALOG._types[key]
    CATALOG._types[key] = dataclasses.replace(compiled, compiled=False)
    try:
        yield
    finally:
        CATALOG._types[key] = compiled


def match_one(pool: ConnectionPool, store, event) -> float:
    """One `returnee.registered` handled as the service handles it; seconds, commit included."""
    started = time.perf_counter()
    checked = CATALOG.check(event)
    with pool.cursor() as cursor:
        uow = SqlUnitOfWork(cursor, "matching", checked, None, clock=FrozenClock(NOW), store=store)
        uow.record_inbox("matching.match_returnee")
        handlers.match_returnee(checked, uow, policy=POLICY)
    return time.perf_counter() - started


DISTRICTS = ["Changning", "Xuhui", "Jing'an", "Putuo", "Minhang", "Pudong", "Hongkou", None]


def returnee_profile(rng: random.Random) -> dict:
    return {
        "locale": "zh-CN",
        "industry": rng.choice(INDUSTRIES),
        "startup_stage": rng.choice(STARTUP_STAGES),
        "needs": sorted(rng.sample(NEEDS, rng.randint(1, 3))),
        "district": rng.choice(DISTRICTS),
    }


def load_returnees(pool: ConnectionPool, n: int, rng: random.Random) -> None:
    districts = DISTRICTS
    with pool.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO returnees (id, locale, industry, startup_stage, needs, district,"
            " profile_time) VALUES %s",
            [
                (
                    str(uuid.UUID(int=rng.getrandbits(128))),
                    "zh-CN",
                    rng.choice(INDUSTRIES),
                    rng.choice(STARTUP_STAGES),
                    sorted(rng.sample(NEEDS, rng.randint(1, 3))),
                    rng.choice(districts),
                    NOW,
                )
                for _ in range(n)
            ],
            page_size=2000,
        )
        cur.execute("ANALYZE returnees")


class ByPages(MatchingStore):
    """The store as it read the returnees before they were held: 2,000 a page, each page one
    row of arrays straight into columns."""

    def returnee_table(self):
        ids, industries, stages, needs, districts, after = [], [], [], [], [], None
        while True:
            row = self.uow.one(
                "SELECT array_agg(id::text ORDER BY id) AS ids,"
                " array_agg(industry ORDER BY id) AS industries,"
                " array_agg(startup_stage ORDER BY id) AS stages,"
                " array_agg(array_to_string(needs, ',') ORDER BY id) AS needs,"
                " array_agg(district ORDER BY id) AS districts"
                " FROM (SELECT id, industry, startup_stage, needs, district FROM returnees"
                " WHERE %s::uuid IS NULL OR id > %s::uuid ORDER BY id LIMIT %s) r",
                (after, after, 2000),
            )
            if not row["ids"]:
                return ReturneeTable.from_columns(ids, industries, stages, needs, districts)
            ids += row["ids"]
            industries += row["industries"]
            stages += row["stages"]
            needs += [n.split(",") if n else [] for n in row["needs"]]
            districts += row["districts"]
            after = row["ids"][-1]


def change_returnees(pool: ConnectionPool, rng: random.Random, number: int) -> None:
    """Another replica's profile events: 5 new returnees, 5 updated, one consent withdrawn."""
    with pool.cursor() as cursor:
        uow = SqlUnitOfWork(cursor, "matching", store=MatchingStore)
        cursor.execute("SELECT id::text AS id FROM returnees ORDER BY random() LIMIT 6")
        existing = [r["id"] for r in cursor.fetchall()]
        for rid in [str(uuid.uuid4()) for _ in range(5)] + existing[:5]:
            uow.store.save_returnee(rid, returnee_profile(rng), NOW + timedelta(seconds=number))
        uow.store.record_withdrawal(existing[5], NOW + timedelta(seconds=number))
        uow.store.forget_returnee(existing[5])


def reverse_match(pool: ConnectionPool, organization_id: str, number: int,
                  store=MatchingStore) -> tuple[float, int]:  # fmt: skip
    """A new resource for mentorship or financing in Changning, committed; then its reverse
    match timed. Returns (seconds, returnees queued)."""
    database = ScriptDatabase(pool, "matching", store=store, clock=FrozenClock(NOW))
    with database.unit_of_work() as uow:
        row = uow.store.insert_resource(
            str(uuid.uuid4()),
            {
                "organization_id": organization_id,
                "title": f"Mentors {number}",
                "kind": "mentorship",
                "needs_served": ["mentorship", "financing"],
                "industries": [],
                "stages": [],
                "district": "Changning",
                "capacity": 100,
                "valid_from": None,
                "valid_until": None,
                "description": "",
            },
        )
        event = uow.publish("resource.published", published_data(row), subject=row["id"])
    with pool.cursor() as cur:
        cur.execute("TRUNCATE rematch_queue")
    checked = CATALOG.check(event)
    started = time.perf_counter()
    queued = handlers.rematch_for_resource(checked, database, lambda: None, policy=POLICY)
    return time.perf_counter() - started, queued


def take_a_place(pool: ConnectionPool, ids: list[str], rng: random.Random) -> None:
    with pool.cursor() as cursor:
        uow = SqlUnitOfWork(cursor, "matching", store=MatchingStore)
        uow.store.take_place(rng.choice(ids))


def summary(name: str, samples: list[float]) -> float:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    runs = len(ordered)
    print(f"  {name:<8} median {median * 1000:8.2f} ms   p95 {p95 * 1000:8.2f} ms   ({runs} runs)")
    return median


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matching_service")
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--returnees", type=int, default=100_000)
    parser.add_argument("--reverse-runs", type=int, default=7)
    args = parser.parse_args(argv)
    url = scratch_database("matching")
    migrate("matching", url)
    pool = ConnectionPool(url, 2)
    try:
        started = time.perf_counter()
        ids = load_catalog(pool, args.resources)
        print(f"{len(ids):,} resources stored in {time.perf_counter() - started:.1f} s")
        held_by = Replica()
        replica = held_by.catalog
        held = functools.partial(MatchingStore, replica=held_by)
        started = time.perf_counter()
        with pool.cursor() as cursor:
            SqlUnitOfWork(cursor, "matching", store=held).store.catalog()
        print(
            f"the replica's first build (at start): {(time.perf_counter() - started) * 1000:.0f} ms"
        )
        rng = random.Random(20261201)
        for store in (MatchingStore, held):  # warm both paths once
            match_one(pool, store, registration(rng))
        times: dict[str, list[float]] = {"table": [], "held": [], "held+1": [], "held/mm": []}
        for _ in range(args.runs):
            times["table"].append(match_one(pool, MatchingStore, registration(rng)))
            times["held"].append(match_one(pool, held, registration(rng)))
            with marshmallow_checked():
                times["held/mm"].append(match_one(pool, held, registration(rng)))
            take_a_place(pool, ids, rng)
            times["held+1"].append(match_one(pool, held, registration(rng)))
        assert replica.builds == 1
        with pool.cursor() as cursor:
            cursor.execute("SELECT count(*) AS n FROM matches")
            stored = cursor.fetchone()["n"]
        print(
            f"match of a newly registered returnee over {len(ids):,} stored resources,"
            f" in one unit of work ({stored:,} matches stored, {datetime.now(UTC):%Y-%m-%d}):"
        )
        table = summary("table", times["table"])
        held_median = summary("held", times["held"])
        changed = summary("held+1", times["held+1"])
        checked = summary("held/mm", times["held/mm"])
        print(
            f"  ratio table/held x{table / held_median:.1f}, table/held+1 x{table / changed:.1f},"
            f" held/mm / held x{checked / held_median:.2f}; target median <= 20 ms"
        )
        if args.returnees:
            load_returnees(pool, args.returnees, rng)
            organization_id = _uuid(synthetic_resources(1)[0].organization_id)
            started = time.perf_counter()
            with pool.cursor() as cursor:
                SqlUnitOfWork(cursor, "matching", store=held).store.returnee_table()
            print(
                "the held returnees' first build (at start):"
                f" {(time.perf_counter() - started) * 1000:.0f} ms"
            )
            reverse: dict[str, list] = {"columns": [], "held": [], "held+10": []}
            reread = []  # changed rows each held+10 read took (more: a long transaction ran)
            for i in range(args.reverse_runs):
                reverse["columns"].append(reverse_match(pool, organization_id, 3 * i, ByPages))
                reverse["held"].append(reverse_match(pool, organization_id, 3 * i + 1, held))
                change_returnees(pool, rng, i)
                reverse["held+10"].append(reverse_match(pool, organization_id, 3 * i + 2, held))
                reread.append(held_by.returnees.rows_read)
            assert held_by.returnees.builds == 1
            queued = {q for runs in reverse.values() for _, q in runs}
            print(
                f"reverse match of a new resource over {args.returnees:,} stored returnees"
                f" ({datetime.now(UTC):%Y-%m-%d}, load average {os.getloadavg()[0]:.1f}):"
            )
            before = summary("columns", [seconds for seconds, _ in reverse["columns"]])
            after = summary("held", [seconds for seconds, _ in reverse["held"]])
            changed = summary("held+10", [seconds for seconds, _ in reverse["held+10"]])
            print(
                f"  {min(queued)}-{max(queued)} returnees queued per run;"
                f" ratio columns/held x{before / after:.1f}, columns/held+10"
                f" x{before / changed:.1f}; target median <= 500 ms"
            )
            print(f"  changed rows read by each held+10 run: {reread}")
    finally:
        pool.clear()
        drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
