"""The matching store in memory: `store.MatchingStore`'s methods over dicts, for handler unit
tests (`chassis.uow.MemoryDatabase`). Same answers as the SQL: the same row keys, `ORDER BY`
orders, unique constraints answering False or None, ids as strings, JSON columns read back as
JSON, the database's `now()` from the clock.

Locks (`lock=True`, `FOR UPDATE SKIP LOCKED`, the advisory locks of a returnee's matches) have
nothing to guard here: a memory unit of work is alone. Their bound is kept (`lock_matches`
refuses more than `MAX_LOCKED` returnees, as the SQL store does).
"""

import copy
import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime

from chassis.clock import Clock
from chassis.paging import Page
from services.matching.engine import Catalog, Match, Profile, ReturneeTable
from services.matching.store import (
    INTENTIONS,
    RESOURCES,
    Saved,
    as_profile,
    as_resource,
    check_lockable,
    match_id,
)

_RESOURCE_KEYS = (
    "id", "organization_id", "title", "kind", "needs_served", "industries", "stages",
    "district", "capacity", "valid_from", "valid_until", "description",
)  # fmt: skip
_OPEN = ("expressed", "accepted")


def _id(value) -> str | None:
    """An id as a uuid column gives it back (and refuses what it would refuse)."""
    return None if value is None else str(uuid.UUID(str(value)))


def _valid_on(resource: dict, today: date) -> bool:
    return (resource["valid_from"] is None or resource["valid_from"] <= today) and (
        resource["valid_until"] is None or resource["valid_until"] >= today
    )


