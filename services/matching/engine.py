"""The matching engine: which resources suit a returnee, how well, and why. Pure: no I/O.

Hard filters first (need served, industry, stage, district, capacity left, validity, not
dismissed before, consent to matching), then a weighted score with one reason per factor, then
the top K with provider diversity (no organization takes more than a configured share of the
list). Order is deterministic: best score first, ties broken by resource id.

Resources and returnees are held column-wise (`Catalog`, `ReturneeTable`) with the closed
vocabularies as bit masks, so one returnee against 100k resources, or one resource against 100k
returnees, is a handful of numpy operations instead of a Python loop.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from contracts.vocabulary import INDUSTRIES, NEEDS, STARTUP_STAGES

FACTORS = ("need", "industry", "stage", "district", "availability")

NEED_BITS = {need: 1 << i for i, need in enumerate(NEEDS)}
INDUSTRY_BITS = {industry: 1 << i for i, industry in enumerate(INDUSTRIES)}
STAGE_BITS = {stage: 1 << i for i, stage in enumerate(STARTUP_STAGES)}
# Number of set bits of every need mask: how many of a returnee's needs a resource serves.
_POPCOUNT = np.array([bin(m).count("1") for m in range(1 << len(NEEDS))], dtype=np.float64)

# A factor an open resource ("any industry", "any district") satisfies scores this much of what
# an explicit fit scores: a resource aimed at biotech suits a biotech founder better.
OPEN_FIT = 0.5
_NO_DISTRICT = -2  # a returnee without a company district: matches only open resources
_OPEN = -1
_NEVER = np.iinfo(np.int32).max
_ALWAYS = np.iinfo(np.int32).min


def mask(values: Iterable[str], bits: Mapping[str, int]) -> int:
    result = 0
    for value in values:
        result |= bits[value]
    return result


def district_key(district: str | None) -> str | None:
    """Districts are free text ("Changning", "changning "): compared case- and space-blind."""
    if district is None:
        return None
    key = " ".join(district.split()).casefold()
    return key or None


@dataclass(frozen=True)
class MatchPolicy:
    """How matches are scored and cut: weights per factor, list length, diversity."""

    weights: Mapping[str, float]
    top_k: int = 20
    max_organization_share: float = 0.25

    def __post_init__(self):
        unknown = set(self.weights) - set(FACTORS)
        if unknown:
            raise ValueError(f"unknown match factors: {sorted(unknown)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("match weights must be non-negative and not all zero")
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if not 0 < self.max_organization_share <= 1:
            raise ValueError("max_organization_share must be in (0, 1]")

    def weight(self, factor: str) -> float:
        return float(self.weights.get(factor, 0.0))

    @property
    def total_weight(self) -> float:
        return float(sum(self.weights.values()))

    @property
    def per_organization(self) -> int:
        """At most this many of the top K from one organization (at least one)."""
        return max(1, math.floor(self.top_k * self.max_organization_share + 1e-9))


@dataclass(frozen=True)
class Resource:
    id: str
    organization_id: str
    needs_served: tuple[str, ...]
    industries: tuple[str, ...] = ()  # empty: any industry
    stages: tuple[str, ...] = ()  # empty: any stage
    district: str | None = None  # None: any district
    capacity: int = 1
    capacity_left: int = 1
    valid_from: date | None = None
    valid_until: date | None = None


@dataclass(frozen=True)
class Profile:
    """What matching knows of a returnee: the minimum it needs."""

    returnee_id: str
    industry: str
    stage: str
    needs: tuple[str, ...]
    district: str | None = None
    consent: bool = True
    dismissed: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Reason:
    """Why a factor scored what it did; `code` and `args` are rendered per locale by
    `contracts.reasons`."""

    factor: str
    code: str
    args: Mapping = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"factor": self.factor, "code": self.code, "args": dict(self.args)}


@dataclass(frozen=True)
class Match:
    resource_id: str
    organization_id: str
    score: float
    reasons: tuple[Reason, ...]


class Catalog:
    """The resources, column-wise, sorted by id (so a position is also the tie-break rank)."""

    def __init__(self, resources: Iterable[Resource]):
        self.resources: list[Resource] = sorted(resources, key=lambda r: r.id)
        rs = self.resources
        self.ids = [r.id for r in rs]
        self.position = {rid: i for i, rid in enumerate(self.ids)}
        organizations = sorted({r.organization_id for r in rs})
        org_code = {org: i for i, org in enumerate(organizations)}
        self.organization_ids = organizations
        self.organization = np.array([org_code[r.organization_id] for r in rs], dtype=np.int32)
        self.needs = np.array([mask(r.needs_served, NEED_BITS) for r in rs], dtype=np.int32)
        self.industries = np.array([mask(r.industries, INDUSTRY_BITS) for r in rs], np.int32)
        self.stages = np.array([mask(r.stages, STAGE_BITS) for r in rs], dtype=np.int32)
        self.district_codes: dict[str, int] = {}
        self.district = np.array([self._district_code(r.district) for r in rs], dtype=np.int32)
        self.capacity = np.array([max(r.capacity, 1) for r in rs], dtype=np.float64)
        self.capacity_left = np.array([r.capacity_left for r in rs], dtype=np.int64)
        self.valid_from = np.array(
            [r.valid_from.toordinal() if r.valid_from else _ALWAYS for r in rs], dtype=np.int64
        )
        self.valid_until = np.array(
            [r.valid_until.toordinal() if r.valid_until else _NEVER for r in rs], dtype=np.int64
        )

    def _district_code(self, district: str | None) -> int:
        key = district_key(district)
        if key is None:
            return _OPEN
        return self.district_codes.setdefault(key, len(self.district_codes))

    def __len__(self) -> int:
        return len(self.resources)

    def changed(self, upserts: Iterable[Resource] = (), removed: Iterable[str] = ()) -> "Catalog":
        """A new catalog with `upserts` in (new resources, or the new state of one of the same
        id) and the `removed` ids out (an id in both is out), answering as `Catalog` of the
        resulting resources would; this one is left as it is (a reader may be using it). Costs
        the changed rows and a copy of the columns, not a rebuild: a place taken changes one
        row of 100,000."""
        removed = set(removed)
        upserts = {r.id: r for r in upserts if r.id not in removed}  # an id in both goes
        removed = {rid for rid in removed if rid in self.position}
        if not upserts and not removed:
            return self
        new = object.__new__(Catalog)
        new.district_codes = dict(self.district_codes)
        new.organization_ids = list(self.organization_ids)  # a code is an index into it
        codes = {org: i for i, org in enumerate(new.organization_ids)}
        columns = {name: getattr(self, name) for name in _COLUMNS}
        copied: set[str] = set()  # a column is copied once, when one of its values changes
        resources = list(self.resources)
        added = []
        for rid, resource in upserts.items():
            position = self.position.get(rid)
            if position is None:
                added.append(resource)
                continue
            resources[position] = resource
            for name, value in new._row(resource, codes).items():
                if columns[name][position] != value:
                    if name not in copied:
                        columns[name] = columns[name].copy()
                        copied.add(name)
                    columns[name][position] = value
        if not added and not removed:  # the same ids in the same places
            new.resources, new.ids, new.position = resources, self.ids, self.position
            for name, values in columns.items():
                setattr(new, name, values)
            return new
        if removed:
            drop = sorted(self.position[rid] for rid in removed)
            for name in _COLUMNS:
                columns[name] = np.delete(columns[name], drop)
            dropped = set(drop)
            resources = [r for i, r in enumerate(resources) if i not in dropped]
        if added:
            added.sort(key=lambda r: r.id)
            kept = np.array([r.id for r in resources], dtype=object)
            at = np.searchsorted(kept, np.array([r.id for r in added], dtype=object))
            rows = [new._row(r, codes) for r in added]
            for name in _COLUMNS:
                values = np.array([row[name] for row in rows], dtype=columns[name].dtype)
                columns[name] = np.insert(columns[name], at, values)
            for offset, (position, resource) in enumerate(zip(at.tolist(), added, strict=True)):
                resources.insert(position + offset, resource)
        new.resources = resources
        new.ids = [r.id for r in resources]
        new.position = {rid: i for i, rid in enumerate(new.ids)}
        for name, values in columns.items():
            setattr(new, name, values)
        return new

    def _row(self, r: Resource, organization_codes: dict[str, int]) -> dict:
        """One resource's values in the columns (a new organization gets the next code)."""
        if r.organization_id not in organization_codes:
            organization_codes[r.organization_id] = len(self.organization_ids)
            self.organization_ids.append(r.organization_id)
        return {
            "organization": organization_codes[r.organization_id],
            "needs": mask(r.needs_served, NEED_BITS),
            "industries": mask(r.industries, INDUSTRY_BITS),
            "stages": mask(r.stages, STAGE_BITS),
            "district": self._district_code(r.district),
            "capacity": max(r.capacity, 1),
            "capacity_left": r.capacity_left,
            "valid_from": r.valid_from.toordinal() if r.valid_from else _ALWAYS,
            "valid_until": r.valid_until.toordinal() if r.valid_until else _NEVER,
        }


