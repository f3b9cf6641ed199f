"""insights against the real PostgreSQL and RabbitMQ: the SQL store gives the memory store's
figures for the same scripted history; events through the broker are counted once although
delivered twice, replayed and out of order; the HTTP API answers officials and refuses others;
the export opens; the backfill command replays the producers' retained outboxes once."""

import dataclasses
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import pytest
import requests
from alembic import command
from kombu import Connection
from openpyxl import load_workbook

from chassis.clock import FrozenClock
from chassis.db import ScriptDatabase
from chassis.migrate import alembic_config, ensure_database
from chassis.pool import ConnectionPool
from chassis.topology import declare_service
from chassis.uow import AlreadyHandled, MemoryDatabase
from contracts import CATALOG
from services.insights.backfill import ReplayDatabase
from services.insights.export import XLSX
from services.insights.memory import MemoryStore
from services.insights.service import InsightsService
from tests.support import ROOT, database_uri, publish_events, query, service_url, wait_until
from tests.unit.test_insights_handlers import (
    DAY1,
    DAY2,
    DAY3,
    GRANT,
    MONDAY,
    RENT,
    activity,
    application,
    at,
    awarded,
    consultation,
    erased,
    policy_id,
    registered,
    routes_of,
    scripted_history,
    seat,
    signed,
)

TABLES = ("returnees", "erasures", "eligibilities", "matches", "intentions", "consultations",
          "appointments", "activities", "activity_registrations", "agreements", "policies",
          "applications", "funnel")  # fmt: skip


def apply(database, events) -> None:
    """Each event through its use cases, once per event id, as the subscriber applies them."""
    for event in events:
        for use_case in routes_of(event):
            try:
                with database.unit_of_work(
                    cause=event, handler=f"insights.{use_case.__name__}"
                ) as uow:
                    use_case(event, uow)
            except AlreadyHandled:
                pass


def wire(event):
    """The event as its producer sent it (the history holds events as subscribers load them)."""
    schema = CATALOG.get(event.type, event.version).strict_schema
    return dataclasses.replace(event, data=schema.dump(event.data))


def everything(url: str) -> str:
    """Every row insights holds, as text: what a leak would show up in."""
    return repr({t: query(url, f"SELECT * FROM {t}") for t in TABLES})


@pytest.fixture
def insights_db(databases):
    url = databases.create("insights")
    pool = ConnectionPool(url, 2)
    yield url, pool
    pool.clear()


def test_postgresql_gives_the_memory_stores_figures_for_the_same_history(insights_db):
    url, pool = insights_db
    clock = FrozenClock(at(3, 18))
    history = scripted_history()
    memory = MemoryDatabase("insights", MemoryStore(), clock=clock)
    apply(memory, history)
    sql = ReplayDatabase(pool, clock)
    apply(sql, history)
    apply(sql, history)  # every event again: the inbox
    start, end = DAY1 - timedelta(days=3), DAY3 + timedelta(days=3)
    with sql.unit_of_work() as uow:
        counts, active = uow.store.day_counts(start, end), uow.store.active_before(DAY3)

    def key(row):
        return (row["measure"], row["day"], row["key"] or "")

    assert sorted(counts, key=key) == sorted(memory.store.day_counts(start, end), key=key)
    assert active == memory.store.active_before(DAY3) == 3  # the erasure is on DAY3
    assert {r["measure"] for r in counts} >= {
        "registrations", "activities_held", "activities_attended", "agreements_signed",
        "rating_sum", "applications_awarded", "awarded_amount_cny", "funnel_consulted.policy",
        "funnel_applied.policy", "funnel_awarded.policy",
    }  # fmt: skip
    erased_id = str(history[-2].data["returnee_id"])
    assert erased_id not in everything(url)


