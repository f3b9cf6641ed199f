"""Event handlers that never lose or double-apply an event.

    @subscribe("accounts", "returnee.registered", "returnee.updated")
    def assess(self, event):
        with self.db.unit_of_work() as uow:    # records (handler, event id): redeliveries no-op
            ...

- The envelope and the data are checked against `contracts/` before the handler runs; an invalid
  event goes straight to the dead-letter queue with the validation errors.
- A handler that raises is retried after 1 s, 2 s, 4 s, ... (TTL queues that dead-letter back to
  the handler's queue); the attempt count travels in our own `attempts` header. After
  `RETRY_ATTEMPTS` attempts the event goes to `<service>.dead-letters` with the error, a
  traceback summary, the attempts and where it came from. While the database or the broker is
  unreachable, retries do not spend attempts: an outage does not dead-letter healthy events.
  The original message is acked only after the broker confirmed its retry or dead-letter copy.
- A subscriber of `on_event` (one unit of work per event) takes up to `EVENT_BATCH_SIZE` events
  at once and applies them in one transaction, their inbox records sent with its commit
  (`chassis.db.WorkerDatabase.apply_batch`), then each message acked. A batch goes to a worker
  when it is full or `EVENT_BATCH_LINGER_MS` after its first event (`BACKGROUND_BATCH_LINGER_MS`
  for a `background` subscriber: work nobody waits on at that moment, whose events had better
  gather into larger batches, cheaper per event, and leave the cores to what a person awaits);
  while every batch slot (a worker events may take) is busy, events gather into the next batch.
  If one event of a batch fails, the batch is rolled back and its events applied one by one,
  each in its own transaction: the failing one is retried and dead-lettered alone, as above,
  and the others commit. Redeliveries (a crash before the commit) meet the inbox.
- The worker context holds only the platform's correlation id and event id, never the incoming
  message's headers, so nothing foreign propagates to the events a handler publishes.
- A failed event about a person the service has erased (its tombstone, `Operable.erased`) is
  neither retried nor dead-lettered but dropped, counted in `erased_messages_dropped_total`:
  the erasure scrubbed the service's kept queues once (`chassis.erasure`), and a message that
  was being handled then must not park the person's data there afterwards.
"""

import functools
import logging
import re
import traceback
from datetime import UTC, datetime

import eventlet
from amqp.exceptions import ConnectionError as AMQPConnectionError
from nameko.extensions import SharedExtension, register_entrypoint
from nameko.messaging import Consumer, QueueConsumer, QueueConsumerStopped

from chassis.broker import (
    BrokerPublisher,
    BrokerUnavailable,
    Outgoing,
    StrictConnection,
    redacted,
)
from chassis.intake import DUPLICATE, Batch, Delivery
from chassis.metrics import ERASED_MESSAGES_DROPPED, EVENTS_CONSUMED
from chassis.pool import CONNECTION_ERRORS, DatabaseUnavailable
from chassis.topology import Subscription, declare_consumer, retry_delays
from chassis.uow import AlreadyHandled
from contracts import CATALOG, Event, InvalidEvent

log = logging.getLogger(__name__)


