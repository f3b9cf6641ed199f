"""Reverse matching over a district's population does not stall the service.

20,000 returnees are stored directly in matching's database (with the matches the engine gives
them), matching runs as its own process with the default worker pool, and a resource that
serves every need in one district is published while 13 returnees keep giving feedback (more
than `MAX_WORKERS`) and a probe keeps asking `/health/live`. Every answer during the re-match
must come within 200 ms at the 99th percentile (or, where the machine is slower, within twice
what the same callers get in the seconds before, nothing being re-matched: the re-match must not
stall the service, whatever the machine), and the matches at the end must be what the
engine gives each returnee over the new catalog, with `matches.proposed` for exactly the
returnees whose set changed.
"""

import random
import time
import uuid
from datetime import UTC, datetime

import eventlet
import psycopg2
import pytest
import requests

from chassis.clock import Clock
from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool
from contracts.vocabulary import INDUSTRIES, NEEDS, STARTUP_STAGES
from services.matching.configuration import load_settings
from services.matching.engine import diff, match_resources
from services.matching.store import MatchingStore, match_id
from tests.support import ServiceProcess, free_port, query, wait_until

RETURNEES = 20_000
DISTRICTS = ["Changning", "Xuhui", "Jing'an", "Putuo", "Minhang", "Pudong", "Hongkou", None]
TARGET = "Changning"  # the new resource's district: about an eighth of the returnees
FEEDBACK_CLIENTS = 13  # MAX_WORKERS is 10
# Every answer during the re-match within 200 ms at the 99th percentile, or, on a machine where
# the same callers wait longer than 100 ms with nothing being re-matched, within twice that.
P99_LIMIT = 0.2
IDLE_RATIO = 2
IDLE_SECONDS = 3


def today():
    return Clock().today()


def seed(url: str) -> tuple[list[str], str]:
    """Organizations, a catalog, the returnees and their matches, as matching would have them.
    Returns the returnees' ids and the organization of the resource to publish."""
    rng = random.Random(20261201)
    organizations = [str(uuid.uuid4()) for _ in range(6)]
    pool = ConnectionPool(url, 1)
    try:
        work = ScriptDatabase(pool, "matching", store=MatchingStore)
        with work.unit_of_work() as uow:
            for number, organization_id in enumerate(organizations):
                uow.store.save_organization(organization_id, f"Partner {number}", "enterprise")
            for number in range(12):
                uow.store.insert_resource(
                    str(uuid.uuid4()),
                    {
                        "organization_id": organizations[number % len(organizations)],
                        "title": f"Resource {number}",
                        "kind": "mentorship",
                        "needs_served": rng.sample(NEEDS, 2),
                        "industries": rng.sample(INDUSTRIES, 3) if number % 3 else [],
                        "stages": [],
                        "district": rng.choice(DISTRICTS[:3]) if number % 2 else None,
                        "capacity": 50,
                        "valid_from": None,
                        "valid_until": None,
                        "description": "",
                    },
                )
        returnee_ids = sorted(str(uuid.uuid4()) for _ in range(RETURNEES))
        rows = [
            (
                returnee_id,
                "zh-CN",
                rng.choice(INDUSTRIES),
                rng.choice(STARTUP_STAGES),
                sorted(rng.sample(NEEDS, rng.randint(1, 3))),
                rng.choice(DISTRICTS),
                datetime.now(UTC),
            )
            for returnee_id in returnee_ids
        ]
        with work.unit_of_work() as uow:
            from psycopg2.extras import execute_values

            execute_values(
                uow.cursor,
                "INSERT INTO returnees (id, locale, industry, startup_stage, needs, district,"
                " profile_time) VALUES %s",
                rows,
                page_size=2000,
            )
        policy = load_settings().policy
        for start in range(0, RETURNEES, 2000):
            with work.unit_of_work() as uow:
                catalog = uow.store.catalog()
                batch = uow.store.profiles(returnee_ids[start : start + 2000])
                uow.store.replace_matches(
                    {p.returnee_id: match_resources(p, catalog, policy, today()) for p in batch}
                )
    finally:
        pool.clear()
    settle(url)
    return returnee_ids, organizations[0]


def settle(url: str) -> None:
    """The seed's writes vacuumed, analysed and checkpointed, so that neither autovacuum nor the
    flush of 400,000 match rows is what the measurement catches."""
    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
            cur.execute("CHECKPOINT")
    finally:
        conn.close()


def stored_matches(url: str) -> dict[str, list[tuple[str, int, float]]]:
    found: dict[str, list] = {}
    for row in query(
        url,
        "SELECT returnee_id::text AS r, resource_id::text AS s, rank, score FROM matches"
        " ORDER BY returnee_id, rank",
    ):
        found.setdefault(row["r"], []).append((row["s"], row["rank"], row["score"]))
    return found


