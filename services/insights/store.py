"""Every SQL statement of insights, reached only through the unit of work (`uow.store`).

The read model holds one row per entity the platform's events name (a returnee, an eligibility,
a match, an intention, a consultation, an appointment, an application, an activity and its
registrations, an agreement) with the moment of each step it went through, and per returnee and
programme the first moment of each stage of the funnel. Steps are written with "the earliest
moment wins" (`LEAST`), so a duplicate, a replay or a late event changes nothing it should not,
whatever the order the events arrive in. Figures are day counts over these rows.

Nothing personal is stored: no name, email, phone or free text; the pseudonymous ids of the
platform (returnee, consultation, intention ... ids) only until the person is erased, when every
row about them loses its ids and keeps its moments.
"""

from datetime import date, datetime

# Entity tables written step by step: table → (key column, the step columns, extra columns that
# come with a step). Steps and columns are only ever taken from here, never from input.
ENTITIES = {
    "intentions": ("intention_id", ("expressed_at", "accepted_at", "declined_at"), ()),
    "consultations": (
        "consultation_id",
        (
            "requested_at",
            "first_responded_at",
            "first_answered_at",
            "closed_at",
            "rated_at",
            "first_response_breached_at",
            "resolution_breached_at",
        ),
        ("topic", "rating"),
    ),  # fmt: skip
    "appointments": ("appointment_id", ("booked_at", "cancelled_at"), ()),
    "activities": ("activity_id", ("published_at", "cancelled_at", "closed_at"), ("starts_at",)),
    "activity_registrations": (
        "registration_id",
        ("confirmed_at", "attended_at", "cancelled_at"),
        ("activity_id",),
    ),
    "applications": (
        "application_id",
        ("submitted_at", "approved_at", "rejected_at", "awarded_at", "withdrawn_at"),
        ("awarded_on", "amount_cny"),
    ),
}
# The funnel's stages after eligibility: the first moment (the award: its day) of each.
FUNNEL_STAGES = ("consulted_at", "applied_at", "approved_at", "awarded_on")
# The funnel by programme code: events name a policy by id, and a consultation by id only.
FUNNEL_BY_CODE = "funnel JOIN policies USING (policy_id)"
# Tables holding a returnee's id: erasure takes it, and the entity key, from each.
PERSONAL = {
    "eligibilities": None,
    "matches": None,
    "intentions": "intention_id",
    "consultations": "consultation_id",
    "appointments": "appointment_id",
    "activity_registrations": "registration_id",
    "applications": "application_id",
    "funnel": None,
}


def _day(column: str) -> str:
    return f"(({column}) AT TIME ZONE 'Asia/Shanghai')::date"


