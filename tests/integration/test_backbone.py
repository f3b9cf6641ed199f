"""The reliable event backbone against the real RabbitMQ and PostgreSQL.

A producer posing as accounts commits `organization.registered` events through the outbox and an
outbox relay; a consumer posing as matching applies each to an `effects` table that would show a
double-applied event as a second row.
"""

import json
import signal
import subprocess
import time
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from chassis.dead_letters import DeadLetterQueue
from chassis.metrics import EVENTS_CONSUMED
from chassis.outbox import OutboxRelay
from chassis.settings import nameko_config
from chassis.topology import declare_service
from station.cli import main as station
from tests.integration.backbone import Tally, publish_organizations
from tests.support import ServiceProcess, free_port, postgres_cluster, query, wait_until


@pytest.fixture
def start_consumer(config_for, consumer_db, container_factory):
    # container_factory last: its containers stop before the vhost and databases go
    def start(**overrides):
        settings = {"RETRY_ATTEMPTS": 3, "RETRY_BASE_DELAY_MS": 200, **overrides}
        container = container_factory(
            Tally, config_for("matching", database_url=consumer_db, **settings)
        )
        container.start()
        return container

    return start


def effects(url) -> dict:
    row = query(url, "SELECT count(*) AS n, count(DISTINCT event_id) AS distinct_n FROM effects")
    return row[0]


def deliveries(url, name=None) -> list[dict]:
    if name is None:
        return query(url, "SELECT * FROM deliveries ORDER BY delivered_at")
    return query(url, "SELECT * FROM deliveries WHERE name = %s ORDER BY delivered_at", (name,))


def wait_for_effects(url, n, timeout=60.0):
    wait_until(lambda: effects(url)["n"] >= n, timeout, 0.1, f"{n} effects")
    time.sleep(0.5)  # let stragglers (duplicates, if any) land before counting
    return effects(url)


def consumed(handler: str, outcome: str) -> float:
    """What `/metrics` reports as `events_consumed_total` for the handler and outcome."""
    return EVENTS_CONSUMED.labels(
        "matching", handler, "organization.registered", outcome
    )._value.get()


def unpublished(pool) -> int:
    with pool.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
        return cur.fetchone()["n"]


def consumer_process(amqp_uri, consumer_db, service=Tally, **env) -> ServiceProcess:
    """`service` (Tally, or Batched) as its own process, its queues declared first as the
    deploy step does."""
    with Connection(amqp_uri) as connection:
        declare_service(
            connection.default_channel,
            service,
            nameko_config("matching", RETRY_ATTEMPTS=3, RETRY_BASE_DELAY_MS=200),
        )
    return ServiceProcess(
        "matching",
        {
            "MATCHING_AMQP_URI": amqp_uri,
            "MATCHING_DATABASE_URL": consumer_db,
            "MATCHING_HTTP_PORT": str(free_port()),
            "MATCHING_RETRY_ATTEMPTS": "3",
            "MATCHING_RETRY_BASE_DELAY_MS": "200",
            **env,
        },
        service_class=f"tests.integration.backbone:{service.__name__}",
    )


def test_event_committed_but_never_published_is_relayed_exactly_once(
    producer_pool, start_relay, start_consumer, consumer_db
):
    # The producer commits and dies before publishing: nothing but the outbox row remains.
    start_consumer()
    [event_id] = publish_organizations(producer_pool, ["ICBC Changning"])
    assert unpublished(producer_pool) == 1

    start_relay()  # a relay of a restarted (or another) replica
    assert wait_for_effects(consumer_db, 1) == {"n": 1, "distinct_n": 1}
    assert [str(d["event_id"]) for d in deliveries(consumer_db)] == [event_id]
    assert unpublished(producer_pool) == 0


@pytest.mark.slow
def test_events_produced_while_the_broker_is_down_are_all_delivered_once(
    producer_pool, start_relay, start_consumer, consumer_db
):
    start_consumer()
    start_relay()
    publish_organizations(producer_pool, ["before the outage"])
    wait_for_effects(consumer_db, 1)

    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
    try:
        publish_organizations(producer_pool, [f"org {i}" for i in range(1000)])
        assert unpublished(producer_pool) == 1000  # kept, not lost
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)

    assert wait_for_effects(consumer_db, 1001, timeout=120) == {"n": 1001, "distinct_n": 1001}
    assert unpublished(producer_pool) == 0