def expected_matches(url: str) -> dict[str, list[tuple[str, int, float]]]:
    """What the engine gives every stored returnee over the catalog as it is now."""
    policy = load_settings().policy
    pool = ConnectionPool(url, 1)
    try:
        with ScriptDatabase(pool, "matching", store=MatchingStore).unit_of_work() as uow:
            catalog = uow.store.catalog()
            profiles = uow.store.profiles()
    finally:
        pool.clear()
    expected = {}
    for profile in profiles:
        matches = match_resources(profile, catalog, policy, today())
        if matches:
            expected[profile.returnee_id] = [
                (m.resource_id, rank, m.score) for rank, m in enumerate(matches, start=1)
            ]
    return expected


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.fixture
def matching_process(databases, amqp_uri):
    url = databases.create("matching")
    returnee_ids, organization_id = seed(url)
    port = free_port()
    process = ServiceProcess(
        "matching",
        {
            "MATCHING_DATABASE_URL": url,
            "MATCHING_AMQP_URI": amqp_uri,
            "MATCHING_HTTP_PORT": str(port),
            "MATCHING_OUTBOX_SWEEP_SECONDS": "0.5",
            "MATCHING_LOG_LEVEL": "WARNING",
        },
    ).start()
    base = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return requests.get(f"{base}/health/ready", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        wait_until(ready, 60, 0.2, "matching ready")
        yield base, url, returnee_ids, organization_id
    finally:
        process.stop()
        print(process.output()[-3000:])


def test_reverse_matching_keeps_feedback_and_probes_answered(matching_process, token_for):
    base, url, returnee_ids, organization_id = matching_process
    before = stored_matches(url)
    # Returnees of the target district: the ones the new resource re-matches.
    targeted = [
        r["id"] for r in query(url, "SELECT id::text FROM returnees WHERE district = %s", (TARGET,))
    ]
    assert len(targeted) > 2000
    clients = [
        (token_for("returnee", r), match_id(r, before[r][0][0]))
        for r in random.Random(7).sample([r for r in targeted if r in before], FEEDBACK_CLIENTS)
    ]

    running = True
    timings: dict[str, list[float]] = {"feedback": [], "live": []}
    statuses: dict[str, set] = {"feedback": set(), "live": set()}

    def timed(kind, call):
        while running:
            started = time.perf_counter()
            response = call()
            timings[kind].append(time.perf_counter() - started)
            statuses[kind].add(response.status_code)
            eventlet.sleep(0.1)

    session = requests.Session()
    threads = [
        eventlet.spawn(
            timed,
            "feedback",
            lambda h=headers, m=match: session.post(
                f"{base}/matches/{m}/feedback",
                json={"interest": "interested"},
                headers=h,
                timeout=120,
            ),
        )
        for headers, match in clients
    ]
    threads.append(
        eventlet.spawn(timed, "live", lambda: session.get(f"{base}/health/live", timeout=120))
    )
    eventlet.sleep(1)
    for samples in timings.values():
        samples.clear()  # warm
    # The same callers with nothing being re-matched: what this machine gives them now.
    eventlet.sleep(IDLE_SECONDS)
    idle = {kind: p99(samples) for kind, samples in timings.items()}
    for samples in timings.values():
        samples.clear()  # the measurement starts with the publish

    resource = {
        "title": "Station desk for every need",
        "kind": "mentorship",
        "organization_id": organization_id,
        "needs_served": list(NEEDS),
        "district": TARGET,
        "capacity": 1000,
    }
    started = time.monotonic()
    published = session.post(f"{base}/resources", json=resource, headers=token_for("admin"))
    assert published.status_code == 201, published.text

    # Done: the event handled (its inbox record) and nobody left in the re-match queue.
    def rematched():
        return query(
            url,
            "SELECT (SELECT count(*) FROM inbox WHERE handler = 'matching.rematch_for_resource')"
            " AS handled, (SELECT count(*) FROM rematch_queue) AS queued",
        )[0] == {"handled": 1, "queued": 0}

    wait_until(rematched, 120, 0.1, "the re-match finished")
    duration = time.monotonic() - started
    running = False
    for thread in threads:
        thread.wait()

    expected = expected_matches(url)
    changed = {
        r
        for r in targeted
        if any(diff([m[0] for m in before.get(r, [])], [m[0] for m in expected.get(r, [])]))
    }
    assert len(changed) > 2000
    print(
        f"re-matched {len(changed)} of {RETURNEES} in {duration:.1f} s;"
        f" feedback p99 {p99(timings['feedback']) * 1000:.0f} ms"
        f" ({len(timings['feedback'])} calls), live p99 {p99(timings['live']) * 1000:.0f} ms"
        f" ({len(timings['live'])} calls); with nothing re-matched: feedback p99"
        f" {idle['feedback'] * 1000:.0f} ms, live p99 {idle['live'] * 1000:.0f} ms"
    )
    assert statuses["live"] == {200}
    assert statuses["feedback"] <= {200, 404, 409}, statuses
    for kind in ("feedback", "live"):
        assert p99(timings[kind]) < max(P99_LIMIT, IDLE_RATIO * idle[kind]), kind

    subjects = query(url, "SELECT subject FROM outbox WHERE routing_key = 'matches.proposed'")
    assert sorted(row["subject"] for row in subjects) == sorted(changed)
    assert stored_matches(url) == expected
