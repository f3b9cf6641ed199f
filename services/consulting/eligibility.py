"""The eligibility engine: policies as rules-as-code, evaluated against a returnee's facts.

Pure: no I/O, no clock. Everything time-dependent is computed "as of" a date the caller passes, so
the same profile, policy and date always give the same explanation (OpenFisca's discipline).

A policy's `criteria` is a list (an implicit `all`) of nodes. A node is either a criterion

    {"id": "company_age", "field": "company_age_months", "op": "lte", "value": 36,
     "label": {"zh-CN": "企业成立不满3年", "en": "Company registered within 3 years"}}

or a group `{"id": ..., "all": [nodes]}` / `{"id": ..., "any": [nodes]}` with its own label.
Each criterion evaluates to passed (True), failed (False) or unknown (None: the data it needs is
missing); a group combines them with three-valued logic. Tiers are tried in order and the first
whose own criteria pass is the tier reached.
"""

import re
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import date
from typing import Any

from services.consulting import documents, plain

OPS = ("eq", "ne", "in", "not_in", "gte", "lte", "between", "within_days", "exists")
DERIVED = (
    "highest_overseas_degree",
    "study_abroad_days",
    "years_since_return",
    "company_age_months",
    "age_years",
    "best_overseas_qs_rank",
    "highest_degree",
    "years_since_graduation",
)
DEGREE_RANK = {"bachelor": 1, "master": 2, "phd": 3}
# Profile paths a rule may read; everything else a policy names is refused when it is published.
PROFILE_PATHS = (
    "birth_date",
    "return_date",
    "has_overseas_job",
    "residence_status",
    "industry",
    "startup_stage",
    "prior_awards",
    "needs",
    "company",
    "company.registered_district",
    "company.registration_date",
    "company.registered_capital_cny",
    "company.shareholding_pct",
    "company.is_legal_representative",
    "company.is_largest_shareholder",
    "company.vc_raised_cny",
)
FIELDS = (*DERIVED, *PROFILE_PATHS)
# Fields whose values are dates: rule values given as ISO strings (JSON) are parsed for them.
DATE_FIELDS = frozenset({"birth_date", "return_date", "company.registration_date"})
SET_FIELDS = frozenset({"prior_awards", "needs"})
# What each field holds, and so which ops and values a criterion on it takes (`VALUES`): a rule
# that could not be evaluated is refused when it is published, never met while assessing.
KINDS = {
    **dict.fromkeys(
        (
            "study_abroad_days",
            "years_since_return",
            "company_age_months",
            "age_years",
            "best_overseas_qs_rank",
            "years_since_graduation",
            "company.registered_capital_cny",
            "company.shareholding_pct",
            "company.vc_raised_cny",
        ),
        "number",
    ),
    **dict.fromkeys(
        (
            "highest_overseas_degree",
            "highest_degree",
            "residence_status",
            "industry",
            "startup_stage",
            "company.registered_district",
            *SET_FIELDS,  # compared item by item
        ),
        "text",
    ),
    **dict.fromkeys(
        ("has_overseas_job", "company.is_legal_representative", "company.is_largest_shareholder"),
        "boolean",
    ),
    **dict.fromkeys(DATE_FIELDS, "date"),
    "company": "object",
}
MAX_WITHIN_DAYS = 36_500
# kind -> {op: the value it takes}: "one" value, a "list" of values, a "pair" [low, high],
# "days" (a whole number of days, 0 to MAX_WITHIN_DAYS) or "flag" (true: present).
VALUES = {
    "number": {"eq": "one", "ne": "one", "gte": "one", "lte": "one", "in": "list",
               "not_in": "list", "between": "pair", "exists": "flag"},
    "text": {"eq": "one", "ne": "one", "in": "list", "not_in": "list", "exists": "flag"},
    "boolean": {"eq": "one", "ne": "one", "exists": "flag"},
    "date": {"eq": "one", "ne": "one", "gte": "one", "lte": "one", "in": "list",
             "not_in": "list", "between": "pair", "within_days": "days", "exists": "flag"},
    "object": {"exists": "flag"},
}  # fmt: skip
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