# The day counts: (measure, table, day expression, key expression, condition, value).
MEASURES = (
    ("registrations", "returnees", _day("registered_at"), "NULL", "TRUE", "count(*)"),
    ("registrations.industry", "returnees", _day("registered_at"), "industry", "TRUE", "count(*)"),
    ("registrations.country", "returnees", _day("registered_at"), "country", "TRUE", "count(*)"),
    ("registrations.stage", "returnees", _day("registered_at"), "stage", "TRUE", "count(*)"),
    ("appeared", "returnees", _day("LEAST(registered_at, first_seen_at)"), "NULL", "TRUE",
     "count(*)"),
    ("erased", "returnees", _day("erased_at"), "NULL", "TRUE", "count(*)"),
    ("eligible", "eligibilities", _day("first_eligible_at"), "NULL", "TRUE", "count(*)"),
    ("eligible.policy", "eligibilities", _day("first_eligible_at"), "code", "TRUE", "count(*)"),
    ("matches_proposed", "matches", _day("first_proposed_at"), "NULL", "TRUE", "count(*)"),
    ("intentions_expressed", "intentions", _day("expressed_at"), "NULL", "TRUE", "count(*)"),
    ("intentions_accepted", "intentions", _day("accepted_at"), "NULL", "TRUE", "count(*)"),
    ("intentions_declined", "intentions", _day("declined_at"), "NULL", "TRUE", "count(*)"),
    ("consultations_requested", "consultations", _day("requested_at"), "NULL", "TRUE",
     "count(*)"),
    ("consultations_answered", "consultations", _day("first_answered_at"), "NULL", "TRUE",
     "count(*)"),
    # A first response is on time unless consulting reported its deadline breached; the outcome
    # is known on the day of the breach, or else of the response.
    ("first_response_outcomes", "consultations",
     _day("COALESCE(first_response_breached_at, first_responded_at)"), "NULL", "TRUE",
     "count(*)"),
    ("first_response_within", "consultations", _day("first_responded_at"), "NULL",
     "first_response_breached_at IS NULL", "count(*)"),
    ("resolution_outcomes", "consultations", _day("COALESCE(resolution_breached_at, closed_at)"),
     "NULL", "TRUE", "count(*)"),
    ("resolution_within", "consultations", _day("closed_at"), "NULL",
     "resolution_breached_at IS NULL", "count(*)"),
    ("ratings", "consultations", _day("rated_at"), "NULL", "rating IS NOT NULL", "count(*)"),
    ("rating_sum", "consultations", _day("rated_at"), "NULL", "rating IS NOT NULL",
     "sum(rating)"),
    ("appointments_booked", "appointments", _day("booked_at"), "NULL", "TRUE", "count(*)"),
    ("appointments_cancelled", "appointments", _day("cancelled_at"), "NULL", "TRUE", "count(*)"),
    # Held: closed with its report, on the day it took place.
    ("activities_held", "activities", _day("COALESCE(starts_at, closed_at)"), "NULL",
     "closed_at IS NOT NULL", "count(*)"),
    ("activity_registrations", "activity_registrations", _day("confirmed_at"), "NULL", "TRUE",
     "count(*)"),
    ("activities_attended", "activity_registrations", _day("attended_at"), "NULL", "TRUE",
     "count(*)"),
    ("agreements_signed", "agreements", "signed_on", "NULL", "TRUE", "count(*)"),
    ("applications_submitted", "applications", _day("submitted_at"), "NULL", "TRUE", "count(*)"),
    ("applications_approved", "applications", _day("approved_at"), "NULL", "TRUE", "count(*)"),
    ("applications_rejected", "applications", _day("rejected_at"), "NULL", "TRUE", "count(*)"),
    ("applications_withdrawn", "applications", _day("withdrawn_at"), "NULL", "TRUE", "count(*)"),
    # Awarded on the day consulting says it was granted, with its amount.
    ("applications_awarded", "applications", "awarded_on", "NULL", "TRUE", "count(*)"),
    ("awarded_amount_cny", "applications", "awarded_on", "NULL", "TRUE", "sum(amount_cny)"),
    ("funnel_consulted", FUNNEL_BY_CODE, _day("consulted_at"), "NULL", "TRUE", "count(*)"),
    ("funnel_applied", FUNNEL_BY_CODE, _day("applied_at"), "NULL", "TRUE", "count(*)"),
    ("funnel_approved", FUNNEL_BY_CODE, _day("approved_at"), "NULL", "TRUE", "count(*)"),
    ("funnel_awarded", FUNNEL_BY_CODE, "awarded_on", "NULL", "TRUE", "count(*)"),
    ("funnel_consulted.policy", FUNNEL_BY_CODE, _day("consulted_at"), "code", "TRUE", "count(*)"),
    ("funnel_applied.policy", FUNNEL_BY_CODE, _day("applied_at"), "code", "TRUE", "count(*)"),
    ("funnel_approved.policy", FUNNEL_BY_CODE, _day("approved_at"), "code", "TRUE", "count(*)"),
    ("funnel_awarded.policy", FUNNEL_BY_CODE, "awarded_on", "code", "TRUE", "count(*)"),
)  # fmt: skip

_DAY_COUNTS = " UNION ALL ".join(
    f"SELECT '{measure}' AS measure, {key}::text AS key, day, {value} AS n"
    f" FROM (SELECT *, {day} AS day FROM {table}) t"
    f" WHERE day BETWEEN %(start)s AND %(end)s AND {condition} GROUP BY 2, 3"
    for measure, table, day, key, condition, value in MEASURES
)


