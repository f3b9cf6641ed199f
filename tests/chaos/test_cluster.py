"""Beyond one machine: a three-node RabbitMQ cluster of the test's own, quorum queues, two
replicas of every service, `AMQP_URI` naming the three nodes. The node leading the busiest queues
(those every registration passes through) is killed with SIGKILL mid-stream of registrations:
nothing is lost, nothing doubled, the services carry on with the two nodes left, and the node,
started again, rejoins the cluster and every queue."""

import collections
import concurrent.futures
import json
import os
import threading
import time

import pytest

from chassis.loader import service_class
from chassis.settings import SERVICES
from chassis.topology import subscriptions_of
from tests.chaos import rabbit_cluster
from tests.chaos.effects import (
    WELCOME_SUBJECTS,
    assert_processed_once,
    converged,
    register_until_accepted,
    registered_ids,
)
from tests.platform import registration
from tests.support import Databases, ServiceProcess, free_port, wait_until

# Scaled to fit the suite's time on a 2-core machine running three nodes and twelve service
# processes; CLUSTER_REGISTRATIONS=2000 for the full stream (docs/performance.md, figures).
REGISTRATIONS = int(os.environ.get("CLUSTER_REGISTRATIONS", "400"))
CLIENTS = 8
KILL_AT = 0.4  # share of the stream registered when the node is killed
REPLICAS = 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300 + REGISTRATIONS),  # setup, then a stream of at least 1 a second
    pytest.mark.skipif(not rabbit_cluster.available(), reason="RabbitMQ is not installed"),
]


def busiest_queues() -> set[str]:
    """The handler queues every registration passes through (bound to `returnee.registered`)."""
    return {
        s.queue_name
        for service in SERVICES
        for s in subscriptions_of(service_class(service))
        if s.producer == "accounts" and "returnee.registered" in s.event_types
    }


def queues(cluster, via) -> list[dict]:
    return json.loads(
        cluster.ctl(
            via,
            "list_queues",
            "name",
            "type",
            "leader",
            "online",
            "messages",
            "consumers",
            "--formatter",
            "json",
        )  # fmt: skip
    )


@pytest.fixture
def databases():
    """Scratch databases: migrated templates, copies per service, all dropped after."""
    created = Databases()
    yield created
    created.drop_created()
    created.drop_templates()


@pytest.fixture
def cluster(databases):
    def migrate_templates():  # while the nodes boot
        for service in SERVICES:
            databases.template(service)

    with rabbit_cluster.rabbit_cluster(3, free_port, migrate_templates) as running:
        yield running


@pytest.fixture
def replicated(cluster, databases, monkeypatch):
    """Every service twice (the replicas share each service's HTTP port, SO_REUSEPORT), on
    quorum queues, against the cluster."""
    from deploy.mail_sink import SmtpSink
    from tests.platform import Platform

    monkeypatch.setenv("QUEUE_TYPE", "quorum")  # the topology step (here) and every service
    monkeypatch.setenv("HTTP_REUSE_PORT", "true")
    smtp = SmtpSink().start()
    platform, replicas = None, []
    try:
        platform = Platform(cluster.amqp_uri, databases, smtp)
        platform.start(*SERVICES)
        replicas = [ServiceProcess(s, platform.env).start() for s in SERVICES]
        handler_queues = {
            s.queue_name for service in SERVICES for s in subscriptions_of(service_class(service))
        }
        wait_until(
            lambda: all(
                q["consumers"] >= REPLICAS
                for q in queues(cluster, cluster.nodes[1])
                if q["name"] in handler_queues
            ),
            90,
            0.5,
            "both replicas of every service consuming",
        )
        platform.replicas = replicas
        platform.handler_queues = handler_queues
        yield platform
    finally:
        for process in replicas:
            process.terminate()
        if platform is not None:
            platform.stop()
        for process in replicas:
            process.stop()
        smtp.stop()


