"""SQL of the consulting service, reached only through the unit of work (`uow.store`).

`memory.MemoryStore` is its in-memory twin for handler unit tests: same methods, same answers.
"""

import json
from datetime import date, datetime
from uuid import UUID

import psycopg2.extras

from chassis import access
from chassis.paging import Keyset, Page
from services.consulting.assessing import FACT_KEYS
from services.consulting.consultations import FIELDS, Consultation

# The orders of the listings answered a page at a time (chassis.paging).
CONSULTATIONS = Keyset("created_at", "id", types=(datetime, UUID), descending=True)
SLOTS = Keyset("starts_at", "id", types=(datetime, UUID))
APPLICATIONS = Keyset("created_at", "id", types=(datetime, UUID), descending=True)

_POLICY_COLUMNS = (
    "id, code, version, title, summary, citation, effective_from, effective_to,"
    " application_deadline, criteria, tiers, documents, published_at"
)
_VERSION_COLUMNS = (  # in the order of _POLICY_COLUMNS: one is copied into the other
    "policy_id, code, version, title, summary, citation, effective_from, effective_to,"
    " application_deadline, criteria, tiers, documents, published_at"
)
OPEN_APPLICATIONS = "('draft', 'submitted', 'under_review', 'approved')"
# The policies in effect on a day, as this process last read them from a database, with the
# catalog token they were read under (migration consulting_0009): (dsn, day) -> (token, rows).
# Shared by every unit of work of the process, read-only to them (an assessment reads
# policies, never changes them); a few days at most.
IN_EFFECT: dict[tuple[str, date], tuple] = {}
IN_EFFECT_DAYS = 8
_CANNED_COLUMNS = (
    "id::text AS id, topic, title_zh, title_en, body_zh, body_en, created_at, updated_at"
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
        to_json(p.get("documents") or []),
    )


