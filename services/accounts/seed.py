"""The station's partner organizations, from `deploy/reference/organizations.yml`, and in
development only (`PLATFORM_ENV=development`) a demo provider account per organization and the
demo advisors, all with the file's one published password; idempotent (existing ids and emails
are skipped). In production the admin invites the real staff (`POST /staff`).

    python -m services.accounts.seed
"""

import sys
from pathlib import Path

import yaml

from chassis.db import ScriptDatabase
from chassis.errors import Conflict
from chassis.pool import ConnectionPool, script_pool
from chassis.settings import development
from services.accounts import handlers
from services.accounts.credentials import hash_password
from services.accounts.store import AccountsStore

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference" / "organizations.yml"


def reference() -> dict:
    return yaml.safe_load(REFERENCE.read_text())


def seed(pool: ConnectionPool, data: dict | None = None, demo_staff: bool | None = None
         ) -> dict[str, int]:  # fmt: skip
    """`demo_staff`: whether to create the demo staff accounts (by default: in development)."""
    data = data or reference()
    demo_staff = development() if demo_staff is None else demo_staff
    unit = ScriptDatabase(pool, "accounts", store=AccountsStore)
    created = {"organizations": 0, "staff": 0}
    for organization in data["organizations"]:
        with unit.unit_of_work() as uow:
            if uow.store.organization(organization["id"]) is None:
                fields = {k: organization.get(k) for k in ("name", "kind", "district")}
                fields["contact_email"] = organization.get("contact_email")
                handlers.register_organization(fields, uow, organization_id=organization["id"])
                created["organizations"] += 1
    if not demo_staff:
        return created
    staff = [
        {**o["provider"], "role": "provider", "organization_id": o["id"], "locale": "zh-CN"}
        for o in data["organizations"]
        if o.get("provider")
    ] + [{**a, "role": "advisor"} for a in data["advisors"]]
    password_hash = hash_password(data["demo_password"])  # one demo password for all
    for member in staff:
        try:
            with unit.unit_of_work() as uow:
                handlers.register_staff(member, uow, password_hash=password_hash)
            created["staff"] += 1
        except Conflict:  # the email has an account already
            pass
    return created


def main() -> int:
    with script_pool("accounts") as pool:
        created = seed(pool)
    print(f"accounts: {created['organizations']} organizations and {created['staff']} staff seeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
