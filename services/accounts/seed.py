"""The station's partner organizations, a provider account per organization and the advisors,
from `deploy/reference/organizations.yml`; idempotent (existing ids and emails are skipped).

    python -m services.accounts.seed
"""

import sys
from pathlib import Path

import yaml

from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool, script_pool
from services.accounts import store
from services.accounts.credentials import hash_password
from services.accounts.service import register_staff

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference" / "organizations.yml"


def reference() -> dict:
    return yaml.safe_load(REFERENCE.read_text())


def seed(pool: ConnectionPool, data: dict | None = None) -> dict[str, int]:
    data = data or reference()
    unit = ScriptDatabase(pool, "accounts")
    password_hash = hash_password(data["demo_password"])
    created = {"organizations": 0, "staff": 0}
    for organization in data["organizations"]:
        with unit.transaction() as tx:
            if store.organization(tx, organization["id"]) is None:
                fields = {k: organization.get(k) for k in ("name", "kind", "district")}
                fields["contact_email"] = organization.get("contact_email")
                store.create_organization(tx, organization["id"], fields)
                tx.publish(
                    "organization.registered",
                    {"organization_id": organization["id"], **fields},
                    subject=organization["id"],
                )
                created["organizations"] += 1
    staff = [
        {**o["provider"], "role": "provider", "organization_id": o["id"], "locale": "zh-CN"}
        for o in data["organizations"]
        if o.get("provider")
    ] + [{**a, "role": "advisor"} for a in data["advisors"]]
    for member in staff:
        with unit.transaction() as tx:
            exists = store.account_exists(tx, member["email"])
        if not exists:
            register_staff(unit, member, password_hash)
            created["staff"] += 1
    return created


def main() -> int:
    with script_pool("accounts") as pool:
        created = seed(pool)
    print(f"accounts: {created['organizations']} organizations and {created['staff']} staff seeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