@pytest.fixture
def insights(config_for, container_factory, amqp_uri, databases):
    clock = FrozenClock(MONDAY - timedelta(days=1))  # started the day before the history
    config = config_for("insights", RETRY_BASE_DELAY_MS=200, CLOCK=clock)
    with Connection(amqp_uri) as connection:
        declare_service(connection.channel(), InsightsService, config)
    container = container_factory(InsightsService, config)
    container.start()
    wait_until(lambda: query(config["DATABASE_URL"], "SELECT 1 FROM coverage"), message="start")
    clock.advance(days=3)
    return service_url(container), config["DATABASE_URL"]


def test_events_through_the_broker_count_once_in_the_overview(insights, amqp_uri, token_for):
    base, url = insights
    history = scripted_history()
    # Delivered twice (same event ids), and the first half after the second. Each handler has
    # its queue: the erasure, then the late event after it (the history's last two), go only
    # once what comes before them is handled, so that it did come before them.
    broker_history = [wire(e) for e in history]
    before, erasure, late = broker_history[:-2], broker_history[-2], broker_history[-1]
    half = len(before) // 2

    def handled(events):
        ids = {e.id for e in events}
        return lambda: ids <= {str(r["event_id"]) for r in query(url, "SELECT event_id FROM inbox")}

    publish_events(amqp_uri, before[half:] + before[:half])
    publish_events(amqp_uri, before)
    wait_until(handled(before), message="every event before the erasure handled")
    publish_events(amqp_uri, [erasure, erasure])
    wait_until(handled([erasure]), message="the erasure handled")
    publish_events(amqp_uri, [late, late])
    wait_until(handled([late]), message="the late event handled")
    wait_until(lambda: query(url, "SELECT 1 FROM erasures"), message="the erasure")

    period = {"from": str(DAY1), "to": str(DAY3)}
    official = token_for("official")
    answer = requests.get(
        f"{base}/statistics/overview", params=period, headers=official, timeout=10
    )
    assert answer.status_code == 200, answer.text
    figures = answer.json()
    assert figures["registrations"] == 3 and figures["returnees_active"] == 2
    assert figures["intentions"] == {"expressed": 2, "accepted": 1, "declined": 0}  # v1, v2
    assert figures["matches_proposed"] == 3
    assert figures["consultations"]["requested"] == 3
    assert figures["consultations"]["first_response_within_sla_pct"] == 50.0
    assert figures["activities"] == {"held": 1, "registrations": 2, "attended": 1}
    assert figures["agreements_signed"] == 1
    assert figures["applications"] == {
        "submitted": 2, "approved": 1, "rejected": 0, "awarded": 1, "withdrawn": 1,
        "awarded_amount_cny": 100000,
    }  # fmt: skip
    assert figures["funnel_by_policy"][GRANT] == {
        "eligible": 1, "consulted": 1, "applied": 1, "approved": 1, "awarded": 1
    }  # fmt: skip
    assert figures["funnel_by_policy"][RENT] == {
        "eligible": 0, "consulted": 1, "applied": 1, "approved": 0, "awarded": 0
    }  # fmt: skip
    started = MONDAY - timedelta(days=1)
    counted_from = {
        s: t and datetime.fromisoformat(t) for s, t in figures["counted_from"].items()
    }  # fmt: skip
    assert counted_from == dict.fromkeys(("accounts", "activities", "consulting", "matching"),
                                         started)  # fmt: skip
    assert figures["complete"] is True
    erased_id = str(history[-2].data["returnee_id"])
    assert erased_id not in everything(url)

    series = requests.get(
        f"{base}/statistics/timeseries",
        params={**period, "metric": "registrations", "interval": "week"},
        headers=token_for("advisor"),
        timeout=10,
    )
    assert series.status_code == 200, series.text
    assert [(p["start"], p["value"], p["complete"]) for p in series.json()["points"]] == [
        (str(DAY1), 3, True)
    ]
    export = requests.get(f"{base}/statistics/export", params=period, headers=official, timeout=10)
    assert export.status_code == 200, export.text
    assert export.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert 'filename="insights-' in export.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(export.content))
    rows = {r[0]: r[3] for r in book["概览 Overview"].iter_rows(min_row=2, values_only=True)}
    assert rows["registrations"] == figures["registrations"] == 3
    assert rows["first_response_within_sla_pct"] == 50.0
    assert rows["activities_attended"] == 1 and rows["awarded_amount_cny"] == 100000
    funnel = {r[0]: r[1:] for r in book["政策漏斗 Funnel"].iter_rows(min_row=2, values_only=True)}
    assert funnel[GRANT] == (1, 1, 1, 1, 1)
    money = requests.get(
        f"{base}/statistics/timeseries",
        params={**period, "metric": "awarded_amount_cny"},
        headers=official,
        timeout=10,
    )
    assert money.status_code == 200, money.text
    assert [p["value"] for p in money.json()["points"]] == [0, 0, 100000]


