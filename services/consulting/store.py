"""SQL of the consulting service. Functions take the unit of work (`tx`, see chassis.db)."""

import json
from datetime import date, datetime

import psycopg2.extras

from services.consulting.consultations import Consultation

# ---------------------------------------------------------------- policies

_POLICY_COLUMNS = (
    "id, code, version, title, summary, citation, effective_from, effective_to,"
    " application_deadline, criteria, tiers, published_at"
)


def _json(value) -> str:
    return json.dumps(value, default=_iso, ensure_ascii=False)


def _iso(value):
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _policy(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {**row, "id": str(row["id"])}


def upsert_policy(tx, policy: dict) -> bool:
    """Insert the policy or replace an older version of it; True when something changed."""
    row = tx.one(
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


def insert_policy(tx, policy: dict) -> bool:
    """A new policy; False when its code is taken."""
    row = tx.one(
        f"""INSERT INTO policies ({_POLICY_COLUMNS})
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
            ON CONFLICT (code) DO NOTHING RETURNING id""",
        _policy_params(policy),
    )
    return row is not None


def _policy_params(p: dict) -> tuple:
    return (
        p["id"],
        p["code"],
        p.get("version", 1),
        _json(p["title"]),
        _json(p["summary"]),
        _json(p["citation"]),
        p["effective_from"],
        p.get("effective_to"),
        p.get("application_deadline"),
        _json(p["criteria"]),
        _json(p.get("tiers") or []),
    )


def policies(tx, effective_on: date | None = None) -> list[dict]:
    where, params = "", ()
    if effective_on is not None:
        where = "WHERE effective_from <= %s AND (effective_to IS NULL OR effective_to >= %s)"
        params = (effective_on, effective_on)
    rows = tx.all(f"SELECT {_POLICY_COLUMNS} FROM policies {where} ORDER BY code", params)
    return [_policy(r) for r in rows]


def policy(tx, policy_id) -> dict | None:
    return _policy(tx.one(f"SELECT {_POLICY_COLUMNS} FROM policies WHERE id = %s", (policy_id,)))


# ---------------------------------------------------------------- returnees' facts

# What eligibility rules read from a profile; names, contacts and free text are not kept here.
FACT_KEYS = (
    "birth_date",
    "education",
    "return_date",
    "has_overseas_job",
    "residence_status",
    "industry",
    "startup_stage",
    "needs",
    "company",
    "prior_awards",
)
EDUCATION_KEYS = ("country", "degree", "start_date", "end_date", "qs_rank", "overseas")
COMPANY_KEYS = (
    "registered_district",
    "registration_date",
    "registered_capital_cny",
    "shareholding_pct",
    "is_legal_representative",
    "is_largest_shareholder",
    "vc_raised_cny",
)


def facts_of(profile: dict) -> dict:
    """The minimum necessary part of a `returnee.registered/updated` payload."""
    facts = {k: profile.get(k) for k in FACT_KEYS}
    facts["education"] = [{k: e.get(k) for k in EDUCATION_KEYS} for e in facts["education"] or ()]
    if facts["company"]:
        facts["company"] = {k: facts["company"].get(k) for k in COMPANY_KEYS}
    return facts


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


def save_facts(tx, returnee_id, facts: dict, profile_time: datetime) -> bool:
    """Store the facts unless a newer profile is stored already (events may arrive out of
    order); True when stored."""
    row = tx.one(
        """INSERT INTO returnees (id, facts, profile_time) VALUES (%s, %s, %s)
           ON CONFLICT (id) DO UPDATE SET facts = EXCLUDED.facts,
               profile_time = EXCLUDED.profile_time
           WHERE returnees.profile_time <= EXCLUDED.profile_time
           RETURNING id""",
        (returnee_id, _json(facts), profile_time),
    )
    return row is not None


def facts(tx, returnee_id, lock: bool = False) -> dict | None:
    row = tx.one(
        "SELECT facts FROM returnees WHERE id = %s" + (" FOR UPDATE" if lock else ""),
        (returnee_id,),
    )
    return None if row is None else decode_facts(row["facts"])


def returnee_batch(tx, after, limit: int) -> list[dict]:
    """The next `limit` returnees by id after `after` (keyset pagination), locked against a
    concurrent profile update re-assessing them at the same time."""
    rows = tx.all(
        """SELECT id, facts FROM returnees WHERE %s::uuid IS NULL OR id > %s::uuid
           ORDER BY id LIMIT %s FOR UPDATE""",
        (after, after, limit),
    )
    for row in rows:
        row["facts"] = decode_facts(row["facts"])
    return rows


# ---------------------------------------------------------------- re-assessments


def queue_reassessment(tx, policy_id) -> None:
    """Re-assess every returnee against this policy, from the first (again, if it was under way:
    the policy changed)."""
    tx.execute(
        "INSERT INTO reassessments (policy_id) VALUES (%s) ON CONFLICT (policy_id)"
        " DO UPDATE SET after = NULL, queued_at = EXCLUDED.queued_at",
        (policy_id,),
    )


def claim_reassessment(tx) -> dict | None:
    """The oldest re-assessment under way, locked until the transaction ends; one another
    transaction (a replica's loop) holds is skipped."""
    return tx.one(
        "SELECT policy_id::text AS policy_id, after::text AS after FROM reassessments"
        " ORDER BY queued_at, policy_id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )


def advance_reassessment(tx, policy_id, after: str | None) -> None:
    """Record the last returnee done; None: the re-assessment is finished."""
    if after is None:
        tx.execute("DELETE FROM reassessments WHERE policy_id = %s", (policy_id,))
    else:
        tx.execute("UPDATE reassessments SET after = %s WHERE policy_id = %s", (after, policy_id))


def erase_returnee(tx, returnee_id) -> None:
    """Everything held about a returnee: facts, assessments, consultations and appointments."""
    tx.execute(
        """UPDATE slots SET booked = booked - 1 WHERE id IN (
               SELECT slot_id FROM appointments WHERE returnee_id = %s AND status = 'booked')""",
        (returnee_id,),
    )
    tx.execute("DELETE FROM appointments WHERE returnee_id = %s", (returnee_id,))
    tx.execute("DELETE FROM consultations WHERE returnee_id = %s", (returnee_id,))
    tx.execute("DELETE FROM returnees WHERE id = %s", (returnee_id,))


# ---------------------------------------------------------------- assessments


def eligible_policies(tx, returnee_id) -> dict[str, tuple[str, str | None]]:
    rows = tx.all(
        "SELECT policy_id, code, tier FROM eligibilities WHERE returnee_id = %s", (returnee_id,)
    )
    return {str(r["policy_id"]): (r["code"], r["tier"]) for r in rows}


def replace_eligibilities(tx, returnee_id, eligible: dict, assessed_at: datetime) -> None:
    tx.execute("DELETE FROM eligibilities WHERE returnee_id = %s", (returnee_id,))
    if eligible:
        psycopg2.extras.execute_values(
            tx.cursor,
            "INSERT INTO eligibilities (returnee_id, policy_id, code, tier) VALUES %s",
            [(returnee_id, pid, code, tier) for pid, (code, tier) in eligible.items()],
        )
    tx.execute("UPDATE returnees SET assessed_at = %s WHERE id = %s", (assessed_at, returnee_id))


def eligible_for_policy(tx, policy_id, returnee_ids: list) -> dict[str, str | None]:
    """{returnee id: tier} of the given returnees currently eligible for one policy."""
    rows = tx.all(
        "SELECT returnee_id, tier FROM eligibilities WHERE policy_id = %s"
        " AND returnee_id = ANY(%s::uuid[])",
        (policy_id, returnee_ids),
    )
    return {str(r["returnee_id"]): r["tier"] for r in rows}


def apply_policy_changes(tx, policy_id, code, now_eligible: dict, no_longer: list) -> None:
    """Record a batch's changes for one policy: rows in and out, in one statement each."""
    if no_longer:
        tx.execute(
            "DELETE FROM eligibilities WHERE policy_id = %s AND returnee_id = ANY(%s::uuid[])",
            (policy_id, no_longer),
        )
    if now_eligible:
        psycopg2.extras.execute_values(
            tx.cursor,
            """INSERT INTO eligibilities (returnee_id, policy_id, code, tier) VALUES %s
               ON CONFLICT (returnee_id, policy_id) DO UPDATE SET tier = EXCLUDED.tier""",
            [(rid, policy_id, code, tier) for rid, tier in now_eligible.items()],
            page_size=1000,
        )


def eligibility_lists(tx, returnee_ids: list) -> dict[str, list[dict]]:
    rows = tx.all(
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


# ---------------------------------------------------------------- advisors


def save_advisor(tx, advisor_id, name: str, active: bool) -> None:
    tx.execute(
        """INSERT INTO advisors (id, name, active) VALUES (%s, %s, %s)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, active = EXCLUDED.active""",
        (advisor_id, name, active),
    )


def advisors_for_round_robin(tx) -> list[tuple[str, datetime | None]]:
    """Active advisors, locked so two concurrent requests do not pick the same one."""
    rows = tx.all("SELECT id, last_assigned_at FROM advisors WHERE active ORDER BY id FOR UPDATE")
    return [(str(r["id"]), r["last_assigned_at"]) for r in rows]


def advisor_exists(tx, advisor_id) -> bool:
    return tx.one("SELECT 1 AS x FROM advisors WHERE id = %s AND active", (advisor_id,)) is not None


def touch_advisor(tx, advisor_id, now: datetime) -> None:
    tx.execute("UPDATE advisors SET last_assigned_at = %s WHERE id = %s", (now, advisor_id))


# ---------------------------------------------------------------- consultations

_CONSULTATION_FIELDS = (
    "id",
    "returnee_id",
    "topic",
    "status",
    "created_at",
    "first_response_due",
    "resolution_due",
    "advisor_id",
    "first_responded_at",
    "paused_at",
    "closed_at",
    "first_response_breached_at",
    "resolution_breached_at",
    "rating",
)


def consultation_of(row: dict) -> Consultation:
    values = {k: row[k] for k in _CONSULTATION_FIELDS}
    for k in ("id", "returnee_id", "advisor_id"):
        values[k] = None if values[k] is None else str(values[k])
    return Consultation(**values)


def insert_consultation(tx, c: Consultation, question: str, policy_id) -> None:
    tx.execute(
        """INSERT INTO consultations (id, returnee_id, topic, question, policy_id, status,
               advisor_id, created_at, first_response_due, resolution_due, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (c.id, c.returnee_id, c.topic, question, policy_id, c.status, c.advisor_id,
         c.created_at, c.first_response_due, c.resolution_due, c.created_at),
    )  # fmt: skip


def consultation_row(tx, consultation_id, lock: bool = False) -> dict | None:
    return tx.one(
        "SELECT * FROM consultations WHERE id = %s" + (" FOR UPDATE" if lock else ""),
        (consultation_id,),
    )


def update_consultation(tx, c: Consultation, now: datetime, **extra) -> None:
    fields = [f for f in _CONSULTATION_FIELDS if f not in ("id", "returnee_id", "topic")]
    values = [getattr(c, f) for f in fields]
    for key, value in extra.items():
        fields.append(key)
        values.append(value)
    assignments = ", ".join(f"{f} = %s" for f in fields)
    tx.execute(
        f"UPDATE consultations SET {assignments}, updated_at = %s WHERE id = %s",
        (*values, now, c.id),
    )


def consultations(tx, returnee_id=None, advisor_id=None, status=None, limit=50) -> list[dict]:
    where, params = ["TRUE"], []
    for column, value in (("returnee_id", returnee_id), ("advisor_id", advisor_id),
                          ("status", status)):  # fmt: skip
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    return tx.all(
        f"SELECT * FROM consultations WHERE {' AND '.join(where)}"
        " ORDER BY created_at DESC LIMIT %s",
        (*params, limit),
    )


def insert_message(tx, message_id, consultation_id, author_id, role, body, asks, now) -> None:
    tx.execute(
        """INSERT INTO consultation_messages
               (id, consultation_id, author_id, author_role, body, asks_returnee, created_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (message_id, consultation_id, author_id, role, body, asks, now),
    )


def messages(tx, consultation_id) -> list[dict]:
    return tx.all(
        "SELECT id, author_id, author_role, body, asks_returnee, created_at"
        " FROM consultation_messages WHERE consultation_id = %s ORDER BY position",
        (consultation_id,),
    )


def overdue_consultations(tx, now: datetime, limit: int) -> list[dict]:
    """Tickets on the clock with a deadline passed and not reported, claimed with SKIP LOCKED so
    replicas running the same check split the work instead of reporting a breach twice."""
    return tx.all(
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


# ---------------------------------------------------------------- slots and appointments


def insert_slot(tx, slot: dict) -> None:
    tx.execute(
        """INSERT INTO slots (id, advisor_id, starts_at, ends_at, location, capacity)
           VALUES (%(id)s, %(advisor_id)s, %(starts_at)s, %(ends_at)s, %(location)s,
                   %(capacity)s)""",
        slot,
    )


def slots(tx, after: datetime, limit: int = 100) -> list[dict]:
    return tx.all(
        "SELECT * FROM slots WHERE starts_at >= %s ORDER BY starts_at, id LIMIT %s",
        (after, limit),
    )


def take_seat(tx, slot_id, now: datetime) -> dict | None:
    """One seat of a future slot, atomically: the conditional increment is the guard against
    overbooking, whatever the number of concurrent bookings. None when full or gone."""
    return tx.one(
        """UPDATE slots SET booked = booked + 1
           WHERE id = %s AND booked < capacity AND starts_at > %s RETURNING *""",
        (slot_id, now),
    )


def slot(tx, slot_id) -> dict | None:
    return tx.one("SELECT * FROM slots WHERE id = %s", (slot_id,))


def insert_appointment(tx, appointment_id, slot_id, returnee_id, topic) -> bool:
    row = tx.one(
        """INSERT INTO appointments (id, slot_id, returnee_id, topic) VALUES (%s, %s, %s, %s)
           ON CONFLICT (slot_id, returnee_id) WHERE status = 'booked' DO NOTHING
           RETURNING id""",
        (appointment_id, slot_id, returnee_id, topic),
    )
    return row is not None


def appointment(tx, appointment_id, lock: bool = False) -> dict | None:
    return tx.one(
        """SELECT a.*, s.starts_at, s.ends_at, s.location, s.advisor_id
           FROM appointments a JOIN slots s ON s.id = a.slot_id WHERE a.id = %s"""
        + (" FOR UPDATE OF a" if lock else ""),
        (appointment_id,),
    )


def cancel_appointment(tx, appointment_id, slot_id, by: str, now: datetime) -> None:
    tx.execute(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = %s, cancelled_by = %s"
        " WHERE id = %s",
        (now, by, appointment_id),
    )
    tx.execute("UPDATE slots SET booked = booked - 1 WHERE id = %s", (slot_id,))


def appointments_of(tx, returnee_id) -> list[dict]:
    return tx.all(
        """SELECT a.*, s.starts_at, s.ends_at, s.location, s.advisor_id
           FROM appointments a JOIN slots s ON s.id = a.slot_id
           WHERE a.returnee_id = %s ORDER BY s.starts_at""",
        (returnee_id,),
    )