@pytest.mark.slow
def test_consumer_killed_mid_stream_applies_each_event_exactly_once(
    producer_pool, start_relay, amqp_uri, consumer_db
):
    consumer = consumer_process(amqp_uri, consumer_db).start()
    try:
        start_relay()
        publish_organizations(producer_pool, [f"org {i}" for i in range(2000)])
        wait_until(lambda: effects(consumer_db)["n"] >= 400, 60, 0.05, "400 effects")
        consumer.signal(signal.SIGKILL)
        consumer.wait()
        killed_at = effects(consumer_db)["n"]
        consumer.start()
        result = wait_for_effects(consumer_db, 2000, timeout=120)
    finally:
        consumer.stop()
    assert killed_at < 2000, "the kill must land mid-stream"
    assert result == {"n": 2000, "distinct_n": 2000}


@pytest.mark.slow
def test_consumer_stopped_with_sigterm_mid_stream_applies_each_event_exactly_once(
    producer_pool, start_relay, amqp_uri, consumer_db
):
    consumer = consumer_process(amqp_uri, consumer_db, TALLY_HANDLER_SECONDS="0.02").start()
    try:
        start_relay()
        publish_organizations(producer_pool, [f"org {i}" for i in range(1000)])
        wait_until(lambda: effects(consumer_db)["n"] >= 200, 60, 0.05, "200 effects")
        started = time.monotonic()
        consumer.signal(signal.SIGTERM)
        assert consumer.wait(timeout=30) == 0
        stop_seconds = time.monotonic() - started
        stopped_at = effects(consumer_db)["n"]
        consumer.start()
        result = wait_for_effects(consumer_db, 1000, timeout=120)
    finally:
        consumer.stop()
    assert stopped_at < 1000, "the stop must land mid-stream"
    assert stop_seconds < 20  # SHUTDOWN_TIMEOUT_SECONDS bounds it
    assert result == {"n": 1000, "distinct_n": 1000}


def test_poison_event_is_retried_with_backoff_then_dead_lettered_and_replayed_once(
    producer_pool, start_relay, start_consumer, consumer_db, amqp_uri, rabbit_admin, vhost
):
    start_consumer()
    start_relay()
    before = {o: consumed("tally", o) for o in ("handled", "retried", "dead_lettered")}
    [poison_id] = publish_organizations(producer_pool, ["poison pill"])
    publish_organizations(producer_pool, [f"org {i}" for i in range(20)])

    assert wait_for_effects(consumer_db, 20)["n"] == 20  # the others keep flowing
    wait_until(lambda: rabbit_admin.depth(vhost, "matching.dead-letters") == 1, 30)

    attempts = [d["delivered_at"] for d in deliveries(consumer_db, "poison pill")]
    assert len(attempts) == 3  # RETRY_ATTEMPTS
    gaps = [(b - a).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps  # 200 ms, then 400 ms

    dlq = DeadLetterQueue(amqp_uri, "matching")
    [letter] = dlq.summaries()
    assert letter["event_id"] == poison_id
    assert letter["attempts"] == 3
    assert "RuntimeError: cannot handle poison pill" in letter["error"]
    assert letter["queue"] == "matching.tally"
    assert letter["origin"] == "accounts.events organization.registered"
    assert "Traceback" in dlq.show(poison_id)["traceback"]
    after = {o: consumed("tally", o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "handled": 20,
        "retried": 2,
        "dead_lettered": 1,
    }
    assert rabbit_admin.depth(vhost, "matching.dead-letters") == 1  # browsing keeps it

    query(consumer_db, "INSERT INTO fixes (name) VALUES ('poison pill')")
    assert dlq.replay({poison_id}) == [poison_id]
    assert wait_for_effects(consumer_db, 21) == {"n": 21, "distinct_n": 21}
    assert rabbit_admin.depth(vhost, "matching.dead-letters") == 0


def _publish_raw(amqp_uri, body: bytes, headers=None, routing_key="organization.registered"):
    exchange = Exchange(
        "accounts.events",
        "topic",
        durable=True,
        arguments={"alternate-exchange": "accounts.unrouted"},
    )
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        producer.publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            content_type="application/cloudevents+json",
            content_encoding="utf-8",
            headers=headers or {},
            message_id=str(uuid.uuid4()),
            retry=True,
        )


def _envelope(data, **overrides) -> bytes:
    event_id = str(uuid.uuid4())
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/accounts",
        "type": "organization.registered",
        "time": "2026-11-28T10:00:00+00:00",
        "subject": None,
        "datacontenttype": "application/json",
        "dataschema": "urn:returnee-platform:event:organization.registered:v1",
        "correlationid": "corr-1",
        "causationid": None,
        "data": data,
        **overrides,
    }
    return json.dumps(body).encode()


