"""An activity on the station's calendar: what a publication must hold, when an activity can be
cancelled or closed, and what its events and public answers carry. Pure."""

import base64
import binascii
import uuid
from datetime import datetime

from chassis.clock import SHANGHAI
from services.activities.seats import Refusal

STATUSES = ("published", "cancelled", "closed")


def new_activity(activity_id: str, command: dict, published_by: str, now: datetime) -> dict:
    """The stored activity of a publication (`ActivityIn` loaded)."""
    return {
        "id": activity_id,
        "kind": command["kind"],
        "title": command["title"],
        "summary": command["summary"],
        "starts_at": command["starts_at"],
        "ends_at": command["ends_at"],
        "venue": command["venue"],
        "capacity": command["capacity"],
        "organizer_ids": [str(o) for o in dict.fromkeys(command["organizer_ids"])],
        "audience": {
            "industries": sorted(set(command["audience"]["industries"])),
            "stages": sorted(set(command["audience"]["stages"])),
            "needs": sorted(set(command["audience"]["needs"])),
        },
        "registration_closes_at": command["registration_closes_at"],
        "published_by": published_by,
        "published_at": now,
    }


def publication_errors(command: dict, now: datetime, known_organizations: set[str]) -> dict:
    """Field errors of a publication that need the time or the stored organizations."""
    errors: dict = {}
    if command["starts_at"] <= now:
        errors["starts_at"] = ["Must be in the future."]
    unknown = {
        str(i): ["Unknown organization."]
        for i, organization in enumerate(command["organizer_ids"])
        if str(organization) not in known_organizations
    }
    if unknown:
        errors["organizer_ids"] = unknown
    return errors


def cancel_refusal(activity: dict, now: datetime) -> Refusal | None:
    if activity["status"] == "cancelled":
        return Refusal("The activity is cancelled.")
    if activity["status"] == "closed":
        return Refusal("The activity is closed.")
    if now >= activity["ends_at"]:
        return Refusal("The activity is over; it can no longer be cancelled.")
    return None


def close_refusal(activity: dict, now: datetime) -> Refusal | None:
    if activity["status"] == "cancelled":
        return Refusal("The activity is cancelled.")
    if activity["status"] == "closed":
        return Refusal("The activity is closed.")
    if now < activity["starts_at"]:
        return Refusal("The activity has not taken place yet.")
    return None


def on_site_refusal(activity: dict) -> Refusal | None:
    """Check-ins and agreements belong to an activity that is on (or was, until closed)."""
    if activity["status"] == "cancelled":
        return Refusal("The activity is cancelled.")
    if activity["status"] == "closed":
        return Refusal("The activity is closed.")
    return None


def published_data(activity: dict) -> dict:
    """`activity.published` data."""
    return {
        "activity_id": str(activity["id"]),
        "kind": activity["kind"],
        "title": activity["title"],
        "starts_at": activity["starts_at"].astimezone(SHANGHAI),
        "ends_at": activity["ends_at"].astimezone(SHANGHAI),
        "venue": activity["venue"],
        "capacity": activity["capacity"],
        "organizer_ids": [str(o) for o in activity["organizer_ids"]],
        "audience": activity["audience"],
        "registration_closes_at": (
            None
            if activity["registration_closes_at"] is None
            else activity["registration_closes_at"].astimezone(SHANGHAI)
        ),
    }


def view(activity: dict, organizations: dict[str, str], waitlisted: int) -> dict:
    """An activity as anyone may see it, with the seats left."""
    return {
        **{k: activity[k] for k in _SHOWN},
        "id": str(activity["id"]),
        "organizers": [
            {"organization_id": str(o), "name": organizations.get(str(o))}
            for o in activity["organizer_ids"]
        ],
        "seats_left": activity["capacity"] - activity["confirmed"],
        "waitlisted": waitlisted,
    }


_SHOWN = (
    "kind", "title", "summary", "starts_at", "ends_at", "venue", "capacity", "audience",
    "registration_closes_at", "status", "published_at", "cancelled_at", "closed_at",
)  # fmt: skip


def party_view(party: dict, organizations: dict[str, str], staff: bool) -> dict:
    """An agreement's party: an organization by name; a returnee's id only to staff (null once
    erased)."""
    if party["organization_id"] is not None:
        organization = str(party["organization_id"])
        return {
            "kind": "organization",
            "organization_id": organization,
            "name": organizations.get(organization),
        }
    shown = {"kind": "returnee"}
    if staff:
        shown["returnee_id"] = None if party["returnee_id"] is None else str(party["returnee_id"])
    return shown


def agreement_view(agreement: dict, organizations: dict[str, str], staff: bool) -> dict:
    return {
        "id": str(agreement["id"]),
        "title": agreement["title"],
        "signed_on": agreement["signed_on"],
        "summary": agreement["summary"],
        "parties": [party_view(p, organizations, staff) for p in agreement["parties"]],
    }


def agreement_data(agreement: dict) -> dict:
    """`agreement.signed` data (the summary stays here: free text)."""
    return {
        "agreement_id": str(agreement["id"]),
        "activity_id": str(agreement["activity_id"]),
        "title": agreement["title"],
        "signed_on": agreement["signed_on"],
        "parties": [
            {
                "organization_id": _str(p["organization_id"]),
                "returnee_id": _str(p["returnee_id"]),
            }
            for p in agreement["parties"]
        ],
    }


_UNKNOWN = {"organization_id": "Unknown organization.", "returnee_id": "Unknown returnee."}
_TWICE = {
    "organization_id": "Each organization is listed once.",
    "returnee_id": "Each returnee is listed once.",
}


def party_errors(parties: list[dict], organizations: set[str], returnees: set[str]) -> dict:
    """Field errors of an agreement's parties, by index: unknown or listed twice."""
    errors: dict = {}
    seen: set[tuple[str, str]] = set()
    for i, party in enumerate(parties):
        key = "organization_id" if party.get("organization_id") is not None else "returnee_id"
        known = organizations if key == "organization_id" else returnees
        value = str(party[key])
        if value not in known:
            errors[str(i)] = {key: [_UNKNOWN[key]]}
        elif (key, value) in seen:
            errors[str(i)] = {key: [_TWICE[key]]}
        seen.add((key, value))
    return errors


# ------------------------------------------------------------------ the calendar's pages


def cursor(starts_at: datetime, activity_id) -> str:
    """Where the next page starts: after this activity, in (starts_at, id) order."""
    raw = f"{starts_at.isoformat()}|{activity_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(text: str) -> tuple[datetime, str]:
    """The (starts_at, id) of a cursor; ValueError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        moment, _, activity_id = raw.partition("|")
        at = datetime.fromisoformat(moment)
        uuid.UUID(activity_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("Not a valid cursor.") from None
    if at.tzinfo is None:
        raise ValueError("Not a valid cursor.")
    return at, activity_id


def _str(value) -> str | None:
    return None if value is None else str(value)