ATTEMPTS_HEADER = "attempts"
RETRY_DELAY_HEADER = "retry-delay-ms"
# Failures of the infrastructure rather than of the event: retried without spending attempts.
OUTAGES = (DatabaseUnavailable, BrokerUnavailable, *CONNECTION_ERRORS)
# The ids a failed message may name a person by: whatever looks like a UUID, in its body (valid
# or not) and its headers (an error text may quote the event).
_UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class EventQueueConsumer(QueueConsumer):
    """nameko's queue consumer, handing raw messages over: decoding is the subscriber's job, so
    an undecodable body becomes a dead letter instead of an unacked message stuck forever.
    It also hands out the batch slots: at most as many batches in workers at once as events may
    take workers."""

    def setup(self):
        super().setup()
        self.batch_slots = self.event_workers
        self._unsettled: dict = {}  # channel -> delivery tags not acked or requeued yet
        self._waiting: list = []  # batching subscribers with events buffered, waiting for a slot

    @property
    def connection(self):
        # nameko's, as a `StrictConnection`: kombu's mixin clones it for every (re)connection.
        connection = super().connection
        connection.__class__ = StrictConnection
        return connection

    @property
    def event_workers(self) -> int:
        # Events may take all workers but a few: HTTP requests, health probes among them, share
        # the pool and must still be answered while a backlog drains.
        return max(1, self.container.max_workers - self.container.config["HTTP_RESERVED_WORKERS"])

    @property
    def prefetch_count(self):
        return self.event_workers

    def prefetch_for(self, provider) -> int:
        # A batching subscriber needs a batch in its worker and the next one filling.
        batch = getattr(provider, "batch_size", 1)
        return max(self.event_workers, 2 * batch) if batch > 1 else self.event_workers

    def start(self):
        """A service that serves while the broker is away (`serves_without_broker`: accounts,
        whose sign-in, registration and erasure need none) does not wait for its consumers at
        start: they connect when the broker answers (nameko's consumer keeps retrying), and the
        events wait in their queues meanwhile."""
        if not getattr(self.container.service_cls, "serves_without_broker", False):
            return super().start()
        if not self._starting:
            self._starting = True
            self._gt = self.container.spawn_managed_thread(self.run)
            self._gt.link(self._handle_thread_exited)

    def kill(self):
        # Killed while still connecting (`serves_without_broker`): nameko's kill waits for the
        # consumer thread to see `should_stop`, which kombu's connection retries never look at.
        # Nothing is consumed yet, so nothing is left to settle.
        if self._gt is not None and not self._gt.dead and not self._consumers_ready.ready():
            self._gt.kill(QueueConsumerStopped())
        super().kill()

    def unregister_provider(self, provider):
        # Stopped before the broker ever answered: nameko's tells the stop once per provider,
        # an event that takes one telling.
        if not self._consumers_ready.ready():
            if not self._last_provider_unregistered.ready():
                self._last_provider_unregistered.send()
            return
        super().unregister_provider(provider)

    def get_consumers(self, consumer_cls, channel):
        self._consumers = {}
        for provider in self._providers:
            consumer = consumer_cls(queues=[provider.queue], accept=None, no_ack=False)
            consumer.on_message = self._on_message_for(provider)
            # The limit applies to the consumers started after it on the channel: each starts
            # right away with its own (kombu's later start of the same consumer is a no-op).
            consumer.qos(prefetch_count=self.prefetch_for(provider))
            consumer.consume()
            self._consumers[provider] = consumer
        return self._consumers.values()

    def _on_message_for(self, provider):
        # A batching subscriber takes its deliveries in this thread (reading and buffering
        # never wait); one that takes them one by one gets nameko's thread for each.
        take = provider.take if getattr(provider, "batch_size", 1) > 1 else None

        def on_message(message):
            self._unsettled.setdefault(message.channel, set()).add(message.delivery_tag)
            if take is not None:
                take(message)
            else:
                self.handle_message(provider, None, message)

        return on_message

    def ack_message(self, message):
        self._settled(message)
        super().ack_message(message)

    def requeue_message(self, message):
        self._settled(message)
        super().requeue_message(message)

    def _settled(self, message) -> None:
        tags = self._unsettled.get(message.channel)
        if tags is not None:
            tags.discard(message.delivery_tag)

    def ack_messages(self, messages: list) -> None:
        """Ack `messages` (a batch's), with one multiple-ack for those that are the oldest
        unsettled deliveries of their channel: a multiple-ack also acks every earlier delivery,
        so it must not reach one another worker still holds."""
        by_channel: dict = {}
        for message in messages:
            by_channel.setdefault(message.channel, []).append(message)
        for channel, mine in by_channel.items():
            unsettled = self._unsettled.get(channel, set())
            ours = {m.delivery_tag: m for m in mine}
            prefix = []
            for tag in sorted(unsettled):
                if tag not in ours:
                    break
                prefix.append(tag)
            if len(prefix) > 1 and channel.connection:
                unsettled.difference_update(prefix)
                ours.pop(prefix[-1]).ack(multiple=True)
                for tag in prefix[:-1]:
                    ours.pop(tag)
            for message in ours.values():
                self.ack_message(message)
        for channel in [c for c in self._unsettled if not c.connection]:
            del self._unsettled[channel]  # closed: the broker took its deliveries back

    def take_slot(self, subscriber) -> bool:
        """A batch slot for `subscriber`, or False: it is offered one when a batch ends."""
        if self.batch_slots > 0:
            self.batch_slots -= 1
            return True
        if subscriber not in self._waiting:
            self._waiting.append(subscriber)
        return False

    def release_slot(self) -> None:
        self.batch_slots += 1
        while self._waiting and self.batch_slots > 0:
            self._waiting.pop(0).flush()

    def on_connection_error(self, exc, interval):
        # kombu tries the next node of AMQP_URI at once, and waits `interval` after a round of
        # all; nameko's message would print every node's password but the first.
        log.warning(
            "broker at %s unreachable (%s); trying the next node, or again in %s s",
            redacted(self.amqp_uri),
            exc,
            interval,
        )


