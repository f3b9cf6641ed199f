"""Re-assess 100k returnees against one new policy: the engine alone, and the store path.

    python -m bench.consulting_reassess [--returnees 100000] [--naive-sample 3000]

Engine alone (no I/O), both measured in this run on the same profiles:
  baseline   `eligibility.assess` per returnee (the explaining engine, as a handler per returnee
             would use it)
  vectorised `screening.screen` over columns built once per batch of 5,000
and the two are checked to agree on every returnee.

Store path, on a scratch database holding the returnees:
  baseline   per returnee, one transaction: read the facts, assess, compare with the stored
             eligibility, write the change and publish its event with `uow.publish` (run on a
             sample, the rate is extrapolated to all returnees)
  batched    the use cases as the service runs them on `policy.published`:
             `handlers.reassess_for_policy` records the re-assessment, then
             `handlers.reassess_batch` until none is left, each batch (500 returnees) its own
             transaction, vectorised screening, set-based writes, an outbox insert per 50 events
"""

import argparse
import random
import statistics
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extras
from psycopg2 import sql

from chassis.clock import FrozenClock
from chassis.migrate import migrate
from chassis.pool import ConnectionPool
from chassis.settings import database_url
from chassis.uow import SqlUnitOfWork
from contracts import CATALOG
from services.consulting import assessing, handlers
from services.consulting.catalog import parse_policy, published_event
from services.consulting.eligibility import assess
from services.consulting.screening import STATUS_OF, Columns, screen
from services.consulting.store import ConsultingStore, to_json

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
AS_OF = NOW.date()

POLICY = parse_policy(
    """
code: sh-returnee-founder-bonus-2026
version: 1
title: {zh-CN: 留学人员创业奖励（测试）, en: Returnee founder bonus (bench)}
summary: {zh-CN: 基准测试用政策。, en: A policy for the benchmark.}
citation: {title: bench, url: "https://example.org/"}
effective_from: 2026-01-01
application_deadline: 2026-12-31
criteria:
  - {id: degree, field: highest_overseas_degree, op: in, value: [master, phd]}
  - {id: young_company, field: company_age_months, op: lte, value: 60}
  - {id: share, field: company.shareholding_pct, op: gte, value: 30}
  - {id: not_before, field: prior_awards, op: not_in, value: [sh-returnee-founder-bonus-2026]}
  - id: place
    any:
      - {id: changning, field: company.registered_district, op: eq, value: Changning}
      - {id: recent, field: return_date, op: within_days, value: 1825}
tiers:
  - code: gold
    criteria:
      - {id: vc, field: company.vc_raised_cny, op: gte, value: 1000000}
  - code: silver
    criteria: []
"""
)


def synthetic_profile(rng: random.Random) -> dict:
    start = date(2005, 1, 1) + timedelta(days=rng.randint(0, 6000))
    education = [
        {"country": "GB", "degree": rng.choice(["bachelor", "master", "phd"]),
         "overseas": rng.random() < 0.85, "start_date": start,
         "end_date": start + timedelta(days=rng.randint(90, 1500)),
         "qs_rank": rng.choice([None, rng.randint(1, 300)])}
        for _ in range(rng.randint(1, 2))
    ]  # fmt: skip
    back = start + timedelta(days=rng.randint(100, 3000))
    company = None
    if rng.random() < 0.7:
        company = {
            "registered_district": rng.choice(["Changning", "Putuo", "Xuhui"]),
            "registration_date": back + timedelta(days=rng.randint(0, 1800)),
            "registered_capital_cny": rng.choice([100000, 500000, 2000000]),
            "shareholding_pct": round(rng.uniform(10, 100), 1),
            "is_legal_representative": rng.choice([True, False]),
            "is_largest_shareholder": rng.choice([True, False, None]),
            "vc_raised_cny": rng.choice([None, 0, 5000000]),
        }
    return {
        "birth_date": date(1975, 1, 1) + timedelta(days=rng.randint(0, 9000)),
        "education": education,
        "return_date": min(back, AS_OF),
        "has_overseas_job": None,
        "residence_status": rng.choice(["hukou", "residence_permit", "none"]),
        "industry": rng.choice(["ai", "biotech", "fintech", "other"]),
        "startup_stage": rng.choice(["idea", "registered", "growth"]),
        "needs": rng.sample(["financing", "office_space", "incubation", "legal"], 2),
        "prior_awards": [],
        "company": company,
    }


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def engine_alone(profiles: list[dict], runs: int) -> None:
    n = len(profiles)

    def naive():
        return [assess(POLICY, p, AS_OF) for p in profiles]

    def vectorised():
        verdicts, tiers = [], []
        for i in range(0, n, assessing.BATCH_SIZE):
            v, t = screen(POLICY, Columns(profiles[i : i + assessing.BATCH_SIZE], AS_OF))
            verdicts.extend(v.tolist())
            tiers.extend(t.tolist())
        return verdicts, tiers

    naive_times, fast_times = [], []
    for _ in range(runs):
        seconds, explained = timed(naive)
        naive_times.append(seconds)
        seconds, (verdicts, tiers) = timed(vectorised)
        fast_times.append(seconds)
    mismatches = sum(
        (a.status, a.tier) != (STATUS_OF[v], POLICY["tiers"][t]["code"] if t >= 0 else None)
        for a, v, t in zip(explained, verdicts, tiers, strict=True)
    )
    eligible = sum(a.eligible for a in explained)
    base, fast = statistics.median(naive_times), statistics.median(fast_times)
    print(f"engine alone, {n:,} returnees, median of {runs} runs ({eligible:,} eligible):")
    print(f"  baseline  assess() per returnee   {base:7.3f} s  {n / base:>10,.0f} returnees/s")
    print(f"  vectorised screen() per 5k batch  {fast:7.3f} s  {n / fast:>10,.0f} returnees/s")
    print(f"  ratio {base / fast:.1f}x; disagreements between the two: {mismatches}")


