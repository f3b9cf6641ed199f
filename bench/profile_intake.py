"""Statements consulting and matching run per registration, counted at the cursor.

    python -m bench.profile_intake --registrations 100 --batch 20

The `returnee.registered` of each registration applied to fresh migrated and seeded consulting
and matching databases (the services' `seed.py`) by their handlers (`assess_returnee`,
`match_returnee`) as their subscribers apply them: in batches of `--batch` events, each batch
one transaction whose units of work share a `chassis.uow.BatchScope`
(`chassis.db.WorkerDatabase.apply_batch`), its inbox statement and its outbox rows included.
No broker, no relay: the round trips of the handling alone.
"""

import argparse
import functools
import uuid

from bench.statements import Statements, apply_in_batches
from chassis.pool import ConnectionPool
from contracts import CATALOG, Event
from contracts.examples import example
from services.consulting import handlers as consulting
from services.consulting import seed as consulting_seed
from services.consulting.store import ConsultingStore
from services.matching import handlers as matching
from services.matching import seed as matching_seed
from services.matching.configuration import load_settings
from services.matching.store import MatchingStore, Replica
from tests.support import Databases


def registered(returnee_id: str) -> Event:
    found = example("returnee.registered")
    data = {**found.data, "returnee_id": returnee_id, "email": f"{returnee_id[:8]}@example.com"}
    made = CATALOG.create("accounts", "returnee.registered", data, subject=returnee_id)
    return CATALOG.check(Event.from_json(made.to_json()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registrations", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()

    statements = Statements()
    events = [registered(str(uuid.uuid4())) for _ in range(args.registrations)]
    policy = load_settings().policy
    databases = Databases()
    pools = {name: ConnectionPool(databases.create(name), 2) for name in ("consulting", "matching")}
    try:
        consulting_seed.seed(pools["consulting"])
        matching_seed.seed(pools["matching"])
        with statements.counting():
            statements.label = "consulting"
            apply_in_batches(pools["consulting"], "consulting.assess_returnee", ConsultingStore,
                             consulting.assess_returnee, events, args.batch)  # fmt: skip
            statements.label = "matching"
            held = functools.partial(MatchingStore, replica=Replica())  # as a replica holds it
            apply_in_batches(
                pools["matching"],
                "matching.match_returnee",
                held,
                functools.partial(matching.match_returnee, policy=policy),
                events,
                args.batch,
            )
        with pools["matching"].cursor() as cursor:
            cursor.execute("SELECT count(*) AS n FROM matches")
            matches = cursor.fetchone()["n"]
    finally:
        for pool in pools.values():
            pool.clear()
        databases.drop_created()
        databases.drop_templates()
    per = statements.per(args.registrations)
    print(
        f"batches of {args.batch}, {args.registrations} registrations, {matches} matches:"
        + ", ".join(f" {name} {n:.1f}" for name, n in per.items())
        + " statements per registration"
    )


if __name__ == "__main__":
    main()
