"""SQL of the matching database. Every function takes the unit of work (`tx`) it runs in."""

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime

from psycopg2.extras import execute_values

from services.matching.engine import Match, Profile, Resource

# match ids are derived from (returnee, resource), so a re-computed match keeps its id and the
# feedback given on it.
_MATCH_NAMESPACE = uuid.UUID("8f2d7c1e-3b4a-4f5e-9c6d-2a1b0e9f8d7c")


def match_id(returnee_id: str, resource_id: str) -> str:
    return str(uuid.uuid5(_MATCH_NAMESPACE, f"{returnee_id}:{resource_id}"))


# --- organizations -----------------------------------------------------------------------------


def save_organization(tx, organization_id, name, kind, district=None) -> None:
    tx.execute(
        "INSERT INTO organizations (id, name, kind, district) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
        " district = EXCLUDED.district",
        (str(organization_id), name, kind, district),
    )


def organization(tx, organization_id) -> dict | None:
    return tx.one("SELECT * FROM organizations WHERE id = %s", (str(organization_id),))


# --- resources ---------------------------------------------------------------------------------

_RESOURCE_COLUMNS = """r.id::text AS id, r.organization_id::text AS organization_id,
    o.name AS organization_name, r.title, r.kind, r.needs_served, r.industries, r.stages,
    r.district, r.capacity, r.capacity - r.taken AS capacity_left, r.valid_from, r.valid_until,
    r.description, r.published_at, r.withdrawn_at"""


def insert_resource(tx, resource_id: str, data: dict) -> dict:
    tx.execute(
        "INSERT INTO resources (id, organization_id, title, kind, needs_served, industries,"
        " stages, district, capacity, valid_from, valid_until, description)"
        " VALUES (%(id)s, %(organization_id)s, %(title)s, %(kind)s, %(needs_served)s,"
        " %(industries)s, %(stages)s, %(district)s, %(capacity)s, %(valid_from)s,"
        " %(valid_until)s, %(description)s) ON CONFLICT (id) DO NOTHING",
        {**data, "id": resource_id, "organization_id": str(data["organization_id"])},
    )
    return resource(tx, resource_id)


def resource(tx, resource_id, lock: bool = False) -> dict | None:
    return tx.one(
        f"SELECT {_RESOURCE_COLUMNS} FROM resources r JOIN organizations o"
        f" ON o.id = r.organization_id WHERE r.id = %s{' FOR UPDATE OF r' if lock else ''}",
        (str(resource_id),),
    )


