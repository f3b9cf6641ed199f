"""Assessment workflows: the engine applied to stored facts, with changes recorded and published.

Service layer between the entrypoints and the pure engine: it reads and writes through `store`
inside the caller's unit of work and decides which `eligibility.assessed` events to publish.
"""

from datetime import datetime

from services.consulting import store
from services.consulting.eligibility import assess_all, changes
from services.consulting.screening import PASS, Columns, screen

BATCH_SIZE = 5000


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


def reassess_for_policy(tx, policy: dict, now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Re-assess every returnee against one (new or changed) policy, batch by batch with the
    vectorised screening, and publish `eligibility.assessed` only for returnees whose eligibility
    for it changed. Returns how many changed."""
    as_of = now.date()
    changed_total, after = 0, None
    while True:
        rows = store.returnee_batch(tx, after, batch_size)
        if not rows:
            return changed_total
        after = rows[-1]["id"]
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
        if not changed:
            continue
        changed_total += len(changed)
        lists = store.eligibility_lists(tx, changed)
        events = []
        for returnee_id in changed:
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
        tx.publish_many("eligibility.assessed", events)
