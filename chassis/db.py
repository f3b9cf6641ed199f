"""A service's database as a nameko dependency: the connection pool, the unit of work over it,
the inbox of the event a worker handles, and the outbox relay that publishes what committed.

    class ConsultingService(Operable):
        db = Database(store=ConsultingStore)

        @subscribe("accounts", "returnee.registered")
        def assess_returnee(self, event):
            with self.db.unit_of_work() as uow:     # records (handler, event id) in the inbox
                handlers.assess_returnee(event, uow)

The rows and the outbox entries of the events commit together; right after the commit the relay
is woken to publish them. Inside an event handler the first unit of work also records
`(handler, event id)` in the inbox: if the event was handled before, entering it raises
`AlreadyHandled` and the handler's effect is not applied twice.

This module joins persistence (`chassis.pool`, `chassis.uow`) and messaging (`chassis.outbox`,
`chassis.topology`); neither of those knows of the other.
"""

import functools
import logging
import sys
from contextlib import contextmanager

import eventlet.event
from nameko.extensions import DependencyProvider

from chassis.broker import BrokerUnavailable
from chassis.clock import Clock, clock_from_config
from chassis.intake import DUPLICATE, Batch
from chassis.outbox import OutboxRelay
from chassis.pool import ConnectionPool
from chassis.topology import declare_service
from chassis.uow import AlreadyHandled, BatchScope, SqlUnitOfWork
from contracts import Event

log = logging.getLogger(__name__)


class ScriptDatabase:
    """Units of work outside a worker (seeds, start-up jobs, scripts): the same outbox, published
    by the service's relay on its next sweep."""

    def __init__(self, pool: ConnectionPool, service: str, store=None, clock: Clock | None = None):
        self.pool = pool
        self.service = service
        self.store = store
        self.clock = clock or Clock()

    @contextmanager
    def unit_of_work(self, batched: bool = False):
        """`batched`: one unit of work standing for several (the outcomes of several sends):
        its outbox rows written in one statement before the commit (`chassis.uow.BatchScope`)."""
        scope = BatchScope([]) if batched else None
        with self.pool.cursor() as cursor:
            uow = SqlUnitOfWork(cursor, self.service, clock=self.clock, store=self.store,
                                batch=scope)  # fmt: skip
            yield uow
            if scope is not None:
                scope.finish(cursor)


