"""The consulting store in memory: `store.ConsultingStore`'s methods over dicts, for handler unit
tests (`chassis.uow.MemoryDatabase`). Same answers as the SQL: the same row keys, `ORDER BY`
orders, unique constraints answering False or None, ids as strings, JSON columns read back as
JSON (dates in them as ISO text, facts decoded as the SQL store decodes them).

Locks (`lock=True`, `FOR UPDATE SKIP LOCKED`) have nothing to guard here: a memory unit of work
is alone.
"""

import copy
import json
import uuid
from datetime import date, datetime

from chassis.clock import Clock
from services.consulting.assessing import FACT_KEYS
from services.consulting.consultations import FIELDS, Consultation
from services.consulting.store import decode_facts, to_json

ON_THE_CLOCK = ("new", "assigned", "answered", "reopened")
OPEN_APPLICATIONS = ("draft", "submitted", "under_review", "approved")


def _id(value) -> str | None:
    """An id as a uuid column gives it back (and refuses what it would refuse)."""
    return None if value is None else str(uuid.UUID(str(value)))


def _json(value):
    return json.loads(to_json(value))


class MemoryStore:
    def __init__(self, clock: Clock | None = None):
        self.clock = clock or Clock()  # the database's own now(), in the SQL's defaults
        self.policies_by_id: dict[str, dict] = {}
        self.versions: dict[tuple[str, int], dict] = {}  # (policy, version) → row
        self.returnees: dict[str, dict] = {}
        self.erased: set[str] = set()
        self.reassessments: dict[str, dict] = {}  # policy → {after, queued_at}
        self.eligibilities: dict[tuple[str, str], dict] = {}  # (returnee, policy) → row
        self.advisors: dict[str, dict] = {}
        self.consultations_by_id: dict[str, dict] = {}
        self.thread: list[dict] = []  # consultation_messages, in position order
        self.slots_by_id: dict[str, dict] = {}
        self.canned: dict[str, dict] = {}  # canned_replies by id
        self.appointments: dict[str, dict] = {}
        self.applications_by_id: dict[str, dict] = {}
        self.documents: list[dict] = []  # application_documents, by (application, position)
        self.steps: list[dict] = []  # application_history, in position order

    # ------------------------------------------------------------ policies

    def _policy_row(self, p: dict, id_: str) -> dict:
        row = {
            "id": id_,
            "code": p["code"],
            "version": p.get("version", 1),
            "effective_from": p["effective_from"],
            "effective_to": p.get("effective_to"),
            "application_deadline": p.get("application_deadline"),
            "published_at": self.clock.now(),
        }
        for column in ("title", "summary", "citation", "criteria"):
            row[column] = _json(p[column])
        row["tiers"] = _json(p.get("tiers") or [])
        row["documents"] = _json(p.get("documents") or [])
        return row

    def _by_code(self, code: str) -> dict | None:
        return next((p for p in self.policies_by_id.values() if p["code"] == code), None)

    def upsert_policy(self, policy: dict) -> bool:
        """Insert the policy or replace an older version of it; True when something changed."""
        stored = self._by_code(policy["code"])
        if stored is None:
            self.policies_by_id[_id(policy["id"])] = self._policy_row(policy, _id(policy["id"]))
            return True
        if stored["version"] >= policy.get("version", 1):
            return False
        self.policies_by_id[stored["id"]] = self._policy_row(policy, stored["id"])
        return True

    def insert_policy(self, policy: dict) -> bool:
        """A new policy; False when its code is taken."""
        if self._by_code(policy["code"]) is not None:
            return False
        self.policies_by_id[_id(policy["id"])] = self._policy_row(policy, _id(policy["id"]))
        return True

    def policies(self, effective_on: date | None = None) -> list[dict]:
        rows = [
            p
            for p in self.policies_by_id.values()
            if effective_on is None
            or (
                p["effective_from"] <= effective_on
                and (p["effective_to"] is None or p["effective_to"] >= effective_on)
            )
        ]
        return copy.deepcopy(sorted(rows, key=lambda p: p["code"]))

    def policy(self, policy_id, lock: bool = False) -> dict | None:
        return copy.deepcopy(self.policies_by_id.get(_id(policy_id)))

    def policy_by_code(self, code: str) -> dict | None:
        return copy.deepcopy(self._by_code(code))

    def keep_version(self, policy_id, in_force_from: date) -> None:
        """Keep the policy's current version among its versions, in force from that day."""
        current = self.policies_by_id.get(_id(policy_id))
        if current is None or (current["id"], current["version"]) in self.versions:
            return
        self.versions[(current["id"], current["version"])] = {
            **copy.deepcopy(current),
            "in_force_from": in_force_from,
        }

    def policy_versions(self, policy_id) -> list[dict]:
        """Every version of one policy, oldest first."""
        key = _id(policy_id)
        found = [v for (p, _), v in self.versions.items() if p == key]
        return copy.deepcopy(sorted(found, key=lambda v: v["version"]))

    def policies_in_force(self, as_of: date) -> list[dict]:
        """Each policy in the version in force on `as_of` (the first one before any), by code."""
        chosen: dict[str, dict] = {}
        for (policy, _), v in self.versions.items():
            best = chosen.get(policy)
            if best is None or _in_force_rank(v, as_of) < _in_force_rank(best, as_of):
                chosen[policy] = v
        return copy.deepcopy(sorted(chosen.values(), key=lambda v: v["code"]))

    # ------------------------------------------------------------ returnees' facts

    def save_facts(self, returnee_id, facts: dict, profile_time: datetime,
                   matching_consent: bool = False) -> bool:  # fmt: skip
        """Store the facts unless a newer profile is stored already or the returnee was erased;
        True when stored."""
        key = _id(returnee_id)
        if key in self.erased:
            return False
        stored = self.returnees.get(key)
        if stored is not None and stored["profile_time"] > profile_time:
            return False
        self.returnees[key] = {
            "facts": _json(facts),
            "profile_time": profile_time,
            "assessed_at": stored["assessed_at"] if stored else None,
            "matching_consent": matching_consent,
        }
        return True

    def facts(self, returnee_id, lock: bool = False) -> dict | None:
        stored = self.returnees.get(_id(returnee_id))
        return None if stored is None else decode_facts(copy.deepcopy(stored["facts"]))

    def queue_reassessment(self, policy_id) -> None:
        self.reassessments[_id(policy_id)] = {"after": None, "queued_at": self.clock.now()}

    def claim_reassessment(self) -> dict | None:
        if not self.reassessments:
            return None
        policy_id = min(self.reassessments, key=lambda p: (self.reassessments[p]["queued_at"], p))
        return {"policy_id": policy_id, "after": self.reassessments[policy_id]["after"]}

    def advance_reassessment(self, policy_id, after) -> None:
        if after is None:
            self.reassessments.pop(_id(policy_id), None)
        else:
            self.reassessments[_id(policy_id)]["after"] = _id(after)

    def returnee_batch(self, after, limit: int) -> list[dict]:
        """The next `limit` returnees by id after `after` (keyset pagination)."""
        after = _id(after)
        ids = sorted(k for k in self.returnees if after is None or k > after)[:limit]
        return [
            {"id": k, "facts": decode_facts(copy.deepcopy(self.returnees[k]["facts"]))} for k in ids
        ]

    def caseload(self, after, limit: int, keys: tuple[str, ...]) -> list[dict]:
        """The next `limit` returnees who consent to matching, by id after `after`, with only
        the fact `keys` asked for."""
        unknown = set(keys) - set(FACT_KEYS)
        if unknown:
            raise ValueError(f"not a fact: {', '.join(sorted(unknown))}")
        after = _id(after)
        ids = sorted(
            k
            for k, r in self.returnees.items()
            if r["matching_consent"] and (after is None or k > after)
        )[:limit]
        return [
            {
                "id": k,
                "facts": decode_facts(
                    {key: copy.deepcopy(self.returnees[k]["facts"].get(key)) for key in keys}
                ),
            }
            for k in ids
        ]

    def is_erased(self, returnee_id) -> bool:
        return _id(returnee_id) in self.erased

    def erase_returnee(self, returnee_id) -> list[str]:
        """Everything held about a returnee: facts, assessments, applications, consultations and
        appointments; a tombstone of the id stays. Returns the ids of what went."""
        key = _id(returnee_id)
        self.erased.add(key)
        gone_ids = [
            *(a["id"] for a in self.appointments.values() if a["returnee_id"] == key),
            *(a for a, row in self.applications_by_id.items() if row["returnee_id"] == key),
            *(c for c, row in self.consultations_by_id.items() if row["returnee_id"] == key),
        ]
        gone_applications = {
            a for a, row in self.applications_by_id.items() if row["returnee_id"] == key
        }
        for a in gone_applications:
            del self.applications_by_id[a]
        self.documents = [d for d in self.documents if d["application_id"] not in gone_applications]
        self.steps = [h for h in self.steps if h["application_id"] not in gone_applications]
        for a in [a for a in self.appointments.values() if a["returnee_id"] == key]:
            if a["status"] == "booked":
                self.slots_by_id[a["slot_id"]]["booked"] -= 1
            del self.appointments[a["id"]]
        gone = {c for c, row in self.consultations_by_id.items() if row["returnee_id"] == key}
        for c in gone:
            del self.consultations_by_id[c]
        self.thread = [m for m in self.thread if m["consultation_id"] not in gone]
        self.returnees.pop(key, None)
        self.eligibilities = {k: v for k, v in self.eligibilities.items() if k[0] != key}
        return [str(i) for i in gone_ids]

    # ------------------------------------------------------------ assessments

    def eligible_policies(self, returnee_id) -> dict[str, tuple[str, str | None, int | None]]:
        """{policy id: (code, tier, version assessed under)} of one returnee."""
        key = _id(returnee_id)
        return {
            p: (e["code"], e["tier"], e["version"])
            for (r, p), e in self.eligibilities.items()
            if r == key
        }

    def replace_eligibilities(self, returnee_id, eligible: dict, assessed_at: datetime) -> None:
        """`eligible`: {policy id: (code, tier, version)}."""
        key = _id(returnee_id)
        self.eligibilities = {k: v for k, v in self.eligibilities.items() if k[0] != key}
        for policy_id, (code, tier, version) in eligible.items():
            self.eligibilities[(key, _id(policy_id))] = {
                "code": code,
                "tier": tier,
                "version": version,
            }
        if key in self.returnees:
            self.returnees[key]["assessed_at"] = assessed_at

    def eligible_for_policy(self, policy_id, returnee_ids: list) -> dict[str, str | None]:
        """{returnee id: tier} of the given returnees currently eligible for one policy."""
        policy_id = _id(policy_id)
        found = {}
        for r in map(_id, returnee_ids):
            row = self.eligibilities.get((r, policy_id))
            if row is not None:
                found[r] = row["tier"]
        return found

    def apply_policy_changes(self, policy_id, code, version, now_eligible: dict,
                             no_longer: list) -> None:  # fmt: skip
        """Record a batch's changes for one policy (assessed under `version`): rows in and
        out."""
        policy_id = _id(policy_id)
        for r in no_longer:
            self.eligibilities.pop((_id(r), policy_id), None)
        for r, tier in now_eligible.items():
            self.eligibilities[(_id(r), policy_id)] = {
                "code": code,
                "tier": tier,
                "version": version,
            }

    def stamp_version(self, policy_id, version: int) -> None:
        """Every eligibility for the policy was (re)assessed under `version`."""
        policy_id = _id(policy_id)
        for (_, p), e in self.eligibilities.items():
            if p == policy_id:
                e["version"] = version

    def eligibility_lists(self, returnee_ids: list) -> dict[str, list[dict]]:
        lists: dict[str, list[dict]] = {str(r): [] for r in returnee_ids}
        wanted = {_id(r): str(r) for r in returnee_ids}
        rows = sorted(
            ((r, p, e) for (r, p), e in self.eligibilities.items() if r in wanted),
            key=lambda item: item[2]["code"],
        )
        for r, p, e in rows:
            lists[wanted[r]].append(
                {"policy_id": p, "code": e["code"], "tier": e["tier"], "version": e["version"]}
            )
        return lists

    # ------------------------------------------------------------ advisors

    def save_advisor(self, advisor_id, name: str, active: bool) -> None:
        key = _id(advisor_id)
        last = self.advisors.get(key, {}).get("last_assigned_at")
        self.advisors[key] = {"id": key, "name": name, "active": active, "last_assigned_at": last}

    def advisors_for_round_robin(self) -> list[tuple[str, datetime | None]]:
        """Active advisors, by id."""
        return [
            (a["id"], a["last_assigned_at"])
            for a in sorted(self.advisors.values(), key=lambda a: a["id"])
            if a["active"]
        ]

    def advisor_exists(self, advisor_id) -> bool:
        found = self.advisors.get(_id(advisor_id))
        return found is not None and found["active"]

    def touch_advisor(self, advisor_id, now: datetime) -> None:
        if _id(advisor_id) in self.advisors:
            self.advisors[_id(advisor_id)]["last_assigned_at"] = now

    # ------------------------------------------------------------ consultations

    def insert_consultation(self, c: Consultation, question: str, policy_id) -> None:
        key = _id(c.id)
        if key in self.consultations_by_id:
            raise KeyError(f"consultation {key} exists")  # the primary key's violation
        self.consultations_by_id[key] = {
            **{f: getattr(c, f) for f in FIELDS},
            "id": key,
            "returnee_id": _id(c.returnee_id),
            "advisor_id": _id(c.advisor_id),
            "question": question,
            "policy_id": _id(policy_id),
            "escalated": False,
            "rating_comment": None,
            "updated_at": c.created_at,
        }

    def consultation_row(self, consultation_id, lock: bool = False) -> dict | None:
        return copy.deepcopy(self.consultations_by_id.get(_id(consultation_id)))

    def update_consultation(self, c: Consultation, now: datetime, **extra) -> None:
        row = self.consultations_by_id.get(_id(c.id))
        if row is None:
            return  # an UPDATE of no row
        for f in FIELDS:
            if f not in ("id", "returnee_id", "topic"):
                row[f] = getattr(c, f)
        row["advisor_id"] = _id(row["advisor_id"])
        row.update(extra)
        row["updated_at"] = now

    def consultations(self, returnee_id=None, advisor_id=None, status=None, limit=50) -> list[dict]:
        rows = [
            r
            for r in self.consultations_by_id.values()
            if (returnee_id is None or r["returnee_id"] == _id(returnee_id))
            and (advisor_id is None or r["advisor_id"] == _id(advisor_id))
            and (status is None or r["status"] == status)
        ]
        rows.sort(key=lambda r: r["created_at"], reverse=True)
        return copy.deepcopy(rows[:limit])

    def insert_message(self, message_id, consultation_id, author_id, role, body, asks, now) -> None:
        if _id(consultation_id) not in self.consultations_by_id:
            raise KeyError(f"no consultation {consultation_id}")  # the foreign key's violation
        self.thread.append(
            {
                "id": _id(message_id),
                "consultation_id": _id(consultation_id),
                "author_id": _id(author_id),
                "author_role": role,
                "body": body,
                "asks_returnee": asks,
                "created_at": now,
            }
        )

    def messages(self, consultation_id) -> list[dict]:
        key = _id(consultation_id)
        return [
            {
                k: m[k]
                for k in ("id", "author_id", "author_role", "body", "asks_returnee", "created_at")
            }  # fmt: skip
            for m in self.thread
            if m["consultation_id"] == key
        ]

    def overdue_consultations(self, now: datetime, limit: int) -> list[dict]:
        """Tickets on the clock with a deadline passed and not reported."""
        rows = [
            r
            for r in self.consultations_by_id.values()
            if r["status"] in ON_THE_CLOCK
            and (
                (
                    r["first_responded_at"] is None
                    and r["first_response_breached_at"] is None
                    and r["first_response_due"] < now
                )
                or (r["resolution_breached_at"] is None and r["resolution_due"] < now)
            )
        ]
        rows.sort(key=lambda r: r["first_response_due"])
        return copy.deepcopy(rows[:limit])

    # ------------------------------------------------------------ slots and appointments

    # ------------------------------------------------------------ canned replies

    _CANNED = ("id", "topic", "title_zh", "title_en", "body_zh", "body_en", "created_at",
               "updated_at")  # fmt: skip

    def insert_canned_reply(self, reply: dict) -> None:
        key = _id(reply["id"])
        if key in self.canned:
            raise KeyError(f"canned reply {key} exists")
        self.canned[key] = {**copy.deepcopy(reply), "id": key,
                            "created_by": _id(reply["created_by"])}  # fmt: skip

    def canned_reply(self, reply_id) -> dict | None:
        found = self.canned.get(_id(reply_id))
        return None if found is None else {k: found[k] for k in self._CANNED}

    def canned_replies(self, topic: str | None) -> list[dict]:
        rows = [r for r in self.canned.values() if topic is None or r["topic"] == topic]
        rows.sort(key=lambda r: (r["topic"], r["title_en"], r["id"]))
        return [self.canned_reply(r["id"]) for r in rows]

    def update_canned_reply(self, reply_id, reply: dict, at: datetime) -> bool:
        found = self.canned.get(_id(reply_id))
        if found is None:
            return False
        for column in ("topic", "title_zh", "title_en", "body_zh", "body_en"):
            found[column] = reply[column]
        found["updated_at"] = at
        return True

    def delete_canned_reply(self, reply_id) -> bool:
        return self.canned.pop(_id(reply_id), None) is not None

    # ------------------------------------------------------------ slots

    def insert_slot(self, slot: dict) -> None:
        key = _id(slot["id"])
        if key in self.slots_by_id:
            raise KeyError(f"slot {key} exists")
        self.slots_by_id[key] = {
            "id": key,
            "advisor_id": _id(slot["advisor_id"]),
            "starts_at": slot["starts_at"],
            "ends_at": slot["ends_at"],
            "location": slot["location"],
            "capacity": slot["capacity"],
            "booked": 0,
        }

    def slots(self, after: datetime, limit: int = 100) -> list[dict]:
        rows = [s for s in self.slots_by_id.values() if s["starts_at"] >= after]
        rows.sort(key=lambda s: (s["starts_at"], s["id"]))
        return copy.deepcopy(rows[:limit])

    def take_seat(self, slot_id, now: datetime) -> dict | None:
        """One seat of a future slot; None when full or gone."""
        found = self.slots_by_id.get(_id(slot_id))
        if found is None or found["booked"] >= found["capacity"] or found["starts_at"] <= now:
            return None
        found["booked"] += 1
        return copy.deepcopy(found)

    def slot(self, slot_id) -> dict | None:
        return copy.deepcopy(self.slots_by_id.get(_id(slot_id)))

    def insert_appointment(self, appointment_id, slot_id, returnee_id, topic) -> bool:
        slot_id, returnee_id = _id(slot_id), _id(returnee_id)
        if any(
            a["slot_id"] == slot_id and a["returnee_id"] == returnee_id and a["status"] == "booked"
            for a in self.appointments.values()
        ):
            return False
        key = _id(appointment_id)
        self.appointments[key] = {
            "id": key,
            "slot_id": slot_id,
            "returnee_id": returnee_id,
            "status": "booked",
            "topic": topic,
            "created_at": self.clock.now(),
            "cancelled_at": None,
            "cancelled_by": None,
        }
        return True

    def _joined(self, appointment: dict) -> dict:
        slot = self.slots_by_id[appointment["slot_id"]]
        return copy.deepcopy(
            {
                **appointment,
                **{k: slot[k] for k in ("starts_at", "ends_at", "location", "advisor_id")},
            }  # fmt: skip
        )

    def appointment(self, appointment_id, lock: bool = False) -> dict | None:
        found = self.appointments.get(_id(appointment_id))
        return None if found is None else self._joined(found)

    def cancel_appointment(self, appointment_id, slot_id, by: str, now: datetime) -> None:
        found = self.appointments.get(_id(appointment_id))
        if found is not None:
            found.update(status="cancelled", cancelled_at=now, cancelled_by=by)
        self.slots_by_id[_id(slot_id)]["booked"] -= 1

    def appointments_in(self, slot_id) -> list[dict]:
        key = _id(slot_id)
        rows = [self._joined(a) for a in self.appointments.values() if a["slot_id"] == key]
        return sorted(rows, key=lambda a: (a["created_at"], a["id"]))

    def appointments_of(self, returnee_id) -> list[dict]:
        key = _id(returnee_id)
        rows = [self._joined(a) for a in self.appointments.values() if a["returnee_id"] == key]
        return sorted(rows, key=lambda a: a["starts_at"])

    # ------------------------------------------------------------ applications

    def insert_application(self, application: dict, checklist: list[dict]) -> bool:
        """A new application with its checklist; False when the returnee has an open one for the
        policy already."""
        key = _id(application["id"])
        returnee_id, policy_id = _id(application["returnee_id"]), _id(application["policy_id"])
        if key in self.applications_by_id:
            raise KeyError(f"application {key} exists")
        if policy_id not in self.policies_by_id:
            raise KeyError(f"no policy {policy_id}")  # the foreign key's violation
        if any(
            a["returnee_id"] == returnee_id
            and a["policy_id"] == policy_id
            and a["status"] in OPEN_APPLICATIONS
            for a in self.applications_by_id.values()
        ):
            return False
        self.applications_by_id[key] = {
            "id": key,
            "returnee_id": returnee_id,
            "policy_id": policy_id,
            "code": application["code"],
            "policy_version": application["policy_version"],
            "tier": application["tier"],
            "status": application["status"],
            "rejection_reason": None,
            "amount_cny": None,
            "awarded_on": None,
            "created_at": application["created_at"],
            "updated_at": application["created_at"],
        }
        for i, d in enumerate(checklist):
            self.documents.append(
                {
                    "application_id": key,
                    "position": i,
                    "document_id": d["id"],
                    "title": _json(d["title"]),
                    "note": _json(d["note"]) if d.get("note") else None,
                    "provided": False,
                    "reference": None,
                    "marked_at": None,
                }
            )
        return True

    def application(self, application_id, lock: bool = False) -> dict | None:
        return copy.deepcopy(self.applications_by_id.get(_id(application_id)))

    def update_application(self, application_id, now: datetime, **changes) -> None:
        row = self.applications_by_id.get(_id(application_id))
        if row is None:
            return  # an UPDATE of no row
        unknown = set(changes) - set(row)
        if unknown:
            raise KeyError(f"no column {', '.join(sorted(unknown))}")
        row.update(copy.deepcopy(changes))
        row["updated_at"] = now

    def add_history(self, application_id, from_status, status, actor_id, actor_role,
                    at: datetime, note) -> None:  # fmt: skip
        if _id(application_id) not in self.applications_by_id:
            raise KeyError(f"no application {application_id}")  # the foreign key's violation
        self.steps.append(
            {
                "application_id": _id(application_id),
                "from_status": from_status,
                "status": status,
                "actor_id": _id(actor_id),
                "actor_role": actor_role,
                "at": at,
                "note": note,
            }
        )

    def history(self, application_id) -> list[dict]:
        key = _id(application_id)
        return [
            {k: v for k, v in h.items() if k != "application_id"}
            for h in copy.deepcopy(self.steps)
            if h["application_id"] == key
        ]

    def checklist(self, application_id) -> list[dict]:
        key = _id(application_id)
        rows = sorted(
            (d for d in self.documents if d["application_id"] == key), key=lambda d: d["position"]
        )
        keys = ("document_id", "title", "note", "provided", "reference", "marked_at")
        return [{k: copy.deepcopy(d[k]) for k in keys} for d in rows]

    def mark_document(self, application_id, document_id, provided: bool, reference,
                      now: datetime) -> bool:  # fmt: skip
        """Mark one item of the checklist; False when the checklist has no such document."""
        key = _id(application_id)
        for d in self.documents:
            if d["application_id"] == key and d["document_id"] == document_id:
                d.update(provided=provided, reference=reference, marked_at=now)
                return True
        return False

    def applications(self, returnee_id=None, status=None, policy_id=None, after=None,
                     limit: int = 50) -> list[dict]:  # fmt: skip
        """Newest first; `after`: the (created_at, id) of the last one of the previous page."""
        rows = [
            a
            for a in self.applications_by_id.values()
            if (returnee_id is None or a["returnee_id"] == _id(returnee_id))
            and (status is None or a["status"] == status)
            and (policy_id is None or a["policy_id"] == _id(policy_id))
            and (after is None or (a["created_at"], a["id"]) < (after[0], _id(after[1])))
        ]
        rows.sort(key=lambda a: (a["created_at"], a["id"]), reverse=True)
        return copy.deepcopy(rows[:limit])


def _in_force_rank(version: dict, as_of: date) -> tuple:
    """The SQL's ordering: versions in force by `as_of` first, the latest of them; else the
    earliest version."""
    in_force = version["in_force_from"] <= as_of
    return (not in_force, -version["version"] if in_force else version["version"])
