"""deploy/rabbitmq/definitions*.json loaded into the real broker, and what each user may do there.

The definitions are loaded through the management API renamed (a vhost and user names of this
test's own, deleted afterwards) and with passwords set, then every user connects over AMQP.
"""

import copy
import importlib.util
import json
import secrets
import uuid
from urllib.parse import quote

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Producer, Queue, binding

from chassis.loader import service_class
from chassis.settings import SERVICES, nameko_config
from chassis.topology import (
    declare_service,
    events_exchange,
    retry_delays,
    subscriptions_of,
)
from contracts import CATALOG
from contracts.examples import EXAMPLES
from deploy.rabbitmq.definitions import (
    DEFINITIONS_PATH,
    DELIVERY_LIMIT,
    QUORUM_PATH,
    REGENERATE,
    SUBSCRIBER,
    platform_definitions,
    render,
)
from deploy.rabbitmq.definitions import password_hash as rabbit_hash
from tests.support import AMQP_URI, ROOT, wait_until

SUBSCRIBER_EXAMPLE = ROOT / "examples" / "subscriber" / "subscriber.py"


def test_the_committed_definitions_are_generated_from_the_code():
    for path, quorum in ((DEFINITIONS_PATH, False), (QUORUM_PATH, True)):
        assert path.read_text() == render(platform_definitions(quorum=quorum)), (
            f"{path.name} is out of date with the services' subscriptions: run `{REGENERATE}`"
        )


def test_the_committed_definitions_carry_no_password():
    for path in (DEFINITIONS_PATH, QUORUM_PATH):
        for user in json.loads(path.read_text())["users"]:
            assert user["password_hash"] == "" and "password" not in user, user["name"]


class Loaded:
    """The definitions as loaded under this test's names, with a password per user."""

    def __init__(self, rabbit_admin, doc: dict):
        self.admin = rabbit_admin
        suffix = uuid.uuid4().hex[:8]
        self.vhost = f"{doc['vhosts'][0]['name']}-test-{suffix}"
        self.users = {user["name"]: f"{user['name']}-test-{suffix}" for user in doc["users"]}
        self.passwords = {name: secrets.token_urlsafe(16) for name in self.users}
        doc = copy.deepcopy(doc)
        for user in doc["users"]:
            user["password_hash"] = rabbit_hash(self.passwords[user["name"]])
            user["name"] = self.users[user["name"]]
        for item in (*doc["vhosts"],):
            item["name"] = self.vhost
        for item in (*doc["permissions"], *doc["policies"]):
            item["vhost"] = self.vhost
        for item in doc["permissions"]:
            item["user"] = self.users[item["user"]]
        self.doc = doc
        self.admin._call("POST", "definitions", json=doc)

    def uri(self, user: str, password: str | None = None) -> str:
        base = AMQP_URI.split("://", 1)[1].split("@", 1)[-1].split("/", 1)[0]
        password = self.passwords[user] if password is None else password
        return f"amqp://{self.users[user]}:{password}@{base}/{self.vhost}"

    def connect(self, user: str) -> Connection:
        return Connection(self.uri(user), transport_options={"confirm_publish": True})

    def queue(self, name: str) -> dict:
        return self.admin._call("GET", f"queues/{quote(self.vhost, safe='')}/{name}")

    def delete(self) -> None:
        self.admin._call("DELETE", f"vhosts/{quote(self.vhost, safe='')}")
        for name in self.users.values():
            self.admin._call("DELETE", f"users/{quote(name, safe='')}")


@pytest.fixture
def load(rabbit_admin):
    loaded = []

    def make(path=DEFINITIONS_PATH) -> Loaded:
        loaded.append(Loaded(rabbit_admin, json.loads(path.read_text())))
        return loaded[-1]

    yield make
    for item in loaded:
        item.delete()


def deploy_topology(broker: Loaded, **settings) -> None:
    """`python -m deploy.topology` as the deployer user does it."""
    with broker.connect("deployer") as connection:
        channel = connection.channel()
        for service in SERVICES:
            declare_service(channel, service_class(service), nameko_config(service, **settings))


def refused(broker: Loaded, user: str, action) -> bool:
    with broker.connect(user) as connection:
        try:
            action(connection.channel())
        except AccessRefused:
            return True
    return False


def publish(channel, exchange: str, routing_key: str, body: bytes = b"{}") -> None:
    Producer(channel).publish(
        body, exchange=exchange, routing_key=routing_key, serializer=None, content_type="x/y"
    )


