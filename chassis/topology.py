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
"""

from dataclasses import dataclass

from kombu import Exchange, Queue, binding

DAY_MS = 24 * 3600 * 1000


def events_exchange(producer: str) -> Exchange:
    return Exchange(
        f"{producer}.events",
        type="topic",
        durable=True,
        arguments={"alternate-exchange": f"{producer}.unrouted"},
    )


def unrouted_exchange(producer: str) -> Exchange:
    return Exchange(f"{producer}.unrouted", type="fanout", durable=True)


def unrouted_queue(producer: str, retention_hours: float) -> Queue:
    return Queue(
        f"{producer}.unrouted",
        exchange=unrouted_exchange(producer),
        durable=True,
        queue_arguments={"x-message-ttl": int(retention_hours * 3600 * 1000)},
    )


def retry_exchange(service: str) -> Exchange:
    return Exchange(f"{service}.retry", type="headers", durable=True)


def retry_delays(attempts: int, base_ms: int, max_ms: int) -> list[int]:
    """Delay before attempt 2, 3, ... `attempts`: exponential, capped. Always one level at least:
    outages are retried even when a single attempt is configured."""
    return [min(base_ms * 2**n, max_ms) for n in range(max(attempts - 1, 1))]


def retry_queue(service: str, delay_ms: int) -> Queue:
    return Queue(
        f"{service}.retry.{delay_ms}ms",
        exchange=retry_exchange(service),
        durable=True,
        binding_arguments={"x-match": "all", "retry-delay-ms": str(delay_ms)},
        queue_arguments={"x-message-ttl": delay_ms, "x-dead-letter-exchange": ""},
    )


def dead_letter_queue(service: str) -> Queue:
    return Queue(f"{service}.dead-letters", durable=True)


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

    def queue(self) -> Queue:
        exchange = events_exchange(self.producer)
        return Queue(
            self.queue_name,
            bindings=[binding(exchange, routing_key=t) for t in self.event_types],
            durable=True,
        )


def declare_producer(channel, producer: str, unrouted_retention_hours: float) -> None:
    unrouted_exchange(producer)(channel).declare()
    unrouted_queue(producer, unrouted_retention_hours)(channel).declare()
    events_exchange(producer)(channel).declare()


def declare_consumer(
    channel,
    subscriptions: list[Subscription],
    delays: list[int],
    unrouted_retention_hours: float,
) -> None:
    """Everything a consuming service needs, so no event is published before its queue exists."""
    services = {s.service for s in subscriptions}
    for producer in sorted({s.producer for s in subscriptions}):
        declare_producer(channel, producer, unrouted_retention_hours)
    for subscription in subscriptions:
        subscription.queue()(channel).declare()
    for service in sorted(services):
        retry_exchange(service)(channel).declare()
        for delay in delays:
            retry_queue(service, delay)(channel).declare()
        dead_letter_queue(service)(channel).declare()


def subscriptions_of(service_cls) -> list[Subscription]:
    """The event handlers a service class declares, read without starting it."""
    from chassis.events import Subscriber

    found = []
    for attr, member in sorted(vars(service_cls).items()):
        for entrypoint in getattr(member, "nameko_entrypoints", ()):
            if isinstance(entrypoint, Subscriber):
                found.append(
                    Subscription(
                        service_cls.name, attr, entrypoint.producer, entrypoint.event_types
                    )
                )
    return found


def declare_service(channel, service_cls, config: dict) -> None:
    """Everything one service publishes to and consumes from, from its class and config."""
    retention = config["UNROUTED_RETENTION_HOURS"]
    delays = retry_delays(
        config["RETRY_ATTEMPTS"], config["RETRY_BASE_DELAY_MS"], config["RETRY_MAX_DELAY_MS"]
    )
    declare_producer(channel, service_cls.name, retention)
    declare_consumer(channel, subscriptions_of(service_cls), delays, retention)
    # A service without handlers still has a dead-letter queue for operators to watch.
    dead_letter_queue(service_cls.name)(channel).declare()


def declare_services(amqp_uri: str, services: list[str]) -> None:
    """The deploy step: every exchange and queue of the named services, before any of them runs."""
    from kombu import Connection

    from chassis.run import service_class
    from chassis.settings import nameko_config

    with Connection(amqp_uri, connect_timeout=5) as connection:
        channel = connection.channel()
        for service in services:
            declare_service(channel, service_class(service), nameko_config(service))


def main(argv=None) -> int:
    import argparse

    from chassis.settings import SERVICES, setting

    parser = argparse.ArgumentParser(
        prog="python -m chassis.topology", description=declare_services.__doc__
    )
    parser.add_argument("services", nargs="*", default=list(SERVICES))
    args = parser.parse_args(argv)
    declare_services(setting(args.services[0], "AMQP_URI"), args.services)
    print(f"broker topology declared for {', '.join(args.services)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
