"""What the statement-counting benchmarks (`bench.notify_intake`, `bench.profile_intake`)
share: the statements counted at the cursor under a label, and events applied in batches as
the subscribers apply them (`chassis.db.WorkerDatabase.apply_batch`: one transaction a batch,
its inbox records in one statement, its units of work sharing a `chassis.uow.BatchScope`).
"""

import collections
import contextlib

import psycopg2.extras

from chassis import uow as units
from chassis.uow import SqlUnitOfWork
from contracts import Event

STATEMENT_WIDTH = 80  # how much of a statement names it in `most_common`


class Statements:
    """Every `RealDictCursor.execute` while counting, counted under `label` (statements run
    under "setup" are left out of `counted`)."""

    def __init__(self):
        self.label = "setup"
        self._counted = collections.Counter()
        self._texts = collections.Counter()  # the statements counted, by their first words

    @contextlib.contextmanager
    def counting(self):
        execute = psycopg2.extras.RealDictCursor.execute

        def counted(cursor, query, *a, **k):
            self._counted[self.label] += 1
            if self.label != "setup":
                text = query.decode() if isinstance(query, bytes) else str(query)
                self._texts[" ".join(text.split())[:STATEMENT_WIDTH]] += 1
            return execute(cursor, query, *a, **k)

        psycopg2.extras.RealDictCursor.execute = counted
        try:
            yield self
        finally:
            psycopg2.extras.RealDictCursor.execute = execute

    def most_common(self, registrations: int, top: int) -> list[tuple[str, float]]:
        """The `top` statements run most often (their first words), per registration."""
        return [(text, n / registrations) for text, n in self._texts.most_common(top)]

    def per(self, registrations: int) -> dict[str, float]:
        """Statements per registration, by label."""
        return {label: n / registrations for label, n in self._counted.items() if label != "setup"}


def apply_in_batches(pool, handler: str, store, use, events: list[Event], size: int) -> None:
    """`use(event, uow)` over `events`, `size` of them a transaction, as `handler` (e.g.
    `notify.take_event`) takes them. On code from before `BatchScope` the units of work of a
    batch share only the transaction."""
    service = handler.split(".")[0]
    scoped = hasattr(units, "BatchScope")
    for start in range(0, len(events), size):
        batch = events[start : start + size]
        with pool.cursor() as cursor:
            SqlUnitOfWork.record_inbox_many(cursor, handler, batch)
            scope = units.BatchScope(batch) if scoped else None
            for event in batch:
                extra = {"batch": scope} if scoped else {}
                uow = SqlUnitOfWork(cursor, service, event, event.correlation_id, store=store,
                                    **extra)  # fmt: skip
                use(event, uow)
            if scope is not None:  # `finish` (the batch's end, then its outbox rows) or older
                getattr(scope, "finish", scope.flush)(cursor)
