"""notify's store over a batch of events against the real PostgreSQL: what the batch reads once
(`store.ReadAhead`) is read again once an event of the batch wrote it, the outbox rows of the
batch are written together, and the returnees' locks are taken in one sorted statement.

The same events applied one at a time in units of work of their own leave the same rows: the
unit tests check the use cases on the in-memory twin, these the SQL store under them."""

import json
import threading
import uuid

import psycopg2
import pytest

from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool
from chassis.uow import BatchScope, SqlUnitOfWork
from services.notify import handlers
from services.notify.domain import DeliveryOutcome
from services.notify.seed import TOPICS
from services.notify.store import HeldConflict, NotifyStore
from tests.unit.test_notify_handlers import SETTINGS, received, storm_of_events


@pytest.fixture
def pools(databases):
    made = [ConnectionPool(databases.create("notify"), 4) for _ in range(2)]
    for pool in made:
        with pool.cursor() as cursor:
            NotifyStore(SqlUnitOfWork(cursor, "notify")).keep_topics(TOPICS)
    yield made
    for pool in made:
        pool.clear()


def apply(pool, events, batched: bool) -> list[int]:
    def one(event, cursor, scope):
        uow = SqlUnitOfWork(cursor, "notify", event, store=NotifyStore, batch=scope)
        return handlers.take_event(event, uow, SETTINGS, wake_delivery=lambda: None)

    if not batched:
        results = []
        for event in events:
            with pool.cursor() as cursor:
                results.append(one(event, cursor, None))
        return results
    with pool.cursor() as cursor:
        scope = BatchScope(events)
        results = [one(event, cursor, scope) for event in events]
        scope.finish(cursor)
    return results


def state(pool) -> tuple:
    with pool.cursor() as cursor:
        cursor.execute(
            "SELECT recipient_id::text, channel, template, locale, address, subject, body,"
            " context::text, status, reason, event_id::text, attempts"
            " FROM notifications ORDER BY event_id, recipient_id, channel"
        )
        notifications = [dict(r) for r in cursor.fetchall()]
        cursor.execute(
            "SELECT exchange, routing_key, subject, body, forget_on_publish FROM outbox"
            " ORDER BY position"
        )
        outbox = []
        for row in cursor.fetchall():
            body = json.loads(bytes(row["body"]))
            if row["routing_key"] == "notification.sent":  # its own ids differ run to run
                body = {k: body["data"][k] for k in ("event_id", "channel", "recipient_id")}
            else:
                body = body["id"]
            outbox.append((row["exchange"], row["routing_key"], body, row["forget_on_publish"]))
        cursor.execute("SELECT event_id::text FROM waiting_events ORDER BY event_id")
        waiting = [r["event_id"] for r in cursor.fetchall()]
        cursor.execute("SELECT id::text FROM erased_recipients ORDER BY id")
        erased = [r["id"] for r in cursor.fetchall()]
        cursor.execute("SELECT * FROM recipients ORDER BY id")
        recipients = [dict(r) for r in cursor.fetchall()]
    return notifications, outbox, waiting, erased, recipients


def test_a_batch_leaves_the_rows_its_events_leave_one_at_a_time(pools):
    events = storm_of_events()
    alone, batched = pools
    assert apply(batched, events, batched=True) == apply(alone, events, batched=False)
    held = state(batched)
    assert held == state(alone)
    notifications, outbox, waiting, erased, recipients = held
    assert {n["template"] for n in notifications} >= {"welcome", "policies_eligible"}
    titled = {n["event_id"]: "新的标题" in n["context"] for n in notifications}
    # The policy as published earlier in the batch, after an event had read it before.
    assert titled[events[4].id] and not titled[events[1].id]
    statuses = {(n["event_id"], n["channel"]): n["status"] for n in notifications}
    assert statuses[events[1].id, "email"] == "queued"
    assert statuses[events[6].id, "email"] == "suppressed"  # consent withdrawn in the batch
    assert not any(n["event_id"] == events[11].id for n in notifications)  # erased before
    renamed = [n for n in notifications if n["event_id"] in (events[-3].id, events[-1].id)]
    assert sorted("FX hedging, renamed" in n["context"] for n in renamed) == [0, 0, 1, 1]
    invited = [n for n in notifications if n["template"] == "activity_invitation"]
    assert len({n["recipient_id"] for n in invited}) == 2
    assert len(waiting) == 1 and len(erased) == 1
    assert erased[0] not in {str(r["id"]) for r in recipients} and len(recipients) == 2
    assert any(routing == "notification.sent" for _, routing, _, _ in outbox)


