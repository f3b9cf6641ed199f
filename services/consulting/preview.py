"""The impact of a draft policy (or of a new version of one) before it is published: over the
caseload, who would become eligible and who would stop being eligible, by tier, industry, stage
and district, and the budget (award × count per tier), before and after. Counts only: nobody is
named. Pure: batches of facts in, counts out, with the vectorised screening (`screening.py`);
the current version (when there is one) and the draft are screened on the same columns.
"""

from collections import Counter
from datetime import date

import numpy as np

from services.consulting.screening import PASS, Columns, screen

DIMENSIONS = {  # breakdown → (the key its entries use, the profile field it counts)
    "by_industry": ("industry", "industry"),
    "by_stage": ("stage", "startup_stage"),
    "by_district": ("district", "company.registered_district"),
}
DIMENSION_FIELDS = tuple(field for _, field in DIMENSIONS.values())


class Impact:
    """Counts gathered batch by batch; `result()` is the answer."""

    def __init__(self, draft: dict, current: dict | None, as_of: date):
        self.draft, self.current, self.as_of = draft, current, as_of
        self.caseload = 0
        self.eligible = {"before": 0, "after": 0}
        self.tiers = {"before": Counter(), "after": Counter()}
        self.moved = {"newly_eligible": _Moved(), "no_longer_eligible": _Moved()}
        self.tier_changed = 0

    def add(self, facts: list[dict]) -> None:
        columns = Columns(facts, self.as_of)
        n = columns.n
        self.caseload += n
        after, after_tier = screen(self.draft, columns)
        if self.current is not None:
            before, before_tier = screen(self.current, columns)
        else:
            before, before_tier = np.zeros(n, np.int8), np.full(n, -1, np.int64)
        was, now = before == PASS, after == PASS
        self.eligible["before"] += int(was.sum())
        self.eligible["after"] += int(now.sum())
        self._tiers("before", self.current, before_tier[was])
        self._tiers("after", self.draft, after_tier[now])
        newly, gone = now & ~was, was & ~now
        self.moved["newly_eligible"].add(columns, newly, _codes(self.draft, after_tier[newly]))
        self.moved["no_longer_eligible"].add(columns, gone, _codes(self.current, before_tier[gone]))
        both = now & was
        self.tier_changed += int(
            (np.array(_codes(self.draft, after_tier[both]), object)
             != np.array(_codes(self.current, before_tier[both]), object)).sum()
        )  # fmt: skip

    def _tiers(self, side: str, policy: dict | None, indexes: np.ndarray) -> None:
        self.tiers[side].update(_codes(policy, indexes))

    def result(self) -> dict:
        return {
            "code": self.draft["code"],
            "as_of": self.as_of,
            "current_version": self.current["version"] if self.current else None,
            "caseload": self.caseload,
            "eligible": dict(self.eligible),
            "newly_eligible": self.moved["newly_eligible"].result(),
            "no_longer_eligible": self.moved["no_longer_eligible"].result(),
            "tier_changed": self.tier_changed,
            "budget": self._budget(),
        }

    def _budget(self) -> dict:
        awards = {
            "before": _awards(self.current),
            "after": _awards(self.draft),
        }
        tiers = list(dict.fromkeys([*awards["before"], *awards["after"], *self.tiers["after"],
                                    *self.tiers["before"]]))  # fmt: skip
        rows, totals = [], {"before": 0, "after": 0}
        for tier in tiers:
            row = {"tier": tier}
            for side in ("before", "after"):
                count, award = self.tiers[side][tier], awards[side].get(tier)
                amount = count * award if award is not None else None
                row[f"count_{side}"] = count
                row[f"award_{side}_cny"] = award
                row[f"amount_{side}_cny"] = amount
                totals[side] += amount or 0
            rows.append(row)
        return {"before_cny": totals["before"], "after_cny": totals["after"], "by_tier": rows}


class _Moved:
    """The returnees moving one way, counted by tier and by each dimension."""

    def __init__(self):
        self.count = 0
        self.by = {"by_tier": Counter(), **{name: Counter() for name in DIMENSIONS}}

    def add(self, columns: Columns, mask: np.ndarray, tiers: list) -> None:
        self.count += int(mask.sum())
        self.by["by_tier"].update(tiers)
        for name, (_, field) in DIMENSIONS.items():
            values, _ = columns[field]
            self.by[name].update(values[mask].tolist())

    def result(self) -> dict:
        out = {"count": self.count}
        for name, counter in self.by.items():
            key = "tier" if name == "by_tier" else DIMENSIONS[name][0]
            out[name] = [
                {key: value, "count": n}
                for value, n in sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))
            ]
        return out


def _codes(policy: dict | None, indexes: np.ndarray) -> list:
    """Tier codes for tier indexes (None for a policy without tiers)."""
    tiers = (policy or {}).get("tiers") or []
    return [tiers[i]["code"] if i >= 0 else None for i in indexes.tolist()]


def _awards(policy: dict | None) -> dict:
    tiers = (policy or {}).get("tiers") or []
    if not tiers:
        return {None: None} if policy is not None else {}
    return {t["code"]: t.get("award_cny") for t in tiers}
