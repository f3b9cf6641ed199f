"""Assessment workflows: the engine applied to stored facts, with changes recorded and published.

Service layer between the entrypoints and the pure engine: it reads and writes through `store`
inside the caller's unit of work and decides which `eligibility.assessed` events to publish.
"""

from datetime import datetime

from services.consulting import store
from services.consulting.eligibility import assess_all, changes
from services.consulting.screening import PASS, Columns, screen

# Returnees per re-assessment transaction: a profile event for one of them waits for at most one
# batch, and a batch is a short stretch of work for the process.
BATCH_SIZE = 500
PUBLISH_EVERY = 50  # events validated and written per round trip


def assessed_event(returnee_id, now, eligible: list[dict], newly, no_longer) -> dict:
    return {
        "returnee_id": str(returnee_id),
        "assessed_at": now,
        "eligible": eligible,
        "newly_eligible": newly,
        "no_longer_eligible": no_longer,
    }


def assess_returnee(tx, returnee_id, facts: dict, now: datetime) -> dict:
    """Assess one returnee against every policy in effect, store the result and publish it.

    Published after every assessment of a profile (even without changes): subscribers learn the
    current list, and `newly_eligible` / `no_longer_eligible` say what moved."""
    as_of = now.date()
    policies = store.policies(tx, effective_on=as_of)
    before = store.eligible_policies(tx, returnee_id)
    eligible = {
        a.policy_id: (a.code, a.tier) for a in assess_all(policies, facts, as_of) if a.eligible
    }
    store.replace_eligibilities(tx, returnee_id, eligible, now)
    newly, no_longer = changes(
        {code for code, _ in before.values()}, {code for code, _ in eligible.values()}
    )
    data = assessed_event(
        returnee_id,
        now,
        sorted(
            (
                {"policy_id": pid, "code": code, "tier": tier}
                for pid, (code, tier) in eligible.items()
            ),
            key=lambda e: e["code"],
        ),
        newly,
        no_longer,
    )
    tx.publish("eligibility.assessed", data, subject=returnee_id)
    return data


def reassess_batch(tx, policy: dict, now: datetime, after, batch_size: int = BATCH_SIZE):
    """Re-assess the next `batch_size` returnees by id after `after` against one (new or
    changed) policy with the vectorised screening, and publish `eligibility.assessed` only for
    those whose eligibility for it changed. Returns (the last returnee id of the batch, or None
    when there were none left; how many changed)."""
    as_of = now.date()
    rows = store.returnee_batch(tx, after, batch_size)
    if not rows:
        return None, 0
    ids = [str(r["id"]) for r in rows]
    verdicts, tiers = screen(policy, Columns([r["facts"] for r in rows], as_of))
    before = store.eligible_for_policy(tx, policy["id"], ids)
    now_eligible, no_longer = {}, []
    for returnee_id, verdict, tier_index in zip(ids, verdicts, tiers, strict=True):
        tier = policy["tiers"][tier_index]["code"] if tier_index >= 0 else None
        if verdict == PASS:
            if returnee_id not in before or before[returnee_id] != tier:
                now_eligible[returnee_id] = tier
        elif returnee_id in before:
            no_longer.append(returnee_id)
    store.apply_policy_changes(tx, policy["id"], policy["code"], now_eligible, no_longer)
    changed = [*now_eligible, *no_longer]
    lists = store.eligibility_lists(tx, changed) if changed else {}
    for start in range(0, len(changed), PUBLISH_EVERY):
        events = []
        for returnee_id in changed[start : start + PUBLISH_EVERY]:
            newly_code = (
                [policy["code"]]
                if returnee_id in now_eligible and returnee_id not in before
                else []
            )
            gone = [policy["code"]] if returnee_id in no_longer else []
            events.append(
                (
                    assessed_event(returnee_id, now, lists[returnee_id], newly_code, gone),
                    returnee_id,
                )
            )
        # One round trip per few events: the process serves requests in between.
        tx.publish_many("eligibility.assessed", events)
    return ids[-1], len(changed)