def test_a_batch_holds_its_returnees_locks_taken_in_sorted_order(pools):
    pool = pools[0]
    returnees = sorted(str(uuid.uuid4()) for _ in range(3))
    with pool.cursor() as cursor:
        store = NotifyStore(SqlUnitOfWork(cursor, "notify", batch=BatchScope([])))
        store.lock_returnees(reversed(returnees))
        store.lock_returnee(returnees[0])  # held: no statement
        assert store.ahead.locked == set(returnees)
        store.uow.one("SELECT 1 AS x")  # the locks go with the unit's next statement
        other = psycopg2.connect(pool.dsn)
        try:
            with other, other.cursor() as probe:
                probe.execute(
                    "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 7))", (returnees[1],)
                )
                assert probe.fetchone()[0] is False  # held by the batch until it commits
        finally:
            other.close()


def test_two_batches_naming_the_same_returnees_in_opposite_orders_do_not_deadlock(pools):
    pool = pools[0]
    returnees = [str(uuid.uuid4()) for _ in range(6)]
    started = threading.Barrier(2)
    failures = []

    def batch(order):
        try:
            with pool.cursor() as cursor:
                store = NotifyStore(SqlUnitOfWork(cursor, "notify", batch=BatchScope([])))
                started.wait(timeout=10)
                store.lock_returnees(order)
                cursor.execute("SELECT pg_sleep(0.2)")
        except Exception as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=batch, args=(returnees,)),
        threading.Thread(target=batch, args=(returnees[::-1],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []


def test_sends_recorded_together_publish_each_and_redact_only_links(pools):
    pool = pools[0]
    events = [received("returnee.registered"), received("account.link_issued")]
    apply(pool, events, batched=True)
    db = ScriptDatabase(pool, "notify", store=NotifyStore)
    with pool.cursor() as cursor:
        cursor.execute("SELECT * FROM notifications WHERE channel = 'email' ORDER BY template")
        queued = [dict(r) for r in cursor.fetchall()]
        cursor.execute("SELECT count(*) AS n FROM outbox WHERE routing_key = 'notification.sent'")
        before = cursor.fetchone()["n"]
    handlers.record_all(db, SETTINGS, [(n, DeliveryOutcome(True)) for n in queued])
    with pool.cursor() as cursor:
        cursor.execute(
            "SELECT id, status, body, context FROM notifications WHERE channel = 'email'"
        )
        settled = {r["id"]: dict(r) for r in cursor.fetchall()}
        cursor.execute("SELECT count(*) AS n FROM outbox WHERE routing_key = 'notification.sent'")
        after = cursor.fetchone()["n"]
    assert {n["status"] for n in settled.values()} == {"sent"} and after == before + 2
    [link] = [n for n in queued if "link" in n["context"]]
    [other] = [n for n in queued if "link" not in n["context"]]
    assert "link" not in settled[link["id"]]["context"]
    assert "[link removed]" in settled[link["id"]]["body"]
    assert settled[other["id"]]["body"] == other["body"]  # nothing to redact: untouched


def test_events_waiting_from_before_are_released_by_the_batch_that_takes_the_returnee_in(pools):
    pool = pools[0]
    other = str(uuid.uuid4())
    waiting = [received("eligibility.assessed", returnee_id=other), received("matches.proposed")]
    apply(pool, waiting, batched=False)  # each waits, in a transaction of its own
    taken_in = [
        received("returnee.registered", returnee_id=other, email="other@example.com"),
        received("returnee.registered"),
        received("returnee.updated", returnee_id=other, email="other@example.com"),
    ]
    apply(pool, taken_in, batched=True)
    notifications, _, still_waiting, _, _ = state(pool)
    announced = {(n["event_id"], n["channel"]) for n in notifications}
    for event in waiting:
        assert {(event.id, "email"), (event.id, "in_app")} <= announced
    assert still_waiting == []


def test_a_batch_whose_notification_was_written_before_fails_whole_and_changes_nothing(pools):
    """The batch holds its notification rows and writes them together at its end; one written
    before (a redelivery past the inbox) fails the batch (`HeldConflict`), which the subscriber
    applies again one event at a time, where the row is passed over as before."""
    pool = pools[0]
    event = received("returnee.registered")
    apply(pool, [event], batched=False)
    before = state(pool)
    with pytest.raises(HeldConflict):
        apply(pool, [event], batched=True)
    assert state(pool) == before
    assert apply(pool, [event], batched=False) == [0]  # alone: nothing queued again
    assert state(pool)[0] == before[0]
