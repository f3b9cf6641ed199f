"""`MemoryStore`: the in-memory twin of `InsightsStore`, for the handler unit tests. Same methods
and signatures, the same "earliest moment wins" writes and the same day counts (an integration
test feeds one scripted history to both and compares)."""

from datetime import date, datetime

from services.insights.figures import day_of
from services.insights.store import ENTITIES, FUNNEL_BY_CODE, FUNNEL_STAGES, PERSONAL


def _earliest(*moments):
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def _on(column):
    return lambda r: day_of(r[column]) if r.get(column) is not None else None


def _first(*columns):
    def day(r):
        moment = _earliest(*(r.get(c) for c in columns))
        return None if moment is None else day_of(moment)

    return day


def _coalesce(*columns):
    def day(r):
        moment = next((r[c] for c in columns if r.get(c) is not None), None)
        return None if moment is None else day_of(moment)

    return day


def _always(r):
    return True


def _count(r):
    return 1


def _date(column):
    return lambda r: r.get(column)


# As store.MEASURES: (measure, table, day, key, condition, value).
MEASURES = (
    ("registrations", "returnees", _on("registered_at"), None, _always, _count),
    ("registrations.industry", "returnees", _on("registered_at"), "industry", _always, _count),
    ("registrations.country", "returnees", _on("registered_at"), "country", _always, _count),
    ("registrations.stage", "returnees", _on("registered_at"), "stage", _always, _count),
    ("appeared", "returnees", _first("registered_at", "first_seen_at"), None, _always, _count),
    ("erased", "returnees", _on("erased_at"), None, _always, _count),
    ("eligible", "eligibilities", _on("first_eligible_at"), None, _always, _count),
    ("eligible.policy", "eligibilities", _on("first_eligible_at"), "code", _always, _count),
    ("matches_proposed", "matches", _on("first_proposed_at"), None, _always, _count),
    ("intentions_expressed", "intentions", _on("expressed_at"), None, _always, _count),
    ("intentions_accepted", "intentions", _on("accepted_at"), None, _always, _count),
    ("intentions_declined", "intentions", _on("declined_at"), None, _always, _count),
    ("consultations_requested", "consultations", _on("requested_at"), None, _always, _count),
    ("consultations_answered", "consultations", _on("first_answered_at"), None, _always, _count),
    ("first_response_outcomes", "consultations",
     _coalesce("first_response_breached_at", "first_responded_at"), None, _always, _count),
    ("first_response_within", "consultations", _on("first_responded_at"), None,
     lambda r: r.get("first_response_breached_at") is None, _count),
    ("resolution_outcomes", "consultations", _coalesce("resolution_breached_at", "closed_at"),
     None, _always, _count),
    ("resolution_within", "consultations", _on("closed_at"), None,
     lambda r: r.get("resolution_breached_at") is None, _count),
    ("ratings", "consultations", _on("rated_at"), None, lambda r: r.get("rating") is not None,
     _count),
    ("rating_sum", "consultations", _on("rated_at"), None, lambda r: r.get("rating") is not None,
     lambda r: r["rating"]),
    ("appointments_booked", "appointments", _on("booked_at"), None, _always, _count),
    ("appointments_cancelled", "appointments", _on("cancelled_at"), None, _always, _count),
    ("activities_held", "activities", _coalesce("starts_at", "closed_at"), None,
     lambda r: r.get("closed_at") is not None, _count),
    ("activity_registrations", "activity_registrations", _on("confirmed_at"), None, _always,
     _count),
    ("activities_attended", "activity_registrations", _on("attended_at"), None, _always, _count),
    ("agreements_signed", "agreements", lambda r: r["signed_on"], None, _always, _count),
    ("applications_submitted", "applications", _on("submitted_at"), None, _always, _count),
    ("applications_approved", "applications", _on("approved_at"), None, _always, _count),
    ("applications_rejected", "applications", _on("rejected_at"), None, _always, _count),
    ("applications_withdrawn", "applications", _on("withdrawn_at"), None, _always, _count),
    ("applications_awarded", "applications", _date("awarded_on"), None, _always, _count),
    ("awarded_amount_cny", "applications", _date("awarded_on"), None, _always,
     lambda r: r["amount_cny"]),
    ("funnel_consulted", FUNNEL_BY_CODE, _on("consulted_at"), None, _always, _count),
    ("funnel_applied", FUNNEL_BY_CODE, _on("applied_at"), None, _always, _count),
    ("funnel_approved", FUNNEL_BY_CODE, _on("approved_at"), None, _always, _count),
    ("funnel_awarded", FUNNEL_BY_CODE, _date("awarded_on"), None, _always, _count),
    ("funnel_consulted.policy", FUNNEL_BY_CODE, _on("consulted_at"), "code", _always, _count),
    ("funnel_applied.policy", FUNNEL_BY_CODE, _on("applied_at"), "code", _always, _count),
    ("funnel_approved.policy", FUNNEL_BY_CODE, _on("approved_at"), "code", _always, _count),
    ("funnel_awarded.policy", FUNNEL_BY_CODE, _date("awarded_on"), "code", _always, _count),
)  # fmt: skip


