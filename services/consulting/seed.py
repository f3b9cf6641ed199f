"""Reference data of consulting: the policy catalog from `policies/*.yaml`.

    python -m services.consulting.seed

Idempotent: a policy is written only when its file's version is newer than the stored one, and
then `policy.published` goes into the outbox in the same transaction, so the running service
re-assesses every returnee against the new rules (the relay publishes it once the service runs).
"""

import sys

from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool, script_pool
from services.consulting import handlers
from services.consulting.catalog import load_policies
from services.consulting.store import ConsultingStore


def seed(pool: ConnectionPool) -> list[str]:
    """Write the catalog; returns the codes inserted or updated."""
    with ScriptDatabase(pool, "consulting", store=ConsultingStore).unit_of_work() as uow:
        return handlers.seed_catalog(load_policies(), uow)


def main() -> int:
    with script_pool("consulting") as pool:
        changed = seed(pool)
    print(
        f"consulting: {len(changed)} policies seeded"
        + (f" ({', '.join(changed)})" if changed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
