"""Batched consumption (`on_event` subscribers, `EVENT_BATCH_SIZE`) against the real RabbitMQ
and PostgreSQL: a batch commits in one transaction, a poison event of a batch is retried and
dead-lettered alone while the others commit, a consumer killed mid-batch loses and doubles
nothing, and a batch rolled back and applied again one event at a time applies each once.

Rows committed by one transaction share their `xmin`: that is how a test sees a batch.
"""

import signal
import time

import pytest

from chassis.dead_letters import DeadLetterQueue
from tests.integration.backbone import Background, Batched, publish_organizations
from tests.integration.test_backbone import (
    _publish_raw,
    consumed,
    consumer_process,
    effects,
    wait_for_effects,
)
from tests.support import query, wait_until

pytestmark = pytest.mark.usefixtures("rabbit_admin")


@pytest.fixture
def start_batched(config_for, consumer_db, container_factory):
    def start(service=Batched, **overrides):
        settings = {
            "RETRY_ATTEMPTS": 3,
            "RETRY_BASE_DELAY_MS": 200,
            "EVENT_BATCH_SIZE": 10,
            "EVENT_BATCH_LINGER_MS": 200,
            **overrides,
        }
        container = container_factory(
            service, config_for("matching", database_url=consumer_db, **settings)
        )
        container.start()
        return container

    return start


def transactions(url, table="effects") -> int:
    return query(url, f"SELECT count(DISTINCT xmin::text) AS n FROM {table}")[0]["n"]


def test_a_batch_of_events_commits_in_one_transaction_with_its_inbox_records(
    producer_pool, start_relay, start_batched, consumer_db
):
    start_batched()
    publish_organizations(producer_pool, [f"org {i}" for i in range(10)])
    start_relay()  # one relay batch: the ten arrive together
    assert wait_for_effects(consumer_db, 10) == {"n": 10, "distinct_n": 10}
    assert transactions(consumer_db) == 1
    inbox = query(
        consumer_db,
        "SELECT count(*) AS n, count(DISTINCT xmin::text) AS tx FROM inbox"
        " WHERE handler = 'matching.tally'",
    )[0]
    assert inbox == {"n": 10, "tx": 1}
    # and the inbox's transaction is the effects' one
    assert (
        query(
            consumer_db,
            "SELECT count(*) AS n FROM inbox i JOIN effects e ON e.event_id = i.event_id"
            " WHERE i.xmin::text = e.xmin::text",
        )[0]["n"]
        == 10
    )


def test_a_lone_event_is_not_held_back_by_the_batch_size(
    producer_pool, start_relay, start_batched, consumer_db
):
    start_batched(EVENT_BATCH_LINGER_MS=5)
    start_relay()
    publish_organizations(producer_pool, ["alone"])
    assert wait_for_effects(consumer_db, 1, timeout=5) == {"n": 1, "distinct_n": 1}


@pytest.mark.parametrize(("service", "transactions_expected"), [(Batched, 4), (Background, 1)])
def test_a_background_subscriber_gathers_events_apart_into_one_batch(
    producer_pool, start_relay, start_batched, consumer_db, service, transactions_expected
):
    """Four events 0.5 s apart (the relay sweeps every 0.2 s): a subscriber lingering 2 ms
    applies each in its own transaction; one declared `background`, lingering 3 s, all four
    in one."""
    start_batched(service, EVENT_BATCH_LINGER_MS=2, BACKGROUND_BATCH_LINGER_MS=3000)
    start_relay()
    for i in range(4):
        if i:
            time.sleep(0.5)
        publish_organizations(producer_pool, [f"org {i}"])
    assert wait_for_effects(consumer_db, 4, timeout=10) == {"n": 4, "distinct_n": 4}
    assert transactions(consumer_db) == transactions_expected


def test_events_a_stopping_background_subscriber_holds_go_back_to_the_broker_at_once(
    producer_pool, start_relay, start_batched, consumer_db, rabbit_admin, vhost
):
    """Three events buffered for a batch lingering 30 s: when the subscriber stops (its
    container still running, as while other work finishes before a shutdown), they are ready
    in the queue again at once for another replica, and not applied by the stopped one."""
    container = start_batched(Background, BACKGROUND_BATCH_LINGER_MS=30_000)
    start_relay()
    publish_organizations(producer_pool, ["org 1", "org 2", "org 3"])

    def unpublished() -> int:
        with producer_pool.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
            return cur.fetchone()["n"]

    wait_until(lambda: unpublished() == 0, 10)
    wait_until(lambda: rabbit_admin.depth(vhost, "matching.tally") == 0, 10)
    time.sleep(0.5)  # delivered to the subscriber, which holds them for the batch
    [tally] = [e for e in container.entrypoints if getattr(e, "method_name", "") == "tally"]
    tally.stop()
    wait_until(lambda: rabbit_admin.depth(vhost, "matching.tally") == 3, 5)
    assert effects(consumer_db) == {"n": 0, "distinct_n": 0}