_COLUMNS = ("organization", "needs", "industries", "stages", "district", "capacity",
            "capacity_left", "valid_from", "valid_until")  # fmt: skip


def match_resources(
    profile: Profile, catalog: Catalog, policy: MatchPolicy, today: date
) -> list[Match]:
    """The returnee's top K resources, best first, each with a reason per factor."""
    if not profile.consent or not profile.needs or len(catalog) == 0:
        return []
    need = mask(profile.needs, NEED_BITS)
    industry = INDUSTRY_BITS[profile.industry]
    stage = STAGE_BITS[profile.stage]
    key = district_key(profile.district)
    district = catalog.district_codes.get(key, _NO_DISTRICT) if key else _NO_DISTRICT
    day = today.toordinal()

    served = catalog.needs & need
    fits = served != 0
    fits &= (catalog.industries == 0) | ((catalog.industries & industry) != 0)
    fits &= (catalog.stages == 0) | ((catalog.stages & stage) != 0)
    fits &= (catalog.district == _OPEN) | (catalog.district == district)
    fits &= catalog.capacity_left > 0
    fits &= (catalog.valid_from <= day) & (catalog.valid_until >= day)
    for resource_id in profile.dismissed:
        position = catalog.position.get(resource_id)
        if position is not None:
            fits[position] = False
    candidates = np.flatnonzero(fits)
    if candidates.size == 0:
        return []

    factors = {
        "need": _POPCOUNT[served[candidates]] / _POPCOUNT[need],
        "industry": np.where(catalog.industries[candidates] == 0, OPEN_FIT, 1.0),
        "stage": np.where(catalog.stages[candidates] == 0, OPEN_FIT, 1.0),
        "district": np.where(catalog.district[candidates] == _OPEN, OPEN_FIT, 1.0),
        "availability": catalog.capacity_left[candidates] / catalog.capacity[candidates],
    }
    scores = _weighted(factors, policy)
    chosen = _top_diverse(candidates, scores, catalog.organization, policy)
    return [_explain(catalog.resources[i], s, profile, need, policy) for i, s in chosen]