def test_invalid_events_are_dead_lettered_with_the_reason_and_never_handled(
    start_consumer, consumer_db, amqp_uri, rabbit_admin, vhost, monkeypatch, capsys
):
    start_consumer()
    org = str(uuid.uuid4())
    _publish_raw(amqp_uri, _envelope({"organization_id": org, "name": "X", "kind": "spaceship"}))
    _publish_raw(amqp_uri, b"not json at all")
    _publish_raw(amqp_uri, _envelope({"name": "no id"}, specversion="0.3"))

    wait_until(lambda: rabbit_admin.depth(vhost, "matching.dead-letters") == 3, 30)
    letters = DeadLetterQueue(amqp_uri, "matching").summaries()
    # Each invalid delivery is dead-lettered from a thread of its own: their order in the
    # dead-letter queue is not the order they arrived in.
    errors = sorted(letter["error"] for letter in letters)
    assert len(errors) == 3
    assert any("kind" in error and "Must be one of" in error for error in errors), errors
    assert any("not JSON" in error for error in errors), errors
    assert any("specversion" in error for error in errors), errors
    assert all(letter["attempts"] == 1 for letter in letters)  # no retry: it cannot get better
    assert deliveries(consumer_db) == []

    # The operator's CLI sees the same and can throw them away.
    monkeypatch.setenv("MATCHING_AMQP_URI", amqp_uri)
    assert station(["dead-letters", "list", "matching"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [letter["event_id"] for letter in listed] == [x["event_id"] for x in letters]
    assert station(["dead-letters", "discard", "matching", "--all"]) == 0
    assert "discarded 3 dead letter(s)" in capsys.readouterr().out
    assert rabbit_admin.depth(vhost, "matching.dead-letters") == 0


@pytest.mark.slow
def test_postgres_restart_mid_stream_loses_nothing_and_dead_letters_nothing(
    producer_pool, start_relay, start_consumer, consumer_db, rabbit_admin, vhost
):
    start_consumer()
    start_relay()
    publish_organizations(producer_pool, [f"org {i}" for i in range(300)])
    wait_until(lambda: effects(consumer_db)["n"] >= 50, 30, 0.05, "50 effects")
    postgres_cluster("restart")
    publish_organizations(producer_pool, [f"late {i}" for i in range(100)])
    assert wait_for_effects(consumer_db, 400, timeout=120) == {"n": 400, "distinct_n": 400}
    assert rabbit_admin.depth(vhost, "matching.dead-letters") == 0


def test_only_platform_headers_propagate_and_causation_is_recorded(
    start_consumer, consumer_db, amqp_uri
):
    start_consumer()
    queue = Queue(
        "observer",
        Exchange(
            "matching.events",
            "topic",
            durable=True,
            arguments={"alternate-exchange": "matching.unrouted"},
        ),
        routing_key="resource.withdrawn",
    )
    with Connection(amqp_uri) as connection:
        queue(connection.default_channel).declare()
    org = str(uuid.uuid4())
    incoming = _envelope({"organization_id": org, "name": "echo me", "kind": "bank"})
    _publish_raw(
        amqp_uri,
        incoming,
        headers={"nameko.call_id_stack": ["evil.call"], "x-foreign": "leak", "authorization": "x"},
    )

    with Connection(amqp_uri) as connection:
        simple = connection.SimpleQueue(queue)
        message = simple.get(timeout=15)
        message.ack()
        simple.close()
    assert not message.headers, message.headers
    outgoing = json.loads(message.body)
    assert outgoing["type"] == "resource.withdrawn"
    assert outgoing["causationid"] == json.loads(incoming)["id"]
    assert outgoing["correlationid"] == "corr-1"


def test_unroutable_events_are_parked_not_dropped(
    producer_pool, start_relay, amqp_uri, rabbit_admin, vhost
):
    # No platform queue is bound for the event: the exchange's alternate exchange parks it.
    start_relay()
    publish_organizations(producer_pool, ["nobody listens"])
    wait_until(lambda: rabbit_admin.depth(vhost, "accounts.unrouted") == 1, 15)
    assert unpublished(producer_pool) == 0


def test_event_returned_as_unroutable_stays_in_the_outbox_until_it_can_be_routed(
    producer_pool, start_relay, amqp_uri, rabbit_admin, vhost
):
    relay = start_relay()
    publish_organizations(producer_pool, ["warm-up"])
    wait_until(lambda: rabbit_admin.depth(vhost, "accounts.unrouted") == 1, 15)
    with Connection(amqp_uri) as connection:  # an operator deletes the parking queue by mistake
        connection.default_channel.queue_delete("accounts.unrouted")

    publish_organizations(producer_pool, ["returned"])
    wait_until(
        lambda: query(producer_pool.dsn, "SELECT last_error FROM outbox WHERE attempts > 0"),
        15,
        message="the broker's return recorded",
    )
    [row] = query(producer_pool.dsn, "SELECT * FROM outbox WHERE published_at IS NULL")
    assert row["last_error"].startswith("unroutable")

    relay.publisher.close()  # the next connection declares the parking queue again
    wait_until(lambda: unpublished(producer_pool) == 0, 15, message="relayed after the fix")
    assert rabbit_admin.depth(vhost, "accounts.unrouted") == 1


def test_two_consumer_replicas_and_two_relays_publish_and_apply_each_event_once(
    producer_pool, start_relay, start_consumer, consumer_db
):
    start_consumer()
    start_consumer()
    start_relay()
    start_relay()
    publish_organizations(producer_pool, [f"org {i}" for i in range(1000)])
    assert wait_for_effects(consumer_db, 1000) == {"n": 1000, "distinct_n": 1000}
    assert len(deliveries(consumer_db)) == 1000  # no event published twice


def test_published_outbox_rows_and_old_inbox_records_are_pruned_after_retention(
    producer_pool, amqp_uri
):
    publish_organizations(producer_pool, ["old", "recent", "unpublished"])
    with producer_pool.cursor() as cur:
        cur.execute(
            "UPDATE outbox SET published_at = now() - interval '8 days'"
            " WHERE convert_from(body, 'UTF8') LIKE '%%\"name\":\"old\"%%'"
        )
        cur.execute(
            "UPDATE outbox SET published_at = now() - interval '1 day'"
            " WHERE convert_from(body, 'UTF8') LIKE '%%\"name\":\"recent\"%%'"
        )
        cur.execute(
            "INSERT INTO inbox (handler, event_id, handled_at) VALUES"
            " ('accounts.x', gen_random_uuid(), now() - interval '31 days'),"
            " ('accounts.x', gen_random_uuid(), now() - interval '1 day')"
        )
    relay = OutboxRelay(producer_pool, amqp_uri, "accounts", outbox_retention_hours=7 * 24)
    assert relay.prune() == (1, 1)
    left = query(producer_pool.dsn, "SELECT published_at IS NULL AS pending FROM outbox")
    assert sorted(row["pending"] for row in left) == [False, True]  # recent + unpublished kept
    assert len(query(producer_pool.dsn, "SELECT * FROM inbox")) == 1
