"""The matching engine against a straightforward pure-Python implementation, in the same run.

    python -m bench.matching_engine [--resources 100000] [--returnees 100000] [--runs 21]

1. top 20 for one returnee over N synthetic resources
2. reverse match of one resource over N synthetic returnees

Both sides get the same data and the same policy and must return the same answer; the engine's
columns (`Catalog`, `ReturneeTable`) are built once, as each matching replica builds them once
at its start and then keeps them current, and that build time is printed apart. Prints medians,
p95 and the speed-up. These are the engine's figures alone: the targets (a new returnee's match
<= 20 ms p50, a reverse match <= 500 ms) are the service's, database included, and
`bench/matching_service.py` measures them.
"""

import argparse
import random
import statistics
import time
from datetime import date, timedelta

from contracts.vocabulary import INDUSTRIES, NEEDS, STARTUP_STAGES
from services.matching.engine import (
    OPEN_FIT,
    Catalog,
    MatchPolicy,
    Profile,
    Resource,
    ReturneeTable,
    district_key,
    match_resources,
    returnees_fitting,
)

TODAY = date(2026, 11, 28)
DISTRICTS = ["Changning", "Xuhui", "Jing'an", "Putuo", "Minhang", "Pudong", "Hongkou"]
POLICY = MatchPolicy(
    weights={"need": 0.4, "industry": 0.2, "stage": 0.15, "district": 0.15, "availability": 0.1},
    top_k=20,
    max_organization_share=0.25,
)


# --- the straightforward implementation --------------------------------------------------------


def _passes(resource: Resource, profile: Profile, today: date) -> bool:
    if not set(resource.needs_served) & set(profile.needs):
        return False
    if resource.industries and profile.industry not in resource.industries:
        return False
    if resource.stages and profile.stage not in resource.stages:
        return False
    if resource.district is not None and district_key(resource.district) != district_key(
        profile.district
    ):
        return False
    if resource.capacity_left <= 0:
        return False
    if resource.valid_from and resource.valid_from > today:
        return False
    if resource.valid_until and resource.valid_until < today:
        return False
    return resource.id not in profile.dismissed


def _score(resource: Resource, profile: Profile, policy: MatchPolicy) -> float:
    factors = {
        "need": len(set(resource.needs_served) & set(profile.needs)) / len(set(profile.needs)),
        "industry": 1.0 if resource.industries else OPEN_FIT,
        "stage": 1.0 if resource.stages else OPEN_FIT,
        "district": 1.0 if resource.district else OPEN_FIT,
        "availability": min(resource.capacity_left / max(resource.capacity, 1), 1.0),
    }
    total = sum(policy.weight(f) * min(v, 1.0) for f, v in factors.items())
    return round(total / policy.total_weight, 6)


def plain_top(profile: Profile, resources, policy: MatchPolicy, today: date):
    """[(resource id, score)] of the top K with diversity, one resource at a time."""
    if not profile.consent or not profile.needs:
        return []
    scored = [(_score(r, profile, policy), r) for r in resources if _passes(r, profile, today)]
    scored.sort(key=lambda item: (-item[0], item[1].id))
    chosen, taken = [], {}
    for score, resource in scored:
        if taken.get(resource.organization_id, 0) >= policy.per_organization:
            continue
        taken[resource.organization_id] = taken.get(resource.organization_id, 0) + 1
        chosen.append((resource.id, score))
        if len(chosen) == policy.top_k:
            break
    return chosen


def plain_fitting(resource: Resource, profiles, policy, today, dismissed_by=()):
    """[(returnee id, score)] of every returnee the resource passes the filters for."""
    skip = set(dismissed_by)
    found = [
        (p.returnee_id, _score(resource, p, policy))
        for p in profiles
        if p.consent and p.needs and p.returnee_id not in skip and _passes(resource, p, today)
    ]
    found.sort(key=lambda item: (-item[1], item[0]))
    return found


# --- synthetic data ----------------------------------------------------------------------------


def _some(rng, values, most, empty_chance):
    if rng.random() < empty_chance:
        return ()
    return tuple(sorted(rng.sample(values, rng.randint(1, most))))