def event_body() -> bytes:
    found = EXAMPLES[("returnee.registered", 1)]
    return CATALOG.create(
        "accounts", "returnee.registered", found.data, subject=found.subject
    ).to_json()


@pytest.mark.parametrize(
    ("path", "queue_type"), [(DEFINITIONS_PATH, "classic"), (QUORUM_PATH, "quorum")]
)
def test_each_service_user_can_do_what_its_service_does_at_run_time(load, path, queue_type):
    broker = load(path)
    deploy_topology(broker, QUEUE_TYPE=queue_type)
    for service in SERVICES:
        config = nameko_config(service, QUEUE_TYPE=queue_type)
        cls = service_class(service)
        with broker.connect(service) as connection:
            channel = connection.channel()
            # What the outbox relay and the consumers declare when they connect.
            declare_service(channel, cls, config)
            publish(channel, f"{service}.events", "anything.at_all")  # to its own exchange
            publish(channel, "", f"{service}.dead-letters")  # how the chassis dead-letters
            channel.basic_get(f"{service}.dead-letters")  # `python -m chassis.dead_letters`
            if not subscriptions_of(cls):
                continue  # a pure producer: no retry exchange, nothing to consume
            delay = retry_delays(
                config["RETRY_ATTEMPTS"],
                config["RETRY_BASE_DELAY_MS"],
                config["RETRY_MAX_DELAY_MS"],
            )[0]
            Producer(channel).publish(
                b"{}",
                exchange=f"{service}.retry",
                routing_key="",
                headers={"retry-delay-ms": str(delay)},
                serializer=None,
                content_type="x/y",
            )
            for subscription in subscriptions_of(cls):  # and consumes its queues
                channel.basic_consume(subscription.queue_name, callback=lambda m: None)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_cannot_publish_to_or_take_from_another_service(load, service):
    broker = load()
    deploy_topology(broker)
    other = "matching" if service != "matching" else "consulting"
    assert refused(
        broker, service, lambda ch: publish(ch, f"{other}.events", "returnee.registered")
    )
    assert refused(broker, service, lambda ch: publish(ch, f"{other}.retry", ""))
    assert refused(broker, service, lambda ch: ch.basic_get(f"{other}.dead-letters"))
    assert refused(
        broker, service, lambda ch: Queue(f"{other}.dead-letters", durable=True)(ch).delete()
    )


def test_the_subscriber_binds_its_own_queue_reads_and_cannot_publish(load):
    broker = load()
    deploy_topology(broker)
    partners = Exchange("partners.events", type="topic", no_declare=True)
    with broker.connect(SUBSCRIBER) as connection:
        channel = connection.channel()
        channel.exchange_declare("partners.events", "topic", passive=True)
        queue = Queue(
            "district.changning-crm",
            bindings=[binding(partners, routing_key="returnee.registered")],
            durable=True,
        )(channel)
        queue.declare()
        # notify relays the partner views there; no other service may.
        with broker.connect("notify") as relay:
            publish(relay.channel(), "partners.events", "returnee.registered", event_body())
        message = wait_until(lambda: queue.get(no_ack=False), 10, message="the event")
        assert json.loads(message.body)["type"] == "returnee.registered"
        message.ack()
    assert refused(broker, "accounts", lambda ch: publish(ch, "partners.events", "x", event_body()))
    # The producers' own exchanges carry whole events, whatever the returnee consented to: a
    # district system may not bind to them.
    accounts_events = Exchange("accounts.events", type="topic", no_declare=True)
    assert refused(
        broker,
        SUBSCRIBER,
        lambda ch: Queue(
            "district.changning-crm",
            bindings=[binding(accounts_events, routing_key="returnee.registered")],
            durable=True,
        )(ch).declare(),
    )

    body = event_body()
    assert refused(broker, SUBSCRIBER, lambda ch: publish(ch, "accounts.events", "x", body))
    # Not through the default exchange into a platform queue either.
    assert refused(broker, SUBSCRIBER, lambda ch: publish(ch, "", "notify.on_accounts_event", body))
    # Nor create anything outside district.*, change a platform exchange, or read around it.
    assert refused(broker, SUBSCRIBER, lambda ch: Queue("accounts.sneaky")(ch).declare())
    assert refused(broker, SUBSCRIBER, lambda ch: events_exchange("accounts")(ch).declare())
    assert refused(broker, SUBSCRIBER, lambda ch: ch.basic_get("notify.on_accounts_event"))
    assert refused(
        broker,
        SUBSCRIBER,
        lambda ch: ch.queue_bind("district.changning-crm", "accounts.unrouted", ""),
    )
    # Its own dead-letter exchange it may publish to.
    with broker.connect(SUBSCRIBER) as connection:
        channel = connection.channel()
        Exchange("district.mine.dead-letters", type="fanout", durable=True)(channel).declare()
        publish(channel, "district.mine.dead-letters", "")


