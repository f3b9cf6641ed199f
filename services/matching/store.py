"""SQL of the matching service, reached only through the unit of work (`uow.store`).

`memory.MemoryStore` is its in-memory twin for handler unit tests: same methods, same answers.

The engine reads the catalog through `catalog()` alone, and the returnees (reverse matching)
through `returnee_table()`. A replica keeps both in memory between units of work (`Replica`:
`ReplicaCatalog` and `ReplicaReturnees`, handed to the store by
`chassis.db.Database(replica=...)`) and brings them up to date inside the reading transaction
with the rows changed since; without one (scripts, seeds) they are read whole from the tables.
"""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from psycopg2.extras import execute_values

from chassis import access
from chassis.paging import Keyset, Page
from services.matching.engine import Catalog, Match, Profile, Resource, ReturneeTable

# match ids are derived from (returnee, resource), so a re-computed match keeps its id and the
# feedback given on it.
_MATCH_NAMESPACE = uuid.UUID("8f2d7c1e-3b4a-4f5e-9c6d-2a1b0e9f8d7c")

# Advisory locks of "a returnee's matches": whoever rewrites them holds the returnee's lock and
# only then reads the catalog, so of two concurrent re-matches the later one sees what the
# earlier one saw and more, and never overwrites a newer list with an older one. Only ever a few
# returnees at a time (a re-match batch at most): a transaction holding thousands would fill
# PostgreSQL's lock table, and a lock on all of them would stop every feedback while it is held.
_RETURNEE_MATCHES_LOCK = 7  # with hashtext(returnee id); a collision only makes two wait
MAX_LOCKED = 1000


def match_id(returnee_id: str, resource_id: str) -> str:
    return str(uuid.uuid5(_MATCH_NAMESPACE, f"{returnee_id}:{resource_id}"))


def as_resource(row: dict) -> Resource:
    """A resource row (`resource()`, the catalog's) as the engine sees it."""
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


def as_profile(row: dict) -> Profile:
    return Profile(
        returnee_id=row["id"],
        industry=row["industry"],
        stage=row["startup_stage"],
        needs=tuple(row["needs"]),
        district=row["district"],
        dismissed=frozenset(row["dismissed"]),
    )


@dataclass(frozen=True)
class Saved:
    """A profile just stored (`save_returnee`): as stored, with its dismissals, and the
    resources the returnee is matched to before the re-match it calls for."""

    profile: Profile
    matched: tuple[str, ...]


def check_lockable(returnee_ids: Sequence[str]) -> None:
    if len(returnee_ids) > MAX_LOCKED:
        raise ValueError(f"{len(returnee_ids)} returnees locked at once; queue them instead")


_RESOURCE_COLUMNS = """r.id::text AS id, r.organization_id::text AS organization_id,
    o.name AS organization_name, r.title, r.kind, r.needs_served, r.industries, r.stages,
    r.district, r.capacity, r.capacity - r.taken AS capacity_left, r.valid_from, r.valid_until,
    r.description, r.published_at, r.withdrawn_at"""

_INTENTION_COLUMNS = """i.id::text AS intention_id, i.returnee_id::text AS returnee_id,
    i.resource_id::text AS resource_id, i.organization_id::text AS organization_id, i.status,
    i.message, i.response, i.expressed_at, i.decided_at, r.title AS resource_title,
    i.activity_id::text AS activity_id"""


# The orders of the listings answered a page at a time (chassis.paging).
RESOURCES = Keyset(
    "published_at",
    "id",
    types=(datetime, UUID),
    descending=True,
    columns=("r.published_at", "r.id"),
)
INTENTIONS = Keyset(
    "expressed_at",
    "intention_id",
    types=(datetime, UUID),
    descending=True,
    columns=("i.expressed_at", "i.id"),
)

_LIVE = (
    "SELECT id::text, organization_id::text, needs_served, industries, stages, district,"
    " capacity, capacity - taken AS capacity_left, valid_from, valid_until"
    " FROM resources WHERE withdrawn_at IS NULL"
)
_CHANGED = (
    "SELECT id::text, organization_id::text, needs_served, industries, stages, district,"
    " capacity, capacity - taken AS capacity_left, valid_from, valid_until, withdrawn_at"
    " FROM resources WHERE version > %s"
)