class FailureRouter(SharedExtension):
    """Sends failed events to a retry queue or to the dead-letter queue of the service."""

    def __init__(self):
        super().__init__()
        self.subscriptions: list[Subscription] = []

    def setup(self):
        config = self.container.config
        self.service = self.container.service_name
        self.attempts = config["RETRY_ATTEMPTS"]
        self.delays = retry_delays(
            self.attempts, config["RETRY_BASE_DELAY_MS"], config["RETRY_MAX_DELAY_MS"]
        )
        self.unrouted_retention_hours = config["UNROUTED_RETENTION_HOURS"]
        self.queue_type = config["QUEUE_TYPE"]
        self.publisher = BrokerPublisher(config["AMQP_URI"], on_connect=self.declare)

    def declare(self, channel) -> None:
        declare_consumer(
            channel,
            self.subscriptions,
            self.delays,
            self.unrouted_retention_hours,
            self.queue_type,
        )

    def stop(self):
        self.publisher.close()

    kill = stop

    def names_erased(self, message) -> bool:
        """Whether the message names a person the service has erased (`Operable.erased`, in a
        unit of work of the service's database). A database away cannot tell: no."""
        from chassis.db import Database, ScriptDatabase  # chassis.db imports chassis.outbox

        erased = getattr(self.container.service_cls, "erased", None)
        database = next((d for d in self.container.dependencies if isinstance(d, Database)), None)
        if erased is None or database is None:
            return False
        body = message.body
        body = body if isinstance(body, bytes) else str(body).encode("utf-8", "replace")
        headers = repr(message.headers or {}).encode("utf-8", "replace")
        ids = {m.decode().lower() for m in _UUID.findall(body + b" " + headers)}
        if not ids:
            return False
        try:
            db = ScriptDatabase(database.pool, self.service, database.store_factory)
            with db.unit_of_work() as uow:
                return any(erased(uow, person) for person in sorted(ids))
        except Exception as exc:  # cannot tell: the event is routed as any other
            log.warning("could not look for erased people in a failed event: %r", exc)
            return False

    def route(self, message, queue: str, error: str, trace: str, failure: str) -> str:
        """Republish a failed message; returns "retry" or "dead-letter" once the broker has it,
        or "dropped" for a message about an erased person (`names_erased`), which is not kept.

        `failure` is "invalid" (dead-letter now: it cannot get better), "error" (an attempt
        spent) or "outage" (the database or broker is away: retried without spending an
        attempt, so an outage does not dead-letter a healthy event)."""
        if failure != "outage" and self.names_erased(message):
            kept = f"{self.service}.dead-letters"
            ERASED_MESSAGES_DROPPED.labels(self.service, kept).inc()
            log.warning("dropped a failed event about an erased person (from %s)", queue)
            return "dropped"
        attempts = int(message.headers.get(ATTEMPTS_HEADER, 1))
        retryable = failure != "invalid"
        free = failure == "outage"
        next_attempt = attempts if free else attempts + 1
        origin = {
            "original-exchange": message.headers.get("original-exchange")
            or message.delivery_info.get("exchange", ""),
            "original-routing-key": message.headers.get("original-routing-key")
            or message.delivery_info.get("routing_key", ""),
        }
        if retryable and (free or attempts < self.attempts):
            delay = self.delays[min(attempts, len(self.delays)) - 1]
            outgoing = Outgoing(
                message_id=message.properties.get("message_id") or "",
                exchange=f"{self.service}.retry",
                routing_key=queue,
                body=message.body,
                content_type=message.content_type,
                headers={
                    ATTEMPTS_HEADER: next_attempt,
                    RETRY_DELAY_HEADER: str(delay),
                    "last-error": error[:500],
                    **origin,
                },
                properties=_kept_properties(message),
            )
            outcome = "retry"
        else:
            outgoing = Outgoing(
                message_id=message.properties.get("message_id") or "",
                exchange="",
                routing_key=f"{self.service}.dead-letters",
                body=message.body,
                content_type=message.content_type,
                headers={
                    ATTEMPTS_HEADER: attempts,
                    "error": error[:2000],
                    "traceback": trace[-4000:],
                    "queue": queue,
                    **origin,
                    "dead-lettered-at": datetime.now(UTC).isoformat(),
                },
                properties=_kept_properties(message),
            )
            outcome = "dead-letter"
        result = self.publisher.publish([outgoing])
        if result.failed:
            raise ConnectionError(f"could not {outcome}: {result.failed}")
        return outcome