def _weighted(factors: Mapping[str, np.ndarray], policy: MatchPolicy) -> np.ndarray:
    total = np.zeros_like(factors["need"], dtype=np.float64)
    for factor, values in factors.items():
        weight = policy.weight(factor)
        if weight:
            total += weight * np.minimum(values, 1.0)
    # Rounded so that scores equal to the eye are equal to the sort, and ties go to the id.
    return np.round(total / policy.total_weight, 6)


def _top_diverse(candidates, scores, organization, policy: MatchPolicy):
    """(position, score) of the top K by (-score, id) with at most `per_organization` of the
    list from one organization. Only a pool of the best is sorted; the pool grows when one
    organization crowds it."""
    cap = policy.per_organization
    pool = min(candidates.size, policy.top_k * 4)
    while True:
        if pool < candidates.size:
            # Everything scoring at least the pool-th best score: ties at the edge come along.
            threshold = np.partition(scores, candidates.size - pool)[candidates.size - pool]
            inside = np.flatnonzero(scores >= threshold)
        else:
            inside = np.arange(candidates.size)
        order = inside[np.lexsort((candidates[inside], -scores[inside]))]
        chosen, taken = [], {}
        for j in order:
            org = int(organization[candidates[j]])
            if taken.get(org, 0) >= cap:
                continue
            taken[org] = taken.get(org, 0) + 1
            chosen.append((int(candidates[j]), float(scores[j])))
            if len(chosen) == policy.top_k:
                return chosen
        if inside.size == candidates.size:
            return chosen
        pool = min(candidates.size, pool * 4)


