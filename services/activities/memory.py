"""The activities store in memory: `store.ActivitiesStore`'s methods over dicts, for handler unit
tests (`chassis.uow.MemoryDatabase`). Same answers as the SQL: the same row keys, `ORDER BY`
orders, unique constraints answering False, ids as strings, JSON columns read back as JSON.

Locks (`lock=True`, `FOR UPDATE`) have nothing to guard here: a memory unit of work is alone.
"""

import copy
import itertools
import json
import uuid
from datetime import datetime

from services.activities.audience import invited
from services.activities.store import to_json

_ACTIVITY_KEYS = (
    "id", "kind", "title", "summary", "starts_at", "ends_at", "venue", "capacity", "confirmed",
    "organizer_ids", "audience", "registration_closes_at", "status", "published_by",
    "published_at", "cancelled_at", "closed_at", "closing_summary",
)  # fmt: skip
_REGISTRATION_KEYS = (
    "id", "activity_id", "position", "registrant_role", "person_id", "organization_id", "status",
    "check_in_code", "registered_at", "confirmed_at", "checked_in_at", "cancelled_at",
    "cancelled_by",
)  # fmt: skip


def _id(value) -> str | None:
    """An id as a uuid column gives it back (and refuses what it would refuse)."""
    return None if value is None else str(uuid.UUID(str(value)))


def _json(value):
    return json.loads(to_json(value))


