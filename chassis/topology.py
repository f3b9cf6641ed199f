"""The broker topology every service relies on, declared by one piece of code.

Per producing service `<s>`:
  `<s>.events`     topic exchange, routing key = event type; its alternate exchange catches
                   events no queue is bound for, so they are parked, never dropped
  `<s>.unrouted`   fanout exchange + queue holding those parked events for a retention period
Per consuming service `<s>`:
  `<s>.<handler>`  one durable queue per event handler, bound to the producers' exchanges
  `<s>.retry`      headers exchange; `<s>.retry.<delay>ms` queues hold a failed event for its
                   delay, then dead-letter it through the default exchange back to its queue
  `<s>.dead-letters`  events that failed every attempt or were invalid, with the reason

Every queue is classic, or with `QUEUE_TYPE=quorum` a replicated quorum queue. A classic queue is
declared without a type, as it always was (the broker gives it the vhost's default type, classic
unless the vhost names another).
"""

from dataclasses import dataclass

from amqp.exceptions import PreconditionFailed
from kombu import Exchange, Queue, binding

from chassis.settings import QUEUE_TYPES

DAY_MS = 24 * 3600 * 1000
CLASSIC, QUORUM = QUEUE_TYPES


class QueueMismatch(Exception):
    """A queue exists with other arguments (its type, a TTL) than the code declares. The broker
    keeps a queue's arguments for its lifetime, so retrying cannot help: an operator must act."""


def queue_arguments(queue_type: str, **arguments) -> dict:
    if queue_type == QUORUM:
        return {"x-queue-type": QUORUM, **arguments}
    return arguments


def declare_queue(channel, queue: Queue) -> None:
    """Declare `queue` (and its exchange and bindings); a `QueueMismatch` if it exists otherwise."""
    try:
        queue(channel).declare()
    except PreconditionFailed as exc:
        raise QueueMismatch(_mismatch_advice(queue, exc.reply_text)) from exc


def _mismatch_advice(queue: Queue, reply: str) -> str:
    if "x-queue-type" in reply:
        wanted = (queue.queue_arguments or {}).get("x-queue-type", CLASSIC)
        problem = (
            f"queue {queue.name} exists with another type than QUEUE_TYPE={wanted} declares, "
            "and a queue's type never changes."
        )
    else:
        problem = (
            f"queue {queue.name} exists with other arguments than this configuration declares "
            "(QUEUE_TYPE, UNROUTED_RETENTION_HOURS), and a queue keeps its arguments."
        )
    return (
        f"{problem} Either set the configuration back, or drain the platform's queues and "
        "delete them (or move to a new vhost), then run `python -m deploy.topology`; see "
        f'docs/deploying.md, "Quorum queues on a cluster". The broker said: {reply}'
    )


def events_exchange(producer: str) -> Exchange:
    return Exchange(
        f"{producer}.events",
        type="topic",
        durable=True,
        arguments={"alternate-exchange": f"{producer}.unrouted"},
    )


def unrouted_exchange(producer: str) -> Exchange:
    return Exchange(f"{producer}.unrouted", type="fanout", durable=True)


def unrouted_queue(producer: str, retention_hours: float, queue_type: str = CLASSIC) -> Queue:
    return Queue(
        f"{producer}.unrouted",
        exchange=unrouted_exchange(producer),
        durable=True,
        queue_arguments=queue_arguments(
            queue_type, **{"x-message-ttl": int(retention_hours * 3600 * 1000)}
        ),
    )


def retry_exchange(service: str) -> Exchange:
    return Exchange(f"{service}.retry", type="headers", durable=True)


def retry_delays(attempts: int, base_ms: int, max_ms: int) -> list[int]:
    """Delay before attempt 2, 3, ... `attempts`: exponential, capped. Always one level at least:
    outages are retried even when a single attempt is configured."""
    return [min(base_ms * 2**n, max_ms) for n in range(max(attempts - 1, 1))]


def retry_queue(service: str, delay_ms: int, queue_type: str = CLASSIC) -> Queue:
    arguments = {"x-message-ttl": delay_ms, "x-dead-letter-exchange": ""}
    if queue_type == QUORUM:
        # Dead-lettering is a retry queue's only way out. A quorum queue does it at most once
        # unless told otherwise, losing the event if its handler's queue cannot take it then;
        # at least once needs `reject-publish` overflow, which without a length limit rejects
        # nothing.
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return Queue(
        f"{service}.retry.{delay_ms}ms",
        exchange=retry_exchange(service),
        durable=True,
        binding_arguments={"x-match": "all", "retry-delay-ms": str(delay_ms)},
        queue_arguments=queue_arguments(queue_type, **arguments),
    )


