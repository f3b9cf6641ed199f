"""Applications for a policy, from a checklist to an award (Enterprise Singapore's grant portal
shows each application's status history; Shanghai tells everything once, 一次告知):

    draft ─submit─▶ submitted ─review─▶ under_review ─approve─▶ approved ─award─▶ awarded
                                                    └─reject──▶ rejected
    draft | submitted | under_review | approved ─withdraw─▶ withdrawn

The returnee submits (once every document of the checklist is marked provided) and withdraws;
advisors and admins review, approve, reject (with a reason) and award (an amount and a day).
Each step is kept with its actor, time and note: the history the returnee sees. Pure.
"""

from contracts.vocabulary import APPLICATION_STATUSES

DRAFT, SUBMITTED, UNDER_REVIEW, APPROVED, REJECTED, AWARDED, WITHDRAWN = APPLICATION_STATUSES
OPEN = (DRAFT, SUBMITTED, UNDER_REVIEW, APPROVED)

# action → (the statuses it is allowed from, the status it leads to)
TRANSITIONS = {
    "submit": ((DRAFT,), SUBMITTED),
    "review": ((SUBMITTED,), UNDER_REVIEW),
    "approve": ((UNDER_REVIEW,), APPROVED),
    "reject": ((UNDER_REVIEW,), REJECTED),
    "award": ((APPROVED,), AWARDED),
    "withdraw": (OPEN, WITHDRAWN),
}
# The event each action publishes; taking an application into review is no news to anyone.
EVENTS = {
    "submit": "application.submitted",
    "approve": "application.approved",
    "reject": "application.rejected",
    "award": "application.awarded",
    "withdraw": "application.withdrawn",
}
BY_RETURNEE = ("submit", "withdraw")  # the others are the station's


class TransitionRefused(Exception):
    """The action is not allowed from the application's current status."""

    def __init__(self, action: str, status: str):
        self.action, self.status = action, status
        super().__init__(f"cannot {action} an application that is {status}")


def next_status(action: str, status: str) -> str:
    allowed, target = TRANSITIONS[action]
    if status not in allowed:
        raise TransitionRefused(action, status)
    return target


def missing(checklist: list[dict]) -> list[str]:
    """The ids of the documents not marked provided yet."""
    return [item["document_id"] for item in checklist if not item["provided"]]


def event_data(application: dict, **extra) -> dict:
    """What every `application.*` event carries: the application's state, never its texts."""
    return {
        "application_id": str(application["id"]),
        "returnee_id": str(application["returnee_id"]),
        "policy_id": str(application["policy_id"]),
        "code": application["code"],
        "policy_version": application["policy_version"],
        "tier": application["tier"],
        "status": application["status"],
        **extra,
    }


VIEW_FIELDS = (
    "id",
    "returnee_id",
    "policy_id",
    "code",
    "policy_version",
    "tier",
    "status",
    "rejection_reason",
    "amount_cny",
    "awarded_on",
    "created_at",
    "updated_at",
)


def view(row: dict, lang: str, checklist: list[dict] | None = None,
         history: list[dict] | None = None) -> dict:  # fmt: skip
    """A stored application as the HTTP API answers it; with its checklist (in `lang`) and
    history when given."""
    out = {k: row[k] for k in VIEW_FIELDS}
    for key in ("id", "returnee_id", "policy_id"):
        out[key] = str(out[key])
    if checklist is not None:
        out["checklist"] = [
            {
                "document_id": item["document_id"],
                "title": item["title"][lang],
                "note": item["note"][lang] if item["note"] else None,
                "provided": item["provided"],
                "reference": item["reference"],
                "marked_at": item["marked_at"],
            }
            for item in checklist
        ]
        out["missing_documents"] = missing(checklist)
    if history is not None:
        out["history"] = [{**step, "actor_id": str(step["actor_id"])} for step in history]
    return out