def test_who_may_read_the_figures_and_what_a_bad_query_answers(insights, token_for):
    base, _ = insights

    def get(path, role=None, **params):
        headers = token_for(role) if role else None
        return requests.get(f"{base}{path}", params=params, headers=headers, timeout=10)

    assert get("/statistics/overview").status_code == 401
    for role in ("returnee", "provider"):
        assert get("/statistics/overview", role).status_code == 403
        assert get("/statistics/export", role).status_code == 403
    assert get("/statistics/export", "advisor").status_code == 403  # the export: officials
    assert get("/statistics/export", "admin", format="csv").headers["Content-Type"] == (
        "application/zip"
    )
    refused = get("/statistics/timeseries", "official", metric="nonsense", interval="hour",
                  **{"from": "2026-13-01"})  # fmt: skip
    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"metric", "interval", "from"}
    backwards = get(
        "/statistics/overview", "official", **{"from": "2026-11-04", "to": "2026-11-01"}
    )
    assert backwards.status_code == 422  # a rule the operation states beyond the schema
    assert backwards.json()["fields"] == {"from": ["Must not be after to."]}
    zh = requests.get(
        f"{base}/statistics/overview",
        params={"from": "2026-11-04", "to": "2026-11-01"},
        headers={**token_for("official"), "Accept-Language": "zh-CN"},
        timeout=10,
    )
    assert zh.json()["fields"] == {"from": ["不能晚于结束日期（to）。"]}


# ---------------------------------------------------------------- the backfill command


def retained(databases, producer: str, events, pending=()) -> str:
    """A producer's database whose outbox holds `events` published and `pending` not yet."""
    url = databases.create(producer)
    pool = ConnectionPool(url, 1)
    try:
        for batch, published in ((events, True), (pending, False)):
            with ScriptDatabase(pool, producer).unit_of_work() as uow:
                for event in batch:
                    uow.publish(event.type, wire(event).data, event.subject, event.version)
            if published:
                query(url, "UPDATE outbox SET published_at = now()")
    finally:
        pool.clear()
    return url