class MemoryStore:
    def __init__(self, clock: Clock | None = None):
        self.clock = clock or Clock()  # the database's own now(), in the SQL's defaults
        self.organizations: dict[str, dict] = {}
        self.resources_by_id: dict[str, dict] = {}
        self.returnees: dict[str, dict] = {}
        self.withdrawals: dict[str, datetime] = {}
        self.erasures: dict[str, datetime] = {}
        self.dismissals: set[tuple[str, str]] = set()  # (returnee, resource)
        self.matches: dict[tuple[str, str], dict] = {}  # (returnee, resource) → row
        self.rematch_queue: dict[str, datetime] = {}  # returnee → queued_at
        self.intentions_by_id: dict[str, dict] = {}
        self.attendances: set[tuple[str, str]] = set()  # (activity, returnee)
        self.activity_organizations: set[tuple[str, str]] = set()  # (activity, organization)
        self.case_links: dict[tuple[str, str], str] = {}  # (kind, case) → returnee

    # ------------------------------------------------------------ organizations

    def save_organization(self, organization_id, name: str, kind: str, district=None) -> None:
        key = _id(organization_id)
        self.organizations[key] = {"id": key, "name": name, "kind": kind, "district": district}

    def add_organization(self, organization_id, name: str, kind: str, district=None) -> bool:
        if _id(organization_id) in self.organizations:
            return False
        self.save_organization(organization_id, name, kind, district)
        return True

    def organization(self, organization_id) -> dict | None:
        found = self.organizations.get(_id(organization_id))
        return None if found is None else dict(found)

    def organizations_named(self, names) -> dict[str, str]:
        found: dict[str, str] = {}
        for key in sorted(self.organizations):
            name = self.organizations[key]["name"]
            if name in names:
                found.setdefault(name, key)
        return found

    def organizations_known(self, organization_ids) -> set[str]:
        return {_id(o) for o in organization_ids} & set(self.organizations)

    # ------------------------------------------------------------ resources

    def insert_resource(self, resource_id, data: dict) -> dict:
        key = _id(resource_id)
        if key not in self.resources_by_id:
            organization_id = _id(data["organization_id"])
            if organization_id not in self.organizations:
                raise KeyError(f"organization {organization_id} is unknown")  # the foreign key
            row = {k: copy.deepcopy(data.get(k)) for k in _RESOURCE_KEYS}
            for name in ("industries", "stages"):
                row[name] = list(row[name] or [])
            row.update(
                id=key,
                organization_id=organization_id,
                needs_served=list(row["needs_served"]),
                description=row["description"] or "",
                taken=0,
                published_at=self.clock.now(),
                withdrawn_at=None,
            )
            self.resources_by_id[key] = row
        return self.resource(key)

    def _resource_row(self, stored: dict) -> dict:
        row = copy.deepcopy({k: v for k, v in stored.items() if k != "taken"})
        row["organization_name"] = self.organizations[stored["organization_id"]]["name"]
        row["capacity_left"] = stored["capacity"] - stored["taken"]
        return row

    def resource(self, resource_id, lock: bool = False) -> dict | None:
        stored = self.resources_by_id.get(_id(resource_id))
        return None if stored is None else self._resource_row(stored)

    def resources_titled(self, pairs) -> dict[tuple[str, str], str]:
        wanted = set(pairs)
        return {
            (r["organization_id"], r["title"]): r["id"]
            for r in self.resources_by_id.values()
            if r["withdrawn_at"] is None and (r["organization_id"], r["title"]) in wanted
        }

    def resources(self, filters: dict, today: date) -> Page:
        def kept(r: dict) -> bool:
            if r["withdrawn_at"] is not None:
                return False
            if not filters.get("include_expired") and not _valid_on(r, today):
                return False
            given = {k: str(filters[k]) for k in filters if filters[k] is not None}
            checks = {
                "kind": lambda v: r["kind"] == v,
                "organization_id": lambda v: r["organization_id"] == _id(v),
                "need": lambda v: v in r["needs_served"],
                "industry": lambda v: not r["industries"] or v in r["industries"],
                "stage": lambda v: not r["stages"] or v in r["stages"],
                "district": lambda v: r["district"] is None or r["district"].lower() == v.lower(),
            }
            if not all(check(given[k]) for k, check in checks.items() if k in given):
                return False
            return not filters.get("available") or r["taken"] < r["capacity"]

        rows = [self._resource_row(r) for r in self.resources_by_id.values() if kept(r)]
        after = RESOURCES.slice(rows, {"cursor": filters.get("cursor"), "limit": len(rows) + 1})
        return RESOURCES.page(after[filters.get("offset", 0) :], filters["limit"])

    def change_resource(self, resource_id, changes: dict) -> dict:
        stored = self.resources_by_id[_id(resource_id)]
        for column in ("capacity", "valid_from", "valid_until"):
            if column in changes:
                stored[column] = changes[column]
        return self.resource(resource_id)

    def withdraw_resource(self, resource_id) -> bool:
        stored = self.resources_by_id.get(_id(resource_id))
        if stored is None or stored["withdrawn_at"] is not None:
            return False
        stored["withdrawn_at"] = self.clock.now()
        return True

    def take_place(self, resource_id) -> int | None:
        stored = self.resources_by_id.get(_id(resource_id))
        if stored is None or stored["withdrawn_at"] is not None:
            return None
        if stored["taken"] >= stored["capacity"]:
            return None
        stored["taken"] += 1
        return stored["capacity"] - stored["taken"]

    def catalog(self) -> Catalog:
        return Catalog(
            as_resource(self._resource_row(r))
            for r in self.resources_by_id.values()
            if r["withdrawn_at"] is None
        )

    # ------------------------------------------------------------ returnees

    def is_erased(self, returnee_id) -> bool:
        return _id(returnee_id) in self.erasures

    def save_returnee(self, returnee_id, profile: dict, profile_time: datetime) -> Saved | None:
        key = _id(returnee_id)
        if key in self.erasures:
            return None
        withdrawn = self.withdrawals.get(key)
        if withdrawn is not None and withdrawn > profile_time:
            return None
        self.withdrawals.pop(key, None)
        stored = self.returnees.get(key)
        if stored is not None and stored["profile_time"] > profile_time:
            return None
        self.returnees[key] = {
            "id": key,
            "locale": profile["locale"],
            "industry": profile["industry"],
            "startup_stage": profile["startup_stage"],
            "needs": list(profile["needs"]),
            "district": profile["district"],
            "profile_time": profile_time,
        }
        return Saved(self._profile(key), tuple(s for r, s in self.matches if r == key))

    def record_withdrawal(self, returnee_id, withdrawn_at: datetime) -> None:
        key = _id(returnee_id)
        known = self.withdrawals.get(key)
        self.withdrawals[key] = withdrawn_at if known is None else max(known, withdrawn_at)

    def forget_returnee(self, returnee_id) -> list[str]:
        key = _id(returnee_id)
        removed = sorted(s for r, s in self.matches if r == key)
        self.matches = {k: v for k, v in self.matches.items() if k[0] != key}
        self.dismissals = {d for d in self.dismissals if d[0] != key}
        self.returnees.pop(key, None)
        return removed

    def keep_case_link(self, kind: str, case_id, returnee_id) -> None:
        self.case_links.setdefault((kind, _id(case_id)), _id(returnee_id))

    def case_returnee(self, kind: str, case_id) -> str | None:
        return self.case_links.get((kind, _id(case_id)))

    def erase_returnee(self, returnee_id) -> list[str]:
        key = _id(returnee_id)
        self.case_links = {k: r for k, r in self.case_links.items() if r != key}
        self.forget_returnee(key)
        intention_ids = sorted(i for i, row in self.intentions_by_id.items()
                               if row["returnee_id"] == key)  # fmt: skip
        for intention_id in intention_ids:
            row = self.intentions_by_id[intention_id]
            if row["status"] != "accepted":
                del self.intentions_by_id[intention_id]
            else:
                row.update(returnee_id=None, message=None, response=None)
        self.withdrawals.pop(key, None)
        self.attendances = {a for a in self.attendances if a[1] != key}
        self.erasures.setdefault(key, self.clock.now())
        return intention_ids

    def _profile(self, key: str) -> Profile:
        row = self.returnees[key]
        dismissed = [s for r, s in self.dismissals if r == key]
        return as_profile({**row, "dismissed": dismissed})

    def profiles(self, returnee_ids: Sequence[str] | None = None) -> list[Profile]:
        keys = self.returnees if returnee_ids is None else {_id(r) for r in returnee_ids}
        return [self._profile(k) for k in sorted(keys) if k in self.returnees]

    def returnee_table(self) -> ReturneeTable:
        """Every stored returnee as the engine's columns, as the store's (held or read) are."""
        keys = sorted(self.returnees)
        rows = [self.returnees[k] for k in keys]
        return ReturneeTable.from_columns(
            keys,
            [r["industry"] for r in rows],
            [r["startup_stage"] for r in rows],
            [list(r["needs"]) for r in rows],
            [r["district"] for r in rows],
        )

    def dismissed_by(self, resource_id) -> list[str]:
        key = _id(resource_id)
        return sorted(r for r, s in self.dismissals if s == key)

    def dismiss(self, returnee_id, resource_id) -> None:
        self.dismissals.add((_id(returnee_id), _id(resource_id)))

    # ------------------------------------------------------------ matches

    def lock_matches(self, returnee_ids: Sequence[str]) -> None:
        check_lockable(returnee_ids)

    def matched_resource_ids(self, returnee_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {rid: [] for rid in returnee_ids}
        for r, s in self.matches:
            if r in found:
                found[r].append(s)
        return found

    def returnees_matched_to(self, resource_id) -> list[str]:
        key = _id(resource_id)
        return sorted(r for r, s in self.matches if s == key)

    def replace_matches(self, computed: dict[str, list[Match]], held: bool = False) -> None:
        for returnee_id, matches in computed.items():
            rid = _id(returnee_id)
            kept = {_id(m.resource_id) for m in matches}
            self.matches = {k: v for k, v in self.matches.items() if k[0] != rid or k[1] in kept}
            for rank, m in enumerate(matches, start=1):
                key = (rid, _id(m.resource_id))
                row = self.matches.setdefault(
                    key,
                    {
                        "id": match_id(rid, m.resource_id),
                        "returnee_id": rid,
                        "resource_id": key[1],
                        "organization_id": _id(m.organization_id),
                        "status": "proposed",
                        "proposed_at": self.clock.now(),
                    },
                )
                row.update(
                    rank=rank,
                    score=float(m.score),
                    reasons=json.loads(json.dumps([r.as_dict() for r in m.reasons])),
                )

    def matches_of(self, returnee_id, today: date) -> list[dict]:
        key = _id(returnee_id)
        rows = []
        for (r, s), m in self.matches.items():
            resource = self.resources_by_id[s]
            if (
                r != key
                or resource["withdrawn_at"] is not None
                or resource["taken"] >= resource["capacity"]
                or not _valid_on(resource, today)
            ):
                continue
            rows.append(
                {
                    "match_id": m["id"],
                    "resource_id": s,
                    "organization_id": m["organization_id"],
                    "organization_name": self.organizations[m["organization_id"]]["name"],
                    "title": resource["title"],
                    "kind": resource["kind"],
                    "score": m["score"],
                    "reasons": copy.deepcopy(m["reasons"]),
                    "status": m["status"],
                    "rank": m["rank"],
                }
            )
        return sorted(rows, key=lambda row: (row["rank"], row["resource_id"]))

    def match(self, match_id_, lock: bool = False) -> dict | None:
        key = _id(match_id_)
        for m in self.matches.values():
            if m["id"] == key:
                return {k: m[k] for k in ("returnee_id", "resource_id", "status")} | {
                    "match_id": key
                }
        return None

    def set_match_status(self, returnee_id, resource_id, status: str) -> None:
        found = self.matches.get((_id(returnee_id), _id(resource_id)))
        if found is not None:
            found["status"] = status

    # ------------------------------------------------------------ the re-match queue

    def queue_rematch(self, returnee_ids: Sequence[str]) -> int:
        ids = sorted({_id(r) for r in returnee_ids})
        now = self.clock.now()
        for rid in ids:
            self.rematch_queue[rid] = now
        return len(ids)

    def claim_rematch(self, limit: int) -> list[str]:
        ordered = sorted(self.rematch_queue.items(), key=lambda item: (item[1], item[0]))
        return [rid for rid, _ in ordered[:limit]]

    def rematched(self, returnee_ids: Sequence[str]) -> None:
        for rid in returnee_ids:
            self.rematch_queue.pop(_id(rid), None)

    # ------------------------------------------------------------ intentions

    def _insert_intention(self, row: dict) -> dict | None:
        def clashes(other: dict) -> bool:
            if other["status"] not in _OPEN or row["returnee_id"] is None:
                return False
            if other["returnee_id"] != row["returnee_id"]:
                return False
            if row["resource_id"] is not None:  # intentions_open
                return other["resource_id"] == row["resource_id"]
            return (  # intentions_open_at_activity
                other["activity_id"] == row["activity_id"]
                and other["organization_id"] == row["organization_id"]
            )

        if row["id"] in self.intentions_by_id or any(
            clashes(o) for o in self.intentions_by_id.values()
        ):
            return None
        self.intentions_by_id[row["id"]] = {
            **row,
            "status": "expressed",
            "response": None,
            "expressed_at": self.clock.now(),
            "decided_at": None,
        }
        return self.intention(row["id"])

    def insert_intention(self, intention_id, returnee_id, resource: dict,
                         message) -> dict | None:  # fmt: skip
        return self._insert_intention(
            {
                "id": _id(intention_id),
                "returnee_id": _id(returnee_id),
                "resource_id": _id(resource["id"]),
                "activity_id": None,
                "organization_id": _id(resource["organization_id"]),
                "message": message,
            }
        )

    def insert_activity_intention(self, intention_id, returnee_id, activity_id,
                                  organization_id, message) -> dict | None:  # fmt: skip
        return self._insert_intention(
            {
                "id": _id(intention_id),
                "returnee_id": _id(returnee_id),
                "resource_id": None,
                "activity_id": _id(activity_id),
                "organization_id": _id(organization_id),
                "message": message,
            }
        )

    def _intention_row(self, stored: dict) -> dict:
        resource = self.resources_by_id.get(stored["resource_id"] or "")
        return {
            "intention_id": stored["id"],
            "returnee_id": stored["returnee_id"],
            "resource_id": stored["resource_id"],
            "organization_id": stored["organization_id"],
            "status": stored["status"],
            "message": stored["message"],
            "response": stored["response"],
            "expressed_at": stored["expressed_at"],
            "decided_at": stored["decided_at"],
            "resource_title": None if resource is None else resource["title"],
            "activity_id": stored["activity_id"],
        }

    def intention(self, intention_id) -> dict | None:
        stored = self.intentions_by_id.get(_id(intention_id))
        return None if stored is None else self._intention_row(stored)

    def decide_intention(self, intention_id, status: str, response) -> dict | None:
        stored = self.intentions_by_id.get(_id(intention_id))
        if stored is None or stored["status"] != "expressed":
            return None
        stored.update(status=status, response=response, decided_at=self.clock.now())
        return self._intention_row(stored)

    def intentions(self, returnee_id=None, organization_id=None, status=None, cursor=None,
                   limit: int = 50) -> Page:  # fmt: skip
        wanted = {
            k: v
            for k, v in (
                ("returnee_id", _id(returnee_id)),
                ("organization_id", _id(organization_id)),
                ("status", status),
            )
            if v is not None
        }
        rows = [
            self._intention_row(s)
            for s in self.intentions_by_id.values()
            if all(s[k] == v for k, v in wanted.items())
        ]
        return INTENTIONS.slice(rows, {"cursor": cursor, "limit": limit})

    def intention_statistics(self) -> list[dict]:
        counts: dict[str, dict] = {}
        for s in self.intentions_by_id.values():
            o = self.organizations.get(s["organization_id"])
            if o is None:
                continue
            row = counts.setdefault(
                o["id"],
                {
                    "organization_id": o["id"],
                    "organization_name": o["name"],
                    "kind": o["kind"],
                    "accepted": 0,
                    "expressed": 0,
                    "declined": 0,
                },
            )
            row[s["status"]] += 1
        rows = sorted(counts.values(), key=lambda r: (r["organization_name"], r["organization_id"]))
        rows.sort(key=lambda r: r["accepted"], reverse=True)  # stable: then by name, id
        return rows

    # ------------------------------------------------------------ activities

    def record_attendance(self, activity_id, returnee_id) -> None:
        self.attendances.add((_id(activity_id), _id(returnee_id)))

    def record_activity_organizations(self, activity_id, organization_ids) -> None:
        for organization_id in organization_ids:
            self.activity_organizations.add((_id(activity_id), _id(organization_id)))

    def attended(self, activity_id, returnee_id) -> bool:
        return (_id(activity_id), _id(returnee_id)) in self.attendances

    def took_part(self, activity_id, organization_id) -> bool:
        return (_id(activity_id), _id(organization_id)) in self.activity_organizations
