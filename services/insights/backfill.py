"""Count what happened before insights was deployed: replay the events each producer still
retains in its outbox through insights' own event use cases.

    python -m services.insights.backfill [producers...] [--retention-hours HOURS]

Run it once insights is deployed (its queues exist, so nothing published from then on is
missed) with read access to each producer's database (`<PRODUCER>_DATABASE_URL`, as the
producer reads it) and to insights' (`INSIGHTS_DATABASE_URL`). It reads only the outbox of each
producer: the events exactly as they were published, the contract a district system reads, and
none of the producer's own tables. Each event is applied once per use case, as the subscriber
applies it (the inbox skips what insights counted live already), oldest first. Afterwards
insights counts the producer from the start of the window the outbox retains: every event
published since `now - OUTBOX_RETENTION_HOURS` is still there (the producer's setting, read as
the producer reads it, unless `--retention-hours` says otherwise). What happened earlier
stays uncounted, and the figures say so (`counted_from`, `complete`). Running it again changes
nothing.
"""

import argparse
import json
import sys
from contextlib import contextmanager
from datetime import timedelta

from chassis.clock import Clock
from chassis.operable import CHASSIS_HANDLERS
from chassis.pool import script_pool
from chassis.settings import SettingError, nameko_config
from chassis.topology import subscriptions_of
from chassis.uow import SqlUnitOfWork
from contracts import CATALOG, Event, InvalidEvent
from services.insights import handlers
from services.insights.service import SOURCES, InsightsService
from services.insights.store import InsightsStore

BATCH = 500


class ReplayDatabase:
    """Units of work on insights' database that record the inbox of the event they apply, as a
    subscriber's do (the interface of `MemoryDatabase.unit_of_work`)."""

    def __init__(self, pool, clock: Clock | None = None):
        self.pool = pool
        self.clock = clock or Clock()

    @contextmanager
    def unit_of_work(self, cause: Event | None = None, handler: str | None = None):
        with self.pool.cursor() as cursor:
            uow = SqlUnitOfWork(cursor, "insights", cause, clock=self.clock, store=InsightsStore)
            if cause is not None and handler is not None:
                uow.record_inbox(handler)
            yield uow


def routes(source: str) -> dict:
    """Event type → the use cases insights' routing table applies to it, for one producer."""
    found: dict = {}
    for subscription in subscriptions_of(InsightsService):
        # the chassis' own subscribers (chassis.operable.Operable) keep no figures
        if subscription.producer == source and subscription.handler not in CHASSIS_HANDLERS:
            for event_type in subscription.event_types:
                found.setdefault(event_type, []).append(getattr(handlers, subscription.handler))
    return found


def retained_events(pool, skipped: list):
    """The producer's published events still in its outbox, oldest first; an event the
    contract refuses is skipped and noted in `skipped`."""
    after = 0
    while True:
        with pool.cursor() as cursor:
            cursor.execute(
                "SELECT position, body FROM outbox WHERE published_at IS NOT NULL"
                " AND position > %s ORDER BY position LIMIT %s",
                (after, BATCH),
            )
            rows = cursor.fetchall()
        for row in rows:
            try:
                yield CATALOG.check(Event.from_json(bytes(row["body"])))
            except InvalidEvent as exc:
                skipped.append(f"outbox position {row['position']}: {exc}")
        if len(rows) < BATCH:
            return
        after = rows[-1]["position"]


def retention_of(sources: list[str], retention_hours: float | None) -> dict[str, float]:
    """Producer → the hours its outbox retains (as the producer reads it), insights' settings
    and every producer's read first: a wrong one is a `SettingError` before any database is
    touched."""
    nameko_config("insights")
    hours = {source: nameko_config(source)["OUTBOX_RETENTION_HOURS"] for source in sources}
    return hours if retention_hours is None else dict.fromkeys(sources, retention_hours)


def backfill(sources: list[str], retention_hours: float | None = None,
             clock: Clock | None = None) -> list[dict]:  # fmt: skip
    clock = clock or Clock()
    retained = retention_of(sources, retention_hours)  # every setting before a database
    reports = []
    with script_pool("insights") as insights:
        database = ReplayDatabase(insights, clock)
        for source in sources:
            # as its outbox is read: it prunes past the window meanwhile
            window = clock.now() - timedelta(hours=retained[source])
            skipped: list[str] = []
            with script_pool(source) as outbox:
                report = handlers.backfill(
                    source, retained_events(outbox, skipped), routes(source), database, window
                )
            reports.append({**report, "skipped": skipped})
    return reports


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.insights.backfill",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("producers", nargs="*", help=f"of {', '.join(SOURCES)} (default: all)")
    parser.add_argument("--retention-hours", type=float, default=None)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.producers) - set(SOURCES))
    if unknown:
        parser.error(f"insights counts no events of {unknown}; choose from {SOURCES}")
    try:
        reports = backfill(args.producers or SOURCES, args.retention_hours)
    except SettingError as exc:
        print(f"nothing counted: {exc}", file=sys.stderr)
        return 1
    for report in reports:
        print(json.dumps(report, default=str, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