def run_backfill(env: dict, *args) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "services.insights.backfill", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_backfill_command_counts_the_retained_events_once(databases, insights_db):
    url, pool = insights_db
    r1, r2, r3 = (str(uuid.uuid4()) for _ in range(3))
    c1 = str(uuid.uuid4())
    # r3's registration is not published yet: the running service will receive it.
    accounts = retained(databases, "accounts",
                        [registered(r1, 1), registered(r2, 2), erased(r2, 2, 15)],
                        pending=[registered(r3, 3)])  # fmt: skip
    a1 = str(uuid.uuid4())
    consulting = retained(databases, "consulting", [
        consultation("consultation.requested", c1, r1, 1, policy_id=policy_id(GRANT)),
        consultation("consultation.answered", c1, r1, 1, 11),
        application("application.submitted", a1, r1, GRANT, 1, 15),
        application("application.approved", a1, r1, GRANT, 2),
        awarded(a1, r1, GRANT, 3, awarded_on=DAY3, amount=30000),
    ])  # fmt: skip
    matching = retained(databases, "matching", [])
    session, reg1 = uuid.uuid4(), uuid.uuid4()
    activities = retained(databases, "activities", [
        activity("activity.published", session, 1, starts=at(2, 14)),
        seat("registration.confirmed", reg1, session, 1, 10, r1),
        seat("attendance.recorded", reg1, session, 2, 14, r1, checked_in_at=at(2, 14).isoformat()),
        signed(uuid.uuid4(), session, DAY2, 2, 17),
        activity("activity.closed", session, 2, 18),
    ])  # fmt: skip
    env = {
        "INSIGHTS_DATABASE_URL": url,
        "ACCOUNTS_DATABASE_URL": accounts,
        "ACTIVITIES_DATABASE_URL": activities,
        "CONSULTING_DATABASE_URL": consulting,
        "MATCHING_DATABASE_URL": matching,
        "ACCOUNTS_OUTBOX_RETENTION_HOURS": "48",
    }
    first = {r["source"]: r for r in run_backfill(env)}
    assert {s: (r["applied"], r["already_counted"]) for s, r in first.items()} == {
        "accounts": (3, 0), "activities": (5, 0), "consulting": (5, 0), "matching": (0, 0)
    }  # fmt: skip
    again = {r["source"]: r for r in run_backfill(env, "accounts", "consulting", "activities")}
    assert (again["accounts"]["applied"], again["accounts"]["already_counted"]) == (0, 3)
    assert (again["consulting"]["applied"], again["consulting"]["already_counted"]) == (0, 5)
    assert (again["activities"]["applied"], again["activities"]["already_counted"]) == (0, 5)

    registrations = query(url, "SELECT returnee_id, registered_at FROM returnees")
    assert len(registrations) == 2 and {str(r["returnee_id"]) for r in registrations} == {
        r1,
        "None",
    }
    assert (
        query(url, "SELECT count(*) AS n FROM consultations WHERE first_answered_at IS NOT NULL")[
            0
        ]["n"]
        == 1
    )
    coverage = {r["source"]: r for r in query(url, "SELECT * FROM coverage")}
    hours = {
        source: (r["counted_from"] - coverage["accounts"]["counted_from"]).total_seconds() / 3600
        for source, r in coverage.items()
    }
    # accounts from 48 hours back (its retention as told), the others from the default 168
    assert round(hours["consulting"]) == round(hours["matching"]) == -120
    assert round(hours["activities"]) == -120
    with ReplayDatabase(pool).unit_of_work() as uow:
        counts = uow.store.day_counts(DAY1, DAY3)
    total = {}
    for row in counts:
        if row["key"] is None:
            total[row["measure"]] = total.get(row["measure"], 0) + row["n"]
    assert {m: total.get(m) for m in ("activities_held", "activities_attended",
                                      "agreements_signed", "applications_awarded",
                                      "awarded_amount_cny", "funnel_awarded")} == {
        "activities_held": 1, "activities_attended": 1, "agreements_signed": 1,
        "applications_awarded": 1, "awarded_amount_cny": 30000, "funnel_awarded": 1,
    }  # fmt: skip
    assert r2 not in everything(url)
    bad = subprocess.run(
        [sys.executable, "-m", "services.insights.backfill", "notify"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "insights counts no events of ['notify']" in bad.stderr


def test_the_release_that_counts_applications_counts_consulting_anew(databases):
    """Their queues are new: the figures of consulting's earlier days are not complete."""
    name = f"test_insights_{uuid.uuid4().hex[:10]}"
    url = database_uri(name)
    ensure_database(url)
    databases.created.append(name)
    command.upgrade(alembic_config("insights", url), "insights_0002")
    for source in ("accounts", "consulting"):
        query(url, "INSERT INTO coverage VALUES (%s, now() - interval '30 days')", (source,))
    command.upgrade(alembic_config("insights", url), "head")
    assert [r["source"] for r in query(url, "SELECT source FROM coverage")] == ["accounts"]


def test_openapi_document_is_valid(insights):
    from openapi_spec_validator import validate

    base, _ = insights
    document = requests.get(f"{base}/openapi.json", timeout=10).json()
    validate(document)
    export = document["paths"]["/statistics/export"]["get"]
    assert list(export["responses"]["200"]["content"]) == [XLSX, "application/zip"]
    assert export["security"] == [{"bearer": []}]
