"""Reference data of activities: the station's organizations and the activities of
`deploy/reference/activities.yml` (the founding exchange session and a site visit).

    python -m services.activities.seed

Idempotent: an activity with the reference id is left as it is; a new one is published with
`activity.published` in the outbox of the same transaction, so the running service invites its
audience (the relay publishes it once the service runs).
"""

import sys
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path

import yaml

from chassis.clock import SHANGHAI, Clock
from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool, script_pool
from services.activities import handlers
from services.activities.store import ActivitiesStore

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference"
_NAMESPACE = uuid.UUID("5b0f4c52-6a7e-4d0e-9a51-0d3c2f6f1a10")  # as contracts/examples.py


def activity_id(slug: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"activity:{slug}"))


def organizations() -> list[dict]:
    listed = yaml.safe_load((REFERENCE / "organizations.yml").read_text())["organizations"]
    return [{k: o[k] for k in ("id", "slug", "name", "kind")} for o in listed]


def planned(today: date) -> list[dict]:
    """The reference activities as stored, scheduled from `today` (a Shanghai day)."""
    by_slug = {o["slug"]: o["id"] for o in organizations()}
    found = []
    for a in yaml.safe_load((REFERENCE / "activities.yml").read_text())["activities"]:
        day = today + timedelta(days=a["days_ahead"])
        found.append(
            {
                "id": activity_id(a["slug"]),
                "kind": a["kind"],
                "title": a["title"],
                "summary": a["summary"],
                "starts_at": _at(day, a["starts"]),
                "ends_at": _at(day, a["ends"]),
                "venue": a["venue"],
                "capacity": a["capacity"],
                "organizer_ids": [by_slug[slug] for slug in a["organizers"]],
                "audience": {
                    key: sorted(a["audience"].get(key, []))
                    for key in ("industries", "stages", "needs")
                },
                "registration_closes_at": None,
            }
        )
    return found


def _at(day: date, clock_time: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock_time), tzinfo=SHANGHAI)


def seed(pool: ConnectionPool, clock: Clock | None = None) -> list[str]:
    """Write the reference data; returns the ids of the activities published."""
    database = ScriptDatabase(pool, "activities", store=ActivitiesStore, clock=clock)
    with database.unit_of_work() as uow:
        return handlers.seed_reference(organizations(), planned(uow.today()), uow)


def main() -> int:
    with script_pool("activities") as pool:
        published = seed(pool)
    print(f"activities: {len(published)} reference activities published")
    return 0


if __name__ == "__main__":
    sys.exit(main())