class MemoryStore:
    def __init__(self):
        self.organizations: dict[str, dict] = {}
        self.providers: dict[str, dict] = {}
        self.returnees: dict[str, dict] = {}
        self.erasures: dict[str, datetime] = {}
        self.activities_by_id: dict[str, dict] = {}
        self.registrations_by_id: dict[str, dict] = {}
        self.invitations: dict[tuple[str, str], datetime] = {}
        self.agreements_by_id: dict[str, dict] = {}  # in the order recorded
        self.intentions_by_id: dict[str, dict] = {}
        self._positions = itertools.count(1)  # the bigserial of registrations

    # ------------------------------------------------------------ organizations, providers

    def save_organization(self, organization_id, name: str, kind: str) -> None:
        key = _id(organization_id)
        self.organizations[key] = {"id": key, "name": name, "kind": kind}

    def organization_names(self, organization_ids) -> dict[str, str]:
        wanted = {_id(o) for o in organization_ids}
        return {k: o["name"] for k, o in self.organizations.items() if k in wanted}

    def save_provider(self, staff_id, name: str, organization_id) -> None:
        key = _id(staff_id)
        self.providers[key] = {"id": key, "name": name, "organization_id": _id(organization_id)}

    # ------------------------------------------------------------ returnees

    def is_erased(self, returnee_id) -> bool:
        return _id(returnee_id) in self.erasures

    def save_returnee(self, returnee_id, profile: dict, profile_time: datetime) -> dict | None:
        key = _id(returnee_id)
        stored = self.returnees.get(key)
        if key in self.erasures or (stored is not None and stored["profile_time"] > profile_time):
            return None
        consent, consent_at = profile["notifications_consent"], profile_time
        if stored is not None and stored["consent_at"] > profile_time:
            consent, consent_at = stored["notifications_consent"], stored["consent_at"]
        self.returnees[key] = {
            "id": key,
            "name": profile["name"],
            "industry": profile["industry"],
            "startup_stage": profile["startup_stage"],
            "needs": list(profile["needs"]),
            "notifications_consent": consent,
            "consent_at": consent_at,
            "profile_time": profile_time,
        }
        return self.returnee(key)

    def save_consent(self, returnee_id, granted: bool, at: datetime) -> None:
        stored = self.returnees.get(_id(returnee_id))
        if stored is not None and stored["consent_at"] <= at:
            stored.update(notifications_consent=granted, consent_at=at)

    def returnee(self, returnee_id) -> dict | None:
        stored = self.returnees.get(_id(returnee_id))
        if stored is None:
            return None
        keys = ("id", "name", "industry", "startup_stage", "needs", "notifications_consent")
        return copy.deepcopy({k: stored[k] for k in keys})

    def known_returnees(self, returnee_ids) -> set[str]:
        return {_id(r) for r in returnee_ids} & set(self.returnees)

    def audience_batch(self, audience: dict, after, limit: int) -> list[str]:
        after = _id(after)
        found = sorted(
            k
            for k, r in self.returnees.items()
            if (after is None or k > after) and invited(audience, r)
        )
        return found[:limit]

    def agreements_signed_by(self, returnee_id) -> list[str]:
        key = _id(returnee_id)
        return sorted(
            a["id"]
            for a in self.agreements_by_id.values()
            if any(p["returnee_id"] == key for p in a["parties"])
        )

    def erase_returnee(self, returnee_id, now: datetime) -> None:
        key = _id(returnee_id)
        self.erasures.setdefault(key, now)
        for r in self.registrations_by_id.values():
            if r["registrant_role"] == "returnee" and r["person_id"] == key:
                r.update(person_id=None, check_in_code=None)
        for agreement in self.agreements_by_id.values():
            for party in agreement["parties"]:
                if party["returnee_id"] == key:
                    party["returnee_id"] = None
        self.invitations = {k: v for k, v in self.invitations.items() if k[1] != key}
        self.returnees.pop(key, None)

    # ------------------------------------------------------------ activities

    def insert_activity(self, a: dict) -> None:
        key = _id(a["id"])
        if key in self.activities_by_id:
            raise KeyError(f"activity {key} exists")  # the primary key's violation
        self.activities_by_id[key] = {
            **{k: a[k] for k in ("kind", "starts_at", "ends_at", "capacity")},
            "id": key,
            "title": _json(a["title"]),
            "summary": _json(a["summary"]),
            "venue": _json(a["venue"]),
            "audience": _json(a["audience"]),
            "organizer_ids": [_id(o) for o in a["organizer_ids"]],
            "registration_closes_at": a["registration_closes_at"],
            "published_by": _id(a["published_by"]),
            "published_at": a["published_at"],
            "confirmed": 0,
            "status": "published",
            "cancelled_at": None,
            "closed_at": None,
            "closing_summary": None,
        }

    def _activity(self, row: dict) -> dict:
        return copy.deepcopy({k: row[k] for k in _ACTIVITY_KEYS})

    def activity(self, activity_id, lock: bool = False) -> dict | None:
        found = self.activities_by_id.get(_id(activity_id))
        return None if found is None else self._activity(found)

    def activities(self, ending_after: datetime, starting_before: datetime | None, kind=None,
                   after: tuple | None = None, limit: int = 50) -> list[dict]:  # fmt: skip
        rows = [
            a
            for a in self.activities_by_id.values()
            if a["ends_at"] >= ending_after
            and (starting_before is None or a["starts_at"] <= starting_before)
            and (kind is None or a["kind"] == kind)
            and (after is None or (a["starts_at"], a["id"]) > (after[0], _id(after[1])))
        ]
        rows.sort(key=lambda a: (a["starts_at"], a["id"]))
        return [self._activity(a) for a in rows[:limit]]

    def open_activities(self, now: datetime) -> list[dict]:
        rows = [
            a
            for a in self.activities_by_id.values()
            if a["status"] == "published"
            and a["starts_at"] > now
            and (a["registration_closes_at"] is None or a["registration_closes_at"] > now)
        ]
        rows.sort(key=lambda a: (a["starts_at"], a["id"]))
        return [self._activity(a) for a in rows]

    def _seats(self, activity_id, delta: int) -> None:
        found = self.activities_by_id.get(_id(activity_id))
        if found is None:
            return
        if not 0 <= found["confirmed"] + delta <= found["capacity"]:
            raise ValueError("confirmed seats out of 0..capacity")  # the CHECK's violation
        found["confirmed"] += delta

    def take_seat(self, activity_id) -> None:
        self._seats(activity_id, 1)

    def free_seat(self, activity_id) -> None:
        self._seats(activity_id, -1)

    def cancel_activity(self, activity_id, now: datetime) -> None:
        found = self.activities_by_id.get(_id(activity_id))
        if found is not None:
            found.update(status="cancelled", cancelled_at=now)

    def close_activity(self, activity_id, now: datetime, summary: str | None) -> None:
        found = self.activities_by_id.get(_id(activity_id))
        if found is not None:
            found.update(status="closed", closed_at=now, closing_summary=summary)

    # ------------------------------------------------------------ invitations

    def invite(self, activity_id, returnee_ids: list[str], now: datetime) -> list[str]:
        activity_id, new = _id(activity_id), []
        if activity_id not in self.activities_by_id:
            raise KeyError(f"no activity {activity_id}")  # the foreign key's violation
        for r in map(_id, returnee_ids):
            if (activity_id, r) not in self.invitations:
                self.invitations[(activity_id, r)] = now
                new.append(r)
        return sorted(new)

    # ------------------------------------------------------------ registrations

    def insert_registration(self, r: dict) -> bool:
        activity_id, person = _id(r["activity_id"]), _id(r["person_id"])
        if activity_id not in self.activities_by_id:
            raise KeyError(f"no activity {activity_id}")
        for other in self.registrations_by_id.values():
            if other["activity_id"] != activity_id:
                continue
            if (
                other["status"] != "cancelled"
                and person is not None
                and other["person_id"] == person
            ):
                return False
            if r["check_in_code"] is not None and other["check_in_code"] == r["check_in_code"]:
                return False
        key = _id(r["id"])
        self.registrations_by_id[key] = {
            "id": key,
            "activity_id": activity_id,
            "position": next(self._positions),
            "registrant_role": r["registrant_role"],
            "person_id": person,
            "organization_id": _id(r["organization_id"]),
            "status": r["status"],
            "check_in_code": r["check_in_code"],
            "registered_at": r["registered_at"],
            "confirmed_at": r["confirmed_at"],
            "checked_in_at": None,
            "cancelled_at": None,
            "cancelled_by": None,
        }
        return True

    def _registration(self, row: dict) -> dict:
        return copy.deepcopy({k: row[k] for k in _REGISTRATION_KEYS})

    def registration(self, registration_id, lock: bool = False) -> dict | None:
        found = self.registrations_by_id.get(_id(registration_id))
        return None if found is None else self._registration(found)

    def _of_activity(self, activity_id) -> list[dict]:
        key = _id(activity_id)
        rows = [r for r in self.registrations_by_id.values() if r["activity_id"] == key]
        return sorted(rows, key=lambda r: r["position"])

    def open_registration(self, activity_id, person_id) -> dict | None:
        person = _id(person_id)
        for r in self._of_activity(activity_id):
            if r["person_id"] == person and r["status"] != "cancelled":
                return self._registration(r)
        return None

    def registrations_of(self, person_id) -> list[dict]:
        person = _id(person_id)
        rows = [r for r in self.registrations_by_id.values() if r["person_id"] == person]
        return [self._registration(r) for r in sorted(rows, key=lambda r: r["position"])]

    def waitlist_position(self, registration: dict) -> int:
        ahead = [
            r
            for r in self._of_activity(registration["activity_id"])
            if r["status"] == "waitlisted" and r["position"] < registration["position"]
        ]
        return len(ahead) + 1

    def first_waitlisted(self, activity_id) -> dict | None:
        waiting = [r for r in self._of_activity(activity_id) if r["status"] == "waitlisted"]
        return self._registration(waiting[0]) if waiting else None

    def confirm(self, registration_id, now: datetime) -> None:
        found = self.registrations_by_id.get(_id(registration_id))
        if found is not None:
            found.update(status="confirmed", confirmed_at=now)

    def cancel_registration(self, registration_id, now: datetime, by: str) -> None:
        found = self.registrations_by_id.get(_id(registration_id))
        if found is not None:
            found.update(status="cancelled", cancelled_at=now, cancelled_by=by)

    def _name(self, r: dict) -> str | None:
        people = self.returnees if r["registrant_role"] == "returnee" else self.providers
        person = people.get(r["person_id"]) if r["person_id"] is not None else None
        return None if person is None else person["name"]

    def registrations(self, activity_id, after_position: int | None, limit: int) -> list[dict]:
        rows = [
            r
            for r in self._of_activity(activity_id)
            if after_position is None or r["position"] > after_position
        ]
        return [{**self._registration(r), "name": self._name(r)} for r in rows[:limit]]

    def registrant_name(self, registration_id) -> str | None:
        found = self.registrations_by_id.get(_id(registration_id))
        return None if found is None else self._name(found)

    def check_in(self, activity_id, code: str, now: datetime) -> dict | None:
        for r in self._of_activity(activity_id):
            if r["check_in_code"] == code and r["status"] == "confirmed":
                if r["checked_in_at"] is not None:
                    return None
                r["checked_in_at"] = now
                return self._registration(r)
        return None

    def registration_by_code(self, activity_id, code: str) -> dict | None:
        for r in self._of_activity(activity_id):
            if r["check_in_code"] == code:
                return self._registration(r)
        return None

    def registration_counts(self, activity_id) -> dict:
        rows = self._of_activity(activity_id)
        return {
            "confirmed": sum(r["status"] == "confirmed" for r in rows),
            "waitlisted": sum(r["status"] == "waitlisted" for r in rows),
            "cancelled": sum(r["status"] == "cancelled" for r in rows),
            "attended": sum(r["checked_in_at"] is not None for r in rows),
        }

    def represented_organizations(self, activity_id) -> list[dict]:
        found = {
            r["organization_id"]
            for r in self._of_activity(activity_id)
            if r["organization_id"] is not None and r["checked_in_at"] is not None
        }
        rows = [
            {"organization_id": o, "name": self.organizations.get(o, {}).get("name")} for o in found
        ]
        # NULLS LAST, as PostgreSQL sorts ascending
        return sorted(
            rows, key=lambda r: (r["name"] is None, r["name"] or "", r["organization_id"])
        )

    # ------------------------------------------------------------ agreements

    def insert_agreement(self, agreement: dict) -> None:
        key = _id(agreement["id"])
        if key in self.agreements_by_id:
            raise KeyError(f"agreement {key} exists")
        if _id(agreement["activity_id"]) not in self.activities_by_id:
            raise KeyError(f"no activity {agreement['activity_id']}")
        self.agreements_by_id[key] = {
            "id": key,
            "activity_id": _id(agreement["activity_id"]),
            "title": agreement["title"],
            "signed_on": agreement["signed_on"],
            "summary": agreement["summary"],
            "recorded_by": _id(agreement["recorded_by"]),
            "recorded_at": agreement["recorded_at"],
            "parties": [
                {"organization_id": _id(p["organization_id"]), "returnee_id": _id(p["returnee_id"])}
                for p in agreement["parties"]
            ],
        }

    def agreements(self, activity_id) -> list[dict]:
        key = _id(activity_id)
        return [copy.deepcopy(a) for a in self.agreements_by_id.values() if a["activity_id"] == key]

    # ------------------------------------------------------------ intentions

    def save_intention(self, intention_id, activity_id, organization_id, status: str,
                       at: datetime) -> None:  # fmt: skip
        key = _id(intention_id)
        stored = self.intentions_by_id.get(key)
        if stored is not None and stored["status"] != "expressed":
            return
        self.intentions_by_id[key] = {
            "id": key,
            "activity_id": _id(activity_id),
            "organization_id": _id(organization_id),
            "status": status,
            "updated_at": at,
        }

    def intentions(self, activity_id) -> list[dict]:
        key = _id(activity_id)
        rows = [i for i in self.intentions_by_id.values() if i["activity_id"] == key]
        return copy.deepcopy(sorted(rows, key=lambda i: (i["updated_at"], i["id"])))
