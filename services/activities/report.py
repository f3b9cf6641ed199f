"""The closing report of an activity: what happened, counted from what was recorded. Pure."""


def report(activity: dict, counts: dict, represented: list[dict], agreements: list[dict],
           intentions: list[dict]) -> dict:  # fmt: skip
    """`counts`: registrations by status and how many checked in; `represented`: the
    organizations whose representatives checked in; `intentions`: those met at the activity."""
    registered, attended = counts["confirmed"], counts["attended"]
    by_status = {"expressed": 0, "accepted": 0, "declined": 0}
    for intention in intentions:
        by_status[intention["status"]] = by_status.get(intention["status"], 0) + 1
    return {
        "activity_id": str(activity["id"]),
        "title": activity["title"],
        "status": activity["status"],
        "starts_at": activity["starts_at"],
        "ends_at": activity["ends_at"],
        "closed_at": activity["closed_at"],
        "summary": activity["closing_summary"],
        "capacity": activity["capacity"],
        "registered": registered,
        "waitlisted": counts["waitlisted"],
        "cancelled": counts["cancelled"],
        "attended": attended,
        "attendance_rate": round(attended / registered, 4) if registered else None,
        "organizations_represented": len(represented),
        "organizations": represented,
        "agreements": len(agreements),
        "agreement_titles": [a["title"] for a in agreements],
        "intentions": {
            "total": len(intentions),
            **by_status,
            "items": [
                {
                    "intention_id": str(i["id"]),
                    "organization_id": str(i["organization_id"]),
                    "status": i["status"],
                }
                for i in intentions
            ],
        },
    }


def closed_data(made: dict) -> dict:
    """`activity.closed` data from the report."""
    return {
        "activity_id": made["activity_id"],
        "registered": made["registered"],
        "attended": made["attended"],
        "organizations_represented": made["organizations_represented"],
        "agreements": made["agreements"],
        "intentions": made["intentions"]["total"],
    }