def _explain(resource: Resource, score: float, profile: Profile, need: int, policy) -> Match:
    reasons = []
    weights = policy.weights
    if weights.get("need"):
        served = [n for n in NEEDS if NEED_BITS[n] & need and n in resource.needs_served]
        reasons.append(Reason("need", "serves_needs", {"needs": served}))
    if weights.get("industry"):
        if resource.industries:
            reasons.append(Reason("industry", "industry", {"industry": profile.industry}))
        else:
            reasons.append(Reason("industry", "any_industry"))
    if weights.get("stage"):
        if resource.stages:
            reasons.append(Reason("stage", "stage", {"stage": profile.stage}))
        else:
            reasons.append(Reason("stage", "any_stage"))
    if weights.get("district"):
        if resource.district:
            reasons.append(Reason("district", "district", {"district": resource.district}))
        else:
            reasons.append(Reason("district", "any_district"))
    if weights.get("availability"):
        left = {"left": resource.capacity_left, "capacity": resource.capacity}
        reasons.append(Reason("availability", "places_left", left))
    return Match(resource.id, resource.organization_id, score, tuple(reasons))


# --- reverse matching: one resource against every returnee -------------------------------------


class ReturneeTable:
    """Returnees column-wise, sorted by id, for reverse matching."""

    def __init__(self, profiles: Iterable[Profile]):
        ps = sorted(profiles, key=lambda p: p.returnee_id)
        self._fill(
            [p.returnee_id for p in ps],
            [p.industry for p in ps],
            [p.stage for p in ps],
            [p.needs for p in ps],
            [p.district for p in ps],
            [p.consent for p in ps],
        )

    @classmethod
    def from_columns(cls, ids: Sequence[str], industries: Sequence[str], stages: Sequence[str],
                     needs: Sequence[Iterable[str]],
                     districts: Sequence[str | None]) -> "ReturneeTable":  # fmt: skip
        """The table of returnees given column by column, already in id order, each consenting
        to matching (the store keeps no one else): no `Profile` per returnee is made."""
        table = object.__new__(cls)
        table._fill(list(ids), industries, stages, needs, districts, None)
        return table

    def _fill(self, ids, industries, stages, needs, districts, consents) -> None:
        self.ids = ids
        self.id_array = np.array(ids, dtype=object)
        self.position = {rid: i for i, rid in enumerate(ids)}
        self.needs = np.array([mask(n, NEED_BITS) for n in needs], dtype=np.int32)
        self.industry = np.array([INDUSTRY_BITS[i] for i in industries], dtype=np.int32)
        self.stage = np.array([STAGE_BITS[s] for s in stages], dtype=np.int32)
        self.consent = (
            np.ones(len(ids), dtype=bool) if consents is None else np.array(consents, dtype=bool)
        )
        self.district_codes: dict[str, int] = {}
        codes = []
        for district in districts:
            key = district_key(district)
            codes.append(
                _NO_DISTRICT
                if key is None
                else self.district_codes.setdefault(key, len(self.district_codes))
            )
        self.district = np.array(codes, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.ids)

    def changed(
        self, upserts: Iterable[tuple] = (), removed: Iterable[str] = ()
    ) -> "ReturneeTable":
        """A new table with `upserts` in, each `(id, industry, stage, needs, district)` (a new
        returnee, or the new profile of one of the same id), and the `removed` ids out (an id
        in both is out), answering as `from_columns` of the resulting returnees would; this
        one is left as it is (a reader may be using it). Costs the changed rows and a copy of
        the columns, not a rebuild."""
        removed = set(removed)
        upserts = {row[0]: row for row in upserts if row[0] not in removed}
        removed = {rid for rid in removed if rid in self.position}
        if not upserts and not removed:
            return self
        new = object.__new__(ReturneeTable)
        new.district_codes = dict(self.district_codes)
        columns = {name: getattr(self, name) for name in _RETURNEE_COLUMNS}
        copied: set[str] = set()  # a column is copied once, when one of its values changes
        added = []
        for rid, row in upserts.items():
            position = self.position.get(rid)
            if position is None:
                added.append(row)
                continue
            for name, value in new._row(row).items():
                if columns[name][position] != value:
                    if name not in copied:
                        columns[name] = columns[name].copy()
                        copied.add(name)
                    columns[name][position] = value
        if not added and not removed and not copied:  # rows read again, unchanged
            return self
        id_array = self.id_array
        if removed:
            drop = sorted(self.position[rid] for rid in removed)
            for name in _RETURNEE_COLUMNS:
                columns[name] = np.delete(columns[name], drop)
            id_array = np.delete(id_array, drop)
        if added:
            added.sort(key=lambda row: row[0])
            ids = np.array([row[0] for row in added], dtype=object)
            at = np.searchsorted(id_array, ids)
            rows = [new._row(row) for row in added]
            for name in _RETURNEE_COLUMNS:
                values = np.array([r[name] for r in rows], dtype=columns[name].dtype)
                columns[name] = np.insert(columns[name], at, values)
            id_array = np.insert(id_array, at, ids)
        for name, values in columns.items():
            setattr(new, name, values)
        new.id_array = id_array
        if added or removed:
            new.ids = id_array.tolist()
            new.position = {rid: i for i, rid in enumerate(new.ids)}
        else:  # the same ids in the same places
            new.ids, new.position = self.ids, self.position
        return new

    def _row(self, row: tuple) -> dict:
        """One returnee's values in the columns (a new district gets the next code)."""
        _, industry, stage, needs, district = row
        key = district_key(district)
        return {
            "needs": mask(needs, NEED_BITS),
            "industry": INDUSTRY_BITS[industry],
            "stage": STAGE_BITS[stage],
            "district": _NO_DISTRICT
            if key is None
            else self.district_codes.setdefault(key, len(self.district_codes)),
            "consent": True,
        }


