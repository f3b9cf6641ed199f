"""Vectorised eligibility: one policy against many returnees at once, with numpy.

`eligibility.assess` explains one returnee and is what people read; re-assessing every returnee
when a policy is published needs only the verdict and the tier, for hundreds of thousands of
profiles. Here the facts of a batch are laid out as columns once, and each criterion becomes a
handful of array operations. Three-valued logic is kept: FAIL < UNKNOWN < PASS, so `all` is the
minimum and `any` the maximum (Kleene). The unit tests check it agrees with `assess` profile by
profile.
"""

from datetime import date

import numpy as np

from services.consulting.eligibility import (
    DATE_FIELDS,
    DEGREE_RANK,
    SET_FIELDS,
    STATUS_ELIGIBLE,
    STATUS_INELIGIBLE,
    STATUS_UNDETERMINED,
    _as_date,
    _days_abroad,
    _expected,
    in_effect,
    years_between,
)

FAIL, UNKNOWN, PASS = np.int8(0), np.int8(1), np.int8(2)
STATUS_OF = {
    int(PASS): STATUS_ELIGIBLE,
    int(FAIL): STATUS_INELIGIBLE,
    int(UNKNOWN): STATUS_UNDETERMINED,
}
NUMERIC = frozenset(
    {
        "study_abroad_days",
        "years_since_return",
        "company_age_months",
        "age_years",
        "best_overseas_qs_rank",
        "years_since_graduation",
        "company.registered_capital_cny",
        "company.shareholding_pct",
        "company.vc_raised_cny",
    }
)
_DEGREE_NAMES = {rank: name for name, rank in DEGREE_RANK.items()}
EDUCATION_FIELDS = frozenset(
    {
        "highest_overseas_degree",
        "study_abroad_days",
        "best_overseas_qs_rank",
        "highest_degree",
        "years_since_graduation",
    }
)


def fields_of(nodes) -> set[str]:
    found: set[str] = set()
    for node in nodes or ():
        for kind in ("all", "any"):
            if kind in node:
                found |= fields_of(node[kind])
        if "field" in node:
            found.add(node["field"])
    return found