# The catalog is read under a share lock of the version row, which every resource write locks
# (its trigger) until it commits. A read waits for a write in flight and sees it; a write waits
# for the matches read before it to commit. So a returnee matched while a resource is published
# either sees the resource, or is committed before the resource is, and then its reverse match
# (`resource.published`, read after that commit) sees the returnee: nobody misses a resource.
# `own`: this transaction took the version (it wrote a resource, maybe in another unit of work
# of the same transaction: a batch of events), so what it reads is not committed.
LOCKED_VERSION = (
    "SELECT version, coalesce(written_by = pg_current_xact_id_if_assigned()::text::bigint,"
    " false) AS own FROM catalog_version FOR SHARE"
)


class ReplicaCatalog:
    """The catalog as one replica holds it between units of work.

    Every write to a resource (published, withdrawn, a place taken) takes the next catalog
    version (a trigger, migration 0006); versions commit in order. A read brings the held
    catalog up to the version the reading transaction sees, reading only the rows written since
    the version held, so it answers as a read of the whole table in that transaction would: a
    re-match that locked a returnee's matches and then reads the catalog sees at least what an
    earlier re-match saw. It is built whole when the replica starts (or by the first read, if
    the database was unreachable then), and by a read after more than `REBUILD_AFTER`
    changes."""

    REBUILD_AFTER = 5000

    def __init__(self):
        self.catalog: Catalog | None = None
        self.version = -1
        self.builds = 0  # whole builds, for tests and metrics

    def start(self, uow) -> None:
        """Built at the replica's start (`chassis.db.Database`), before a returnee waits on it."""
        self.current(uow)

    def current(self, uow) -> Catalog:
        read = uow.one(LOCKED_VERSION)
        if read["own"]:  # this transaction's own writes: read, not held
            return Catalog(as_resource(row) for row in uow.all(_LIVE))
        version = read["version"]
        catalog, held = self.catalog, self.version
        if catalog is not None and version == held:
            return catalog
        if catalog is None or version - held > self.REBUILD_AFTER:
            catalog = Catalog(as_resource(row) for row in uow.all(_LIVE))
            self.builds += 1
        else:
            rows = uow.all(_CHANGED, (held,))
            catalog = catalog.changed(
                [as_resource(r) for r in rows if r["withdrawn_at"] is None],
                [r["id"] for r in rows if r["withdrawn_at"] is not None],
            )
        # Rows read after the version may be newer still: applied again next time, harmlessly.
        if version > self.version:  # another unit of work may have brought it further already
            self.catalog, self.version = catalog, version
        return catalog


# The returnees as reverse matching reads them: every stored returnee consents to matching.
_RETURNEES = (
    "SELECT coalesce(array_agg(id::text ORDER BY id), '{}') AS ids,"
    " coalesce(array_agg(industry ORDER BY id), '{}') AS industries,"
    " coalesce(array_agg(startup_stage ORDER BY id), '{}') AS stages,"
    " coalesce(array_agg(array_to_string(needs, ',') ORDER BY id), '{}') AS needs,"
    " coalesce(array_agg(district ORDER BY id), '{}') AS districts FROM returnees"
)
# Where the next read starts: the oldest transaction still running (the cluster's) when this
# statement's snapshot was taken; every transaction before it has committed or rolled back.
# `own`: this transaction's id, if it has one (it wrote something).
_HORIZON = (
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon,"
    " pg_current_xact_id_if_assigned()::text::bigint AS own"
)
# Every returnee written or deleted by a transaction from the horizon on but those already
# read, in one statement (one snapshot: an id is either stored or deleted in it).
_RETURNEES_CHANGED = (
    "SELECT id::text AS id, industry, startup_stage, needs, district, changed_by,"
    " false AS deleted FROM returnees WHERE changed_by >= %(horizon)s"
    " AND changed_by <> ALL(%(seen)s::bigint[])"
    " UNION ALL SELECT returnee_id::text, NULL, NULL, NULL, NULL, changed_by, true"
    " FROM returnee_deletions WHERE changed_by >= %(horizon)s"
    " AND changed_by <> ALL(%(seen)s::bigint[])"
)
_OWN_RETURNEE_WRITES = (
    "SELECT EXISTS (SELECT 1 FROM returnees WHERE changed_by = %(own)s)"
    " OR EXISTS (SELECT 1 FROM returnee_deletions WHERE changed_by = %(own)s) AS wrote"
)