def scratch_database(service: str = "consulting") -> str:
    """The URL of a new database name beside the service's own, for a bench run to create."""
    parts = urlsplit(database_url(service))
    return urlunsplit(parts._replace(path=f"/bench_{service}_{uuid.uuid4().hex[:8]}"))


def drop_database(url: str) -> None:
    parts = urlsplit(url)
    conn = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(parts.path.lstrip("/"))
            )
        )
    conn.close()


def load_returnees(pool: ConnectionPool, profiles: list[dict]) -> list[str]:
    ids = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(len(profiles))]
    with pool.cursor() as cur:
        unit_of_work(cur).store.upsert_policy(POLICY)
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO returnees (id, facts, profile_time) VALUES %s",
            [
                (rid, to_json(assessing.facts_of(p)), NOW)
                for rid, p in zip(ids, profiles, strict=True)
            ],
            page_size=2000,
        )
    with pool.cursor() as cur:
        cur.execute("ANALYZE")
    return ids


def naive_store(pool: ConnectionPool, ids: list[str]) -> int:
    """The per-returnee handler a first version would have: one transaction each."""
    changed = 0
    for rid in ids:
        with pool.cursor() as cur:
            uow = unit_of_work(cur)
            facts = uow.store.facts(rid, lock=True)
            outcome = assess(POLICY, facts, AS_OF)
            before = uow.store.eligible_for_policy(POLICY["id"], [rid])
            if outcome.eligible and before.get(rid, "-") != outcome.tier:
                uow.store.apply_policy_changes(
                    POLICY["id"], POLICY["code"], {rid: outcome.tier}, []
                )
            elif not outcome.eligible and rid in before:
                uow.store.apply_policy_changes(POLICY["id"], POLICY["code"], {}, [rid])
            else:
                continue
            changed += 1
            eligible = uow.store.eligibility_lists([rid])[rid]
            newly = [POLICY["code"]] if outcome.eligible else []
            gone = [] if outcome.eligible else [POLICY["code"]]
            uow.publish(
                "eligibility.assessed",
                assessing.assessed_event(rid, NOW, eligible, newly, gone),
                subject=rid,
            )
    return changed


class _Units:
    """The service's database as the event handler sees it: units of work on the pool."""

    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    @contextmanager
    def unit_of_work(self):
        with self.pool.cursor() as cur:
            yield unit_of_work(cur)


def batched_store(pool: ConnectionPool) -> int:
    event = CATALOG.check(CATALOG.create("consulting", "policy.published", published_event(POLICY)))
    units = _Units(pool)
    handlers.reassess_for_policy(event, units, wake_reassessment=lambda: None)
    while True:
        with units.unit_of_work() as uow:
            if not handlers.reassess_batch(uow):
                break
    return pool_count(
        pool, "SELECT count(*) AS n FROM outbox WHERE routing_key = 'eligibility.assessed'"
    )


def unit_of_work(cursor) -> SqlUnitOfWork:
    """The service's unit of work over one transaction, its clock frozen at NOW."""
    return SqlUnitOfWork(cursor, "consulting", clock=FrozenClock(NOW), store=ConsultingStore)


def store_path(profiles: list[dict], sample: int) -> None:
    url = scratch_database()
    migrate("consulting", url)
    pool = ConnectionPool(url, 2)
    try:
        ids = load_returnees(pool, profiles)
        n = len(ids)
        sample_ids = ids[:sample]
        naive_seconds, naive_changed = timed(naive_store, pool, sample_ids)
        with pool.cursor() as cur:
            cur.execute("DELETE FROM eligibilities; DELETE FROM outbox")
        batched_seconds, batched_changed = timed(batched_store, pool)
        events = pool_count(pool, "SELECT count(*) AS n FROM outbox")
        per_returnee = naive_seconds / len(sample_ids)
        extrapolated = per_returnee * n
        print(f"store path, {n:,} returnees in PostgreSQL:")
        print(
            f"  baseline  per-returnee transactions  {naive_seconds:7.3f} s for {len(sample_ids):,}"
            f" ({naive_changed:,} changed) -> {extrapolated:7.1f} s extrapolated to {n:,}"
        )
        print(
            f"  batched   reassess_batch             {batched_seconds:7.3f} s for {n:,}"
            f" ({batched_changed:,} changed, {events:,} events in the outbox)"
        )
        print(f"  ratio {extrapolated / batched_seconds:.1f}x")
    finally:
        pool.clear()
        drop_database(url)


def pool_count(pool: ConnectionPool, statement: str) -> int:
    with pool.cursor() as cur:
        cur.execute(statement)
        return cur.fetchone()["n"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consulting_reassess")
    parser.add_argument("--returnees", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-store", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(20261128)
    profiles = [synthetic_profile(rng) for _ in range(args.returnees)]
    engine_alone(profiles, args.runs)
    if not args.skip_store:
        store_path(profiles, min(args.naive_sample, args.returnees))
    return 0


if __name__ == "__main__":
    sys.exit(main())
