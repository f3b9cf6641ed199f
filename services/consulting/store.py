"""SQL of the consulting service, reached only through the unit of work (`uow.store`).

`memory.MemoryStore` is its in-memory twin for handler unit tests: same methods, same answers.
"""

import json
from datetime import date, datetime

import psycopg2.extras

from services.consulting.consultations import FIELDS, Consultation

_POLICY_COLUMNS = (
    "id, code, version, title, summary, citation, effective_from, effective_to,"
    " application_deadline, criteria, tiers, published_at"
)


def to_json(value) -> str:
    return json.dumps(value, default=_iso, ensure_ascii=False)


def _iso(value):
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _policy(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {**row, "id": str(row["id"])}


def _policy_params(p: dict) -> tuple:
    return (
        p["id"],
        p["code"],
        p.get("version", 1),
        to_json(p["title"]),
        to_json(p["summary"]),
        to_json(p["citation"]),
        p["effective_from"],
        p.get("effective_to"),
        p.get("application_deadline"),
        to_json(p["criteria"]),
        to_json(p.get("tiers") or []),
    )


def decode_facts(facts: dict) -> dict:
    """Facts read back from JSON, with their dates as dates again."""
    for key in ("birth_date", "return_date"):
        if facts.get(key):
            facts[key] = date.fromisoformat(facts[key])
    for e in facts.get("education") or ():
        e["start_date"] = date.fromisoformat(e["start_date"])
        e["end_date"] = date.fromisoformat(e["end_date"])
    company = facts.get("company")
    if company and company.get("registration_date"):
        company["registration_date"] = date.fromisoformat(company["registration_date"])
    return facts


class ConsultingStore:
    """The consulting tables, through one unit of work's transaction."""

    def __init__(self, uow):
        self.uow = uow

    # ------------------------------------------------------------ policies

    def upsert_policy(self, policy: dict) -> bool:
        """Insert the policy or replace an older version of it; True when something changed."""
        row = self.uow.one(
            f"""INSERT INTO policies ({_POLICY_COLUMNS})
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
                ON CONFLICT (code) DO UPDATE SET
                    version = EXCLUDED.version, title = EXCLUDED.title, summary = EXCLUDED.summary,
                    citation = EXCLUDED.citation, effective_from = EXCLUDED.effective_from,
                    effective_to = EXCLUDED.effective_to,
                    application_deadline = EXCLUDED.application_deadline,
                    criteria = EXCLUDED.criteria, tiers = EXCLUDED.tiers, published_at = now()
                WHERE policies.version < EXCLUDED.version
                RETURNING id""",
            _policy_params(policy),
        )
        return row is not None

    def insert_policy(self, policy: dict) -> bool:
        """A new policy; False when its code is taken."""
        row = self.uow.one(
            f"""INSERT INTO policies ({_POLICY_COLUMNS})
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
                ON CONFLICT (code) DO NOTHING RETURNING id""",
            _policy_params(policy),
        )
        return row is not None

    def policies(self, effective_on: date | None = None) -> list[dict]:
        where, params = "", ()
        if effective_on is not None:
            where = "WHERE effective_from <= %s AND (effective_to IS NULL OR effective_to >= %s)"
            params = (effective_on, effective_on)
        rows = self.uow.all(f"SELECT {_POLICY_COLUMNS} FROM policies {where} ORDER BY code", params)
        return [_policy(r) for r in rows]

    def policy(self, policy_id) -> dict | None:
        return _policy(
            self.uow.one(f"SELECT {_POLICY_COLUMNS} FROM policies WHERE id = %s", (policy_id,))
        )

    # ------------------------------------------------------------ returnees' facts

    def save_facts(self, returnee_id, facts: dict, profile_time: datetime) -> bool:
        """Store the facts unless a newer profile is stored already (events may arrive out of
        order); True when stored."""
        row = self.uow.one(
            """INSERT INTO returnees (id, facts, profile_time) VALUES (%s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET facts = EXCLUDED.facts,
                   profile_time = EXCLUDED.profile_time
               WHERE returnees.profile_time <= EXCLUDED.profile_time
               RETURNING id""",
            (returnee_id, to_json(facts), profile_time),
        )
        return row is not None

    def facts(self, returnee_id, lock: bool = False) -> dict | None:
        row = self.uow.one(
            "SELECT facts FROM returnees WHERE id = %s" + (" FOR UPDATE" if lock else ""),
            (returnee_id,),
        )
        return None if row is None else decode_facts(row["facts"])

    def returnee_batch(self, after, limit: int) -> list[dict]:
        """The next `limit` returnees by id after `after` (keyset pagination), locked against a
        concurrent profile update re-assessing them at the same time."""
        rows = self.uow.all(
            """SELECT id, facts FROM returnees WHERE %s::uuid IS NULL OR id > %s::uuid
               ORDER BY id LIMIT %s FOR UPDATE""",
            (after, after, limit),
        )
        for row in rows:
            row["facts"] = decode_facts(row["facts"])
        return rows

    def erase_returnee(self, returnee_id) -> None:
        """Everything held about a returnee: facts, assessments, consultations and appointments."""
        self.uow.execute(
            """UPDATE slots SET booked = booked - 1 WHERE id IN (
                   SELECT slot_id FROM appointments
                   WHERE returnee_id = %s AND status = 'booked')""",
            (returnee_id,),
        )
        self.uow.execute("DELETE FROM appointments WHERE returnee_id = %s", (returnee_id,))
        self.uow.execute("DELETE FROM consultations WHERE returnee_id = %s", (returnee_id,))
        self.uow.execute("DELETE FROM returnees WHERE id = %s", (returnee_id,))

    # ------------------------------------------------------------ assessments

    def eligible_policies(self, returnee_id) -> dict[str, tuple[str, str | None]]:
        rows = self.uow.all(
            "SELECT policy_id, code, tier FROM eligibilities WHERE returnee_id = %s", (returnee_id,)
        )
        return {str(r["policy_id"]): (r["code"], r["tier"]) for r in rows}

    def replace_eligibilities(self, returnee_id, eligible: dict, assessed_at: datetime) -> None:
        self.uow.execute("DELETE FROM eligibilities WHERE returnee_id = %s", (returnee_id,))
        if eligible:
            psycopg2.extras.execute_values(
                self.uow.cursor,
                "INSERT INTO eligibilities (returnee_id, policy_id, code, tier) VALUES %s",
                [(returnee_id, pid, code, tier) for pid, (code, tier) in eligible.items()],
            )
        self.uow.execute(
            "UPDATE returnees SET assessed_at = %s WHERE id = %s", (assessed_at, returnee_id)
        )

    def eligible_for_policy(self, policy_id, returnee_ids: list) -> dict[str, str | None]:
        """{returnee id: tier} of the given returnees currently eligible for one policy."""
        rows = self.uow.all(
            "SELECT returnee_id, tier FROM eligibilities WHERE policy_id = %s"
            " AND returnee_id = ANY(%s::uuid[])",
            (policy_id, returnee_ids),
        )
        return {str(r["returnee_id"]): r["tier"] for r in rows}

    def apply_policy_changes(self, policy_id, code, now_eligible: dict, no_longer: list) -> None:
        """Record a batch's changes for one policy: rows in and out, in one statement each."""
        if no_longer:
            self.uow.execute(
                "DELETE FROM eligibilities WHERE policy_id = %s AND returnee_id = ANY(%s::uuid[])",
                (policy_id, no_longer),
            )
        if now_eligible:
            psycopg2.extras.execute_values(
                self.uow.cursor,
                """INSERT INTO eligibilities (returnee_id, policy_id, code, tier) VALUES %s
                   ON CONFLICT (returnee_id, policy_id) DO UPDATE SET tier = EXCLUDED.tier""",
                [(rid, policy_id, code, tier) for rid, tier in now_eligible.items()],
                page_size=1000,
            )

    def eligibility_lists(self, returnee_ids: list) -> dict[str, list[dict]]:
        rows = self.uow.all(
            "SELECT returnee_id, policy_id, code, tier FROM eligibilities"
            " WHERE returnee_id = ANY(%s::uuid[]) ORDER BY code",
            (returnee_ids,),
        )
        lists: dict[str, list[dict]] = {str(r): [] for r in returnee_ids}
        for r in rows:
            lists[str(r["returnee_id"])].append(
                {"policy_id": str(r["policy_id"]), "code": r["code"], "tier": r["tier"]}
            )
        return lists

    # ------------------------------------------------------------ advisors

    def save_advisor(self, advisor_id, name: str, active: bool) -> None:
        self.uow.execute(
            """INSERT INTO advisors (id, name, active) VALUES (%s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, active = EXCLUDED.active""",
            (advisor_id, name, active),
        )

    def advisors_for_round_robin(self) -> list[tuple[str, datetime | None]]:
        """Active advisors, locked so two concurrent requests do not pick the same one."""
        rows = self.uow.all(
            "SELECT id, last_assigned_at FROM advisors WHERE active ORDER BY id FOR UPDATE"
        )
        return [(str(r["id"]), r["last_assigned_at"]) for r in rows]

    def advisor_exists(self, advisor_id) -> bool:
        return (
            self.uow.one("SELECT 1 AS x FROM advisors WHERE id = %s AND active", (advisor_id,))
            is not None
        )

    def touch_advisor(self, advisor_id, now: datetime) -> None:
        self.uow.execute(
            "UPDATE advisors SET last_assigned_at = %s WHERE id = %s", (now, advisor_id)
        )

    # ------------------------------------------------------------ consultations

    def insert_consultation(self, c: Consultation, question: str, policy_id) -> None:
        self.uow.execute(
            """INSERT INTO consultations (id, returnee_id, topic, question, policy_id, status,
                   advisor_id, created_at, first_response_due, resolution_due, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (c.id, c.returnee_id, c.topic, question, policy_id, c.status, c.advisor_id,
             c.created_at, c.first_response_due, c.resolution_due, c.created_at),
        )  # fmt: skip

    def consultation_row(self, consultation_id, lock: bool = False) -> dict | None:
        return self.uow.one(
            "SELECT * FROM consultations WHERE id = %s" + (" FOR UPDATE" if lock else ""),
            (consultation_id,),
        )

    def update_consultation(self, c: Consultation, now: datetime, **extra) -> None:
        fields = [f for f in FIELDS if f not in ("id", "returnee_id", "topic")]
        values = [getattr(c, f) for f in fields]
        for key, value in extra.items():
            fields.append(key)
            values.append(value)
        assignments = ", ".join(f"{f} = %s" for f in fields)
        self.uow.execute(
            f"UPDATE consultations SET {assignments}, updated_at = %s WHERE id = %s",
            (*values, now, c.id),
        )

    def consultations(self, returnee_id=None, advisor_id=None, status=None, limit=50) -> list[dict]:
        where, params = ["TRUE"], []
        for column, value in (("returnee_id", returnee_id), ("advisor_id", advisor_id),
                              ("status", status)):  # fmt: skip
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        return self.uow.all(
            f"SELECT * FROM consultations WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC LIMIT %s",
            (*params, limit),
        )

    def insert_message(self, message_id, consultation_id, author_id, role, body, asks, now) -> None:
        self.uow.execute(
            """INSERT INTO consultation_messages
                   (id, consultation_id, author_id, author_role, body, asks_returnee, created_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (message_id, consultation_id, author_id, role, body, asks, now),
        )

    def messages(self, consultation_id) -> list[dict]:
        return self.uow.all(
            "SELECT id, author_id, author_role, body, asks_returnee, created_at"
            " FROM consultation_messages WHERE consultation_id = %s ORDER BY position",
            (consultation_id,),
        )

    def overdue_consultations(self, now: datetime, limit: int) -> list[dict]:
        """Tickets on the clock with a deadline passed and not reported, claimed with SKIP LOCKED so
        replicas running the same check split the work instead of reporting a breach twice."""
        return self.uow.all(
            """SELECT * FROM consultations
               WHERE status IN ('new', 'assigned', 'answered', 'reopened')
                 AND ((first_responded_at IS NULL AND first_response_breached_at IS NULL
                       AND first_response_due < %s)
                      OR (resolution_breached_at IS NULL AND resolution_due < %s))
               ORDER BY first_response_due
               LIMIT %s
               FOR UPDATE SKIP LOCKED""",
            (now, now, limit),
        )

    # ------------------------------------------------------------ slots and appointments

    def insert_slot(self, slot: dict) -> None:
        self.uow.execute(
            """INSERT INTO slots (id, advisor_id, starts_at, ends_at, location, capacity)
               VALUES (%(id)s, %(advisor_id)s, %(starts_at)s, %(ends_at)s, %(location)s,
                       %(capacity)s)""",
            slot,
        )

    def slots(self, after: datetime, limit: int = 100) -> list[dict]:
        return self.uow.all(
            "SELECT * FROM slots WHERE starts_at >= %s ORDER BY starts_at, id LIMIT %s",
            (after, limit),
        )

    def take_seat(self, slot_id, now: datetime) -> dict | None:
        """One seat of a future slot, atomically: the conditional increment is the guard against
        overbooking, whatever the number of concurrent bookings. None when full or gone."""
        return self.uow.one(
            """UPDATE slots SET booked = booked + 1
               WHERE id = %s AND booked < capacity AND starts_at > %s RETURNING *""",
            (slot_id, now),
        )

    def slot(self, slot_id) -> dict | None:
        return self.uow.one("SELECT * FROM slots WHERE id = %s", (slot_id,))

    def insert_appointment(self, appointment_id, slot_id, returnee_id, topic) -> bool:
        row = self.uow.one(
            """INSERT INTO appointments (id, slot_id, returnee_id, topic) VALUES (%s, %s, %s, %s)
               ON CONFLICT (slot_id, returnee_id) WHERE status = 'booked' DO NOTHING
               RETURNING id""",
            (appointment_id, slot_id, returnee_id, topic),
        )
        return row is not None

    def appointment(self, appointment_id, lock: bool = False) -> dict | None:
        return self.uow.one(
            """SELECT a.*, s.starts_at, s.ends_at, s.location, s.advisor_id
               FROM appointments a JOIN slots s ON s.id = a.slot_id WHERE a.id = %s"""
            + (" FOR UPDATE OF a" if lock else ""),
            (appointment_id,),
        )

    def cancel_appointment(self, appointment_id, slot_id, by: str, now: datetime) -> None:
        self.uow.execute(
            "UPDATE appointments SET status = 'cancelled', cancelled_at = %s, cancelled_by = %s"
            " WHERE id = %s",
            (now, by, appointment_id),
        )
        self.uow.execute("UPDATE slots SET booked = booked - 1 WHERE id = %s", (slot_id,))

    def appointments_of(self, returnee_id) -> list[dict]:
        return self.uow.all(
            """SELECT a.*, s.starts_at, s.ends_at, s.location, s.advisor_id
               FROM appointments a JOIN slots s ON s.id = a.slot_id
               WHERE a.returnee_id = %s ORDER BY s.starts_at""",
            (returnee_id,),
        )