class Columns:
    """The facts of a batch of returnees as arrays, built lazily per field a policy reads."""

    def __init__(self, profiles: list[dict], as_of: date):
        self.profiles = profiles
        self.as_of = as_of
        self.n = len(profiles)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __getitem__(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, known) for a field."""
        if name not in self._cache:
            self._cache[name] = self._build(name)
        return self._cache[name]

    def _raw(self, path: str) -> list:
        if "." not in path:
            return [p.get(path) for p in self.profiles]
        head, tail = path.split(".", 1)
        return [(p.get(head) or {}).get(tail) for p in self.profiles]

    def _dates(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        raw = self._raw(path)
        known = np.fromiter((d is not None for d in raw), bool, self.n)
        ordinals = np.fromiter((d.toordinal() if d else 0 for d in raw), np.int64, self.n)
        return ordinals, known

    def _ymd(self, path: str):
        raw = self._raw(path)
        ymd = np.array([(d.year, d.month, d.day) if d else (0, 0, 0) for d in raw], np.int64)
        return ymd.reshape(self.n, 3), np.fromiter((d is not None for d in raw), bool, self.n)

    def _build(self, name: str):
        as_of = self.as_of
        if name in ("age_years", "years_since_return", "company_age_months"):
            source = {
                "age_years": "birth_date",
                "years_since_return": "return_date",
                "company_age_months": "company.registration_date",
            }[name]
            ymd, known = self._ymd(source)
            y, m, d = ymd[:, 0], ymd[:, 1], ymd[:, 2]
            before = (as_of.month < m) | ((as_of.month == m) & (as_of.day < d))
            if name == "company_age_months":
                values = (as_of.year - y) * 12 + (as_of.month - m) - (as_of.day < d)
            else:
                values = as_of.year - y - before
            not_future = (y < as_of.year) | (
                (y == as_of.year) & ((m < as_of.month) | ((m == as_of.month) & (d <= as_of.day)))
            )
            if name != "age_years":
                known = known & not_future
            return values.astype(np.float64), known
        if name in DATE_FIELDS:
            return self._dates(name)
        if name in EDUCATION_FIELDS:
            return self._education(name)
        raw = self._raw(name)
        known = np.fromiter((v is not None for v in raw), bool, self.n)
        if name in NUMERIC:
            return np.array([np.nan if v is None else v for v in raw], np.float64), known
        if name in SET_FIELDS:
            values = np.empty(self.n, object)
            values[:] = [frozenset(v or ()) for v in raw]
            return values, known
        values = np.empty(self.n, object)
        values[:] = raw
        return values, known

    def _education(self, name: str):
        """Education-derived fields, all in one pass over the profiles."""
        as_of = self.as_of
        highest = np.empty(self.n, object)
        highest_any = np.empty(self.n, object)
        days = np.zeros(self.n, np.float64)
        rank = np.full(self.n, np.nan)
        graduated = np.full(self.n, np.nan)
        has_overseas = np.zeros(self.n, bool)
        has_education = np.zeros(self.n, bool)
        for i, profile in enumerate(self.profiles):
            education = profile.get("education") or ()
            if not education:
                continue
            has_education[i] = True
            finished = [e for e in education if e["end_date"] <= as_of]
            best = max((DEGREE_RANK[e["degree"]] for e in finished), default=0)
            highest_any[i] = _DEGREE_NAMES.get(best, "none")
            if finished:
                graduated[i] = years_between(max(e["end_date"] for e in finished), as_of)
            overseas = [e for e in education if e.get("overseas")]
            if not overseas:
                continue
            has_overseas[i] = True
            best = max(
                (DEGREE_RANK[e["degree"]] for e in overseas if e["end_date"] <= as_of), default=0
            )
            highest[i] = _DEGREE_NAMES.get(best, "none")
            days[i] = _days_abroad(overseas, as_of)
            ranks = [e["qs_rank"] for e in overseas if e.get("qs_rank")]
            if ranks:
                rank[i] = min(ranks)
        self._cache["highest_overseas_degree"] = (highest, has_overseas)
        self._cache["highest_degree"] = (highest_any, has_education)
        self._cache["study_abroad_days"] = (days, np.ones(self.n, bool))
        self._cache["best_overseas_qs_rank"] = (rank, ~np.isnan(rank))
        self._cache["years_since_graduation"] = (graduated, ~np.isnan(graduated))
        return self._cache[name]


def _tri(condition: np.ndarray, known: np.ndarray) -> np.ndarray:
    return np.where(known, np.where(condition, PASS, FAIL), UNKNOWN).astype(np.int8)


def screen_node(node: dict, columns: Columns) -> np.ndarray:
    for kind, reduce in (("all", np.minimum.reduce), ("any", np.maximum.reduce)):
        if kind in node:
            parts = [screen_node(n, columns) for n in node[kind]]
            if not parts:
                return np.full(columns.n, PASS if kind == "all" else FAIL, np.int8)
            return reduce(parts)
    name, op = node["field"], node["op"]
    expected = _expected(name, node.get("value"))
    values, known = columns[name]
    if op == "exists":
        present = known if name not in SET_FIELDS else np.array([bool(v) for v in values])
        return np.where(present == bool(expected), PASS, FAIL).astype(np.int8)
    if name in DATE_FIELDS:
        expected = (
            [d.toordinal() for d in expected]
            if isinstance(expected, list)
            else expected.toordinal()
            if isinstance(expected, date)
            else expected
        )
    if name in SET_FIELDS:
        wanted = set(expected) if isinstance(expected, list) else {expected}
        if op in ("in", "eq"):
            hits = np.fromiter((bool(v & wanted) for v in values), bool, columns.n)
        else:  # not_in, ne
            hits = np.fromiter((not v & wanted for v in values), bool, columns.n)
        return _tri(hits, known)
    with np.errstate(invalid="ignore"):
        if op == "eq":
            condition = values == expected
        elif op == "ne":
            condition = values != expected
        elif op in ("in", "not_in"):
            member = np.fromiter((v in expected for v in values), bool, columns.n)
            condition = member if op == "in" else ~member
        elif op == "gte":
            condition = values >= expected
        elif op == "lte":
            condition = values <= expected
        elif op == "between":
            condition = (values >= expected[0]) & (values <= expected[1])
        elif op == "within_days":
            elapsed = columns.as_of.toordinal() - values
            condition = (elapsed >= 0) & (elapsed <= expected)
        else:
            raise ValueError(f"unknown op {op}")
    return _tri(np.asarray(condition, bool), known)


def screen(policy: dict, columns: Columns) -> tuple[np.ndarray, np.ndarray]:
    """(verdicts, tier index) for every returnee of the batch: verdicts FAIL/UNKNOWN/PASS, tier
    index into `policy["tiers"]` or -1."""
    as_of = columns.as_of
    verdict = np.full(columns.n, PASS if in_effect(policy, as_of) else FAIL, np.int8)
    deadline = _as_date(policy.get("application_deadline"))
    if deadline is not None and as_of > deadline:
        verdict[:] = FAIL
    for node in policy.get("criteria") or ():
        verdict = np.minimum(verdict, screen_node(node, columns))
    tier = np.full(columns.n, -1, np.int64)
    tiers = policy.get("tiers") or ()
    if tiers:
        reached = [
            np.minimum.reduce([screen_node(n, columns) for n in t.get("criteria") or ()])
            if t.get("criteria")
            else np.full(columns.n, PASS, np.int8)
            for t in tiers
        ]
        for index in range(len(tiers) - 1, -1, -1):  # the first tier reached wins
            tier[reached[index] == PASS] = index
        best = np.maximum.reduce(reached)  # PASS if some tier reached, FAIL if none can be
        no_tier = (verdict == PASS) & (tier < 0)
        verdict[no_tier] = np.where(best[no_tier] == FAIL, FAIL, UNKNOWN)
        tier[verdict != PASS] = -1
    return verdict, tier