STATUS_ELIGIBLE, STATUS_INELIGIBLE, STATUS_UNDETERMINED = "eligible", "ineligible", "undetermined"


class InvalidPolicy(ValueError):
    """A policy whose rules cannot be evaluated; `errors` maps a node path to what is wrong."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# ---------------------------------------------------------------- facts and derived values


def years_between(start: date, end: date) -> int:
    """Whole years completed from `start` to `end` (an age)."""
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def months_between(start: date, end: date) -> int:
    """Whole months completed from `start` to `end`."""
    return (end.year - start.year) * 12 + (end.month - start.month) - (end.day < start.day)


def derive(profile: dict, as_of: date) -> dict:
    """The profile's derived values as of a date; None where the data to compute one is missing.

    Study abroad counts the overseas education periods up to `as_of`, overlapping periods once."""
    overseas = [e for e in profile.get("education") or () if e.get("overseas")]
    degrees = [DEGREE_RANK[e["degree"]] for e in overseas if e.get("end_date", as_of) <= as_of]
    highest = max(degrees, default=0)
    ranks = [e["qs_rank"] for e in overseas if e.get("qs_rank")]
    finished = [e for e in profile.get("education") or () if e["end_date"] <= as_of]
    company = profile.get("company") or {}
    birth, back, registered = (
        profile.get("birth_date"),
        profile.get("return_date"),
        company.get("registration_date"),
    )
    return {
        "highest_overseas_degree": _degree_name(highest) if overseas else None,
        "study_abroad_days": _days_abroad(overseas, as_of),
        "years_since_return": years_between(back, as_of) if back and back <= as_of else None,
        "company_age_months": (
            months_between(registered, as_of) if registered and registered <= as_of else None
        ),
        "age_years": years_between(birth, as_of) if birth else None,
        "best_overseas_qs_rank": min(ranks) if ranks else None,
        "highest_degree": _degree_name(max((DEGREE_RANK[e["degree"]] for e in finished), default=0))
        if profile.get("education")
        else None,
        "years_since_graduation": (
            years_between(max(e["end_date"] for e in finished), as_of) if finished else None
        ),
    }


def _degree_name(rank: int) -> str | None:
    return next((name for name, r in DEGREE_RANK.items() if r == rank), "none")


def _days_abroad(periods: list[dict], as_of: date) -> int:
    spans = sorted(
        (p["start_date"], min(p["end_date"], as_of)) for p in periods if p["start_date"] <= as_of
    )
    total, current_start, current_end = 0, None, None
    for start, end in spans:
        if current_end is None or start > current_end:
            if current_end is not None:
                total += (current_end - current_start).days
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += (current_end - current_start).days
    return total


def lookup(profile: dict, derived: dict, path: str):
    if path in derived:
        return derived[path]
    value: Any = profile
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# ---------------------------------------------------------------- criteria


def _as_date(value):
    if isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _expected(field_name: str, value):
    if field_name in DATE_FIELDS:
        if isinstance(value, list):
            return [_as_date(v) for v in value]
        return _as_date(value)
    return value


def check(op: str, actual, expected, as_of: date) -> bool | None:
    """One comparison; None when `actual` is missing (except for `exists`, which asks exactly
    that)."""
    if op == "exists":
        present = actual is not None and actual != []
        return present == bool(expected)
    if actual is None:
        return None
    if isinstance(actual, list | tuple | set | frozenset):  # a set field: any/none of its items
        items = set(actual)
        if op == "in":
            return bool(items & set(expected))
        if op == "not_in":
            return not items & set(expected)
        if op == "eq":
            return expected in items
        if op == "ne":
            return expected not in items
        raise InvalidPolicy({"op": f"{op} does not apply to a list"})
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    if op == "gte":
        return actual >= expected
    if op == "lte":
        return actual <= expected
    if op == "between":
        low, high = expected
        return low <= actual <= high
    if op == "within_days":  # the date lies at most `expected` days before as_of (not after)
        return 0 <= (as_of - actual).days <= expected
    raise InvalidPolicy({"op": f"unknown op {op}"})


@dataclass
class Outcome:
    """One node's result, with what it compared: the explanation OpenFisca-style."""

    id: str
    label: dict
    passed: bool | None
    field: str | None = None
    op: str | None = None
    expected: Any = None
    actual: Any = None
    group: str | None = None  # "all" | "any" for groups
    children: list["Outcome"] = _field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"criterion": self.id, "label": self.label, "passed": self.passed}
        if self.group:
            out["group"] = self.group
            out["criteria"] = [c.as_dict() for c in self.children]
        else:
            out.update(field=self.field, op=self.op, expected=self.expected, actual=self.actual)
        return out


