"""SQL of the activities service, reached only through the unit of work (`uow.store`).

`memory.MemoryStore` is its in-memory twin for handler unit tests: same methods, same answers.
"""

import json
from datetime import date, datetime

import psycopg2.extras

_ACTIVITY_COLUMNS = """id::text AS id, kind, title, summary, starts_at, ends_at, venue, capacity,
    confirmed, organizer_ids::text[] AS organizer_ids, audience, registration_closes_at, status,
    published_by::text AS published_by, published_at, cancelled_at, closed_at, closing_summary"""

_REGISTRATION_COLUMNS = """r.id::text AS id, r.activity_id::text AS activity_id, r.position,
    r.registrant_role, r.person_id::text AS person_id, r.organization_id::text AS organization_id,
    r.status, r.check_in_code, r.registered_at, r.confirmed_at, r.checked_in_at, r.cancelled_at,
    r.cancelled_by"""

# The registrant's display name: a returnee's from their profile, a provider's from staff.
_NAME = """CASE WHEN r.registrant_role = 'returnee'
    THEN (SELECT name FROM returnees WHERE id = r.person_id)
    ELSE (SELECT name FROM providers WHERE id = r.person_id) END"""


def to_json(value) -> str:
    return json.dumps(value, default=_iso, ensure_ascii=False)