def _kept_properties(message) -> dict:
    keep = ("type", "app_id", "correlation_id", "timestamp")
    return {k: message.properties[k] for k in keep if message.properties.get(k) is not None}


class Subscriber(Consumer):
    """Entrypoint: one durable queue per handler, bound to `<producer>.events` for its types.
    `batchable`: the handler applies a `Batch` as well as an event (`on_event` does).
    `background`: its batches wait `BACKGROUND_BATCH_LINGER_MS` for more events, not
    `EVENT_BATCH_LINGER_MS`."""

    queue_consumer = EventQueueConsumer()
    failures = FailureRouter()
    handles_events = True

    def __init__(self, producer: str, event_types: tuple[str, ...], batchable=False,
                 background=False, **kwargs):  # fmt: skip
        self.producer = producer
        self.event_types = event_types
        self.batchable = batchable
        self.background = background
        super().__init__(queue=None, **kwargs)

    def setup(self):
        self.subscription = Subscription(
            self.container.service_name, self.method_name, self.producer, self.event_types
        )
        self.queue = self.subscription.queue(self.container.config["QUEUE_TYPE"])
        self.failures.subscriptions.append(self.subscription)
        config = self.container.config
        self.batch_size = config.get("EVENT_BATCH_SIZE", 1) if self.batchable else 1
        linger = "BACKGROUND_BATCH_LINGER_MS" if self.background else "EVENT_BATCH_LINGER_MS"
        self.linger = config.get(linger, 0) / 1000
        self._buffer: list[Delivery] = []
        self._timer = None
        # A batch is due as soon as it can go (the timer fires at once, or a slot is released):
        # more deliveries need not ask again.
        self._full = False
        self._counters: dict = {}
        super().setup()

    def stop(self):
        """No more deliveries; the events buffered for a batch no worker took yet (a background
        subscriber's, lingering) go back to the broker at once, for the next consumer."""
        super().stop()
        for delivery in self._give_up_buffer():
            self._settle_with_broker(delivery.message, requeue=True)

    def kill(self):
        """Killed: the buffered events are dropped; the broker takes them back with the
        connection."""
        self._give_up_buffer()
        super().kill()

    def _give_up_buffer(self) -> list[Delivery]:
        """The events buffered for the next batch, taken out, and its timer cancelled."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        buffered, self._buffer = self._buffer, []
        return buffered

    def _read(self, message) -> Event:
        event = CATALOG.check(Event.from_json(message.body))
        if event.type not in self.event_types:
            raise InvalidEvent(f"{event.type} arrived on a queue bound for {self.event_types}")
        return event

    def _refuse(self, message, exc: InvalidEvent) -> None:
        log.error("invalid event on %s: %s", self.subscription.queue_name, exc)
        self._settle(message, str(exc), "", "invalid", message.properties.get("type", ""))

    def take(self, message) -> None:
        """A delivery for the next batch, in the queue consumer's thread: buffered, and the
        batch handed to a worker from a timer's thread (a worker may have to wait for a free
        one). An invalid event is dead-lettered from a thread of its own."""
        try:
            event = self._read(message)
        except InvalidEvent as exc:
            self.container.spawn_managed_thread(functools.partial(self._refuse, message, exc))
            return
        self._buffer.append(Delivery(event, message))
        if len(self._buffer) >= self.batch_size:
            if not self._full:
                self._full = True
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = eventlet.spawn_after(0, self._linger_over)
        elif self._timer is None:
            self._timer = eventlet.spawn_after(self.linger, self._linger_over)

    def handle_message(self, body, message):
        """A delivery for a subscriber taking events one by one, in a thread of its own."""
        try:
            event = self._read(message)
        except InvalidEvent as exc:
            self._refuse(message, exc)
            return
        context = {"correlation_id": event.correlation_id, "event_id": event.id}
        try:
            self.container.spawn_worker(
                self,
                (event,),
                {},
                context_data=context,
                handle_result=functools.partial(self.handle_result, message),
            )
        except Exception:  # container being killed: leave the event to the broker
            self._settle_with_broker(message, requeue=True)

    def _linger_over(self):
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Hand the buffered events (at most a batch) to a worker, if a batch slot is free."""
        if not self._buffer or not self.queue_consumer.take_slot(self):
            return
        if self._timer is not None:
            self._timer.cancel()
        taken, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
        self._timer, self._full = None, bool(self._buffer)
        if self._buffer:  # more than a batch arrived while the slots were taken
            self._timer = eventlet.spawn_after(0, self._linger_over)
        batch = Batch(taken)
        try:
            self.container.spawn_worker(
                self, (batch,), {}, context_data={},
                handle_result=functools.partial(self.handle_batch_result, batch),
            )  # fmt: skip
        except Exception:  # container being killed: leave the events to the broker
            self.queue_consumer.release_slot()
            for delivery in taken:
                self._settle_with_broker(delivery.message, requeue=True)

    def handle_batch_result(self, batch, worker_ctx, result=None, exc_info=None):
        """Settle each event of the batch once its transaction ended: acked if applied (or a
        duplicate), retried or dead-lettered alone if it failed on its own."""
        try:
            applied = [d for d in batch.deliveries if (d.exc_info or exc_info) is None]
            try:
                self.queue_consumer.ack_messages([d.message for d in applied])
            except (OSError, AMQPConnectionError) as exc:
                log.warning("could not ack a batch, the broker will redeliver it: %r", exc)
            for delivery in applied:
                outcome = "duplicate" if delivery.result is DUPLICATE else "handled"
                self._count(delivery.event.type, outcome)
            for delivery in batch.deliveries:
                failed = delivery.exc_info or exc_info
                event_type = delivery.event.type
                if failed is None:
                    continue
                exc = failed[1]
                trace = "".join(traceback.format_exception(*failed, limit=8))
                failure = "outage" if isinstance(exc, OUTAGES) else "error"
                self._settle(
                    delivery.message, f"{type(exc).__name__}: {exc}", trace, failure, event_type
                )
        finally:
            self.queue_consumer.release_slot()
        return result, exc_info

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        event_type = worker_ctx.args[0].type
        if exc_info is None:
            self._settle_with_broker(message, requeue=False)
            outcome = "duplicate" if result is DUPLICATE else "handled"
            self._count(event_type, outcome)
            return result, exc_info
        exc = exc_info[1]
        trace = "".join(traceback.format_exception(*exc_info, limit=8))
        failure = "outage" if isinstance(exc, OUTAGES) else "error"
        self._settle(message, f"{type(exc).__name__}: {exc}", trace, failure, event_type)
        return result, exc_info

    def _settle(self, message, error: str, trace: str, failure: str, event_type: str) -> None:
        try:
            routed = self.failures.route(
                message, self.subscription.queue_name, error, trace, failure
            )
        except Exception as exc:
            # Cannot hand it on: give it back to the broker, after a pause so a broken broker
            # connection does not turn into a hot redelivery loop.
            log.warning("could not route failed event, returning it to its queue: %s", exc)
            eventlet.sleep(1)
            self._settle_with_broker(message, requeue=True)
            self._count(event_type, "returned")
        else:
            self._settle_with_broker(message, requeue=False)
            outcome = {"retry": "retried", "dead-letter": "dead_lettered",
                       "dropped": "dropped_erased"}[routed]  # fmt: skip
            if failure == "invalid" and routed != "dropped":
                outcome = failure
            self._count(event_type, outcome)

    def _settle_with_broker(self, message, requeue: bool) -> None:
        """Ack or requeue; when the connection is gone the broker has already taken the message
        back and will redeliver it (the inbox absorbs the repeat): nothing to do, no crash."""
        try:
            if requeue:
                self.queue_consumer.requeue_message(message)
            else:
                self.queue_consumer.ack_message(message)
        except (OSError, AMQPConnectionError) as exc:
            log.warning("could not settle a message, the broker will redeliver it: %r", exc)

    def _count(self, event_type: str, outcome: str) -> None:
        counter = self._counters.get((event_type, outcome))
        if counter is None:
            counter = self._counters[event_type, outcome] = EVENTS_CONSUMED.labels(
                self.container.service_name, self.method_name, event_type, outcome
            )
        counter.inc()