def combine(kind: str, results: list[bool | None]) -> bool | None:
    """Three-valued `all`/`any` (Kleene): a decisive value wins over unknown."""
    if kind == "all":
        if any(r is False for r in results):
            return False
        return True if all(r is True for r in results) else None
    if any(r is True for r in results):
        return True
    return False if all(r is False for r in results) else None


def evaluate_node(node: dict, profile: dict, derived: dict, as_of: date) -> Outcome:
    label = node.get("label") or {"zh-CN": node["id"], "en": node["id"]}
    if isinstance(label, str):
        label = {"zh-CN": label, "en": label}
    for kind in ("all", "any"):
        if kind in node:
            children = [evaluate_node(n, profile, derived, as_of) for n in node[kind]]
            passed = combine(kind, [c.passed for c in children])
            return Outcome(node["id"], label, passed, group=kind, children=children)
    actual = lookup(profile, derived, node["field"])
    expected = _expected(node["field"], node.get("value"))
    passed = check(node["op"], actual, expected, as_of)
    return Outcome(node["id"], label, passed, node["field"], node["op"], expected, actual)


# ---------------------------------------------------------------- policies


@dataclass
class Assessment:
    policy_id: str
    code: str
    status: str
    tier: str | None
    reasons: list[Outcome]
    tiers: list[dict] = _field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return self.status == STATUS_ELIGIBLE


def in_effect(policy: dict, as_of: date) -> bool:
    start, end = _as_date(policy["effective_from"]), _as_date(policy.get("effective_to"))
    return start <= as_of and (end is None or as_of <= end)


def _calendar_outcomes(policy: dict, as_of: date) -> list[Outcome]:
    """The policy's own dates as criteria, so an explanation also says "not in effect yet" or
    "applications closed"."""
    start, end = _as_date(policy["effective_from"]), _as_date(policy.get("effective_to"))
    outcomes = [
        Outcome(
            "in_effect",
            {"zh-CN": "政策在有效期内", "en": "The policy is in effect"},
            in_effect(policy, as_of),
            "as_of",
            "between",
            [start, end],
            as_of,
        )
    ]
    deadline = _as_date(policy.get("application_deadline"))
    if deadline is not None:
        outcomes.append(
            Outcome(
                "application_open",
                {"zh-CN": "申报截止日期前", "en": "Applications are still open"},
                as_of <= deadline,
                "as_of",
                "lte",
                deadline,
                as_of,
            )
        )
    return outcomes


def assess(policy: dict, profile: dict, as_of: date, derived: dict | None = None) -> Assessment:
    """Every criterion of one policy for one profile as of a date, and the tier reached."""
    derived = derive(profile, as_of) if derived is None else derived
    reasons = _calendar_outcomes(policy, as_of)
    reasons += [evaluate_node(n, profile, derived, as_of) for n in policy.get("criteria") or ()]
    passed = combine("all", [r.passed for r in reasons])
    tier, tier_outcomes = None, []
    for tier_def in policy.get("tiers") or ():
        outcomes = [evaluate_node(n, profile, derived, as_of) for n in tier_def.get("criteria", ())]
        reached = combine("all", [o.passed for o in outcomes])
        tier_outcomes.append(
            {
                "code": tier_def["code"],
                "title": tier_def.get("title"),
                "award_cny": tier_def.get("award_cny"),
                "reached": reached,
                "reasons": outcomes,
            }
        )
        if passed and tier is None and reached is True:
            tier = tier_def["code"]
    if passed and policy.get("tiers") and tier is None:
        passed = False if all(t["reached"] is False for t in tier_outcomes) else None
    status = {True: STATUS_ELIGIBLE, False: STATUS_INELIGIBLE, None: STATUS_UNDETERMINED}[passed]
    return Assessment(
        str(policy["id"]), policy["code"], status, tier if passed else None, reasons, tier_outcomes
    )