def test_a_killed_node_loses_nothing_doubles_nothing_and_rejoins(cluster, replicated):
    platform = replicated
    busiest = busiest_queues()
    done = collections.deque()
    bodies = [registration(locale=("zh-CN", "en")[i % 2]) for i in range(REGISTRATIONS)]
    # Leaders move only when a node fails: the one leading most of the busiest queues now is
    # the one leading them mid-stream.
    leaders = collections.Counter(
        q["leader"] for q in queues(cluster, cluster.nodes[-1]) if q["name"] in busiest
    )
    name, led = leaders.most_common(1)[0]
    node = next(n for n in cluster.nodes if n.name == name)
    killed = {}

    def kill_the_leader():
        while len(done) < KILL_AT * REGISTRATIONS:
            time.sleep(0.05)
        killed.update(at=len(done), seconds=time.monotonic() - started)
        cluster.kill(node)

    started = time.monotonic()
    killer = threading.Thread(target=kill_the_leader)
    killer.start()
    answered = []  # when each registration was accepted, in the order they were

    def register(body):
        register_until_accepted(platform, body)
        answered.append(time.monotonic() - started)
        done.append(body["email"])

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as clients:
        list(clients.map(register, bodies))
    killer.join()
    streamed = time.monotonic() - started
    assert killed, "the node was not killed"
    survivor = next(n for n in cluster.nodes if n is not node)
    assert led == len(busiest), f"{name} led {led} of the {len(busiest)} busiest queues"
    assert node.name not in cluster.running_nodes(survivor)
    assert {q["leader"] for q in queues(cluster, survivor) if q["name"] in busiest} <= {
        n.name for n in cluster.nodes if n is not node
    }, "a busiest queue without a leader on the nodes left"

    ids = registered_ids(platform)
    assert len(ids) == REGISTRATIONS

    # The services carry on with the two nodes left: everything is processed before the killed
    # node comes back.
    wait_until(
        lambda: converged(platform, ids), 60 + REGISTRATIONS // 5, 1, "every registration processed"
    )
    processed = time.monotonic() - started
    for service in SERVICES:
        assert platform.ready(service), f"{service} not ready on the nodes left"
    # Both replicas of each, not just the one the shared port happened to reach: every process
    # still running, every handler queue consumed by both on the nodes left.
    processes = (*(platform.processes[s] for s in SERVICES), *platform.replicas)
    dead = [p.name for p in processes if p.process.poll() is not None]
    assert not dead, f"service processes gone after the kill: {dead}"

    def short_of_a_consumer() -> dict[str, int]:
        return {
            q["name"]: q["consumers"]
            for q in queues(cluster, survivor)
            if q["name"] in platform.handler_queues and q["consumers"] < REPLICAS
        }

    try:
        wait_until(
            lambda: not short_of_a_consumer(),
            60,
            0.5,
            "both replicas of every service consuming on the nodes left",
        )
    except AssertionError:
        short = short_of_a_consumer()
        for process in processes:
            print(f"--- {process.name} (pid {process.process.pid})\n{process.output()[-3000:]}")
        raise AssertionError(f"queues short of a consumer on the nodes left: {short}") from None

    # The node rejoins: the cluster runs three nodes again, and every queue has it back.
    cluster.start_node(node)
    cluster.await_node(node)
    wait_until(lambda: node.name in cluster.running_nodes(survivor), 60, 0.5, "node rejoined")
    wait_until(
        lambda: all(len(q["online"]) == 3 for q in queues(cluster, survivor)),
        60,
        0.5,
        "every quorum queue's three members online",
    )
    rejoined = time.monotonic() - started
    every = queues(cluster, node)
    assert {q["type"] for q in every} == {"quorum"}

    # Nothing lost, nothing doubled, counted by the effects in each service's database.
    assert_processed_once(platform, ids)
    mails = collections.Counter(
        m["To"] for m in platform.smtp.messages if m["Subject"].startswith(WELCOME_SUBJECTS)
    )
    assert len(mails) == REGISTRATIONS and set(mails.values()) == {1}, "a welcome email doubled"
    dead = {q["name"]: q["messages"] for q in every if q["name"].endswith(".dead-letters")}
    assert set(dead.values()) == {0}, dead

    at, kill_time = killed["at"], killed["seconds"]
    after = [t for t in answered if t > kill_time]
    assert after, "no registration was answered after the kill"
    gaps = [b - a for a, b in zip([kill_time, *after], after, strict=False)]
    print(
        f"\n{REGISTRATIONS} registrations, {REPLICAS} replicas of {len(SERVICES)} services, "
        f"3 nodes: {name} (leader of {led} of the {len(busiest)} busiest queues) killed at "
        f"{at} registered, {kill_time:.1f} s into the stream; registrations/s before "
        f"{at / kill_time:.1f}, after {len(after) / (streamed - kill_time):.1f}; longest wait "
        f"for an answer after the kill {max(gaps, default=0):.2f} s; stream done {streamed:.1f} s, "
        f"all processed {processed:.1f} s, node rejoined {rejoined:.1f} s"
    )