_RETURNEE_COLUMNS = ("needs", "industry", "stage", "district", "consent")


def returnees_fitting(
    resource: Resource,
    table: ReturneeTable,
    policy: MatchPolicy,
    today: date,
    dismissed_by: Iterable[str] = (),
) -> list[tuple[str, float]]:
    """(returnee id, score of this resource for them) for every returnee the resource passes the
    hard filters for, best first (ties by returnee id). `dismissed_by`: returnees who said
    not_interested to it. Whether it makes their top K depends on their other matches: the
    caller re-matches these returnees."""
    if len(table) == 0 or resource.capacity_left <= 0:
        return []
    day = today.toordinal()
    if resource.valid_from and resource.valid_from.toordinal() > day:
        return []
    if resource.valid_until and resource.valid_until.toordinal() < day:
        return []
    need = mask(resource.needs_served, NEED_BITS)
    industries = mask(resource.industries, INDUSTRY_BITS)
    stages = mask(resource.stages, STAGE_BITS)
    served = table.needs & need
    fits = table.consent & (served != 0)
    if industries:
        fits &= (table.industry & industries) != 0
    if stages:
        fits &= (table.stage & stages) != 0
    key = district_key(resource.district)
    if key is not None:
        fits &= table.district == table.district_codes.get(key, -3)
    for returnee_id in dismissed_by:
        position = table.position.get(returnee_id)
        if position is not None:
            fits[position] = False
    candidates = np.flatnonzero(fits)
    if candidates.size == 0:
        return []
    for_need = _POPCOUNT[served[candidates]] / _POPCOUNT[table.needs[candidates]]
    factors = {
        "need": for_need,
        "industry": np.full(candidates.size, 1.0 if industries else OPEN_FIT),
        "stage": np.full(candidates.size, 1.0 if stages else OPEN_FIT),
        "district": np.full(candidates.size, 1.0 if key else OPEN_FIT),
        "availability": np.full(
            candidates.size, min(resource.capacity_left / max(resource.capacity, 1), 1.0)
        ),
    }
    scores = _weighted(factors, policy)
    order = np.lexsort((candidates, -scores))
    return list(
        zip(table.id_array[candidates[order]].tolist(), scores[order].tolist(), strict=True)
    )


def diff(previous: Sequence[str], current: Sequence[str]) -> tuple[list[str], list[str]]:
    """(added, removed) resource ids between two match lists; both empty: nothing changed."""
    before, after = set(previous), set(current)
    return sorted(after - before), sorted(before - after)
