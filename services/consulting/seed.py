"""Reference data of consulting: the policy catalog from `policies/*.yaml`.

    python -m services.consulting.seed

Idempotent: a policy is written only when its file's version is newer than the stored one, and
then `policy.published` goes into the outbox in the same transaction, so the running service
re-assesses every returnee against the new rules (the relay publishes it once the service runs).
"""

import sys

from chassis.pool import ConnectionPool, script_pool
from chassis.uow import SqlUnitOfWork
from services.consulting import store
from services.consulting.catalog import load_policies


def seed(pool: ConnectionPool) -> list[str]:
    """Write the catalog; returns the codes inserted or updated."""
    changed = []
    with pool.cursor() as cursor:
        tx = SqlUnitOfWork(cursor, "consulting", None, None)
        for policy in load_policies():
            if store.upsert_policy(tx, policy):
                changed.append(policy["code"])
                tx.publish(
                    "policy.published",
                    {
                        "policy_id": policy["id"],
                        "code": policy["code"],
                        "title": policy["title"],
                        "effective_from": policy["effective_from"],
                        "effective_to": policy["effective_to"],
                    },
                    subject=policy["id"],
                )
    return changed


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
