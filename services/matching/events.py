"""The data of the events matching publishes, built from its rows and matches."""

from services.matching.reasons import event_reasons
from services.matching.store import match_id


def published_data(row: dict) -> dict:
    return {
        "resource_id": row["id"],
        "organization_id": row["organization_id"],
        "title": row["title"],
        "kind": row["kind"],
        "needs_served": list(row["needs_served"]),
        "industries": list(row["industries"]),
        "stages": list(row["stages"]),
        "district": row["district"],
        "capacity": row["capacity"],
        "valid_until": row["valid_until"].isoformat() if row["valid_until"] else None,
    }


def intention_data(row: dict) -> dict:
    return {
        "intention_id": row["intention_id"],
        "returnee_id": row["returnee_id"],
        "resource_id": row["resource_id"],
        "organization_id": row["organization_id"],
        "status": row["status"],
        "message": row["message"],
    }


def intention_event(row: dict) -> tuple[int, dict]:
    """The version and data of an `intention.*` event: v1 for an intention on a resource, as
    ever; v2 for one met at an activity, which v1 cannot carry (it requires a resource)."""
    if row["resource_id"] is not None:
        return 1, intention_data(row)
    return 2, {**intention_data(row), "activity_id": row["activity_id"]}


def proposed_data(returnee_id, matches, added, removed) -> dict:
    return {
        "returnee_id": returnee_id,
        "matches": [
            {
                "match_id": match_id(returnee_id, m.resource_id),
                "resource_id": m.resource_id,
                "organization_id": m.organization_id,
                "score": m.score,
                "reasons": event_reasons(r.as_dict() for r in m.reasons),
            }
            for m in matches
        ],
        "added_resource_ids": added,
        "removed_resource_ids": removed,
    }