def assess_all(policies: list[dict], profile: dict, as_of: date) -> list[Assessment]:
    derived = derive(profile, as_of)
    return [assess(p, profile, as_of, derived) for p in policies]


def changes(before: set[str], after: set[str]) -> tuple[list[str], list[str]]:
    """(newly eligible, no longer eligible) policy codes, sorted."""
    return sorted(after - before), sorted(before - after)


# ---------------------------------------------------------------- validation of published rules

UNKNOWN_FIELD = "Unknown field to compare."
OP_DOES_NOT_APPLY = "This op does not apply to this field."
WRONG_VALUE = "Not a value this op takes for this field."
ONE_GROUP = "A group is either all or any, with no field, op or value."
MISSING = "Missing data for required field."
DUPLICATE_ID = "Another criterion beside this one has the same id."


def criterion_problem(node: dict) -> tuple[str, str] | None:
    """(key, what is wrong) with the shape of one criterion, not looking into a group's
    members; None when it can be evaluated. A leaf is {id, label, field, op, value} with the
    value its op takes for the field's kind (`VALUES`); a group is {id, label, all} or
    {id, label, any}."""
    groups = [k for k in ("all", "any") if k in node]
    if groups:
        extra = [k for k in ("field", "op", "value", *groups[1:]) if k in node]
        return (extra[0], ONE_GROUP) if extra else None
    for key in ("field", "op", "value"):
        if key not in node:
            return key, MISSING
    kind = KINDS.get(node["field"])
    if kind is None:
        return "field", UNKNOWN_FIELD
    shape = VALUES[kind].get(node["op"])
    if shape is None:
        return "op", OP_DOES_NOT_APPLY
    if not _takes(shape, kind, node["value"]):
        return "value", WRONG_VALUE
    return None