def _iso(value):
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ActivitiesStore:
    """The activities tables, through one unit of work's transaction."""

    def __init__(self, uow):
        self.uow = uow

    # ------------------------------------------------------------ organizations, providers

    def save_organization(self, organization_id, name: str, kind: str) -> None:
        self.uow.execute(
            """INSERT INTO organizations (id, name, kind) VALUES (%s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind""",
            (str(organization_id), name, kind),
        )

    def organization_names(self, organization_ids) -> dict[str, str]:
        rows = self.uow.all(
            "SELECT id::text AS id, name FROM organizations WHERE id = ANY(%s::uuid[])",
            ([str(o) for o in organization_ids],),
        )
        return {r["id"]: r["name"] for r in rows}

    def save_provider(self, staff_id, name: str, organization_id) -> None:
        self.uow.execute(
            """INSERT INTO providers (id, name, organization_id) VALUES (%s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                   organization_id = EXCLUDED.organization_id""",
            (str(staff_id), name, None if organization_id is None else str(organization_id)),
        )

    # ------------------------------------------------------------ returnees

    def is_erased(self, returnee_id) -> bool:
        found = self.uow.one(
            "SELECT 1 AS x FROM erasures WHERE returnee_id = %s", (str(returnee_id),)
        )
        return found is not None

    def save_returnee(self, returnee_id, profile: dict, profile_time: datetime) -> dict | None:
        """Store the profile unless a newer one is stored already (events may arrive out of
        order) or the returnee was erased (the tombstone checked in the same statement); the
        consent only when newer than the stored one. The returnee as stored (as `returnee`
        reads it) when stored, else None."""
        return self.uow.one(
            """INSERT INTO returnees (id, name, industry, startup_stage, needs,
                   notifications_consent, consent_at, profile_time)
               SELECT %(id)s, %(name)s, %(industry)s, %(startup_stage)s, %(needs)s,
                   %(notifications_consent)s, %(time)s, %(time)s
               WHERE NOT EXISTS (SELECT 1 FROM erasures WHERE returnee_id = %(id)s)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                   industry = EXCLUDED.industry, startup_stage = EXCLUDED.startup_stage,
                   needs = EXCLUDED.needs, profile_time = EXCLUDED.profile_time,
                   notifications_consent = CASE WHEN returnees.consent_at <= EXCLUDED.consent_at
                       THEN EXCLUDED.notifications_consent ELSE returnees.notifications_consent END,
                   consent_at = GREATEST(returnees.consent_at, EXCLUDED.consent_at)
               WHERE returnees.profile_time <= EXCLUDED.profile_time
               RETURNING id::text AS id, name, industry, startup_stage, needs,
                   notifications_consent""",
            {**profile, "id": str(returnee_id), "time": profile_time},
        )

    def save_consent(self, returnee_id, granted: bool, at: datetime) -> None:
        self.uow.execute(
            "UPDATE returnees SET notifications_consent = %s, consent_at = %s"
            " WHERE id = %s AND consent_at <= %s",
            (granted, at, str(returnee_id), at),
        )

    def returnee(self, returnee_id) -> dict | None:
        return self.uow.one(
            """SELECT id::text AS id, name, industry, startup_stage, needs, notifications_consent
               FROM returnees WHERE id = %s""",
            (str(returnee_id),),
        )

    def known_returnees(self, returnee_ids) -> set[str]:
        rows = self.uow.all(
            "SELECT id::text AS id FROM returnees WHERE id = ANY(%s::uuid[])",
            ([str(r) for r in returnee_ids],),
        )
        return {r["id"] for r in rows}

    def audience_batch(self, audience: dict, after, limit: int) -> list[str]:
        """The next `limit` returnees by id after `after` who are in the audience and consent to
        being told (keyset pagination)."""
        rows = self.uow.all(
            """SELECT id::text AS id FROM returnees
               WHERE notifications_consent
                 AND (cardinality(%(industries)s::text[]) = 0 OR industry = ANY(%(industries)s))
                 AND (cardinality(%(stages)s::text[]) = 0 OR startup_stage = ANY(%(stages)s))
                 AND (cardinality(%(needs)s::text[]) = 0 OR needs && %(needs)s::text[])
                 AND (%(after)s::uuid IS NULL OR id > %(after)s::uuid)
               ORDER BY id LIMIT %(limit)s""",
            {**audience, "after": after, "limit": limit},
        )
        return [r["id"] for r in rows]

    def agreements_signed_by(self, returnee_id) -> list[str]:
        rows = self.uow.all(
            "SELECT DISTINCT agreement_id::text AS id FROM agreement_parties"
            " WHERE returnee_id = %s ORDER BY 1",
            (str(returnee_id),),
        )
        return [r["id"] for r in rows]

    def erase_returnee(self, returnee_id, now: datetime) -> None:
        """Everything that names the returnee goes; what happened stays counted: their
        registrations (status, attendance) without them or their code, the agreements they
        signed with an unnamed party."""
        rid = str(returnee_id)
        self.uow.execute(
            "INSERT INTO erasures (returnee_id, erased_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (rid, now),
        )
        self.uow.execute(
            "UPDATE registrations SET person_id = NULL, check_in_code = NULL"
            " WHERE registrant_role = 'returnee' AND person_id = %s",
            (rid,),
        )
        self.uow.execute(
            "UPDATE agreement_parties SET returnee_id = NULL WHERE returnee_id = %s", (rid,)
        )
        self.uow.execute("DELETE FROM invitations WHERE returnee_id = %s", (rid,))
        self.uow.execute("DELETE FROM returnees WHERE id = %s", (rid,))

    # ------------------------------------------------------------ activities

    def insert_activity(self, a: dict) -> None:
        self.uow.execute(
            """INSERT INTO activities (id, kind, title, summary, starts_at, ends_at, venue,
                   capacity, organizer_ids, audience, registration_closes_at, published_by,
                   published_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::uuid[], %s, %s, %s, %s)""",
            (a["id"], a["kind"], to_json(a["title"]), to_json(a["summary"]), a["starts_at"],
             a["ends_at"], to_json(a["venue"]), a["capacity"], a["organizer_ids"],
             to_json(a["audience"]), a["registration_closes_at"], a["published_by"],
             a["published_at"]),
        )  # fmt: skip

    def activity(self, activity_id, lock: bool = False) -> dict | None:
        """The activity; `lock`: until the unit of work ends, which serializes the sign-ups,
        cancellations and promotions of one activity (its seats are counted on this row)."""
        return self.uow.one(
            f"SELECT {_ACTIVITY_COLUMNS} FROM activities WHERE id = %s"
            + (" FOR UPDATE" if lock else ""),
            (str(activity_id),),
        )

    def activities(self, ending_after: datetime, starting_before: datetime | None, kind=None,
                   after: tuple | None = None, limit: int = 50) -> list[dict]:  # fmt: skip
        """Activities still on (or ending) after `ending_after`, by start time then id, from
        the keyset `after` = (starts_at, id) on."""
        where = ["ends_at >= %(from)s"]
        params: dict = {"from": ending_after, "limit": limit}
        if starting_before is not None:
            where.append("starts_at <= %(to)s")
            params["to"] = starting_before
        if kind is not None:
            where.append("kind = %(kind)s")
            params["kind"] = kind
        if after is not None:
            where.append("(starts_at, id) > (%(after_at)s, %(after_id)s::uuid)")
            params["after_at"], params["after_id"] = after
        return self.uow.all(
            f"SELECT {_ACTIVITY_COLUMNS} FROM activities WHERE {' AND '.join(where)}"
            " ORDER BY starts_at, id LIMIT %(limit)s",
            params,
        )

    def open_activities(self, now: datetime) -> list[dict]:
        """Published activities still taking registrations."""
        return self.uow.all(
            f"""SELECT {_ACTIVITY_COLUMNS} FROM activities
                WHERE status = 'published' AND starts_at > %(now)s
                  AND (registration_closes_at IS NULL OR registration_closes_at > %(now)s)
                ORDER BY starts_at, id""",
            {"now": now},
        )

    def take_seat(self, activity_id) -> None:
        self.uow.execute(
            "UPDATE activities SET confirmed = confirmed + 1 WHERE id = %s", (str(activity_id),)
        )

    def free_seat(self, activity_id) -> None:
        self.uow.execute(
            "UPDATE activities SET confirmed = confirmed - 1 WHERE id = %s", (str(activity_id),)
        )

    def cancel_activity(self, activity_id, now: datetime) -> None:
        self.uow.execute(
            "UPDATE activities SET status = 'cancelled', cancelled_at = %s WHERE id = %s",
            (now, str(activity_id)),
        )

    def close_activity(self, activity_id, now: datetime, summary: str | None) -> None:
        self.uow.execute(
            "UPDATE activities SET status = 'closed', closed_at = %s, closing_summary = %s"
            " WHERE id = %s",
            (now, summary, str(activity_id)),
        )

    # ------------------------------------------------------------ invitations

    def invite(self, activity_id, returnee_ids: list[str], now: datetime) -> list[str]:
        """Record the invitations; returns the returnees not invited before, in id order."""
        if not returnee_ids:
            return []
        rows = psycopg2.extras.execute_values(
            self.uow.cursor,
            "INSERT INTO invitations (activity_id, returnee_id, invited_at) VALUES %s"
            " ON CONFLICT DO NOTHING RETURNING returnee_id::text AS id",
            [(str(activity_id), str(r), now) for r in returnee_ids],
            fetch=True,
        )
        return sorted(r["id"] for r in rows)

    # ------------------------------------------------------------ registrations

    def insert_registration(self, r: dict) -> bool:
        """A new registration; False when the person holds one already or the code is taken."""
        row = self.uow.one(
            """INSERT INTO registrations (id, activity_id, registrant_role, person_id,
                   organization_id, status, check_in_code, registered_at, confirmed_at)
               VALUES (%(id)s, %(activity_id)s, %(registrant_role)s, %(person_id)s,
                   %(organization_id)s, %(status)s, %(check_in_code)s, %(registered_at)s,
                   %(confirmed_at)s)
               ON CONFLICT DO NOTHING RETURNING id""",
            r,
        )
        return row is not None

    def registration(self, registration_id, lock: bool = False) -> dict | None:
        return self.uow.one(
            f"SELECT {_REGISTRATION_COLUMNS} FROM registrations r WHERE r.id = %s"
            + (" FOR UPDATE" if lock else ""),
            (str(registration_id),),
        )

    def open_registration(self, activity_id, person_id) -> dict | None:
        """The person's registration for the activity that is not cancelled, if any."""
        return self.uow.one(
            f"SELECT {_REGISTRATION_COLUMNS} FROM registrations r"
            " WHERE r.activity_id = %s AND r.person_id = %s AND r.status <> 'cancelled'",
            (str(activity_id), str(person_id)),
        )

    def registrations_of(self, person_id) -> list[dict]:
        return self.uow.all(
            f"SELECT {_REGISTRATION_COLUMNS} FROM registrations r WHERE r.person_id = %s"
            " ORDER BY r.position",
            (str(person_id),),
        )

    def waitlist_position(self, registration: dict) -> int:
        """1 for the next to be promoted."""
        row = self.uow.one(
            "SELECT count(*) AS ahead FROM registrations"
            " WHERE activity_id = %s AND status = 'waitlisted' AND position < %s",
            (registration["activity_id"], registration["position"]),
        )
        return row["ahead"] + 1

    def first_waitlisted(self, activity_id) -> dict | None:
        return self.uow.one(
            f"SELECT {_REGISTRATION_COLUMNS} FROM registrations r"
            " WHERE r.activity_id = %s AND r.status = 'waitlisted'"
            " ORDER BY r.position LIMIT 1 FOR UPDATE",
            (str(activity_id),),
        )

    def confirm(self, registration_id, now: datetime) -> None:
        self.uow.execute(
            "UPDATE registrations SET status = 'confirmed', confirmed_at = %s WHERE id = %s",
            (now, str(registration_id)),
        )

    def cancel_registration(self, registration_id, now: datetime, by: str) -> None:
        self.uow.execute(
            "UPDATE registrations SET status = 'cancelled', cancelled_at = %s, cancelled_by = %s"
            " WHERE id = %s",
            (now, by, str(registration_id)),
        )

    def registrations(self, activity_id, after_position: int | None, limit: int) -> list[dict]:
        """The activity's registrations in order of arrival, each with the registrant's name."""
        return self.uow.all(
            f"SELECT {_REGISTRATION_COLUMNS}, {_NAME} AS name FROM registrations r"
            " WHERE r.activity_id = %s AND (%s::bigint IS NULL OR r.position > %s::bigint)"
            " ORDER BY r.position LIMIT %s",
            (str(activity_id), after_position, after_position, limit),
        )

    def registrant_name(self, registration_id) -> str | None:
        row = self.uow.one(
            f"SELECT {_NAME} AS name FROM registrations r WHERE r.id = %s", (str(registration_id),)
        )
        return None if row is None else row["name"]

    def check_in(self, activity_id, code: str, now: datetime) -> dict | None:
        """Check the confirmed registration with the code in, if it is not yet; the row lock
        makes a second scan at the same moment wait, then find it checked in."""
        return self.uow.one(
            f"""UPDATE registrations r SET checked_in_at = %s
                WHERE r.activity_id = %s AND r.check_in_code = %s AND r.status = 'confirmed'
                  AND r.checked_in_at IS NULL
                RETURNING {_REGISTRATION_COLUMNS}""",
            (now, str(activity_id), code),
        )

    def registration_by_code(self, activity_id, code: str) -> dict | None:
        return self.uow.one(
            f"SELECT {_REGISTRATION_COLUMNS} FROM registrations r"
            " WHERE r.activity_id = %s AND r.check_in_code = %s",
            (str(activity_id), code),
        )

    def registration_counts(self, activity_id) -> dict:
        return self.uow.one(
            """SELECT count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
                   count(*) FILTER (WHERE status = 'waitlisted') AS waitlisted,
                   count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                   count(*) FILTER (WHERE checked_in_at IS NOT NULL) AS attended
               FROM registrations WHERE activity_id = %s""",
            (str(activity_id),),
        )

    def represented_organizations(self, activity_id) -> list[dict]:
        """The organizations whose representatives checked in, by name."""
        return self.uow.all(
            """SELECT DISTINCT r.organization_id::text AS organization_id, o.name
               FROM registrations r LEFT JOIN organizations o ON o.id = r.organization_id
               WHERE r.activity_id = %s AND r.organization_id IS NOT NULL
                 AND r.checked_in_at IS NOT NULL
               ORDER BY o.name, organization_id""",
            (str(activity_id),),
        )

    # ------------------------------------------------------------ agreements

    def insert_agreement(self, agreement: dict) -> None:
        self.uow.execute(
            """INSERT INTO agreements (id, activity_id, title, signed_on, summary, recorded_by,
                   recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (agreement["id"], agreement["activity_id"], agreement["title"],
             agreement["signed_on"], agreement["summary"], agreement["recorded_by"],
             agreement["recorded_at"]),
        )  # fmt: skip
        psycopg2.extras.execute_values(
            self.uow.cursor,
            "INSERT INTO agreement_parties (agreement_id, position, organization_id, returnee_id)"
            " VALUES %s",
            [
                (agreement["id"], i, p["organization_id"], p["returnee_id"])
                for i, p in enumerate(agreement["parties"])
            ],
        )

    def agreements(self, activity_id) -> list[dict]:
        """The activity's agreements in the order recorded, each with its parties."""
        rows = self.uow.all(
            """SELECT a.id::text AS id, a.activity_id::text AS activity_id, a.title, a.signed_on,
                   a.summary, a.recorded_by::text AS recorded_by, a.recorded_at,
                   coalesce(json_agg(json_build_object(
                       'organization_id', p.organization_id, 'returnee_id', p.returnee_id)
                       ORDER BY p.position) FILTER (WHERE p.agreement_id IS NOT NULL), '[]')
                       AS parties
               FROM agreements a LEFT JOIN agreement_parties p ON p.agreement_id = a.id
               WHERE a.activity_id = %s GROUP BY a.id ORDER BY a.position""",
            (str(activity_id),),
        )
        return rows

    # ------------------------------------------------------------ intentions

    def save_intention(self, intention_id, activity_id, organization_id, status: str,
                       at: datetime) -> None:  # fmt: skip
        """As matching reports it; a decision is final, so an `expressed` arriving after it
        (events reorder) changes nothing."""
        self.uow.execute(
            """INSERT INTO intentions (id, activity_id, organization_id, status, updated_at)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                   updated_at = EXCLUDED.updated_at
               WHERE intentions.status = 'expressed'""",
            (str(intention_id), str(activity_id), str(organization_id), status, at),
        )

    def intentions(self, activity_id) -> list[dict]:
        return self.uow.all(
            """SELECT id::text AS id, activity_id::text AS activity_id,
                   organization_id::text AS organization_id, status, updated_at
               FROM intentions WHERE activity_id = %s ORDER BY updated_at, id""",
            (str(activity_id),),
        )