class ReplicaReturnees:
    """The returnees' columns (reverse matching) as one replica holds them between units of
    work.

    Every write to a returnee records its transaction's id (`changed_by`, a trigger, migration
    0009), and a deletion (consent withdrawn, erasure) leaves the opaque id and its transaction's
    id in `returnee_deletions`. A read notes the horizon of its snapshot (the oldest transaction
    running then: everything before it has ended) and the next read takes only the rows changed
    by transactions from that horizon on, so a transaction that commits after a read, however
    early it began, is read the next time; rows read twice are applied twice, harmlessly. The
    transactions from the horizon on whose rows a read applied are not read again: a
    transaction's writes become visible at once, so what was seen of it is all of it, and a
    later write to the same row carries a later transaction's id (a long transaction keeps the
    horizon back, not the rows read). No
    counter: writers of returnees (profile events, many at once) never wait on each other. The
    held table answers as a read of the whole table in the reading transaction would. It is
    built whole when the replica starts (or by the first read)."""

    def __init__(self):
        self.table: ReturneeTable | None = None
        self.horizon = -1
        self.seen: frozenset[int] = frozenset()  # transactions from the horizon on, applied
        self.builds = 0  # whole builds, for tests and metrics
        self.rows_read = 0  # changed rows the last read took, for tests and metrics

    def start(self, uow) -> None:
        self.current(uow)

    @staticmethod
    def read(uow) -> ReturneeTable:
        """Every stored returnee read whole, as the engine's columns: one row of arrays."""
        row = uow.one(_RETURNEES)
        return ReturneeTable.from_columns(
            row["ids"],
            row["industries"],
            row["stages"],
            [n.split(",") if n else [] for n in row["needs"]],
            row["districts"],
        )

    def current(self, uow) -> ReturneeTable:
        read = uow.one(_HORIZON)
        horizon, own = read["horizon"], read["own"]
        table, held, seen = self.table, self.horizon, self.seen
        if table is None:
            table = self.read(uow)
            built, seen = True, frozenset()
        else:
            rows = uow.all(_RETURNEES_CHANGED, {"horizon": held, "seen": sorted(seen)})
            self.rows_read = len(rows)
            seen = seen | {r["changed_by"] for r in rows}
            table = table.changed(
                [
                    (r["id"], r["industry"], r["startup_stage"], r["needs"], r["district"])
                    for r in rows
                    if not r["deleted"]
                ],
                [r["id"] for r in rows if r["deleted"]],
            )
            built = False
        if own is not None and uow.one(_OWN_RETURNEE_WRITES, {"own": own})["wrote"]:
            return table  # this transaction's own writes, not committed: read, not held
        self.builds += built
        # Another unit of work may have brought it further already; at the same horizon this
        # read is the later one.
        if horizon >= self.horizon:
            self.table, self.horizon = table, horizon
            self.seen = frozenset(t for t in seen if t >= horizon)
        return table


class Replica:
    """What one replica holds in memory between units of work (`chassis.db.Database`'s
    `replica=`): the catalog of resources and the returnees' columns, each kept current."""

    def __init__(self):
        self.catalog = ReplicaCatalog()
        self.returnees = ReplicaReturnees()

    def start(self, uow) -> None:
        """Both built at the replica's start, before an event waits on them; the returnees
        first: the catalog's read holds the version row's share lock to the end of this
        transaction, and resource writes wait for it."""
        self.returnees.start(uow)
        self.catalog.start(uow)