def subscribe(producer: str, *event_types: str, batchable: bool = False,
              background: bool = False):  # fmt: skip
    """Decorate a service method as the handler of `event_types` published by `producer`.
    `batchable`: the method also takes a `Batch` of events (`on_event` makes such methods);
    `background`: its batches linger longer (`Subscriber`)."""
    for event_type in event_types:
        if CATALOG.get(event_type).producer != producer:
            raise ValueError(f"{event_type} is not published by {producer}")
    if background and not batchable:
        raise ValueError("only a subscriber taking batches lingers: background needs batchable")

    def decorate(method):
        @functools.wraps(method)
        def handler(self, event):
            try:
                return method(self, event)
            except AlreadyHandled as exc:
                log.debug("%s", exc)
                return DUPLICATE

        register_entrypoint(
            handler, Subscriber(producer, tuple(event_types), batchable, background)
        )
        return handler

    return decorate


def on_event(producer: str, *event_types: str, use, units: bool = False, needs: tuple = (),
             background: bool = False):  # fmt: skip
    """A subscriber that applies the use case `use(event, uow)` in one unit of work of the
    service's `db`. A service's `on_event` lines are its routing table:

        class ConsultingService(Operable):
            assess_returnee = on_event(
                "accounts", "returnee.registered", use=handlers.assess_returnee
            )

    `units=True`: the use case gets the database itself (`use(event, db)`) and opens units of
    work as it needs (bounded batches, each its own transaction; the first records the inbox).
    `needs`: names of further dependencies of the service passed as keywords (`alarm=...`).

    Without `units`, the subscriber takes events in batches (`EVENT_BATCH_SIZE`): the use case
    runs once per event, every event of the batch in one transaction. What it does after the
    commit (waking a loop) it asks `uow.after_commit` for; nothing else may leave the process
    before the commit, since a batch that fails is applied again one event at a time.

    `background=True`: nobody waits on the effect at that moment (figures, eligibility, matches,
    invitations, the notices about them): a batch then waits up to `BACKGROUND_BATCH_LINGER_MS`
    (default 500 ms) for more events instead of `EVENT_BATCH_LINGER_MS` (2 ms). Under load its
    batches grow and cost less per event, leaving the cores to what a person is waiting for (a
    welcome, a sign-in link); a lone event is that much later."""

    def apply(self, event):
        extra = {name: getattr(self, name) for name in needs}
        if units:
            return use(event, self.db, **extra)
        if isinstance(event, Batch):
            return self.db.apply_batch(event, lambda one, uow: use(one, uow, **extra))
        with self.db.unit_of_work() as uow:
            return use(event, uow, **extra)

    apply.__name__ = apply.__qualname__ = use.__name__
    apply.__doc__ = use.__doc__
    return subscribe(producer, *event_types, batchable=not units, background=background)(apply)