def test_the_subscriber_example_declares_within_the_subscriber_permissions(load):
    broker = load()
    deploy_topology(broker)
    spec = importlib.util.spec_from_file_location("district_subscriber", SUBSCRIBER_EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    subscriber = example.Subscriber(
        broker.uri(SUBSCRIBER),
        "district.changning-crm",
        [("accounts", "returnee.registered"), ("consulting", "eligibility.assessed")],
        ":memory:",
    )
    try:
        with subscriber.connection as connection:
            queue = subscriber.declare(connection.channel())
            assert queue.name == "district.changning-crm"
    finally:
        subscriber.db.close()


def test_the_matching_user_cannot_publish_accounts_events(load):
    broker = load()
    deploy_topology(broker)
    body = event_body()
    assert refused(broker, "matching", lambda ch: publish(ch, "accounts.events", "x", body))
    with broker.connect("accounts") as connection:  # while accounts can
        publish(connection.channel(), "accounts.events", "returnee.registered", body)


def test_a_user_whose_password_was_never_set_cannot_log_in(load, rabbit_admin):
    broker = load()
    name = broker.users["deployer"]
    rabbit_admin._call(
        "PUT",
        f"users/{quote(name, safe='')}",
        json={"password_hash": "", "tags": ""},
    )
    for password in ("", "guest", "deployer"):
        connection = Connection(broker.uri("deployer", password), connect_timeout=5)
        with pytest.raises(AccessRefused), connection:
            connection.ensure_connection(max_retries=1)


def test_handler_queues_dead_letter_what_the_broker_gives_up_on(load):
    broker = load()
    deploy_topology(broker)
    handler = subscriptions_of(service_class("notify"))[0].queue_name
    wait_until(lambda: broker.queue(handler).get("policy"), 20, message="the policy applied")
    assert broker.queue(handler)["policy"] == "notify-handler-queues"
    assert broker.queue("notify.dead-letters").get("policy") is None
    retry = next(
        q for q in broker.admin._call("GET", f"queues/{broker.vhost}") if ".retry." in q["name"]
    )
    assert retry.get("policy") is None  # its own dead-letter target is kept

    with broker.connect("notify") as connection:
        channel = connection.channel()
        publish(channel, "", handler, b"poison")
        message = wait_until(lambda: channel.basic_get(handler), 10)
        channel.basic_reject(message.delivery_tag, requeue=False)
        letter = wait_until(lambda: channel.basic_get("notify.dead-letters", no_ack=True), 10)
    assert letter.body in (b"poison", "poison")
    assert letter.headers["x-death"][0]["queue"] == handler


def test_the_quorum_variant_limits_redeliveries_of_quorum_handler_queues(load):
    broker = load(QUORUM_PATH)
    assert broker.doc["vhosts"][0]["metadata"]["default_queue_type"] == "quorum"
    deploy_topology(broker, QUEUE_TYPE="quorum")
    queues = broker.admin._call("GET", f"queues/{quote(broker.vhost, safe='')}")
    assert queues and {q["name"]: q["type"] for q in queues} == {
        q["name"]: "quorum" for q in queues
    }
    handler = subscriptions_of(service_class("consulting"))[0].queue_name
    wait_until(lambda: broker.queue(handler).get("policy"), 20, message="the policy applied")
    assert broker.queue(handler)["effective_policy_definition"] == {
        "dead-letter-exchange": "",
        "dead-letter-routing-key": "consulting.dead-letters",
        "delivery-limit": DELIVERY_LIMIT,
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
    }

    # A message that crashes its consumer every time is dead-lettered after the limit.
    with broker.connect("consulting") as connection:
        channel = connection.channel()
        publish(channel, "", handler, b"crashes every consumer")
        for _ in range(DELIVERY_LIMIT + 1):
            message = wait_until(lambda: channel.basic_get(handler), 10)
            channel.basic_reject(message.delivery_tag, requeue=True)
        letter = wait_until(lambda: channel.basic_get("consulting.dead-letters", no_ack=True), 10)
        assert letter.body in (b"crashes every consumer", "crashes every consumer")
        assert channel.basic_get(handler) is None
