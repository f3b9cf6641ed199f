"""`AMQP_URI` naming several nodes (`;`-separated URLs), of which the first two refuse
connections: every user of the broker passes over them to the one that answers — the outbox
relay and the failure router (publisher confirms on), the consumers, the topology step, the
dead-letter tools, the erasure scrub and the readiness probe. The cluster itself, with a node
killed mid-stream, is tests/chaos/test_cluster.py."""

import contextlib
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from chassis.broker import BrokerPublisher, Outgoing, connect
from chassis.dead_letters import DeadLetterQueue
from chassis.erasure import scrub_queues
from chassis.pool import ConnectionPool
from deploy.topology import declare_services
from services.consulting.seed import seed
from services.consulting.service import ConsultingService
from tests.support import ROOT, query, refused_port, service_url, wait_until

HANDLER = "consulting.reassess_for_policy"


@contextlib.contextmanager
def nodes_down_first(amqp_uri: str, down: int = 2):
    """`amqp_uri` behind `down` nodes that refuse connections, as a cluster with those away."""
    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(refused_port()) for _ in range(down)]
        yield ";".join([*(f"amqp://guest:guest@127.0.0.1:{p}/" for p in ports), amqp_uri])


def test_every_broker_user_fails_over_to_a_node_that_answers(
    config_for, container_factory, amqp_uri
):
    with nodes_down_first(amqp_uri) as cluster_uri:
        declare_services(cluster_uri, ["consulting"])  # the topology step

        config = {**config_for("consulting", OUTBOX_SWEEP_SECONDS=0.2), "AMQP_URI": cluster_uri}
        container = container_factory(ConsultingService, config)
        container.start()
        pool = ConnectionPool(config["DATABASE_URL"], 1)
        try:
            policies = seed(pool)  # through the outbox relay to consulting's own handler
        finally:
            pool.clear()
        handled = "SELECT event_id FROM inbox WHERE handler = %s"
        wait_until(
            lambda: len(query(config["DATABASE_URL"], handled, (HANDLER,))) == len(policies),
            30,
            message="every seeded policy published and handled",
        )
        ready = requests.get(f"{service_url(container)}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text

        publisher = BrokerPublisher(cluster_uri)
        try:
            letter_id = str(uuid.uuid4())
            outcome = publisher.publish(
                [Outgoing(letter_id, "", "consulting.dead-letters", b'{"erased": "x"}')]
            )
            assert outcome.confirmed == [letter_id]
        finally:
            publisher.close()
        dead_letters = DeadLetterQueue(cluster_uri, "consulting")
        assert dead_letters.count() == 1
        assert [s["event_id"] for s in dead_letters.summaries()] == [letter_id]
        assert scrub_queues(cluster_uri, ["consulting.dead-letters"], ["erased"]) == {
            "consulting.dead-letters": 1
        }
        assert dead_letters.count() == 0


@contextlib.contextmanager
def resetting_proxy(port: int):
    """A relay to `port` (tests/resetting_proxy.py); yields its port and a `reset()`."""
    proxy = subprocess.Popen(
        [sys.executable, "-m", "tests.resetting_proxy", str(port)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:

        def reset() -> None:
            proxy.stdin.write("reset\n")
            proxy.stdin.flush()
            assert proxy.stdout.readline().strip() == "reset"

        yield int(proxy.stdout.readline()), reset
    finally:
        proxy.stdin.close()
        proxy.wait(timeout=10)


def test_a_connection_reset_seen_by_another_writer_is_reported_not_silently_replaced(amqp_uri):
    """The node under a consumer dies, and a worker's ack meets the reset first: the consumer's
    next read must fail, so that it reconnects and consumes again, instead of draining a
    replacement connection with no consumers on it (kombu's own `Connection` opens one unseen,
    celery/kombu#220)."""
    parts = urlsplit(amqp_uri)
    with resetting_proxy(parts.port or 5672) as (port, reset):
        relayed = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}")
        # The relayed node first, a live one next for kombu to fail over to.
        connection = connect(f"{urlunsplit(relayed)};{amqp_uri}")
        try:
            channel = connection.channel()
            queue, _, _ = channel.queue_declare(exclusive=True)
            channel.basic_consume(queue, callback=lambda message: None)
            reset()
            with pytest.raises(OSError):  # a worker's ack meets the reset first
                channel.basic_ack(1)
            with pytest.raises(ConnectionError):
                connection.drain_events(timeout=1)  # the consumer's next read
        finally:
            connection.release()