class InsightsStore:
    """The insights tables, through one unit of work's transaction."""

    def __init__(self, uow):
        self.uow = uow

    # ------------------------------------------------------------ coverage

    def start_counting(self, source: str, at: datetime) -> None:
        """The moment insights receives every event of `source` from (its first start)."""
        self.uow.execute(
            "INSERT INTO coverage (source, counted_from) VALUES (%s, %s)"
            " ON CONFLICT (source) DO NOTHING",
            (source, at),
        )

    def count_from(self, source: str, at: datetime) -> None:
        """An earlier moment from which `source` is counted too (after a backfill)."""
        self.uow.execute(
            """INSERT INTO coverage (source, counted_from) VALUES (%s, %s)
               ON CONFLICT (source) DO UPDATE
               SET counted_from = LEAST(coverage.counted_from, EXCLUDED.counted_from)""",
            (source, at),
        )

    def coverage(self) -> dict[str, datetime]:
        rows = self.uow.all("SELECT source, counted_from FROM coverage ORDER BY source")
        return {r["source"]: r["counted_from"] for r in rows}

    # ------------------------------------------------------------ returnees and erasure

    def lock_person(self, returnee_id) -> None:
        """Until the commit, other units of work about the same person wait: an erasure and a
        late event about them are applied one after the other, never side by side. Sent with
        the unit's next statement (`uow.write`), which PostgreSQL runs once the lock is taken."""
        self.uow.write(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 18))", (str(returnee_id),)
        )

    def save_registration(self, returnee_id, at: datetime, profile: dict,
                          erased_at: datetime | None = None) -> None:  # fmt: skip
        """A registration with the profile it registered with (industry, country, stage); a
        row seen before from an update takes the registration's profile."""
        self.uow.execute(
            """INSERT INTO returnees
                   (returnee_id, registered_at, first_seen_at, industry, country, stage, erased_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (returnee_id) DO UPDATE SET
                   industry = CASE WHEN returnees.registered_at IS NULL
                                   THEN EXCLUDED.industry ELSE returnees.industry END,
                   country = CASE WHEN returnees.registered_at IS NULL
                                  THEN EXCLUDED.country ELSE returnees.country END,
                   stage = CASE WHEN returnees.registered_at IS NULL
                                THEN EXCLUDED.stage ELSE returnees.stage END,
                   registered_at = LEAST(returnees.registered_at, EXCLUDED.registered_at),
                   first_seen_at = LEAST(returnees.first_seen_at, EXCLUDED.first_seen_at)""",
            (returnee_id, at, at, profile["industry"], profile["country"], profile["stage"],
             erased_at),
        )  # fmt: skip

    def see_returnee(self, returnee_id, at: datetime) -> None:
        """A returnee known from another event than their registration (registered before
        insights counted): active, not a registration."""
        self.uow.execute(
            """INSERT INTO returnees (returnee_id, first_seen_at) VALUES (%s, %s)
               ON CONFLICT (returnee_id) DO UPDATE
               SET first_seen_at = LEAST(returnees.first_seen_at, EXCLUDED.first_seen_at)""",
            (returnee_id, at),
        )

    def erase_returnee(self, returnee_id, at: datetime) -> bool:
        """Every id of the person out of every row; the rows, and so the counts, stay. False
        when insights never knew them."""
        found = self.uow.one(
            "UPDATE returnees SET returnee_id = NULL, erased_at = LEAST(erased_at, %s)"
            " WHERE returnee_id = %s RETURNING id",
            (at, returnee_id),
        )
        for table, key in PERSONAL.items():
            also = f", {key} = NULL" if key else ""
            self.uow.execute(
                f"UPDATE {table} SET returnee_id = NULL{also} WHERE returnee_id = %s",
                (returnee_id,),
            )
        return found is not None

    def remember_erasure(self, digest: str, at: datetime, now: datetime) -> None:
        self.uow.execute(
            "INSERT INTO erasures (digest, erased_at, remembered_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (digest) DO NOTHING",
            (digest, at, now),
        )

    def erased_at(self, digest: str) -> datetime | None:
        row = self.uow.one("SELECT erased_at FROM erasures WHERE digest = %s", (digest,))
        return None if row is None else row["erased_at"]

    def forget_erasures(self, before: datetime) -> int:
        """Digests remembered before `before` go: their grace period is over."""
        return self.uow.execute("DELETE FROM erasures WHERE remembered_at < %s", (before,)).rowcount

    # ------------------------------------------------------------ eligibility, matches, the funnel

    def save_eligibilities(self, returnee_id, codes: list[str], at: datetime) -> None:
        """The first moment the returnee was eligible for each programme (`codes` distinct), in
        one statement sent with the unit's next one."""
        if codes:
            self.uow.write(
                """INSERT INTO eligibilities (returnee_id, code, first_eligible_at)
                   SELECT %s, code, %s FROM unnest(%s::text[]) AS code
                   ON CONFLICT (returnee_id, code) DO UPDATE SET first_eligible_at =
                       LEAST(eligibilities.first_eligible_at, EXCLUDED.first_eligible_at)""",
                (returnee_id, at, list(codes)),
            )

    def save_matches(self, returnee_id, resource_ids: list[str], at: datetime) -> None:
        """The first moment each resource (`resource_ids` distinct) was proposed to the
        returnee, in one statement sent with the unit's next one."""
        if resource_ids:
            self.uow.write(
                """INSERT INTO matches (returnee_id, resource_id, first_proposed_at)
                   SELECT %s, resource_id, %s FROM unnest(%s::uuid[]) AS resource_id
                   ON CONFLICT (returnee_id, resource_id) DO UPDATE SET first_proposed_at =
                       LEAST(matches.first_proposed_at, EXCLUDED.first_proposed_at)""",
                (returnee_id, at, list(resource_ids)),
            )

    def save_policies(self, policies: list[tuple[str, str]]) -> None:
        """Policy ids and their programme codes (the same for every version of a policy), in
        one statement sent with the unit's next one."""
        if policies:
            self.uow.write(
                "INSERT INTO policies (policy_id, code)"
                " SELECT * FROM unnest(%s::uuid[], %s::text[])"
                " ON CONFLICT (policy_id) DO NOTHING",
                ([p for p, _ in policies], [c for _, c in policies]),
            )

    def save_funnel(self, returnee_id, policy_id, stage: str, at) -> None:
        """The returnee reached `stage` of the policy's funnel at `at` (a day for the award):
        the earliest moment of each stage wins."""
        if stage not in FUNNEL_STAGES:
            raise ValueError(f"the funnel has no stage {stage}")
        self.uow.execute(
            f"""INSERT INTO funnel (returnee_id, policy_id, {stage}) VALUES (%s, %s, %s)
                ON CONFLICT (returnee_id, policy_id) DO UPDATE
                SET {stage} = LEAST(funnel.{stage}, EXCLUDED.{stage})""",
            (returnee_id, policy_id, at),
        )

    # ------------------------------------------------------------ steps of entities

    def save_step(self, table: str, key, step: str, at: datetime, returnee_id=None,
                  **extra) -> None:  # fmt: skip
        """Entity `key` of `table` went through `step` at `at`; the earliest moment of a step
        wins, with the `extra` values that came with it. A None key (an erased person's late
        event) is a row of its own that nothing can find again."""
        key_column, steps, extras = ENTITIES[table]
        if step not in steps or not set(extra) <= set(extras):
            raise ValueError(f"{table} has no step {step} with {sorted(extra)}")
        columns = [key_column, step, *extra]
        values = [key, at, *extra.values()]
        if table in PERSONAL:
            columns.append("returnee_id")
            values.append(returnee_id)
        updates = [f"{step} = LEAST({table}.{step}, EXCLUDED.{step})"]
        updates += [
            f"{c} = CASE WHEN {table}.{step} IS NULL OR EXCLUDED.{step} < {table}.{step}"
            f" THEN EXCLUDED.{c} ELSE {table}.{c} END"
            for c in extra
        ]
        if table in PERSONAL:
            updates.append(f"returnee_id = COALESCE({table}.returnee_id, EXCLUDED.returnee_id)")
        self.uow.execute(
            f"INSERT INTO {table} ({', '.join(columns)})"
            f" VALUES ({', '.join(['%s'] * len(values))})"
            f" ON CONFLICT ({key_column}) DO UPDATE SET {', '.join(updates)}",
            values,
        )

    def save_agreement(self, agreement_id, activity_id, signed_on: date) -> None:
        self.uow.execute(
            "INSERT INTO agreements (agreement_id, activity_id, signed_on) VALUES (%s, %s, %s)"
            " ON CONFLICT (agreement_id) DO NOTHING",
            (agreement_id, activity_id, signed_on),
        )

    # ------------------------------------------------------------ figures

    def day_counts(self, start: date, end: date) -> list[dict]:
        """Rows `{measure, key, day, n}` for the Shanghai days of [start, end]."""
        rows = self.uow.all(
            f"SELECT * FROM ({_DAY_COUNTS}) c ORDER BY measure, day, key",
            {"start": start, "end": end},
        )
        return [{**r, "n": int(r["n"])} for r in rows]

    def active_before(self, day: date) -> int:
        """Returnees known before `day` and not erased before it."""
        row = self.uow.one(
            f"""SELECT count(*) FILTER (WHERE {_day("LEAST(registered_at, first_seen_at)")} < %s)
                     - count(*) FILTER (WHERE {_day("erased_at")} < %s) AS n
                FROM returnees""",
            (day, day),
        )
        return int(row["n"])
