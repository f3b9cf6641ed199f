"""Deliveries a subscriber takes together: up to `EVENT_BATCH_SIZE` events applied in one
transaction (`chassis.db.WorkerDatabase.apply_batch`), each settled with the broker on its own
once that transaction committed (`chassis.events.Subscriber`).

Messaging only: nothing here knows of the database.
"""

from dataclasses import dataclass, field

from contracts import Event

DUPLICATE = object()  # what a handler returns for an event it handled before


@dataclass
class Delivery:
    """One event of a batch, the broker's message it came in, and what applying it gave."""

    event: Event
    message: object
    result: object = None
    exc_info: tuple | None = None  # set when the event failed on its own (retried alone)


@dataclass
class Batch:
    """What one worker of a batching subscriber applies: the deliveries in the order they came.
    `current` is the delivery being applied (the cause of the worker's unit of work)."""

    deliveries: list[Delivery]
    current: Delivery | None = field(default=None)

    @property
    def events(self) -> list[Event]:
        return [d.event for d in self.deliveries]

    @property
    def redelivered(self) -> bool:
        """Whether the broker delivered one of these before, to a consumer that went away
        before its ack (perhaps after its commit)."""
        return any(d.message.delivery_info.get("redelivered") for d in self.deliveries)

    def __len__(self) -> int:
        return len(self.deliveries)