class MatchingStore:
    """The matching tables, through one unit of work's transaction."""

    def __init__(self, uow, replica: Replica | None = None):
        self.uow = uow
        self.replica = replica
        # A unit of work that wrote a resource reads the catalog from the table: what it sees
        # is not committed, and must not become the replica's.
        self._wrote_resources = False
        self._locked: set[str] = set()  # the matches' locks taken outside a batch (`lock_matches`)

    # ------------------------------------------------------------ organizations

    def save_organization(self, organization_id, name: str, kind: str, district=None) -> None:
        self.uow.execute(
            "INSERT INTO organizations (id, name, kind, district) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
            " district = EXCLUDED.district",
            (str(organization_id), name, kind, district),
        )

    def add_organization(self, organization_id, name: str, kind: str, district=None) -> bool:
        """The organization unless it is known already (its stored name wins); True: added."""
        row = self.uow.one(
            "INSERT INTO organizations (id, name, kind, district) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            (str(organization_id), name, kind, district),
        )
        return row is not None

    def organization(self, organization_id) -> dict | None:
        return self.uow.one(
            "SELECT id::text AS id, name, kind, district FROM organizations WHERE id = %s",
            (str(organization_id),),
        )

    def organizations_named(self, names) -> dict[str, str]:
        """The first known organization of each name (by id): name → id."""
        rows = self.uow.all(
            "SELECT DISTINCT ON (name) name, id::text AS id FROM organizations"
            " WHERE name = ANY(%s) ORDER BY name, id",
            (list(names),),
        )
        return {row["name"]: row["id"] for row in rows}

    def organizations_known(self, organization_ids) -> set[str]:
        rows = self.uow.all(
            "SELECT id::text AS id FROM organizations WHERE id = ANY(%s::uuid[])",
            ([str(o) for o in organization_ids],),
        )
        return {row["id"] for row in rows}

    # ------------------------------------------------------------ resources

    def insert_resource(self, resource_id, data: dict) -> dict:
        self._wrote_resources = True
        self.uow.execute(
            "INSERT INTO resources (id, organization_id, title, kind, needs_served, industries,"
            " stages, district, capacity, valid_from, valid_until, description)"
            " VALUES (%(id)s, %(organization_id)s, %(title)s, %(kind)s, %(needs_served)s,"
            " %(industries)s, %(stages)s, %(district)s, %(capacity)s, %(valid_from)s,"
            " %(valid_until)s, %(description)s) ON CONFLICT (id) DO NOTHING",
            {**data, "id": str(resource_id), "organization_id": str(data["organization_id"])},
        )
        return self.resource(resource_id)

    def resource(self, resource_id, lock: bool = False) -> dict | None:
        return self.uow.one(
            f"SELECT {_RESOURCE_COLUMNS} FROM resources r JOIN organizations o"
            f" ON o.id = r.organization_id WHERE r.id = %s{' FOR UPDATE OF r' if lock else ''}",
            (str(resource_id),),
        )

    def resources_titled(self, pairs) -> dict[tuple[str, str], str]:
        """Resources on offer (not withdrawn) by organization and title: (org id, title) → id."""
        if not pairs:
            return {}
        rows = self.uow.all(
            "SELECT organization_id::text AS organization_id, title, id::text AS id FROM resources"
            " WHERE withdrawn_at IS NULL AND (organization_id::text, title) IN %s",
            (tuple(pairs),),
        )
        return {(row["organization_id"], row["title"]): row["id"] for row in rows}

    def resources(self, filters: dict, today: date) -> Page:
        """Newest first, a page of `limit` after `cursor` (and `offset` more)."""
        where = ["r.withdrawn_at IS NULL"]
        params: dict = {"today": today, "limit": filters["limit"] + 1,
                        "offset": filters.get("offset", 0)}  # fmt: skip
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
        after, values = RESOURCES.clause(filters.get("cursor"))
        for i, value in enumerate(values):  # the query's parameters are named
            after = after.replace("%s", f"%(after{i})s", 1)
            params[f"after{i}"] = value
        rows = self.uow.all(
            f"SELECT {_RESOURCE_COLUMNS} FROM resources r JOIN organizations o"
            f" ON o.id = r.organization_id WHERE {' AND '.join(where)} AND {after}"
            f" ORDER BY {RESOURCES.order_by()} LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        return RESOURCES.page(rows, filters["limit"])

    def change_resource(self, resource_id, changes: dict) -> dict:
        """The resource with `changes` (capacity, valid_from, valid_until) applied; the update
        takes the next catalog version, as every write does."""
        self._wrote_resources = True
        columns = [c for c in ("capacity", "valid_from", "valid_until") if c in changes]
        self.uow.execute(
            "UPDATE resources SET " + ", ".join(f"{c} = %({c})s" for c in columns)
            + " WHERE id = %(id)s",
            {**{c: changes[c] for c in columns}, "id": str(resource_id)},
        )  # fmt: skip
        return self.resource(resource_id)

    def withdraw_resource(self, resource_id) -> bool:
        """False when it was withdrawn already."""
        self._wrote_resources = True
        row = self.uow.one(
            "UPDATE resources SET withdrawn_at = now() WHERE id = %s AND withdrawn_at IS NULL"
            " RETURNING id",
            (str(resource_id),),
        )
        return row is not None

    def take_place(self, resource_id) -> int | None:
        """One place of the resource, atomically: concurrent accepts queue on the row lock and
        the condition is re-checked after the wait, so places are never over-taken. The places
        left after it; None: none was left."""
        self._wrote_resources = True
        row = self.uow.one(
            "UPDATE resources SET taken = taken + 1 WHERE id = %s AND taken < capacity"
            " AND withdrawn_at IS NULL RETURNING capacity - taken AS capacity_left",
            (str(resource_id),),
        )
        return None if row is None else row["capacity_left"]

    def catalog(self) -> Catalog:
        """Every resource not withdrawn, as the engine's columns (validity and capacity are its
        filters, so the same catalog serves any day): the replica's, brought up to date, or
        read from the table."""
        if self.replica is None or self._wrote_resources:
            self.uow.one(LOCKED_VERSION)
            return Catalog(as_resource(row) for row in self.uow.all(_LIVE))
        return self.replica.catalog.current(self.uow)

    # ------------------------------------------------------------ returnees

    def is_erased(self, returnee_id) -> bool:
        found = self.uow.one(
            "SELECT 1 AS x FROM erasures WHERE returnee_id = %s", (str(returnee_id),)
        )
        return found is not None

    def save_returnee(self, returnee_id, profile: dict, profile_time: datetime) -> Saved | None:
        """Store the profile unless the returnee was erased, a newer profile is stored already
        or consent was withdrawn after it (events arrive out of order); a withdrawal before it
        is deleted. One statement, which returns what a re-match of the returnee reads besides
        the catalog: the profile as stored with its dismissals, and the resources it is matched
        to now. None when not stored."""
        row = self.uow.one(
            "WITH erased AS (SELECT 1 FROM erasures WHERE returnee_id = %(id)s::uuid),"
            " later AS (SELECT 1 FROM withdrawals WHERE returnee_id = %(id)s::uuid"
            "   AND withdrawn_at > %(time)s::timestamptz),"
            " gone AS (DELETE FROM withdrawals WHERE returnee_id = %(id)s::uuid"
            "   AND NOT EXISTS (SELECT 1 FROM later) AND NOT EXISTS (SELECT 1 FROM erased))"
            " INSERT INTO returnees (id, locale, industry, startup_stage, needs, district,"
            " profile_time) SELECT %(id)s::uuid, %(locale)s::text, %(industry)s::text,"
            " %(startup_stage)s::text, %(needs)s::text[], %(district)s::text,"
            " %(time)s::timestamptz WHERE NOT EXISTS (SELECT 1 FROM later)"
            " AND NOT EXISTS (SELECT 1 FROM erased)"
            " ON CONFLICT (id) DO UPDATE SET locale = EXCLUDED.locale,"
            " industry = EXCLUDED.industry, startup_stage = EXCLUDED.startup_stage,"
            " needs = EXCLUDED.needs, district = EXCLUDED.district,"
            " profile_time = EXCLUDED.profile_time"
            " WHERE returnees.profile_time <= EXCLUDED.profile_time"
            " RETURNING id::text AS id, industry, startup_stage, needs, district,"
            " coalesce((SELECT array_agg(d.resource_id::text) FROM dismissals d"
            "   WHERE d.returnee_id = returnees.id), '{}') AS dismissed,"
            " coalesce((SELECT array_agg(m.resource_id::text) FROM matches m"
            "   WHERE m.returnee_id = returnees.id), '{}') AS matched",
            {**profile, "id": str(returnee_id), "time": profile_time},
        )
        if row is None:
            return None
        return Saved(as_profile(row), tuple(row["matched"]))

    def record_withdrawal(self, returnee_id, withdrawn_at: datetime) -> None:
        self.uow.execute(
            "INSERT INTO withdrawals (returnee_id, withdrawn_at) VALUES (%s, %s)"
            " ON CONFLICT (returnee_id) DO UPDATE"
            " SET withdrawn_at = greatest(withdrawals.withdrawn_at, EXCLUDED.withdrawn_at)",
            (str(returnee_id), withdrawn_at),
        )

    def forget_returnee(self, returnee_id) -> list[str]:
        """Delete the returnee's profile, matches and dismissals; returns the resource ids that
        were matched."""
        rid = str(returnee_id)
        removed = self.uow.all(
            "DELETE FROM matches WHERE returnee_id = %s RETURNING resource_id::text", (rid,)
        )
        self.uow.execute("DELETE FROM dismissals WHERE returnee_id = %s", (rid,))
        self.uow.execute("DELETE FROM returnees WHERE id = %s", (rid,))
        return sorted(r["resource_id"] for r in removed)

    # Whose case is whose (`chassis.access`): matching opens none, it keeps those of consulting
    # and activities from their events.
    def keep_case_link(self, kind: str, case_id, returnee_id) -> None:
        access.store_link(self.uow, kind, case_id, returnee_id)

    def case_returnee(self, kind: str, case_id) -> str | None:
        return access.linked_returnee(self.uow, kind, case_id)

    def erase_returnee(self, returnee_id) -> list[str]:
        """Erasure (PIPL): profile, matches, dismissals, attendances and pending or declined
        intentions are deleted; accepted intentions stay counted without the person or their
        words. Returns the ids of every intention the returnee had (events about them carry
        their id)."""
        access.forget_links(self.uow, returnee_id)
        rid = str(returnee_id)
        self.forget_returnee(rid)
        intention_ids = [
            row["id"]
            for row in self.uow.all(
                "SELECT id::text AS id FROM intentions WHERE returnee_id = %s", (rid,)
            )
        ]
        self.uow.execute(
            "DELETE FROM intentions WHERE returnee_id = %s AND status <> 'accepted'", (rid,)
        )
        self.uow.execute(
            "UPDATE intentions SET returnee_id = NULL, message = NULL, response = NULL"
            " WHERE returnee_id = %s",
            (rid,),
        )
        self.uow.execute("DELETE FROM withdrawals WHERE returnee_id = %s", (rid,))
        self.uow.execute("DELETE FROM activity_attendances WHERE returnee_id = %s", (rid,))
        self.uow.execute(
            "INSERT INTO erasures (returnee_id) VALUES (%s) ON CONFLICT DO NOTHING", (rid,)
        )
        return intention_ids

    def profiles(self, returnee_ids: Sequence[str] | None = None) -> list[Profile]:
        """Profiles with their dismissals; all stored returnees when `returnee_ids` is None."""
        if returnee_ids is None:
            return self._profiles("returnees", ())
        return self._profiles(
            "(SELECT * FROM returnees WHERE id = ANY(%s::uuid[]))", (list(returnee_ids),)
        )

    def returnee_table(self) -> ReturneeTable:
        """Every stored returnee as the engine's columns (reverse matching): the replica's,
        brought up to date, or read whole from the table."""
        if self.replica is None:
            return ReplicaReturnees.read(self.uow)
        return self.replica.returnees.current(self.uow)

    def _profiles(self, source: str, params) -> list[Profile]:
        rows = self.uow.all(
            "SELECT r.id::text AS id, r.industry, r.startup_stage, r.needs, r.district,"
            " coalesce(array_agg(d.resource_id::text) FILTER (WHERE d.resource_id IS NOT NULL),"
            f" '{{}}') AS dismissed FROM {source} r LEFT JOIN dismissals d ON d.returnee_id = r.id"
            " GROUP BY r.id, r.industry, r.startup_stage, r.needs, r.district",
            params,
        )
        return [as_profile(row) for row in rows]

    def dismissed_by(self, resource_id) -> list[str]:
        rows = self.uow.all(
            "SELECT returnee_id::text AS id FROM dismissals WHERE resource_id = %s",
            (str(resource_id),),
        )
        return [r["id"] for r in rows]

    def dismiss(self, returnee_id, resource_id) -> None:
        self.uow.execute(
            "INSERT INTO dismissals (returnee_id, resource_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (str(returnee_id), str(resource_id)),
        )

    # ------------------------------------------------------------ matches

    def lock_matches(self, returnee_ids: Sequence[str]) -> None:
        """Lock the matches of these returnees until the transaction ends, in id order, so two
        transactions never wait on each other in a cycle. Many returnees go through the
        re-match queue instead (`queue_rematch`)."""
        if not returnee_ids:
            return
        check_lockable(returnee_ids)
        held = self._locks_held()
        wanted = sorted({str(r) for r in returnee_ids} - held)
        if not wanted:  # held until the transaction ends: taken again, a round trip for nothing
            return
        # Sent with the unit's next statement (`uow.write`), which PostgreSQL runs after the
        # locks are taken: every read and write they guard is a later statement.
        self.uow.write(
            # unnest keeps the (sorted) array's order
            "SELECT pg_advisory_xact_lock(%s, hashtext(id)) FROM unnest(%s::text[]) AS id",
            (_RETURNEE_MATCHES_LOCK, wanted),
        )
        held.update(wanted)

    def _locks_held(self) -> set:
        """The returnees whose matches' lock this transaction holds: the batch's
        (`chassis.uow.BatchScope`, one transaction for all its events), or this unit of work's."""
        batch = getattr(self.uow, "batch", None)
        if batch is not None:
            return batch.shared.setdefault("matching.locked", set())
        return self._locked

    def matched_resource_ids(self, returnee_ids: Sequence[str]) -> dict[str, list[str]]:
        rows = self.uow.all(
            "SELECT returnee_id::text AS returnee_id, resource_id::text AS resource_id"
            " FROM matches WHERE returnee_id = ANY(%s::uuid[])",
            (list(returnee_ids),),
        )
        found: dict[str, list[str]] = {rid: [] for rid in returnee_ids}
        for row in rows:
            found[row["returnee_id"]].append(row["resource_id"])
        return found

    def returnees_matched_to(self, resource_id) -> list[str]:
        rows = self.uow.all(
            "SELECT returnee_id::text AS id FROM matches WHERE resource_id = %s ORDER BY 1",
            (str(resource_id),),
        )
        return [r["id"] for r in rows]

    def replace_matches(self, computed: dict[str, list[Match]], held: bool = False) -> None:
        """Make the stored matches of these returnees exactly `computed`; a kept match keeps its
        id and status (feedback). One statement: the matches no longer computed deleted, the
        others written; the delete and the insert touch different rows. `held`: sent with the
        unit's next statement or its `COMMIT` (`uow.write`), not on its own."""
        if not computed:
            return
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
        columns = list(zip(*rows, strict=True)) if rows else [[]] * 7
        (self.uow.write if held else self.uow.execute)(
            "WITH gone AS (DELETE FROM matches WHERE returnee_id = ANY(%(returnees)s::uuid[])"
            "   AND (returnee_id, resource_id) NOT IN"
            "   (SELECT * FROM unnest(%(kept_returnees)s::uuid[], %(kept_resources)s::uuid[])))"
            " INSERT INTO matches (id, returnee_id, resource_id, organization_id, rank, score,"
            " reasons) SELECT * FROM unnest(%(ids)s::uuid[], %(kept_returnees)s::uuid[],"
            " %(kept_resources)s::uuid[], %(organizations)s::uuid[], %(ranks)s::integer[],"
            " %(scores)s::double precision[], %(reasons)s::jsonb[])"
            " ON CONFLICT (returnee_id, resource_id) DO UPDATE SET"
            " rank = EXCLUDED.rank, score = EXCLUDED.score, reasons = EXCLUDED.reasons",
            {
                "returnees": list(computed),
                "ids": list(columns[0]),
                "kept_returnees": list(columns[1]),
                "kept_resources": list(columns[2]),
                "organizations": list(columns[3]),
                "ranks": list(columns[4]),
                "scores": list(columns[5]),
                "reasons": list(columns[6]),
            },
        )

    def matches_of(self, returnee_id, today: date) -> list[dict]:
        """The returnee's matches still on offer today (not withdrawn, valid, with a place),
        best first."""
        return self.uow.all(
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

    def match(self, match_id_, lock: bool = False) -> dict | None:
        return self.uow.one(
            "SELECT id::text AS match_id, returnee_id::text AS returnee_id,"
            " resource_id::text AS resource_id, status FROM matches WHERE id = %s"
            + (" FOR UPDATE" if lock else ""),
            (str(match_id_),),
        )

    def set_match_status(self, returnee_id, resource_id, status: str) -> None:
        self.uow.execute(
            "UPDATE matches SET status = %s WHERE returnee_id = %s AND resource_id = %s",
            (status, str(returnee_id), str(resource_id)),
        )

    # ------------------------------------------------------------ the re-match queue
    # Lock order: the catalog version's share lock, a queue row, then the returnee's advisory
    # lock (the re-match loop); nothing takes them the other way round (erasure leaves the row:
    # its re-match finds no profile; the last place taken holds the version, then queues).

    def queue_rematch(self, returnee_ids: Sequence[str]) -> int:
        """Queue these returnees for the re-match loop. A returnee being re-matched right now is
        queued again once that batch commits (the upsert waits for its row), so a catalog
        change made after the batch read the catalog is never missed."""
        ids = sorted({str(r) for r in returnee_ids})
        if ids:
            execute_values(
                self.uow.cursor,
                "INSERT INTO rematch_queue (returnee_id) VALUES %s ON CONFLICT (returnee_id)"
                " DO UPDATE SET queued_at = EXCLUDED.queued_at",
                [(rid,) for rid in ids],
                template="(%s::uuid)",
                page_size=1000,
            )
        return len(ids)

    def claim_rematch(self, limit: int) -> list[str]:
        """The next queued returnees, oldest first, locked until the transaction ends; rows
        another transaction (a replica's loop) holds are skipped.

        The catalog version's share lock is taken first: the loop then reads the catalog, and
        a writer of a resource queues returnees while it holds the version row (the last place
        taken). Claimed rows first, the version after, would let the two wait on each other."""
        self.uow.one(LOCKED_VERSION)
        rows = self.uow.all(
            "SELECT returnee_id::text AS id FROM rematch_queue ORDER BY queued_at, returnee_id"
            " LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        )
        return [r["id"] for r in rows]

    def rematched(self, returnee_ids: Sequence[str]) -> None:
        self.uow.execute(
            "DELETE FROM rematch_queue WHERE returnee_id = ANY(%s::uuid[])", (list(returnee_ids),)
        )

    # ------------------------------------------------------------ intentions

    def insert_intention(self, intention_id, returnee_id, resource: dict,
                         message) -> dict | None:  # fmt: skip
        """None when the returnee has an open intention on the resource already."""
        row = self.uow.one(
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
        return self.intention(intention_id) if row else None

    def insert_activity_intention(self, intention_id, returnee_id, activity_id,
                                  organization_id, message) -> dict | None:  # fmt: skip
        """An intention met at an activity; None when the returnee has an open one toward the
        organization at that activity already."""
        row = self.uow.one(
            "INSERT INTO intentions (id, returnee_id, activity_id, organization_id, message)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (str(intention_id), str(returnee_id), str(activity_id), str(organization_id),
             message),
        )  # fmt: skip
        return self.intention(intention_id) if row else None

    def intention(self, intention_id) -> dict | None:
        return self.uow.one(
            f"SELECT {_INTENTION_COLUMNS} FROM intentions i"
            " LEFT JOIN resources r ON r.id = i.resource_id WHERE i.id = %s",
            (str(intention_id),),
        )

    def decide_intention(self, intention_id, status: str, response) -> dict | None:
        """Move an expressed intention to `status`; None when it was decided already (the row
        lock makes a concurrent second decision wait, then find it decided)."""
        row = self.uow.one(
            "UPDATE intentions SET status = %s, response = %s, decided_at = now()"
            " WHERE id = %s AND status = 'expressed' RETURNING id",
            (status, response, str(intention_id)),
        )
        return self.intention(intention_id) if row else None

    def intentions(self, returnee_id=None, organization_id=None, status=None, cursor=None,
                   limit: int = 50) -> Page:  # fmt: skip
        """Newest first, a page of `limit` after `cursor`."""
        where, params = [], []
        for column, value in (
            ("i.returnee_id", returnee_id),
            ("i.organization_id", organization_id),
            ("i.status", status),
        ):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(str(value))
        after, values = INTENTIONS.clause(cursor)
        where.append(after)
        rows = self.uow.all(
            f"SELECT {_INTENTION_COLUMNS} FROM intentions i"
            f" LEFT JOIN resources r ON r.id = i.resource_id WHERE {' AND '.join(where)}"
            f" ORDER BY {INTENTIONS.order_by()} LIMIT %s",
            (*params, *values, limit + 1),
        )
        return INTENTIONS.page(rows, limit)

    def intention_statistics(self) -> list[dict]:
        return self.uow.all(
            "SELECT o.id::text AS organization_id, o.name AS organization_name, o.kind,"
            " count(*) FILTER (WHERE i.status = 'accepted') AS accepted,"
            " count(*) FILTER (WHERE i.status = 'expressed') AS expressed,"
            " count(*) FILTER (WHERE i.status = 'declined') AS declined"
            " FROM organizations o JOIN intentions i ON i.organization_id = o.id"
            " GROUP BY o.id ORDER BY accepted DESC, o.name, o.id"
        )

    # ------------------------------------------------------------ activities

    def record_attendance(self, activity_id, returnee_id) -> None:
        self.uow.execute(
            "INSERT INTO activity_attendances (activity_id, returnee_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (str(activity_id), str(returnee_id)),
        )

    def record_activity_organizations(self, activity_id, organization_ids) -> None:
        for organization_id in organization_ids:
            self.uow.execute(
                "INSERT INTO activity_organizations (activity_id, organization_id)"
                " VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (str(activity_id), str(organization_id)),
            )

    def attended(self, activity_id, returnee_id) -> bool:
        found = self.uow.one(
            "SELECT 1 AS x FROM activity_attendances WHERE activity_id = %s AND returnee_id = %s",
            (str(activity_id), str(returnee_id)),
        )
        return found is not None

    def took_part(self, activity_id, organization_id) -> bool:
        """The organization organized the activity or was represented at it."""
        found = self.uow.one(
            "SELECT 1 AS x FROM activity_organizations WHERE activity_id = %s"
            " AND organization_id = %s",
            (str(activity_id), str(organization_id)),
        )
        return found is not None