def list_resources(tx, filters: dict, today: date) -> list[dict]:
    where = ["r.withdrawn_at IS NULL"]
    params: dict = {"today": today, "limit": filters["limit"], "offset": filters["offset"]}
    if not filters.get("include_expired"):
        where.append(
            "(r.valid_from IS NULL OR r.valid_from <= %(today)s)"
            " AND (r.valid_until IS NULL OR r.valid_until >= %(today)s)"
        )
    for name, clause in (
        ("kind", "r.kind = %(kind)s"),
        ("organization_id", "r.organization_id = %(organization_id)s"),
        ("need", "%(need)s = ANY(r.needs_served)"),
        ("industry", "(r.industries = '{}' OR %(industry)s = ANY(r.industries))"),
        ("stage", "(r.stages = '{}' OR %(stage)s = ANY(r.stages))"),
        ("district", "(r.district IS NULL OR lower(r.district) = lower(%(district)s))"),
    ):
        if filters.get(name) is not None:
            where.append(clause)
            params[name] = str(filters[name])
    if filters.get("available"):
        where.append("r.taken < r.capacity")
    return tx.all(
        f"SELECT {_RESOURCE_COLUMNS} FROM resources r JOIN organizations o"
        f" ON o.id = r.organization_id WHERE {' AND '.join(where)}"
        " ORDER BY r.published_at DESC, r.id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )


def withdraw_resource(tx, resource_id) -> dict | None:
    row = tx.one(
        "UPDATE resources SET withdrawn_at = now() WHERE id = %s AND withdrawn_at IS NULL"
        " RETURNING id",
        (str(resource_id),),
    )
    return resource(tx, resource_id) if row else None


def live_resources(tx) -> list[Resource]:
    """Every resource not withdrawn, as the engine sees it (validity and capacity are its
    filters, so the same catalog serves any day)."""
    rows = tx.all(
        "SELECT id::text, organization_id::text, needs_served, industries, stages, district,"
        " capacity, capacity - taken AS capacity_left, valid_from, valid_until"
        " FROM resources WHERE withdrawn_at IS NULL"
    )
    return [as_resource(row) for row in rows]


def as_resource(row: dict) -> Resource:
    """A row of `resource()` or `live_resources()` as the engine sees it."""
    return Resource(
        id=row["id"],
        organization_id=row["organization_id"],
        needs_served=tuple(row["needs_served"]),
        industries=tuple(row["industries"]),
        stages=tuple(row["stages"]),
        district=row["district"],
        capacity=row["capacity"],
        capacity_left=row["capacity_left"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
    )


def take_place(tx, resource_id) -> dict | None:
    """One place of the resource, atomically: concurrent accepts queue on the row lock and the
    condition is re-checked after the wait, so places are never over-taken. None: none left."""
    return tx.one(
        "UPDATE resources SET taken = taken + 1 WHERE id = %s AND taken < capacity"
        " AND withdrawn_at IS NULL RETURNING capacity - taken AS capacity_left",
        (str(resource_id),),
    )


# --- returnees ---------------------------------------------------------------------------------


def is_erased(tx, returnee_id) -> bool:
    return tx.one("SELECT 1 FROM erasures WHERE returnee_id = %s", (str(returnee_id),)) is not None


def save_returnee(tx, returnee_id, profile: dict, profile_time: datetime) -> bool:
    """Store the profile unless a newer one is stored already or consent was withdrawn after it
    (events arrive out of order). True when stored."""
    rid = str(returnee_id)
    withdrawn = tx.one("SELECT withdrawn_at FROM withdrawals WHERE returnee_id = %s", (rid,))
    if withdrawn and withdrawn["withdrawn_at"] > profile_time:
        return False
    tx.execute("DELETE FROM withdrawals WHERE returnee_id = %s", (rid,))
    row = tx.one(
        "INSERT INTO returnees (id, locale, industry, startup_stage, needs, district,"
        " profile_time) VALUES (%(id)s, %(locale)s, %(industry)s, %(startup_stage)s, %(needs)s,"
        " %(district)s, %(time)s)"
        " ON CONFLICT (id) DO UPDATE SET locale = EXCLUDED.locale,"
        " industry = EXCLUDED.industry, startup_stage = EXCLUDED.startup_stage,"
        " needs = EXCLUDED.needs, district = EXCLUDED.district,"
        " profile_time = EXCLUDED.profile_time"
        " WHERE returnees.profile_time <= EXCLUDED.profile_time RETURNING id",
        {**profile, "id": rid, "time": profile_time},
    )
    return row is not None


def record_withdrawal(tx, returnee_id, withdrawn_at: datetime) -> None:
    tx.execute(
        "INSERT INTO withdrawals (returnee_id, withdrawn_at) VALUES (%s, %s)"
        " ON CONFLICT (returnee_id) DO UPDATE"
        " SET withdrawn_at = greatest(withdrawals.withdrawn_at, EXCLUDED.withdrawn_at)",
        (str(returnee_id), withdrawn_at),
    )


def forget_returnee(tx, returnee_id) -> list[str]:
    """Delete the returnee's profile, matches and dismissals; returns the resource ids that were
    matched."""
    rid = str(returnee_id)
    removed = tx.all(
        "DELETE FROM matches WHERE returnee_id = %s RETURNING resource_id::text", (rid,)
    )
    tx.execute("DELETE FROM dismissals WHERE returnee_id = %s", (rid,))
    tx.execute("DELETE FROM returnees WHERE id = %s", (rid,))
    return sorted(r["resource_id"] for r in removed)


def erase_returnee(tx, returnee_id) -> list[str]:
    """Erasure (PIPL): profile, matches, dismissals and pending or declined intentions are
    deleted; accepted intentions stay counted without the person or their words. Returns the
    ids of every intention the returnee had (events about them carry their id)."""
    rid = str(returnee_id)
    forget_returnee(tx, rid)
    intention_ids = [
        row["id"]
        for row in tx.all("SELECT id::text AS id FROM intentions WHERE returnee_id = %s", (rid,))
    ]
    tx.execute("DELETE FROM intentions WHERE returnee_id = %s AND status <> 'accepted'", (rid,))
    tx.execute(
        "UPDATE intentions SET returnee_id = NULL, message = NULL, response = NULL"
        " WHERE returnee_id = %s",
        (rid,),
    )
    tx.execute("DELETE FROM withdrawals WHERE returnee_id = %s", (rid,))
    tx.execute("DELETE FROM activity_attendances WHERE returnee_id = %s", (rid,))
    tx.execute("INSERT INTO erasures (returnee_id) VALUES (%s) ON CONFLICT DO NOTHING", (rid,))
    return intention_ids


def profiles(tx, returnee_ids: Sequence[str] | None = None) -> list[Profile]:
    """Profiles with their dismissals; all stored returnees when `returnee_ids` is None."""
    if returnee_ids is None:
        return _profiles(tx, "returnees", ())
    return _profiles(
        tx, "(SELECT * FROM returnees WHERE id = ANY(%s::uuid[]))", (list(returnee_ids),)
    )


def profile_page(tx, after: str | None, limit: int) -> list[Profile]:
    """The next `limit` profiles by id after `after` (None: from the first), in id order."""
    return _profiles(
        tx,
        "(SELECT * FROM returnees WHERE %s::uuid IS NULL OR id > %s::uuid ORDER BY id LIMIT %s)",
        (after, after, limit),
        order="ORDER BY r.id",
    )


def _profiles(tx, source: str, params, order: str = "") -> list[Profile]:
    rows = tx.all(
        "SELECT r.id::text AS id, r.industry, r.startup_stage, r.needs, r.district,"
        " coalesce(array_agg(d.resource_id::text) FILTER (WHERE d.resource_id IS NOT NULL),"
        f" '{{}}') AS dismissed FROM {source} r LEFT JOIN dismissals d ON d.returnee_id = r.id"
        f" GROUP BY r.id, r.industry, r.startup_stage, r.needs, r.district {order}",
        params,
    )
    return [
        Profile(
            returnee_id=row["id"],
            industry=row["industry"],
            stage=row["startup_stage"],
            needs=tuple(row["needs"]),
            district=row["district"],
            dismissed=frozenset(row["dismissed"]),
        )
        for row in rows
    ]


def dismissed_by(tx, resource_id) -> list[str]:
    rows = tx.all(
        "SELECT returnee_id::text AS id FROM dismissals WHERE resource_id = %s",
        (str(resource_id),),
    )
    return [r["id"] for r in rows]


def dismiss(tx, returnee_id, resource_id) -> None:
    tx.execute(
        "INSERT INTO dismissals (returnee_id, resource_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (str(returnee_id), str(resource_id)),
    )


# --- matches -----------------------------------------------------------------------------------

# Advisory locks of "a returnee's matches": whoever rewrites them holds the returnee's lock and
# only then reads the catalog, so of two concurrent re-matches the later one sees what the
# earlier one saw and more, and never overwrites a newer list with an older one. Only ever a few
# returnees at a time (a re-match batch at most): a transaction holding thousands would fill
# PostgreSQL's lock table, and a lock on all of them would stop every feedback while it is held.
_RETURNEE_MATCHES_LOCK = 7  # with hashtext(returnee id); a collision only makes two wait
MAX_LOCKED = 1000


def lock_matches(tx, returnee_ids: Sequence[str]) -> None:
    """Lock the matches of these returnees until the transaction ends, in id order, so two
    transactions never wait on each other in a cycle. Many returnees go through the re-match
    queue instead (`queue_rematch`)."""
    if not returnee_ids:
        return
    if len(returnee_ids) > MAX_LOCKED:
        raise ValueError(f"{len(returnee_ids)} returnees locked at once; queue them instead")
    tx.execute(
        # unnest keeps the (sorted) array's order
        "SELECT pg_advisory_xact_lock(%s, hashtext(id)) FROM unnest(%s::text[]) AS id",
        (_RETURNEE_MATCHES_LOCK, sorted(str(r) for r in returnee_ids)),
    )


# --- the re-match queue --------------------------------------------------------------------------
# Lock order: a queue row, then the returnee's advisory lock (the re-match loop); nothing takes
# them the other way round (erasure leaves the row: its re-match finds no profile).


def queue_rematch(tx, returnee_ids: Sequence[str]) -> int:
    """Queue these returnees for the re-match loop. A returnee being re-matched right now is
    queued again once that batch commits (the upsert waits for its row), so a catalog change
    made after the batch read the catalog is never missed."""
    ids = sorted({str(r) for r in returnee_ids})
    if ids:
        execute_values(
            tx.cursor,
            "INSERT INTO rematch_queue (returnee_id) VALUES %s ON CONFLICT (returnee_id)"
            " DO UPDATE SET queued_at = EXCLUDED.queued_at",
            [(rid,) for rid in ids],
            template="(%s::uuid)",
            page_size=1000,
        )
    return len(ids)


def claim_rematch(tx, limit: int) -> list[str]:
    """The next queued returnees, oldest first, locked until the transaction ends; rows another
    transaction (a replica's loop) holds are skipped."""
    rows = tx.all(
        "SELECT returnee_id::text AS id FROM rematch_queue ORDER BY queued_at, returnee_id"
        " LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return [r["id"] for r in rows]


def rematched(tx, returnee_ids: Sequence[str]) -> None:
    tx.execute(
        "DELETE FROM rematch_queue WHERE returnee_id = ANY(%s::uuid[])", (list(returnee_ids),)
    )


def rematch_backlog(tx) -> int:
    return tx.one("SELECT count(*) AS n FROM rematch_queue")["n"]


# --- matches (rows) ------------------------------------------------------------------------------


def matched_resource_ids(tx, returnee_ids: Sequence[str]) -> dict[str, list[str]]:
    rows = tx.all(
        "SELECT returnee_id::text AS returnee_id, resource_id::text AS resource_id"
        " FROM matches WHERE returnee_id = ANY(%s::uuid[])",
        (list(returnee_ids),),
    )
    found: dict[str, list[str]] = {rid: [] for rid in returnee_ids}
    for row in rows:
        found[row["returnee_id"]].append(row["resource_id"])
    return found


def returnees_matched_to(tx, resource_id) -> list[str]:
    rows = tx.all(
        "SELECT returnee_id::text AS id FROM matches WHERE resource_id = %s ORDER BY 1",
        (str(resource_id),),
    )
    return [r["id"] for r in rows]


def replace_matches(tx, computed: dict[str, list[Match]]) -> None:
    """Make the stored matches of these returnees exactly `computed`; a kept match keeps its id
    and status (feedback)."""
    if not computed:
        return
    returnees = list(computed)
    pairs = [(rid, m.resource_id) for rid, ms in computed.items() for m in ms]
    tx.execute(
        "DELETE FROM matches WHERE returnee_id = ANY(%(returnees)s::uuid[])"
        " AND (returnee_id, resource_id) NOT IN"
        " (SELECT * FROM unnest(%(kept_returnees)s::uuid[], %(kept_resources)s::uuid[]))",
        {
            "returnees": returnees,
            "kept_returnees": [p[0] for p in pairs],
            "kept_resources": [p[1] for p in pairs],
        },
    )
    rows = [
        (
            match_id(rid, m.resource_id),
            rid,
            m.resource_id,
            m.organization_id,
            rank,
            m.score,
            json.dumps([r.as_dict() for r in m.reasons]),
        )
        for rid, ms in computed.items()
        for rank, m in enumerate(ms, start=1)
    ]
    if rows:
        execute_values(
            tx.cursor,
            "INSERT INTO matches (id, returnee_id, resource_id, organization_id, rank, score,"
            " reasons) VALUES %s ON CONFLICT (returnee_id, resource_id) DO UPDATE SET"
            " rank = EXCLUDED.rank, score = EXCLUDED.score, reasons = EXCLUDED.reasons",
            rows,
            template="(%s::uuid, %s::uuid, %s::uuid, %s::uuid, %s, %s, %s::jsonb)",
            page_size=1000,
        )


def matches_of(tx, returnee_id, today: date) -> list[dict]:
    """The returnee's matches still on offer today (not withdrawn, valid, with a place), best
    first."""
    return tx.all(
        "SELECT m.id::text AS match_id, m.resource_id::text AS resource_id,"
        " m.organization_id::text AS organization_id, o.name AS organization_name,"
        " r.title, r.kind, m.score, m.reasons, m.status, m.rank"
        " FROM matches m JOIN resources r ON r.id = m.resource_id"
        " JOIN organizations o ON o.id = m.organization_id"
        " WHERE m.returnee_id = %(id)s AND r.withdrawn_at IS NULL AND r.taken < r.capacity"
        " AND (r.valid_from IS NULL OR r.valid_from <= %(today)s)"
        " AND (r.valid_until IS NULL OR r.valid_until >= %(today)s)"
        " ORDER BY m.rank, m.resource_id",
        {"id": str(returnee_id), "today": today},
    )


def match(tx, match_id_, lock: bool = False) -> dict | None:
    return tx.one(
        "SELECT id::text AS match_id, returnee_id::text AS returnee_id,"
        " resource_id::text AS resource_id, status FROM matches WHERE id = %s"
        + (" FOR UPDATE" if lock else ""),
        (str(match_id_),),
    )


def set_match_status(tx, returnee_id, resource_id, status: str) -> None:
    tx.execute(
        "UPDATE matches SET status = %s WHERE returnee_id = %s AND resource_id = %s",
        (status, str(returnee_id), str(resource_id)),
    )


# --- intentions --------------------------------------------------------------------------------

_INTENTION_COLUMNS = """i.id::text AS intention_id, i.returnee_id::text AS returnee_id,
    i.resource_id::text AS resource_id, i.organization_id::text AS organization_id, i.status,
    i.message, i.response, i.expressed_at, i.decided_at, r.title AS resource_title,
    i.activity_id::text AS activity_id"""


def insert_intention(tx, intention_id, returnee_id, resource: dict, message) -> dict | None:
    """None when the returnee has an open intention on the resource already."""
    row = tx.one(
        "INSERT INTO intentions (id, returnee_id, resource_id, organization_id, message)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (
            str(intention_id),
            str(returnee_id),
            resource["id"],
            resource["organization_id"],
            message,
        ),
    )
    return intention(tx, intention_id) if row else None


def insert_activity_intention(tx, intention_id, returnee_id, activity_id, organization_id,
                              message) -> dict | None:  # fmt: skip
    """An intention met at an activity; None when the returnee has an open one toward the
    organization at that activity already."""
    row = tx.one(
        "INSERT INTO intentions (id, returnee_id, activity_id, organization_id, message)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (str(intention_id), str(returnee_id), str(activity_id), str(organization_id), message),
    )
    return intention(tx, intention_id) if row else None


def intention(tx, intention_id) -> dict | None:
    return tx.one(
        f"SELECT {_INTENTION_COLUMNS} FROM intentions i"
        " LEFT JOIN resources r ON r.id = i.resource_id WHERE i.id = %s",
        (str(intention_id),),
    )


def decide_intention(tx, intention_id, status: str, response) -> dict | None:
    """Move an expressed intention to `status`; None when it was decided already (the row lock
    makes a concurrent second decision wait, then find it decided)."""
    row = tx.one(
        "UPDATE intentions SET status = %s, response = %s, decided_at = now()"
        " WHERE id = %s AND status = 'expressed' RETURNING id",
        (status, response, str(intention_id)),
    )
    return intention(tx, intention_id) if row else None


def intentions(tx, returnee_id=None, organization_id=None, status=None) -> list[dict]:
    where, params = [], []
    for column, value in (
        ("i.returnee_id", returnee_id),
        ("i.organization_id", organization_id),
        ("i.status", status),
    ):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(str(value))
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    return tx.all(
        f"SELECT {_INTENTION_COLUMNS} FROM intentions i"
        f" LEFT JOIN resources r ON r.id = i.resource_id {condition}"
        " ORDER BY i.expressed_at DESC, i.id",
        params,
    )


def intention_statistics(tx) -> list[dict]:
    return tx.all(
        "SELECT o.id::text AS organization_id, o.name AS organization_name, o.kind,"
        " count(*) FILTER (WHERE i.status = 'accepted') AS accepted,"
        " count(*) FILTER (WHERE i.status = 'expressed') AS expressed,"
        " count(*) FILTER (WHERE i.status = 'declined') AS declined"
        " FROM organizations o JOIN intentions i ON i.organization_id = o.id"
        " GROUP BY o.id ORDER BY accepted DESC, o.name, o.id"
    )


# --- activities --------------------------------------------------------------------------------


def record_attendance(tx, activity_id, returnee_id) -> None:
    tx.execute(
        "INSERT INTO activity_attendances (activity_id, returnee_id) VALUES (%s, %s)"
        " ON CONFLICT DO NOTHING",
        (str(activity_id), str(returnee_id)),
    )


def record_activity_organizations(tx, activity_id, organization_ids) -> None:
    for organization_id in organization_ids:
        tx.execute(
            "INSERT INTO activity_organizations (activity_id, organization_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (str(activity_id), str(organization_id)),
        )


def attended(tx, activity_id, returnee_id) -> bool:
    return (
        tx.one(
            "SELECT 1 FROM activity_attendances WHERE activity_id = %s AND returnee_id = %s",
            (str(activity_id), str(returnee_id)),
        )
        is not None
    )


def took_part(tx, activity_id, organization_id) -> bool:
    """The organization organized the activity or was represented at it."""
    return (
        tx.one(
            "SELECT 1 FROM activity_organizations WHERE activity_id = %s AND organization_id = %s",
            (str(activity_id), str(organization_id)),
        )
        is not None
    )


# --- imports (services/matching/imports.py) ----------------------------------------------------


def organizations_named(tx, names) -> dict[str, str]:
    """The first known organization of each name: name → id."""
    rows = tx.all(
        "SELECT DISTINCT ON (name) name, id::text AS id FROM organizations"
        " WHERE name = ANY(%s) ORDER BY name, id",
        (list(names),),
    )
    return {row["name"]: row["id"] for row in rows}


def organizations_known(tx, organization_ids) -> set[str]:
    rows = tx.all(
        "SELECT id::text AS id FROM organizations WHERE id = ANY(%s::uuid[])",
        (list(organization_ids),),
    )
    return {row["id"] for row in rows}


def resources_titled(tx, pairs) -> dict[tuple[str, str], str]:
    """Resources on offer (not withdrawn) by organization and title: (org id, title) → id."""
    if not pairs:
        return {}
    rows = tx.all(
        "SELECT organization_id::text AS organization_id, title, id::text AS id FROM resources"
        " WHERE withdrawn_at IS NULL AND (organization_id::text, title) IN %s",
        (tuple(pairs),),
    )
    return {(row["organization_id"], row["title"]): row["id"] for row in rows}