class WorkerDatabase:
    """What a worker sees as `self.db`."""

    def __init__(self, provider: "Database", worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._inbox_recorded = False

    @property
    def pool(self) -> ConnectionPool:
        return self._provider.pool

    @property
    def clock(self) -> Clock:
        return self._provider.clock

    def ping(self) -> None:
        self._provider.pool.ping()

    def ping_broker(self) -> None:
        self._provider.relay.ping()

    @property
    def holds(self) -> bool:
        """Whether the replica holds data in memory (`Database(replica=...)`) built at start."""
        return self._provider.builds_held

    def ping_held(self) -> None:
        """Raises while what the replica holds is being built at start: a replica is ready once
        a request or an event no longer waits on the build."""
        if not self._provider.held_built.ready():
            raise RuntimeError("what the replica holds in memory is still being built")

    def backlog(self) -> dict:
        return self._provider.relay.backlog()

    @contextmanager
    def unit_of_work(self, batched: bool = False):
        """The worker's unit of work (in an event handler, recording the event in the inbox);
        `batched` as `ScriptDatabase.unit_of_work`'s."""
        scope = BatchScope([]) if batched else None
        cause = self._provider.event_of(self._worker_ctx)
        correlation_id = self._worker_ctx.data.get("correlation_id") or (
            cause.correlation_id if cause else None
        )
        with self.pool.cursor() as cursor:
            uow = SqlUnitOfWork(
                cursor,
                self._provider.service_name,
                cause,
                correlation_id,
                clock=self._provider.clock,
                store=self._provider.store_factory,
                batch=scope,
            )
            if cause is not None and not self._inbox_recorded:
                uow.record_inbox(self._provider.handler_of(self._worker_ctx))
            yield uow
            if scope is not None:
                scope.finish(cursor)
        self._inbox_recorded = cause is not None
        self._committed([uow])

    def _committed(self, units) -> None:
        if any(uow.published or uow.relayed for uow in units):
            self._provider.relay.wake()
        for uow in units:
            for callback in uow.committed:
                callback()

    def apply_batch(self, batch: Batch, use) -> None:
        """Apply `use(event, uow)` to every event of `batch` in one transaction: the outbox
        rows of all of them in one statement (`chassis.uow.BatchScope`, which the units of work
        share), then their inbox records and the commit in one round trip, a statement that
        fails if one of them was recorded before, and nothing of the batch stays. A batch with
        a delivery the broker marks redelivered (its consumer went away before the ack, maybe
        after the commit) records the inbox first instead, and passes over the events handled
        before. If any event fails, the transaction is rolled back and each event applied again
        in its own, inbox first, so only the failing ones fail (`Delivery.exc_info`) and those
        handled before are duplicates; the subscriber settles each with the broker after this
        returns."""
        provider = self._provider
        handler = provider.handler_of(self._worker_ctx)
        inbox_first = batch.redelivered
        units = []
        try:
            with self.pool.cursor() as cursor:
                if inbox_first:
                    fresh = SqlUnitOfWork.record_inbox_many(cursor, handler, batch.events)
                else:
                    fresh = {event.id for event in batch.events}
                events = _fresh_events(batch, fresh)
                scope = BatchScope(events)
                for delivery in batch.deliveries:
                    if delivery.event.id not in fresh:
                        delivery.result = DUPLICATE
                        continue
                    fresh.discard(delivery.event.id)  # the same event twice in one batch
                    batch.current = delivery
                    uow = SqlUnitOfWork(
                        cursor,
                        provider.service_name,
                        delivery.event,
                        delivery.event.correlation_id,
                        clock=provider.clock,
                        store=provider.store_factory,
                        batch=scope,
                    )
                    delivery.result = use(delivery.event, uow)
                    units.append(uow)
                scope.finish(cursor)
                if not inbox_first and events:
                    SqlUnitOfWork.record_inbox_and_commit(cursor, handler, events)
        except Exception as exc:
            if len(batch) > 1:
                log.info("a batch of %d failed (%r): applying each alone", len(batch), exc)
            self._apply_one_by_one(batch, use)
        else:
            self._committed(units)
        finally:
            batch.current = None

    def _apply_one_by_one(self, batch: Batch, use) -> None:
        for delivery in batch.deliveries:
            batch.current = delivery
            self._inbox_recorded = False
            delivery.result = None
            try:
                with self.unit_of_work() as uow:
                    delivery.result = use(delivery.event, uow)
            except AlreadyHandled:
                delivery.result = DUPLICATE
            except Exception:
                delivery.exc_info = sys.exc_info()


def _fresh_events(batch: Batch, fresh: set[str]) -> list[Event]:
    """The events of the batch not handled before, each once, in the order they came."""
    seen, events = set(), []
    for event in batch.events:
        if event.id in fresh and event.id not in seen:
            seen.add(event.id)
            events.append(event)
    return events


class Database(DependencyProvider):
    """The service's database: a pool, the unit of work, and the outbox relay that drains it.
    `store`: the service's store class, built on each unit of work (`uow.store`).
    `replica`: a class of what the replica keeps in memory between units of work (matching's
    catalog); one is made per replica at setup and handed to every store as `replica=`. If it
    has `start(uow)`, that runs once the service starts, in a unit of work of its own (to build
    what it holds before the first request needs it)."""

    def __init__(self, store=None, replica=None, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.replica = replica

    def setup(self):
        config = self.container.config
        self.service_name = self.container.service_name
        self.held = self.replica() if self.replica is not None else None
        self.builds_held = hasattr(self.held, "start")  # built at start (`_start_held`)
        self.held_built = eventlet.event.Event()
        self.store_factory = (
            functools.partial(self.store, replica=self.held)
            if self.held is not None
            else self.store
        )
        self.clock = clock_from_config(config)
        self.pool = ConnectionPool(config["DATABASE_URL"], config["DB_POOL_SIZE"])
        self.relay = OutboxRelay(
            self.pool,
            config["AMQP_URI"],
            producer=self.service_name,
            sweep_seconds=config["OUTBOX_SWEEP_SECONDS"],
            batch_size=config["OUTBOX_BATCH_SIZE"],
            outbox_retention_hours=config["OUTBOX_RETENTION_HOURS"],
            inbox_retention_hours=config["INBOX_RETENTION_HOURS"],
            declare=lambda channel: declare_service(channel, self.container.service_cls, config),
        )
        # The relay's first connection declares the service's whole topology. Made here, before
        # any consumer starts, it stops the start on a queue the broker holds with other
        # arguments (`QueueMismatch`, saying what to do); an unreachable broker does not stop
        # it: the topology is declared when the relay reconnects.
        try:
            self.relay.ping()
        except BrokerUnavailable as exc:
            log.warning("broker unavailable at start, queues are declared on reconnect: %s", exc)

    def start(self):
        self.relay.start(self.container.spawn_managed_thread)
        if self.builds_held:
            self.container.spawn_managed_thread(self._start_held)
        else:
            self.held_built.send(True)

    def _start_held(self):
        try:
            with self.pool.cursor() as cursor:
                uow = SqlUnitOfWork(cursor, self.service_name, clock=self.clock)
                self.held.start(uow)
        except Exception as exc:  # the first unit of work that needs it builds it then
            log.warning("%s: what the replica holds is built on first use: %s", self, exc)
        finally:  # built, or left to the first unit of work: nothing waits on the start now
            self.held_built.send(True)

    def stop(self):
        self.relay.stop()
        self.pool.clear()

    def kill(self):
        self.relay.stop()
        self.pool.clear()

    def get_dependency(self, worker_ctx):
        return WorkerDatabase(self, worker_ctx)

    @staticmethod
    def event_of(worker_ctx) -> Event | None:
        """The event a subscriber worker handles (of a batch, the one being applied); None for
        HTTP, timers and others."""
        if getattr(worker_ctx.entrypoint, "handles_events", False):
            cause = worker_ctx.args[0]
            if isinstance(cause, Batch):
                return cause.current.event if cause.current is not None else None
            return cause
        return None

    def handler_of(self, worker_ctx) -> str:
        return f"{self.service_name}.{worker_ctx.entrypoint.method_name}"