TABLES = ("returnees", "eligibilities", "matches", "agreements", "policies", "funnel")


class MemoryStore:
    def __init__(self):
        self.coverage_rows: dict[str, datetime] = {}
        self.erasures: dict[str, dict] = {}
        self.tables: dict[str, list[dict]] = {name: [] for name in (*TABLES, *ENTITIES)}

    def _find(self, table: str, **key) -> dict | None:
        """The row with these values; a None value names nothing (SQL: NULLs are distinct)."""
        if any(v is None for v in key.values()):
            return None
        return next(
            (r for r in self.tables[table] if all(r.get(k) == v for k, v in key.items())), None
        )

    # ------------------------------------------------------------ coverage

    def start_counting(self, source: str, at: datetime) -> None:
        self.coverage_rows.setdefault(source, at)

    def count_from(self, source: str, at: datetime) -> None:
        self.coverage_rows[source] = _earliest(self.coverage_rows.get(source), at)

    def coverage(self) -> dict[str, datetime]:
        return dict(sorted(self.coverage_rows.items()))

    # ------------------------------------------------------------ returnees and erasure

    def lock_person(self, returnee_id) -> None:
        """One unit of work at a time here: nothing to wait for."""

    def save_registration(self, returnee_id, at: datetime, profile: dict,
                          erased_at: datetime | None = None) -> None:  # fmt: skip
        row = self._find("returnees", returnee_id=returnee_id)
        if row is None:
            self.tables["returnees"].append(
                {"returnee_id": returnee_id, "registered_at": at, "first_seen_at": at,
                 **profile, "erased_at": erased_at}
            )  # fmt: skip
            return
        if row["registered_at"] is None:
            row.update(profile)
        row["registered_at"] = _earliest(row["registered_at"], at)
        row["first_seen_at"] = _earliest(row["first_seen_at"], at)

    def see_returnee(self, returnee_id, at: datetime) -> None:
        row = self._find("returnees", returnee_id=returnee_id)
        if row is None:
            self.tables["returnees"].append(
                {"returnee_id": returnee_id, "registered_at": None, "first_seen_at": at,
                 "industry": None, "country": None, "stage": None, "erased_at": None}
            )  # fmt: skip
        else:
            row["first_seen_at"] = _earliest(row["first_seen_at"], at)

    def erase_returnee(self, returnee_id, at: datetime) -> bool:
        row = self._find("returnees", returnee_id=returnee_id)
        if row is not None:
            row.update(returnee_id=None, erased_at=_earliest(row["erased_at"], at))
        for table, key in PERSONAL.items():
            for other in self.tables[table]:
                if other.get("returnee_id") == returnee_id:
                    other["returnee_id"] = None
                    if key:
                        other[key] = None
        return row is not None

    def remember_erasure(self, digest: str, at: datetime, now: datetime) -> None:
        self.erasures.setdefault(digest, {"erased_at": at, "remembered_at": now})

    def erased_at(self, digest: str) -> datetime | None:
        found = self.erasures.get(digest)
        return None if found is None else found["erased_at"]

    def forget_erasures(self, before: datetime) -> int:
        gone = [d for d, e in self.erasures.items() if e["remembered_at"] < before]
        for d in gone:
            del self.erasures[d]
        return len(gone)

    # ------------------------------------------------------------ eligibility, matches, the funnel

    def save_eligibilities(self, returnee_id, codes: list[str], at: datetime) -> None:
        for code in codes:
            row = self._find("eligibilities", returnee_id=returnee_id, code=code)
            if row is None:
                self.tables["eligibilities"].append(
                    {"returnee_id": returnee_id, "code": code, "first_eligible_at": at}
                )
            else:
                row["first_eligible_at"] = _earliest(row["first_eligible_at"], at)

    def save_matches(self, returnee_id, resource_ids: list[str], at: datetime) -> None:
        for resource_id in resource_ids:
            row = self._find("matches", returnee_id=returnee_id, resource_id=resource_id)
            if row is None:
                self.tables["matches"].append(
                    {"returnee_id": returnee_id, "resource_id": resource_id,
                     "first_proposed_at": at}
                )  # fmt: skip
            else:
                row["first_proposed_at"] = _earliest(row["first_proposed_at"], at)

    def save_policies(self, policies: list[tuple[str, str]]) -> None:
        for policy_id, code in policies:
            if self._find("policies", policy_id=policy_id) is None:
                self.tables["policies"].append({"policy_id": policy_id, "code": code})

    def save_funnel(self, returnee_id, policy_id, stage: str, at) -> None:
        if stage not in FUNNEL_STAGES:
            raise ValueError(f"the funnel has no stage {stage}")
        row = self._find("funnel", returnee_id=returnee_id, policy_id=policy_id)
        if row is None:
            row = {"returnee_id": returnee_id, "policy_id": policy_id,
                   **dict.fromkeys(FUNNEL_STAGES)}  # fmt: skip
            self.tables["funnel"].append(row)
        row[stage] = _earliest(row[stage], at)

    # ------------------------------------------------------------ steps of entities

    def save_step(self, table: str, key, step: str, at: datetime, returnee_id=None,
                  **extra) -> None:  # fmt: skip
        key_column, steps, extras = ENTITIES[table]
        if step not in steps or not set(extra) <= set(extras):
            raise ValueError(f"{table} has no step {step} with {sorted(extra)}")
        row = self._find(table, **{key_column: key})
        if row is None:
            row = {key_column: key, **dict.fromkeys((*steps, *extras))}
            if table in PERSONAL:
                row["returnee_id"] = returnee_id
            self.tables[table].append(row)
        elif table in PERSONAL and row["returnee_id"] is None:
            row["returnee_id"] = returnee_id
        if row[step] is None or at < row[step]:
            row.update(extra)
        row[step] = _earliest(row[step], at)

    def save_agreement(self, agreement_id, activity_id, signed_on: date) -> None:
        if self._find("agreements", agreement_id=agreement_id) is None:
            self.tables["agreements"].append(
                {"agreement_id": agreement_id, "activity_id": activity_id, "signed_on": signed_on}
            )

    # ------------------------------------------------------------ figures

    def _rows(self, table: str) -> list[dict]:
        if table != FUNNEL_BY_CODE:
            return self.tables[table]
        codes = {p["policy_id"]: p["code"] for p in self.tables["policies"]}
        return [{**r, "code": codes[r["policy_id"]]} for r in self.tables["funnel"]
                if r["policy_id"] in codes]  # fmt: skip

    def day_counts(self, start: date, end: date) -> list[dict]:
        counts: dict[tuple, int] = {}
        for measure, table, day_of_row, key, condition, value in MEASURES:
            for row in self._rows(table):
                day = day_of_row(row)
                if day is None or not start <= day <= end or not condition(row):
                    continue
                group = (measure, day, None if key is None else row[key])
                counts[group] = counts.get(group, 0) + value(row)
        rows = [{"measure": m, "key": k, "day": d, "n": n} for (m, d, k), n in counts.items()]
        return sorted(rows, key=lambda r: (r["measure"], r["day"], r["key"] or ""))

    def active_before(self, day: date) -> int:
        appeared = _first("registered_at", "first_seen_at")
        erased = _on("erased_at")
        rows = self.tables["returnees"]
        return sum(1 for r in rows if appeared(r) < day) - sum(
            1 for r in rows if erased(r) is not None and erased(r) < day
        )
