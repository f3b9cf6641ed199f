"""Statements notify's intake runs per registration, counted at the cursor.

    python -m bench.notify_intake --registrations 100 --batch 20 [--overtaking]

The events a registration brings notify (`returnee.registered` and `account.link_issued` from
accounts, `eligibility.assessed` from consulting, `matches.proposed` from matching), applied to
a fresh migrated notify database by `handlers.take_event` as the subscribers apply them: in
batches of `--batch` events of one producer, each batch one transaction whose units of work
share a `chassis.uow.BatchScope` (`chassis.db.WorkerDatabase.apply_batch`; on code from before
the scope, the units of work share only the transaction). No broker, no delivery: the intake's
round trips alone, the inbox statement of each batch included. `--overtaking` applies
consulting's and matching's events before accounts' (as at saturation, where notify's accounts
subscriber lags the others): they wait for their registration, which releases them.
"""

import argparse
import uuid

from bench.statements import Statements, apply_in_batches
from chassis.pool import ConnectionPool
from chassis.uow import SqlUnitOfWork
from contracts import CATALOG, Event
from contracts.examples import example
from services.notify import handlers
from services.notify.seed import TOPICS
from services.notify.settings import DECLARED, NotifySettings
from services.notify.store import NotifyStore
from tests.support import Databases

SETTINGS = NotifySettings.load(dict(DECLARED))


def received(type_: str, **changes) -> Event:
    found = example(type_)
    producer = CATALOG.get(type_).producer
    made = CATALOG.create(producer, type_, {**found.data, **changes}, subject=found.subject)
    return CATALOG.check(Event.from_json(made.to_json()))


def registrations(count: int) -> dict[str, list[Event]]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    return {
        "accounts": [
            event
            for r in ids
            for event in (
                received("returnee.registered", returnee_id=r, email=f"{r[:8]}@example.com"),
                received("account.link_issued", account_id=r, email=f"{r[:8]}@example.com"),
            )
        ],
        "consulting": [received("eligibility.assessed", returnee_id=r) for r in ids],
        "matching": [received("matches.proposed", returnee_id=r) for r in ids],
    }


def take(event: Event, uow) -> None:
    handlers.take_event(event, uow, SETTINGS, wake_delivery=lambda: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registrations", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--overtaking", action="store_true", help="accounts' events last")
    parser.add_argument("--top", type=int, default=0, help="the statements run most often")
    args = parser.parse_args()

    statements = Statements()
    databases = Databases()
    pool = ConnectionPool(databases.create("notify"), 2)
    try:
        with pool.cursor() as cursor:  # the topics, and the names the messages give
            NotifyStore(SqlUnitOfWork(cursor, "notify")).keep_topics(TOPICS)
            for type_ in ("policy.published", "resource.published", "organization.registered"):
                event = received(type_)
                uow = SqlUnitOfWork(cursor, "notify", event, store=NotifyStore)
                handlers.EVENT_HANDLERS[type_](event, uow, SETTINGS)
        with statements.counting():
            producers = registrations(args.registrations)
            if args.overtaking:
                producers = {
                    name: producers[name] for name in ("consulting", "matching", "accounts")
                }
            for name, events in producers.items():
                statements.label = name
                apply_in_batches(pool, "notify.take_event", NotifyStore, take, events, args.batch)
        with pool.cursor() as cursor:
            cursor.execute("SELECT count(*) AS n FROM notifications")
            stored = cursor.fetchone()["n"]
    finally:
        pool.clear()
        databases.drop_created()
        databases.drop_templates()
    per = statements.per(args.registrations)
    print(
        f"batches of {args.batch}{', overtaking' if args.overtaking else ''},"
        f" {args.registrations} registrations, {stored} notifications:"
        f" {sum(per.values()):.1f} statements per registration ("
        + ", ".join(f"{name} {n:.1f}" for name, n in per.items())
        + ")"
    )
    for text, n in statements.most_common(args.registrations, args.top):
        print(f"  {n:5.2f}  {text}")


if __name__ == "__main__":
    main()