def test_a_poison_event_in_a_batch_is_dead_lettered_alone_and_the_others_commit_once(
    producer_pool, start_relay, start_batched, consumer_db, amqp_uri, rabbit_admin, vhost
):
    start_batched()
    before = {o: consumed("tally", o) for o in ("handled", "retried", "dead_lettered")}
    names = [f"org {i}" for i in range(4)] + ["poison pill"] + [f"org {i}" for i in range(4, 9)]
    ids = publish_organizations(producer_pool, names)
    poison_id = ids[4]
    start_relay()

    # The batch fails, is rolled back and applied one by one: the nine commit once each.
    assert wait_for_effects(consumer_db, 9) == {"n": 9, "distinct_n": 9}
    wait_until(lambda: rabbit_admin.depth(vhost, "matching.dead-letters") == 1, 30)
    [letter] = DeadLetterQueue(amqp_uri, "matching").summaries()
    assert letter["event_id"] == poison_id
    assert letter["attempts"] == 3
    assert "RuntimeError: cannot handle poison pill" in letter["error"]
    after = {o: consumed("tally", o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "handled": 9,
        "retried": 2,
        "dead_lettered": 1,
    }
    assert effects(consumer_db) == {"n": 9, "distinct_n": 9}
    assert query(consumer_db, "SELECT count(*) AS n FROM inbox")[0]["n"] == 9
    # The poison was in a batch: those applied before it in the batch were rolled back with it
    # and applied again alone (two deliveries each); the others were delivered once.
    deliveries = {
        r["event_id"]: r["n"]
        for r in query(
            consumer_db, "SELECT event_id::text, count(*) AS n FROM deliveries GROUP BY event_id"
        )
    }
    twice = {i for i in ids if i != poison_id and deliveries[i] == 2}
    assert twice and twice <= set(ids[:4]), deliveries
    assert all(deliveries[i] in (1, 2) for i in ids if i != poison_id), deliveries


def test_redelivered_events_of_a_committed_batch_change_nothing(
    producer_pool, start_relay, start_batched, consumer_db, amqp_uri
):
    start_batched()
    publish_organizations(producer_pool, [f"org {i}" for i in range(10)])
    start_relay()
    wait_for_effects(consumer_db, 10)
    duplicates = consumed("tally", "duplicate")
    bodies = [
        bytes(r["body"])
        for r in query(producer_pool.dsn, "SELECT body FROM outbox ORDER BY position")
    ]
    for body in bodies + bodies[:3]:  # a redelivery of all, three of them twice in one batch
        _publish_raw(amqp_uri, body)
    wait_until(lambda: consumed("tally", "duplicate") - duplicates == 13, 30)
    assert effects(consumer_db) == {"n": 10, "distinct_n": 10}


def in_flight(url) -> int:
    """Events a batch has taken but not committed: deliveries commit on their own, effects
    with their batch."""
    return query(
        url,
        "SELECT (SELECT count(*) FROM deliveries) - (SELECT count(*) FROM effects) AS n",
    )[0]["n"]


def test_a_consumer_killed_mid_batch_loses_and_doubles_nothing(
    producer_pool, start_relay, amqp_uri, consumer_db, rabbit_admin, vhost
):
    # 10 ms an event: a batch of 20 holds its transaction open for about 200 ms. The 600 events
    # are queued before the consumer starts, so its batches are full whatever the relay's pace,
    # and the kill waits for a batch that has just begun. Only this consumer process, started
    # by the test, is killed.
    consumer = consumer_process(
        amqp_uri, consumer_db, Batched, MATCHING_EVENT_BATCH_SIZE="20", BATCHED_EVENT_SECONDS="0.01"
    )
    publish_organizations(producer_pool, [f"org {i}" for i in range(600)])
    start_relay()
    wait_until(lambda: rabbit_admin.depth(vhost, "matching.tally") == 600, 60, 0.1, "600 queued")
    consumer.start()
    try:
        wait_until(
            lambda: effects(consumer_db)["n"] >= 100 and 1 <= in_flight(consumer_db) <= 10,
            60,
            0.005,
            "a batch just begun after 100 effects",
        )
        consumer.signal(signal.SIGKILL)
        consumer.wait()
        killed_at = effects(consumer_db)
        consumer.start()
        result = wait_for_effects(consumer_db, 600, timeout=120)
    finally:
        consumer.stop()
    assert killed_at["n"] < 600, "the kill must land mid-stream"
    # The batch in flight at the kill was delivered again: more deliveries than events.
    delivered = query(consumer_db, "SELECT count(*) AS n FROM deliveries")[0]["n"]
    assert delivered > 600
    assert result == {"n": 600, "distinct_n": 600}
    assert transactions(consumer_db) < 600 / 2  # they were applied in batches
    assert query(consumer_db, "SELECT count(*) AS n FROM inbox")[0]["n"] == 600