def synthetic_resources(n: int, seed: int = 7, organizations: int = 2000) -> list[Resource]:
    rng = random.Random(seed)
    resources = []
    for i in range(n):
        capacity = rng.randint(1, 50)
        resources.append(
            Resource(
                id=f"r{i:07d}",
                organization_id=f"o{rng.randrange(organizations):05d}",
                needs_served=_some(rng, NEEDS, 3, 0.0),
                industries=_some(rng, INDUSTRIES, 3, 0.4),
                stages=_some(rng, STARTUP_STAGES, 2, 0.4),
                district=None if rng.random() < 0.5 else rng.choice(DISTRICTS),
                capacity=capacity,
                capacity_left=rng.randint(0, capacity),
                valid_from=TODAY - timedelta(days=rng.randint(-30, 400)),
                valid_until=None
                if rng.random() < 0.5
                else TODAY + timedelta(rng.randint(-60, 700)),
            )
        )
    return resources


def synthetic_profiles(n: int, seed: int = 11) -> list[Profile]:
    rng = random.Random(seed)
    return [
        Profile(
            returnee_id=f"p{i:07d}",
            industry=rng.choice(INDUSTRIES),
            stage=rng.choice(STARTUP_STAGES),
            needs=_some(rng, NEEDS, 4, 0.0),
            district=None if rng.random() < 0.2 else rng.choice(DISTRICTS),
            consent=rng.random() < 0.9,
        )
        for i in range(n)
    ]


# --- measuring ---------------------------------------------------------------------------------


def _timed(fn, runs: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def _summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(times):8.2f} ms   p95 {p95:8.2f} ms"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matching_engine")
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--returnees", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--baseline-runs", type=int, default=5)
    args = parser.parse_args(argv)

    resources = synthetic_resources(args.resources)
    returnees = synthetic_profiles(args.returnees)
    subject = Profile(
        returnee_id="subject",
        industry="biotech",
        stage="registered",
        needs=("financing", "office_space", "mentorship"),
        district="Changning",
        dismissed=frozenset(r.id for r in resources[:50]),
    )
    published = Resource(
        id="new",
        organization_id="o-new",
        needs_served=("financing", "cross_border_finance"),
        industries=(),
        stages=("registered", "growth"),
        district=None,
        capacity=50,
        capacity_left=50,
    )
    dismissed_by = [p.returnee_id for p in returnees[:100]]

    start = time.perf_counter()
    catalog = Catalog(resources)
    catalog_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    table = ReturneeTable(returnees)
    table_ms = (time.perf_counter() - start) * 1000

    def engine_top():
        return match_resources(subject, catalog, POLICY, TODAY)

    def engine_fit():
        return returnees_fitting(published, table, POLICY, TODAY, dismissed_by)

    print(f"top {POLICY.top_k} for one returnee over {len(resources):,} resources")
    plain_times, plain_result = _timed(
        lambda: plain_top(subject, resources, POLICY, TODAY), args.baseline_runs
    )
    engine_times, engine_result = _timed(engine_top, args.runs)
    assert [(m.resource_id, m.score) for m in engine_result] == plain_result, "answers differ"
    print(f"  pure Python      {_summary(plain_times)}")
    print(
        f"  engine (numpy)   {_summary(engine_times)}   (columns built once: {catalog_ms:.0f} ms)"
    )
    top_speedup = statistics.median(plain_times) / statistics.median(engine_times)
    print(f"  speed-up x{top_speedup:.1f}")

    print(f"reverse match of one resource over {len(returnees):,} returnees")
    plain_times, plain_result = _timed(
        lambda: plain_fitting(published, returnees, POLICY, TODAY, dismissed_by),
        args.baseline_runs,
    )
    engine_times, engine_result = _timed(engine_fit, args.runs)
    assert engine_result == plain_result, "answers differ"
    print(f"  pure Python      {_summary(plain_times)}   ({len(plain_result):,} returnees fit)")
    print(f"  engine (numpy)   {_summary(engine_times)}   (columns built once: {table_ms:.0f} ms)")
    fit_speedup = statistics.median(plain_times) / statistics.median(engine_times)
    print(f"  speed-up x{fit_speedup:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