def dead_letter_queue(service: str, queue_type: str = CLASSIC) -> Queue:
    return Queue(
        f"{service}.dead-letters", durable=True, queue_arguments=queue_arguments(queue_type)
    )


@dataclass(frozen=True)
class Subscription:
    """An event handler's queue and what it is bound to."""

    service: str
    handler: str
    producer: str
    event_types: tuple[str, ...]

    @property
    def queue_name(self) -> str:
        return f"{self.service}.{self.handler}"

    def queue(self, queue_type: str = CLASSIC) -> Queue:
        exchange = events_exchange(self.producer)
        return Queue(
            self.queue_name,
            bindings=[binding(exchange, routing_key=t) for t in self.event_types],
            durable=True,
            queue_arguments=queue_arguments(queue_type),
        )


def declare_producer(
    channel, producer: str, unrouted_retention_hours: float, queue_type: str = CLASSIC
) -> None:
    unrouted_exchange(producer)(channel).declare()
    declare_queue(channel, unrouted_queue(producer, unrouted_retention_hours, queue_type))
    events_exchange(producer)(channel).declare()


def declare_consumer(
    channel,
    subscriptions: list[Subscription],
    delays: list[int],
    unrouted_retention_hours: float,
    queue_type: str = CLASSIC,
) -> None:
    """Everything a consuming service needs, so no event is published before its queue exists."""
    services = {s.service for s in subscriptions}
    for producer in sorted({s.producer for s in subscriptions}):
        declare_producer(channel, producer, unrouted_retention_hours, queue_type)
    for subscription in subscriptions:
        declare_queue(channel, subscription.queue(queue_type))
    for service in sorted(services):
        retry_exchange(service)(channel).declare()
        for delay in delays:
            declare_queue(channel, retry_queue(service, delay, queue_type))
        declare_queue(channel, dead_letter_queue(service, queue_type))


def subscriptions_of(service_cls) -> list[Subscription]:
    """The event handlers a service class declares, read without starting it; inherited ones
    (`chassis.operable.Operable`'s) included, as nameko runs them too."""
    found = []
    for attr in sorted(dir(service_cls)):
        member = getattr(service_cls, attr, None)
        for entrypoint in getattr(member, "nameko_entrypoints", ()):
            if getattr(entrypoint, "handles_events", False):
                found.append(
                    Subscription(
                        service_cls.name, attr, entrypoint.producer, entrypoint.event_types
                    )
                )
    return found


# What leaves the platform for district systems: one topic exchange (routing key = event type)
# that the service publishing partner views (notify, `services.notify.partners`) declares, and
# the only platform exchange `district-subscriber` may read. What no district queue is bound for
# is parked briefly, then dropped: nobody was listening.
PARTNER_EXCHANGE = "partners.events"  # contracts.partners.PARTNER_EXCHANGE
PARTNER_UNROUTED = "partners.unrouted"
PARTNER_UNROUTED_RETENTION_HOURS = 1.0


def partner_exchange() -> Exchange:
    return Exchange(
        PARTNER_EXCHANGE,
        type="topic",
        durable=True,
        arguments={"alternate-exchange": PARTNER_UNROUTED},
    )


def declare_partners(channel, queue_type: str = CLASSIC) -> None:
    parking = Exchange(PARTNER_UNROUTED, type="fanout", durable=True)
    parking(channel).declare()
    declare_queue(
        channel,
        Queue(
            PARTNER_UNROUTED,
            exchange=parking,
            durable=True,
            queue_arguments=queue_arguments(
                queue_type, **{"x-message-ttl": int(PARTNER_UNROUTED_RETENTION_HOURS * 3600000)}
            ),
        ),
    )
    partner_exchange()(channel).declare()


def declare_service(channel, service_cls, config: dict) -> None:
    """Everything one service publishes to and consumes from, from its class and config."""
    retention, queue_type = config["UNROUTED_RETENTION_HOURS"], config["QUEUE_TYPE"]
    delays = retry_delays(
        config["RETRY_ATTEMPTS"], config["RETRY_BASE_DELAY_MS"], config["RETRY_MAX_DELAY_MS"]
    )
    declare_producer(channel, service_cls.name, retention, queue_type)
    declare_consumer(channel, subscriptions_of(service_cls), delays, retention, queue_type)
    # A service without handlers still has a dead-letter queue for operators to watch.
    declare_queue(channel, dead_letter_queue(service_cls.name, queue_type))
    if getattr(service_cls, "publishes_partner_views", False):
        declare_partners(channel, queue_type)