def _version(row: dict | None) -> dict | None:
    """A stored version as a policy: the same keys as a `policies` row, and when it came in."""
    if row is None:
        return None
    policy_id = row.pop("policy_id")
    return {"id": str(policy_id), **row}


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
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
                ON CONFLICT (code) DO UPDATE SET
                    version = EXCLUDED.version, title = EXCLUDED.title, summary = EXCLUDED.summary,
                    citation = EXCLUDED.citation, effective_from = EXCLUDED.effective_from,
                    effective_to = EXCLUDED.effective_to,
                    application_deadline = EXCLUDED.application_deadline,
                    criteria = EXCLUDED.criteria, tiers = EXCLUDED.tiers,
                    documents = EXCLUDED.documents, published_at = now()
                WHERE policies.version < EXCLUDED.version
                RETURNING id""",
            _policy_params(policy),
        )
        return row is not None

    def insert_policy(self, policy: dict) -> bool:
        """A new policy; False when its code is taken."""
        row = self.uow.one(
            f"""INSERT INTO policies ({_POLICY_COLUMNS})
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
                ON CONFLICT (code) DO NOTHING RETURNING id""",
            _policy_params(policy),
        )
        return row is not None

    def policies(self, effective_on: date | None = None) -> list[dict]:
        """By code; those in effect on `effective_on` if given. In a batch of events
        (`chassis.uow.BatchScope`: the profiles of one subscriber, none of which writes a
        policy) the policies in effect on a day are read once for all its events."""
        batch = getattr(self.uow, "batch", None)
        if effective_on is None or batch is None:
            return self._policies(effective_on)
        held = batch.shared.setdefault("consulting.policies", {})
        if effective_on not in held:
            held[effective_on] = self._policies_kept(effective_on)
        return list(held[effective_on])

    def _policies_kept(self, effective_on: date) -> list[dict]:
        """The policies in effect on the day, from this process's memory (`IN_EFFECT`) while
        the catalog's token is the one they were read with, else read and kept. The token is
        read first: a change committed between the two reads leaves policies kept under a token
        already gone, read again next time, never older policies under a newer token."""
        row = self.uow.one("SELECT token FROM policy_catalog")
        token = None if row is None else row["token"]
        key = (self.uow.cursor.connection.dsn, effective_on)
        kept = IN_EFFECT.get(key)
        if token is not None and kept is not None and kept[0] == token:
            return kept[1]
        policies = self._policies(effective_on)
        if token is not None:
            if len(IN_EFFECT) >= IN_EFFECT_DAYS:
                IN_EFFECT.clear()
            IN_EFFECT[key] = (token, policies)
        return policies

    def _policies(self, effective_on: date | None) -> list[dict]:
        where, params = "", ()
        if effective_on is not None:
            where = "WHERE effective_from <= %s AND (effective_to IS NULL OR effective_to >= %s)"
            params = (effective_on, effective_on)
        rows = self.uow.all(f"SELECT {_POLICY_COLUMNS} FROM policies {where} ORDER BY code", params)
        return [_policy(r) for r in rows]

    def policy(self, policy_id, lock: bool = False) -> dict | None:
        return _policy(
            self.uow.one(
                f"SELECT {_POLICY_COLUMNS} FROM policies WHERE id = %s"
                + (" FOR UPDATE" if lock else ""),
                (policy_id,),
            )
        )

    def policy_by_code(self, code: str) -> dict | None:
        return _policy(
            self.uow.one(f"SELECT {_POLICY_COLUMNS} FROM policies WHERE code = %s", (code,))
        )

    def keep_version(self, policy_id, in_force_from: date) -> None:
        """Keep the policy's current version among its versions, in force from that day."""
        self.uow.execute(
            f"""INSERT INTO policy_versions ({_VERSION_COLUMNS}, in_force_from)
                SELECT {_POLICY_COLUMNS}, %s FROM policies WHERE id = %s
                ON CONFLICT (policy_id, version) DO NOTHING""",
            (in_force_from, policy_id),
        )

    def policy_versions(self, policy_id) -> list[dict]:
        """Every version of one policy, oldest first, each with the day it came into force."""
        rows = self.uow.all(
            f"SELECT {_VERSION_COLUMNS}, in_force_from FROM policy_versions WHERE policy_id = %s"
            " ORDER BY version",
            (policy_id,),
        )
        return [_version(r) for r in rows]

    def policies_in_force(self, as_of: date) -> list[dict]:
        """Each policy in the version whose rules were in force on `as_of`: the latest one in
        force from that day or before; before its first version, the first one (the earliest
        rules known). By code, as `policies()`."""
        rows = self.uow.all(
            f"""SELECT * FROM (
                    SELECT DISTINCT ON (policy_id) {_VERSION_COLUMNS}, in_force_from
                    FROM policy_versions
                    ORDER BY policy_id, (in_force_from <= %s) DESC,
                             CASE WHEN in_force_from <= %s THEN -version ELSE version END
                ) AS in_force ORDER BY code""",
            (as_of, as_of),
        )
        return [_version(r) for r in rows]

    # ------------------------------------------------------------ returnees' facts

    def save_facts(self, returnee_id, facts: dict, profile_time: datetime,
                   matching_consent: bool = False) -> bool:  # fmt: skip
        """Store the facts unless a newer profile is stored already (events may arrive out of
        order) or the returnee was erased (the tombstone looked for by the statement itself);
        True when stored."""
        row = self.uow.one(
            """INSERT INTO returnees (id, facts, profile_time, matching_consent)
               SELECT %(id)s::uuid, %(facts)s::jsonb, %(time)s::timestamptz, %(consent)s::boolean
               WHERE NOT EXISTS (SELECT 1 FROM erasures WHERE returnee_id = %(id)s::uuid)
               ON CONFLICT (id) DO UPDATE SET facts = EXCLUDED.facts,
                   profile_time = EXCLUDED.profile_time,
                   matching_consent = EXCLUDED.matching_consent
               WHERE returnees.profile_time <= EXCLUDED.profile_time
               RETURNING id""",
            {"id": str(returnee_id), "facts": to_json(facts), "time": profile_time,
             "consent": matching_consent},
        )  # fmt: skip
        return row is not None

    def facts(self, returnee_id, lock: bool = False) -> dict | None:
        row = self.uow.one(
            "SELECT facts FROM returnees WHERE id = %s" + (" FOR UPDATE" if lock else ""),
            (returnee_id,),
        )
        return None if row is None else decode_facts(row["facts"])

    # ------------------------------------------------------------ re-assessments

    def queue_reassessment(self, policy_id) -> None:
        """Re-assess every returnee against this policy, from the first (again, if it was under
        way: the policy changed)."""
        self.uow.execute(
            "INSERT INTO reassessments (policy_id) VALUES (%s) ON CONFLICT (policy_id)"
            " DO UPDATE SET after = NULL, queued_at = EXCLUDED.queued_at",
            (policy_id,),
        )

    def claim_reassessment(self) -> dict | None:
        """The oldest re-assessment under way, locked until the transaction ends; one another
        transaction (a replica's loop) holds is skipped."""
        return self.uow.one(
            "SELECT policy_id::text AS policy_id, after::text AS after FROM reassessments"
            " ORDER BY queued_at, policy_id LIMIT 1 FOR UPDATE SKIP LOCKED"
        )

    def advance_reassessment(self, policy_id, after) -> None:
        """Record the last returnee done; None: the re-assessment is finished."""
        if after is None:
            self.uow.execute("DELETE FROM reassessments WHERE policy_id = %s", (policy_id,))
        else:
            self.uow.execute(
                "UPDATE reassessments SET after = %s WHERE policy_id = %s", (after, policy_id)
            )

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

    def caseload(self, after, limit: int, keys: tuple[str, ...]) -> list[dict]:
        """The next `limit` returnees who consent to matching, by id after `after`, with only
        the fact `keys` asked for: what an impact preview counts. Read only, no lock. A batch
        comes back as one JSON document of the facts wanted, so 100k returnees are read in well
        under a second (row by row, decoding every whole fact document takes three times as
        long)."""
        unknown = set(keys) - set(FACT_KEYS)
        if unknown:
            raise ValueError(f"not a fact: {', '.join(sorted(unknown))}")
        wanted = ", ".join(["%s, facts->%s"] * len(keys))
        row = self.uow.one(
            f"""SELECT json_agg(json_build_array(id, jsonb_build_object({wanted})) ORDER BY id)
                       ::text AS batch
                FROM (SELECT id, facts FROM returnees
                      WHERE matching_consent AND (%s::uuid IS NULL OR id > %s::uuid)
                      ORDER BY id LIMIT %s) AS b""",
            (*[k for k in keys for _ in (0, 1)], after, after, limit),
        )
        if row["batch"] is None:
            return []
        return [{"id": id_, "facts": decode_facts(f)} for id_, f in json.loads(row["batch"])]

    def is_erased(self, returnee_id) -> bool:
        return (
            self.uow.one("SELECT 1 FROM erasures WHERE returnee_id = %s", (str(returnee_id),))
            is not None
        )

    # Whose case is whose (`chassis.access`): its own from its tables, registrations from the
    # events of activities.
    OWN_CASES = {"consultation": "consultations", "appointment": "appointments",
                 "application": "applications"}  # fmt: skip

    def keep_case_link(self, kind: str, case_id, returnee_id) -> None:
        access.store_link(self.uow, kind, case_id, returnee_id)

    def case_returnee(self, kind: str, case_id) -> str | None:
        if kind not in self.OWN_CASES:
            return access.linked_returnee(self.uow, kind, case_id)
        row = self.uow.one(
            f"SELECT returnee_id FROM {self.OWN_CASES[kind]} WHERE id = %s", (str(case_id),)
        )
        return None if row is None else str(row["returnee_id"])

    def erase_returnee(self, returnee_id) -> list[str]:
        """Everything held about a returnee: facts, assessments, applications, consultations and
        appointments; a tombstone of the id stays. Returns the ids of what went (the subjects
        of events about them)."""
        access.forget_links(self.uow, returnee_id)
        self.uow.execute(
            "INSERT INTO erasures (returnee_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (returnee_id,),
        )
        gone = self.uow.all(
            "SELECT id FROM appointments WHERE returnee_id = %s"
            " UNION ALL SELECT id FROM applications WHERE returnee_id = %s"
            " UNION ALL SELECT id FROM consultations WHERE returnee_id = %s",
            (returnee_id, returnee_id, returnee_id),
        )
        self.uow.execute(
            """UPDATE slots SET booked = booked - 1 WHERE id IN (
                   SELECT slot_id FROM appointments
                   WHERE returnee_id = %s AND status = 'booked')""",
            (returnee_id,),
        )
        self.uow.execute("DELETE FROM appointments WHERE returnee_id = %s", (returnee_id,))
        self.uow.execute("DELETE FROM applications WHERE returnee_id = %s", (returnee_id,))
        self.uow.execute("DELETE FROM consultations WHERE returnee_id = %s", (returnee_id,))
        self.uow.execute("DELETE FROM returnees WHERE id = %s", (returnee_id,))
        return [str(r["id"]) for r in gone]

    # ------------------------------------------------------------ assessments

    def eligible_policies(self, returnee_id) -> dict[str, tuple[str, str | None, int | None]]:
        """{policy id: (code, tier, version assessed under)} of one returnee."""
        rows = self.uow.all(
            "SELECT policy_id, code, tier, version FROM eligibilities WHERE returnee_id = %s",
            (returnee_id,),
        )
        return {str(r["policy_id"]): (r["code"], r["tier"], r["version"]) for r in rows}

    def replace_eligibilities(self, returnee_id, eligible: dict, assessed_at: datetime) -> None:
        """`eligible`: {policy id: (code, tier, version)}. One statement: the rows no longer
        eligible deleted, the others written (those unchanged left alone), `assessed_at` set;
        the delete and the insert touch different rows. Sent with the unit's next statement
        (`uow.write`): nothing is read back here."""
        ids = list(eligible)
        self.uow.write(
            """WITH gone AS (
                   DELETE FROM eligibilities
                   WHERE returnee_id = %(returnee)s::uuid AND NOT (policy_id = ANY(%(ids)s::uuid[]))
               ), kept AS (
                   INSERT INTO eligibilities (returnee_id, policy_id, code, tier, version)
                   SELECT %(returnee)s::uuid, e.policy_id, e.code, e.tier, e.version
                   FROM unnest(%(ids)s::uuid[], %(codes)s::text[], %(tiers)s::text[],
                               %(versions)s::integer[]) AS e(policy_id, code, tier, version)
                   ON CONFLICT (returnee_id, policy_id) DO UPDATE SET code = EXCLUDED.code,
                       tier = EXCLUDED.tier, version = EXCLUDED.version
                   WHERE (eligibilities.code, eligibilities.tier, eligibilities.version)
                       IS DISTINCT FROM (EXCLUDED.code, EXCLUDED.tier, EXCLUDED.version)
               )
               UPDATE returnees SET assessed_at = %(at)s WHERE id = %(returnee)s::uuid""",
            {
                "returnee": str(returnee_id),
                "ids": ids,
                "codes": [eligible[i][0] for i in ids],
                "tiers": [eligible[i][1] for i in ids],
                "versions": [eligible[i][2] for i in ids],
                "at": assessed_at,
            },
        )

    def eligible_for_policy(self, policy_id, returnee_ids: list) -> dict[str, str | None]:
        """{returnee id: tier} of the given returnees currently eligible for one policy."""
        rows = self.uow.all(
            "SELECT returnee_id, tier FROM eligibilities WHERE policy_id = %s"
            " AND returnee_id = ANY(%s::uuid[])",
            (policy_id, returnee_ids),
        )
        return {str(r["returnee_id"]): r["tier"] for r in rows}

    def apply_policy_changes(self, policy_id, code, version, now_eligible: dict,
                             no_longer: list) -> None:  # fmt: skip
        """Record a batch's changes for one policy (assessed under `version`): rows in and out,
        in one statement each."""
        if no_longer:
            self.uow.execute(
                "DELETE FROM eligibilities WHERE policy_id = %s AND returnee_id = ANY(%s::uuid[])",
                (policy_id, no_longer),
            )
        if now_eligible:
            psycopg2.extras.execute_values(
                self.uow.cursor,
                """INSERT INTO eligibilities (returnee_id, policy_id, code, tier, version) VALUES %s
                   ON CONFLICT (returnee_id, policy_id) DO UPDATE SET tier = EXCLUDED.tier,
                       version = EXCLUDED.version""",
                [(rid, policy_id, code, tier, version) for rid, tier in now_eligible.items()],
                page_size=1000,
            )

    def stamp_version(self, policy_id, version: int) -> None:
        """Every eligibility for the policy was (re)assessed under `version`."""
        self.uow.execute(
            "UPDATE eligibilities SET version = %s WHERE policy_id = %s"
            " AND version IS DISTINCT FROM %s",
            (version, policy_id, version),
        )

    def eligibility_lists(self, returnee_ids: list) -> dict[str, list[dict]]:
        rows = self.uow.all(
            "SELECT returnee_id, policy_id, code, tier, version FROM eligibilities"
            " WHERE returnee_id = ANY(%s::uuid[]) ORDER BY code",
            (returnee_ids,),
        )
        lists: dict[str, list[dict]] = {str(r): [] for r in returnee_ids}
        for r in rows:
            lists[str(r["returnee_id"])].append(
                {
                    "policy_id": str(r["policy_id"]),
                    "code": r["code"],
                    "tier": r["tier"],
                    "version": r["version"],
                }
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

    def consultations(self, returnee_id=None, advisor_id=None, status=None, cursor=None,
                      limit=50) -> Page:  # fmt: skip
        """Newest first, a page of `limit` after `cursor` (chassis.paging)."""
        where, params = ["TRUE"], []
        for column, value in (("returnee_id", returnee_id), ("advisor_id", advisor_id),
                              ("status", status)):  # fmt: skip
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        after, values = CONSULTATIONS.clause(cursor)
        rows = self.uow.all(
            f"SELECT * FROM consultations WHERE {' AND '.join(where)} AND {after}"
            f" ORDER BY {CONSULTATIONS.order_by()} LIMIT %s",
            (*params, *values, limit + 1),
        )
        return CONSULTATIONS.page(rows, limit)

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

    # ------------------------------------------------------------ canned replies

    def insert_canned_reply(self, reply: dict) -> None:
        self.uow.execute(
            "INSERT INTO canned_replies (id, topic, title_zh, title_en, body_zh, body_en,"
            " created_by, created_at, updated_at) VALUES (%(id)s, %(topic)s, %(title_zh)s,"
            " %(title_en)s, %(body_zh)s, %(body_en)s, %(created_by)s, %(created_at)s,"
            " %(updated_at)s)",
            reply,
        )

    def canned_reply(self, reply_id) -> dict | None:
        return self.uow.one(
            f"SELECT {_CANNED_COLUMNS} FROM canned_replies WHERE id = %s", (str(reply_id),)
        )

    def canned_replies(self, topic: str | None) -> list[dict]:
        return self.uow.all(
            f"SELECT {_CANNED_COLUMNS} FROM canned_replies"
            " WHERE %(topic)s::text IS NULL OR topic = %(topic)s ORDER BY topic, title_en, id",
            {"topic": topic},
        )

    def update_canned_reply(self, reply_id, reply: dict, at: datetime) -> bool:
        """False when there is no such reply."""
        row = self.uow.one(
            "UPDATE canned_replies SET topic = %(topic)s, title_zh = %(title_zh)s,"
            " title_en = %(title_en)s, body_zh = %(body_zh)s, body_en = %(body_en)s,"
            " updated_at = %(at)s WHERE id = %(id)s RETURNING id",
            {**reply, "at": at, "id": str(reply_id)},
        )
        return row is not None

    def delete_canned_reply(self, reply_id) -> bool:
        row = self.uow.one(
            "DELETE FROM canned_replies WHERE id = %s RETURNING id", (str(reply_id),)
        )
        return row is not None

    # ------------------------------------------------------------ slots

    def insert_slot(self, slot: dict) -> None:
        self.uow.execute(
            """INSERT INTO slots (id, advisor_id, starts_at, ends_at, location, capacity)
               VALUES (%(id)s, %(advisor_id)s, %(starts_at)s, %(ends_at)s, %(location)s,
                       %(capacity)s)""",
            slot,
        )

    def slots(self, after: datetime, cursor=None, limit: int = 50) -> Page:
        """Slots from `after` on, soonest first, a page of `limit` after `cursor`."""
        following, values = SLOTS.clause(cursor)
        rows = self.uow.all(
            f"SELECT * FROM slots WHERE starts_at >= %s AND {following}"
            f" ORDER BY {SLOTS.order_by()} LIMIT %s",
            (after, *values, limit + 1),
        )
        return SLOTS.page(rows, limit)

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

    def appointments_in(self, slot_id) -> list[dict]:
        return self.uow.all(
            """SELECT a.*, s.starts_at, s.ends_at, s.location, s.advisor_id
               FROM appointments a JOIN slots s ON s.id = a.slot_id
               WHERE a.slot_id = %s ORDER BY a.created_at, a.id""",
            (slot_id,),
        )

    def appointments_of(self, returnee_id) -> list[dict]:
        return self.uow.all(
            """SELECT a.*, s.starts_at, s.ends_at, s.location, s.advisor_id
               FROM appointments a JOIN slots s ON s.id = a.slot_id
               WHERE a.returnee_id = %s ORDER BY s.starts_at""",
            (returnee_id,),
        )

    # ------------------------------------------------------------ applications

    def insert_application(self, application: dict, checklist: list[dict]) -> bool:
        """A new application with its checklist; False when the returnee has an open one for the
        policy already (the partial unique index decides, whatever the concurrency)."""
        row = self.uow.one(
            f"""INSERT INTO applications (id, returnee_id, policy_id, code, policy_version, tier,
                    status, created_at, updated_at)
                VALUES (%(id)s, %(returnee_id)s, %(policy_id)s, %(code)s, %(policy_version)s,
                        %(tier)s, %(status)s, %(created_at)s, %(created_at)s)
                ON CONFLICT (returnee_id, policy_id) WHERE status IN {OPEN_APPLICATIONS}
                DO NOTHING RETURNING id""",
            application,
        )
        if row is None:
            return False
        if checklist:
            psycopg2.extras.execute_values(
                self.uow.cursor,
                """INSERT INTO application_documents (application_id, position, document_id,
                       title, note) VALUES %s""",
                [
                    (
                        application["id"],
                        i,
                        d["id"],
                        to_json(d["title"]),
                        to_json(d["note"]) if d.get("note") else None,
                    )
                    for i, d in enumerate(checklist)
                ],  # fmt: skip
            )
        return True

    def application(self, application_id, lock: bool = False) -> dict | None:
        return self.uow.one(
            "SELECT * FROM applications WHERE id = %s" + (" FOR UPDATE" if lock else ""),
            (application_id,),
        )

    def update_application(self, application_id, now: datetime, **changes) -> None:
        assignments = ", ".join(f"{column} = %s" for column in changes)
        self.uow.execute(
            f"UPDATE applications SET {assignments}, updated_at = %s WHERE id = %s",
            (*changes.values(), now, application_id),
        )

    def add_history(self, application_id, from_status, status, actor_id, actor_role,
                    at: datetime, note) -> None:  # fmt: skip
        self.uow.execute(
            """INSERT INTO application_history
                   (application_id, from_status, status, actor_id, actor_role, at, note)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (application_id, from_status, status, actor_id, actor_role, at, note),
        )

    def history(self, application_id) -> list[dict]:
        return self.uow.all(
            """SELECT from_status, status, actor_id, actor_role, at, note
               FROM application_history WHERE application_id = %s ORDER BY position""",
            (application_id,),
        )

    def checklist(self, application_id) -> list[dict]:
        return self.uow.all(
            """SELECT document_id, title, note, provided, reference, marked_at
               FROM application_documents WHERE application_id = %s ORDER BY position""",
            (application_id,),
        )

    def mark_document(self, application_id, document_id, provided: bool, reference,
                      now: datetime) -> bool:  # fmt: skip
        """Mark one item of the checklist; False when the checklist has no such document."""
        row = self.uow.one(
            """UPDATE application_documents SET provided = %s, reference = %s, marked_at = %s
               WHERE application_id = %s AND document_id = %s RETURNING document_id""",
            (provided, reference, now, application_id, document_id),
        )
        return row is not None

    def applications(self, returnee_id=None, status=None, policy_id=None, cursor=None,
                     limit: int = 50) -> Page:  # fmt: skip
        """Newest first, a page of `limit` after `cursor` (chassis.paging)."""
        where, params = ["TRUE"], []
        for column, value in (("returnee_id", returnee_id), ("status", status),
                              ("policy_id", policy_id)):  # fmt: skip
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        after, values = APPLICATIONS.clause(cursor)
        rows = self.uow.all(
            f"SELECT * FROM applications WHERE {' AND '.join(where)} AND {after}"
            f" ORDER BY {APPLICATIONS.order_by()} LIMIT %s",
            (*params, *values, limit + 1),
        )
        return APPLICATIONS.page(rows, limit)
