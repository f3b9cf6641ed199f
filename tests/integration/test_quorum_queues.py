"""`QUEUE_TYPE=quorum` against the real RabbitMQ: consulting declares every queue it uses a quorum
queue, events go through its outbox to its handlers and failed ones through the retry queues to
its dead-letter queue; queues that exist as classic queues stop it, saying what to do."""

import uuid
from urllib.parse import quote

import pytest
from kombu import Connection

from chassis.dead_letters import DeadLetterQueue
from chassis.metrics import EVENTS_CONSUMED
from chassis.pool import ConnectionPool
from chassis.topology import QueueMismatch, declare_service, retry_delays, subscriptions_of
from chassis.uow import SqlUnitOfWork
from contracts.examples import EXAMPLES
from deploy.topology import main as topology_cli
from services.consulting.seed import seed
from services.consulting.service import ConsultingService
from tests.support import ServiceProcess, free_port, query, wait_until

QUORUM = {
    "QUEUE_TYPE": "quorum",
    "RETRY_ATTEMPTS": 3,
    "RETRY_BASE_DELAY_MS": 1000,  # long enough to watch the event wait in each retry queue
    "OUTBOX_SWEEP_SECONDS": 0.2,
}
HANDLER = "consulting.reassess_for_policy"


def queue_types(rabbit_admin, vhost: str) -> dict[str, str]:
    queues = rabbit_admin._call("GET", f"queues/{quote(vhost, safe='')}")
    return {queue["name"]: queue["type"] for queue in queues}


def consulting_queues(config: dict) -> set[str]:
    """What docs/architecture.md lists for a service consuming its producers' events: a parking
    queue per producer it reads (accounts', activities', its own)."""
    delays = retry_delays(
        config["RETRY_ATTEMPTS"], config["RETRY_BASE_DELAY_MS"], config["RETRY_MAX_DELAY_MS"]
    )
    return {
        *(s.queue_name for s in subscriptions_of(ConsultingService)),
        *(f"consulting.retry.{delay}ms" for delay in delays),
        "consulting.dead-letters",
        *(f"{s.producer}.unrouted" for s in subscriptions_of(ConsultingService)),
    }


def consumed(outcome: str) -> float:
    return EVENTS_CONSUMED.labels(
        "consulting", "reassess_for_policy", "policy.published", outcome
    )._value.get()


def publish_unknown_policy(pool: ConnectionPool) -> str:
    """`policy.published` through consulting's outbox for a policy its catalog does not hold:
    the handler fails on it every time."""
    policy_id = str(uuid.uuid4())
    data = {**EXAMPLES[("policy.published", 1)].data, "policy_id": policy_id}
    with pool.cursor() as cursor:
        event = SqlUnitOfWork(cursor, "consulting", None, None).publish(
            "policy.published", data, subject=policy_id
        )
    return event.id


def test_with_quorum_queues_events_are_handled_retried_and_dead_lettered(
    config_for, container_factory, rabbit_admin, vhost, amqp_uri
):
    config = config_for("consulting", **QUORUM)
    container_factory(ConsultingService, config).start()  # declares its queues, as at any start
    assert queue_types(rabbit_admin, vhost) == dict.fromkeys(consulting_queues(config), "quorum")

    # Through the service's outbox to its own handler: the catalog's `policy.published` events.
    pool = ConnectionPool(config["DATABASE_URL"], 1)
    try:
        policies = seed(pool)
        handled = "SELECT event_id FROM inbox WHERE handler = %s"
        wait_until(
            lambda: len(query(config["DATABASE_URL"], handled, (HANDLER,))) == len(policies),
            message="every seeded policy handled",
        )

        before = {outcome: consumed(outcome) for outcome in ("retried", "dead_lettered")}
        event_id = publish_unknown_policy(pool)
    finally:
        pool.clear()
    for retry_queue in ("consulting.retry.1000ms", "consulting.retry.2000ms"):
        wait_until(
            lambda q=retry_queue: rabbit_admin.depth(vhost, q) == 1,
            15,
            0.02,
            f"the event in {retry_queue}",
        )
    wait_until(lambda: rabbit_admin.depth(vhost, "consulting.dead-letters") == 1, 15)
    assert {outcome: consumed(outcome) - before[outcome] for outcome in before} == {
        "retried": 2,
        "dead_lettered": 1,
    }
    [letter] = DeadLetterQueue(amqp_uri, "consulting", "quorum").summaries()
    assert letter["event_id"] == event_id
    assert letter["attempts"] == 3
    assert letter["queue"] == HANDLER
    assert letter["error"].startswith("LookupError: policy")
    assert rabbit_admin.depth(vhost, "consulting.dead-letters") == 1  # browsing keeps it


@pytest.fixture
def classic_topology(config_for, amqp_uri) -> dict:
    """consulting's queues as an earlier deploy with the default QUEUE_TYPE left them."""
    config = config_for("consulting")
    with Connection(amqp_uri) as connection:
        declare_service(connection.channel(), ConsultingService, config)
    return config


def assert_says_what_to_do(message: str) -> None:
    assert (
        "queue consulting.unrouted exists with another type than QUEUE_TYPE=quorum declares"
        in message
    )
    assert "drain the platform's queues and delete them (or move to a new vhost)" in message
    assert "python -m deploy.topology" in message


def test_a_quorum_service_does_not_start_on_classic_queues(
    classic_topology, container_factory, rabbit_admin, vhost
):
    container = container_factory(ConsultingService, {**classic_topology, "QUEUE_TYPE": "quorum"})
    with pytest.raises(QueueMismatch) as refused:
        container.start()
    assert_says_what_to_do(str(refused.value))
    assert set(queue_types(rabbit_admin, vhost).values()) == {"classic"}  # left as they were


def test_the_service_process_exits_saying_what_to_do(classic_topology, amqp_uri):
    process = ServiceProcess(
        "consulting",
        {
            "CONSULTING_AMQP_URI": amqp_uri,
            "CONSULTING_DATABASE_URL": classic_topology["DATABASE_URL"],
            "CONSULTING_HTTP_PORT": str(free_port()),
            "CONSULTING_QUEUE_TYPE": "quorum",
        },
    ).start()
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.stop()
    assert "consulting not started: " in process.output()
    assert_says_what_to_do(process.output())


def test_the_topology_step_refuses_saying_what_to_do(
    classic_topology, amqp_uri, monkeypatch, capsys
):
    monkeypatch.setenv("CONSULTING_AMQP_URI", amqp_uri)
    monkeypatch.setenv("QUEUE_TYPE", "quorum")
    assert topology_cli(["consulting"]) == 1
    assert_says_what_to_do(capsys.readouterr().err)
