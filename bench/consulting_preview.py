"""The impact preview of a new policy version over 100k consenting returnees, target ≤ 2 s.

    python -m bench.consulting_preview [--returnees 100000] [--runs 3]

On a scratch database holding the returnees (the loan programme of the catalog as the current
version, a draft that moves people both ways and changes tiers), both measured in this run:
  baseline   read the caseload through the store (the same facts the preview reads), then
             `eligibility.assess` one returnee at a time for the current version and the
             draft, counting as the preview does
  preview    the `handlers.preview_policy` use case, as `POST /policies/preview` runs it:
             keyset batches of 5,000, both versions screened vectorised on the same columns
The two are checked to count the same.
"""

import argparse
import copy
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import psycopg2.extras

from bench.consulting_reassess import drop_database, scratch_database, synthetic_profile
from chassis.clock import FrozenClock
from chassis.migrate import migrate
from chassis.pool import ConnectionPool
from chassis.uow import SqlUnitOfWork
from services.consulting import assessing, handlers
from services.consulting.catalog import load_policies
from services.consulting.eligibility import assess
from services.consulting.preview import DIMENSION_FIELDS
from services.consulting.schemas import PolicyIn
from services.consulting.store import ConsultingStore, to_json

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
AS_OF = NOW.date()
CURRENT = next(p for p in load_policies() if p["code"] == "guaranteed-startup-loan-2024")


def draft() -> dict:
    """The loan for companies up to five years old, not for "other" industries, a bigger
    company loan and the pre-start-up loan up to 30."""
    body = copy.deepcopy(
        {k: CURRENT[k] for k in ("code", "title", "summary", "citation", "criteria", "tiers")}
    )
    body["effective_from"] = CURRENT["effective_from"].isoformat()
    body["documents"] = CURRENT["documents"]
    body["criteria"][0]["any"][0]["value"] = 59
    body["criteria"].append(
        {"id": "industry", "label": {"zh-CN": "重点行业", "en": "Key industries"},
         "field": "industry", "op": "ne", "value": "other"}
    )  # fmt: skip
    body["tiers"][0]["criteria"][0]["value"] = 59
    body["tiers"][0]["award_cny"] = 600000
    body["tiers"][1]["criteria"][1]["value"] = 30
    return PolicyIn().load(body)


def unit_of_work(cursor) -> SqlUnitOfWork:
    return SqlUnitOfWork(cursor, "consulting", clock=FrozenClock(NOW), store=ConsultingStore)


def load(pool: ConnectionPool, profiles: list[dict]) -> None:
    with pool.cursor() as cur:
        uow = unit_of_work(cur)
        uow.store.upsert_policy(CURRENT)
        uow.store.keep_version(CURRENT["id"], AS_OF)
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO returnees (id, facts, profile_time, matching_consent) VALUES %s",
            [
                (
                    str(uuid.UUID(int=random.Random(i).getrandbits(128))),
                    to_json(assessing.facts_of(p)),
                    NOW,
                    True,
                )
                for i, p in enumerate(profiles)
            ],  # fmt: skip
            page_size=2000,
        )
    with pool.cursor() as cur:
        cur.execute("ANALYZE")


def one_by_one(pool: ConnectionPool, command: dict) -> dict:
    """The same counts with the explaining engine, one returnee at a time."""
    policy = {**command, "id": CURRENT["id"], "version": CURRENT["version"] + 1}
    counts = Counter()
    with pool.cursor() as cur:
        uow = unit_of_work(cur)
        current = uow.store.policy(CURRENT["id"])
        after = None
        keys = assessing.fact_keys([current, policy], DIMENSION_FIELDS)  # as the preview reads
        while rows := uow.store.caseload(after, assessing.BATCH_SIZE, keys):
            after = rows[-1]["id"]
            for row in rows:
                was = assess(current, row["facts"], AS_OF)
                now = assess(policy, row["facts"], AS_OF)
                counts["caseload"] += 1
                counts["before"] += was.eligible
                counts["after"] += now.eligible
                counts["newly"] += now.eligible and not was.eligible
                counts["gone"] += was.eligible and not now.eligible
    return dict(counts)


def preview(pool: ConnectionPool, command: dict) -> dict:
    with pool.cursor() as cur:
        result = handlers.preview_policy(command, unit_of_work(cur))
    return {
        "caseload": result["caseload"],
        "before": result["eligible"]["before"],
        "after": result["eligible"]["after"],
        "newly": result["newly_eligible"]["count"],
        "gone": result["no_longer_eligible"]["count"],
    }


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consulting_preview")
    parser.add_argument("--returnees", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    rng = random.Random(20261128)
    profiles = [synthetic_profile(rng) for _ in range(args.returnees)]
    command = draft()
    url = scratch_database()
    migrate("consulting", url)
    pool = ConnectionPool(url, 2)
    try:
        load(pool, profiles)
        base_times, fast_times = [], []
        for _ in range(args.runs):
            seconds, expected = timed(one_by_one, pool, command)
            base_times.append(seconds)
            seconds, found = timed(preview, pool, command)
            fast_times.append(seconds)
        base, fast = statistics.median(base_times), statistics.median(fast_times)
        n = args.returnees
        print(f"impact preview, {n:,} consenting returnees in PostgreSQL, median of {args.runs}:")
        print(f"  counts: {found}")
        print(f"  baseline  store read + assess() one by one  {base:7.3f} s"
              f"  {n / base:>10,.0f} returnees/s")  # fmt: skip
        print(f"  preview   preview_policy (vectorised)       {fast:7.3f} s"
              f"  {n / fast:>10,.0f} returnees/s")  # fmt: skip
        print(
            f"  ratio {base / fast:.1f}x; target 2 s: {'met' if fast <= 2 else 'MISSED'};"
            f" the two count the same: {found == expected}"
        )
    finally:
        pool.clear()
        drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