def _takes(shape: str, kind: str, value) -> bool:
    if shape == "flag":
        return isinstance(value, bool)
    if shape == "days":
        return _is_number(value) and value == int(value) and 0 <= value <= MAX_WITHIN_DAYS
    if shape == "one":
        return _is_kind(kind, value)
    if not isinstance(value, list) or (shape == "pair" and len(value) != 2):
        return False
    return all(_is_kind(kind, item) for item in value)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_kind(kind: str, value) -> bool:
    if kind == "number":
        return _is_number(value)
    if kind == "text":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, date):  # a policy file's YAML reads dates as dates
        return True
    if not isinstance(value, str) or not re.match(ISO_DATE, value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def validate_criteria(nodes, path: str = "criteria") -> dict[str, str]:
    """What is wrong with a criteria tree, by path; empty when it can be evaluated."""
    errors: dict[str, str] = {}
    if not isinstance(nodes, list):
        return {path: "must be a list"}
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        where = f"{path}[{i}]"
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or not node["id"]:
            errors[where] = "needs an id"
            continue
        if node["id"] in seen:
            errors[where] = DUPLICATE_ID
        seen.add(node["id"])
        problem = criterion_problem(node)
        if problem is not None:
            errors[f"{where}.{problem[0]}"] = problem[1]
            continue
        for group in ("all", "any"):
            if group in node:
                errors.update(validate_criteria(node[group], f"{where}.{group}"))
    return errors


def validate_policy(policy: dict) -> None:
    errors = validate_criteria(policy.get("criteria") or [])
    for i, tier in enumerate(policy.get("tiers") or ()):
        errors.update(validate_criteria(tier.get("criteria") or [], f"tiers[{i}].criteria"))
    errors.update(documents.validate(policy))
    if errors:
        raise InvalidPolicy(errors)


# ---------------------------------------------------------------- explanations


def _show(value) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if value is None:
        return "—"
    return str(value)


_OP_TEXT = {
    "en": {
        "eq": "= {v}",
        "ne": "≠ {v}",
        "in": "one of {v}",
        "not_in": "none of {v}",
        "gte": "≥ {v}",
        "lte": "≤ {v}",
        "between": "between {v}",
        "within_days": "within the last {v} days",
        "exists": "present: {v}",
    },
    "zh-CN": {
        "eq": "= {v}",
        "ne": "≠ {v}",
        "in": "属于 {v}",
        "not_in": "不属于 {v}",
        "gte": "≥ {v}",
        "lte": "≤ {v}",
        "between": "介于 {v}",
        "within_days": "在最近 {v} 天内",
        "exists": "已填写：{v}",
    },
}
_VERDICT = {
    "en": {True: "passed", False: "not met", None: "unknown (information missing)"},
    "zh-CN": {True: "符合", False: "不符合", None: "无法判断（缺少信息）"},
}


def detail(outcome: Outcome, locale: str) -> str:
    """One line a person can read: what was compared, with the values used."""
    lang = "zh-CN" if locale == "zh-CN" else "en"
    verdict = _VERDICT[lang][outcome.passed]
    if outcome.group:
        joined = {"all": {"en": "all of", "zh-CN": "全部满足"}, "any": {"en": "any of",
                  "zh-CN": "满足其一"}}[outcome.group][lang]  # fmt: skip
        parts = "; ".join(f"{c.label[lang]}: {_VERDICT[lang][c.passed]}" for c in outcome.children)
        return f"{verdict} — {joined} ({parts})"
    wanted = _OP_TEXT[lang][outcome.op].format(v=_show(outcome.expected))
    if lang == "zh-CN":
        return f"{verdict}：{outcome.field} = {_show(outcome.actual)}（要求 {wanted}）"
    return f"{verdict}: {outcome.field} = {_show(outcome.actual)} (required {wanted})"


def explain(assessment: Assessment, policy: dict, locale: str, titles: dict | None = None) -> dict:
    """The assessment as the API shows it: every criterion with pass/fail/unknown and values;
    `text` says it in plain words (`plain.py`), `titles` names programmes by their codes."""
    lang = "zh-CN" if locale == "zh-CN" else "en"

    def reason(o: Outcome) -> dict:
        out = {
            "criterion": o.id,
            "label": o.label[lang],
            "passed": o.passed,
            "detail": detail(o, lang),
            "text": plain.sentence(o, lang, titles),
        }
        if o.group:
            out["criteria"] = [reason(c) for c in o.children]
        else:
            out["values"] = {"actual": _show(o.actual), "required": _show(o.expected)}
            out["field"] = o.field
            out["field_label"] = plain.field_words(o.field, lang)
        return out

    # An eligible returnee sees what their tier needs; anyone else every document, so they
    # know everything the programme asks for at once.
    listed = documents.needed(policy, assessment.tier) if assessment.eligible else None
    return {
        "policy_id": assessment.policy_id,
        "code": assessment.code,
        "version": policy.get("version"),
        "title": policy["title"][lang],
        "eligible": assessment.eligible,
        "status": assessment.status,
        "tier": assessment.tier,
        "citation": policy.get("citation"),
        "application_deadline": policy.get("application_deadline"),
        "reasons": [reason(o) for o in assessment.reasons],
        "tiers": [
            {
                "code": t["code"],
                "title": (t.get("title") or {}).get(lang),
                "award_cny": t.get("award_cny"),
                "reached": t["reached"],
                "reasons": [reason(o) for o in t["reasons"]],
            }
            for t in assessment.tiers
        ],
        "documents": [
            documents.shown(d, lang)
            for d in (listed if listed is not None else policy.get("documents") or ())
        ],
    }
