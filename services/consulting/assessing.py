"""Assessment rules, pure: which facts of a profile the rules read, what a returnee is eligible
for now, what a batch of returnees makes of one policy, and the `eligibility.assessed` data.

The handlers (`assess_returnee`, `reassess_for_policy`) read and write through the store and
publish; this module only computes.
"""

from datetime import date, datetime

from services.consulting.eligibility import assess_all, changes
from services.consulting.screening import PASS, Columns, fields_of, screen

# Returnees screened at once when a policy is published: large enough for the vectorised
# screening to pay off, small enough to keep a batch's rows and events in memory.
BATCH_SIZE = 5000
# Returnees per re-assessment transaction (the re-assessment loop): a profile event for one of
# them waits for at most one batch, and a batch is a short stretch of work for the process.
REASSESS_BATCH = 500
PUBLISH_EVERY = 50  # events validated and written per round trip, so requests are served between

# What eligibility rules read from a profile; names, contacts and free text are not kept.
FACT_KEYS = (
    "birth_date",
    "education",
    "return_date",
    "has_overseas_job",
    "residence_status",
    "industry",
    "startup_stage",
    "needs",
    "company",
    "prior_awards",
)
EDUCATION_KEYS = ("country", "degree", "start_date", "end_date", "qs_rank", "overseas")
COMPANY_KEYS = (
    "registered_district",
    "registration_date",
    "registered_capital_cny",
    "shareholding_pct",
    "is_legal_representative",
    "is_largest_shareholder",
    "vc_raised_cny",
)


# Where a rule's field is read from: derived values come from one fact each.
_SOURCE = {
    "age_years": "birth_date",
    "years_since_return": "return_date",
    "company_age_months": "company",
    "highest_overseas_degree": "education",
    "study_abroad_days": "education",
    "best_overseas_qs_rank": "education",
    "highest_degree": "education",
    "years_since_graduation": "education",
}


def fact_keys(policies: list[dict], fields: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The facts (top-level keys) the policies' rules and the extra `fields` read, in
    `FACT_KEYS` order: all an evaluation of them needs from a profile."""
    read = set(fields)
    for policy in policies:
        read |= fields_of(policy.get("criteria"))
        for tier in policy.get("tiers") or ():
            read |= fields_of(tier.get("criteria"))
    keys = {_SOURCE.get(f, f.split(".", 1)[0]) for f in read}
    return tuple(k for k in FACT_KEYS if k in keys)


def facts_of(profile: dict) -> dict:
    """The minimum necessary part of a `returnee.registered/updated` payload."""
    facts = {k: profile.get(k) for k in FACT_KEYS}
    facts["education"] = [{k: e.get(k) for k in EDUCATION_KEYS} for e in facts["education"] or ()]
    if facts["company"]:
        facts["company"] = {k: facts["company"].get(k) for k in COMPANY_KEYS}
    return facts


def matching_consent(profile: dict) -> bool:
    """Whether the returnee consents to matching, the purpose an impact preview's caseload
    falls under (profiling to find what fits them); a profile without consents has none."""
    return bool((profile.get("consents") or {}).get("matching"))


def assessed_event(returnee_id, now: datetime, eligible: list[dict], newly, no_longer) -> dict:
    return {
        "returnee_id": str(returnee_id),
        "assessed_at": now,
        "eligible": eligible,
        "newly_eligible": newly,
        "no_longer_eligible": no_longer,
    }


def eligible_now(policies: list[dict], facts: dict, as_of: date) -> dict:
    """{policy id: (code, tier, version)} of the policies the facts make the returnee eligible
    for, with the version of the rules that said so."""
    versions = {str(p["id"]): p.get("version") for p in policies}
    return {
        a.policy_id: (a.code, a.tier, versions[a.policy_id])
        for a in assess_all(policies, facts, as_of)
        if a.eligible
    }


def assessment(returnee_id, now: datetime, before: dict, eligible: dict) -> dict:
    """`eligibility.assessed` data of a whole assessment: the current list (by code) and what
    moved since `before` (both {policy id: (code, tier, version)})."""
    newly, no_longer = changes(
        {entry[0] for entry in before.values()}, {entry[0] for entry in eligible.values()}
    )
    listed = sorted(
        (
            {"policy_id": pid, "code": code, "tier": tier, "version": version}
            for pid, (code, tier, version) in eligible.items()
        ),
        key=lambda e: e["code"],
    )
    return assessed_event(returnee_id, now, listed, newly, no_longer)


def screen_batch(policy: dict, rows: list[dict], before: dict, as_of: date):
    """One policy over a batch of returnees (`{id, facts}` rows), vectorised. `before`: {returnee
    id: tier} of those eligible for it now. Returns `(now_eligible, no_longer)`: {returnee id:
    tier} of those newly eligible or with another tier, and the ids no longer eligible."""
    ids = [str(r["id"]) for r in rows]
    verdicts, tiers = screen(policy, Columns([r["facts"] for r in rows], as_of))
    now_eligible, no_longer = {}, []
    for returnee_id, verdict, tier_index in zip(ids, verdicts, tiers, strict=True):
        tier = policy["tiers"][tier_index]["code"] if tier_index >= 0 else None
        if verdict == PASS:
            if returnee_id not in before or before[returnee_id] != tier:
                now_eligible[returnee_id] = tier
        elif returnee_id in before:
            no_longer.append(returnee_id)
    return now_eligible, no_longer


def policy_changes(policy: dict, now: datetime, before: dict, now_eligible: dict,
                   no_longer: list, lists: dict) -> list[tuple[dict, str]]:  # fmt: skip
    """`(eligibility.assessed data, subject)` for each returnee whose eligibility for `policy`
    changed; `lists`: {returnee id: their eligible list after the change}."""
    events = []
    for returnee_id in [*now_eligible, *no_longer]:
        newly = (
            [policy["code"]] if returnee_id in now_eligible and returnee_id not in before else []
        )
        gone = [policy["code"]] if returnee_id in no_longer else []
        events.append(
            (assessed_event(returnee_id, now, lists[returnee_id], newly, gone), returnee_id)
        )
    return events
