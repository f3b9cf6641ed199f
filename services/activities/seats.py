"""Registrations: who may register and when, seats and the waitlist, check-in codes, and what
registration events and answers carry. Pure: the store keeps the rows, handlers orchestrate."""

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from chassis.auth import Caller
from chassis.clock import SHANGHAI
from services.activities.access import is_registrant, is_staff

# No 0/O, 1/I/L: a code read aloud or typed at the door is not misread. 32^8 codes per activity.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


@dataclass(frozen=True)
class Refusal:
    """Why something cannot be done now: an English message of the catalog and its values."""

    message: str
    params: dict = field(default_factory=dict)


def new_check_in_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalized_code(text: str) -> str:
    """A code as typed or scanned: case, spaces and hyphens do not matter."""
    return "".join(c for c in text.upper() if c not in " -\t")


def local_time(instant: datetime) -> str:
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def registration_refusal(activity: dict, now: datetime) -> Refusal | None:
    """Why nobody can register for the activity now, or None."""
    if activity["status"] == "cancelled":
        return Refusal("The activity is cancelled.")
    if activity["status"] == "closed":
        return Refusal("The activity is closed.")
    if now >= activity["starts_at"]:
        return Refusal("The activity has started; registration is over.")
    closes_at = activity["registration_closes_at"]
    if closes_at is not None and now >= closes_at:
        return Refusal("Registration closed at {closes_at}.", {"closes_at": local_time(closes_at)})
    return None


def cancellation_refusal(activity: dict, now: datetime) -> Refusal | None:
    """Why a registration cannot be cancelled now, or None."""
    if activity["status"] == "cancelled":
        return Refusal("The activity is cancelled.")
    if activity["status"] == "closed":
        return Refusal("The activity is closed.")
    if now >= activity["starts_at"]:
        return Refusal("The activity has started; registrations can no longer be cancelled.")
    return None


def promotes(activity: dict, now: datetime) -> bool:
    """A freed seat goes to the first on the waitlist while the activity is still to come."""
    return activity["status"] == "published" and now < activity["starts_at"]


def registrant(caller: Caller) -> dict:
    """Who registers: a returnee themself, a provider for their organization."""
    return {
        "registrant_role": caller.role,
        "person_id": caller.id,
        "organization_id": caller.organization_id if caller.role == "provider" else None,
    }


def seat_for(activity: dict) -> str:
    """The status of a new registration: a seat while there is one, else the waitlist."""
    return "confirmed" if activity["confirmed"] < activity["capacity"] else "waitlisted"


# ------------------------------------------------------------------ events


def summary(activity: dict) -> dict:
    """What a registrant is told about the activity (`ActivitySummary`)."""
    return {
        "title": activity["title"],
        "starts_at": activity["starts_at"].astimezone(SHANGHAI),
        "ends_at": activity["ends_at"].astimezone(SHANGHAI),
        "venue": activity["venue"],
        "organizer_ids": [str(o) for o in activity["organizer_ids"]],
    }


def registrant_data(registration: dict) -> dict:
    person = None if registration["person_id"] is None else str(registration["person_id"])
    returnee = registration["registrant_role"] == "returnee"
    organization = registration["organization_id"]
    return {
        "registration_id": str(registration["id"]),
        "activity_id": str(registration["activity_id"]),
        "registrant_role": registration["registrant_role"],
        "returnee_id": person if returnee else None,
        "staff_id": None if returnee else person,
        "organization_id": None if organization is None else str(organization),
    }


def registration_data(registration: dict, activity: dict, **extra) -> dict:
    """`registration.*` data."""
    return {
        **registrant_data(registration),
        "status": registration["status"],
        "activity": summary(activity),
        **extra,
    }


def confirmed_data(registration: dict, activity: dict, promoted: bool) -> dict:
    return registration_data(
        registration, activity, check_in_code=registration["check_in_code"], promoted=promoted
    )


def attendance_data(registration: dict) -> dict:
    return {
        **registrant_data(registration),
        "checked_in_at": registration["checked_in_at"].astimezone(SHANGHAI),
    }


# ------------------------------------------------------------------ answers


def view(registration: dict, caller: Caller, position: int | None, name: str | None) -> dict:
    """A registration as the caller may see it: the check-in code only to the registrant, once
    the seat is theirs; the name only to staff."""
    shown = {
        "id": str(registration["id"]),
        "activity_id": str(registration["activity_id"]),
        "registrant_role": registration["registrant_role"],
        "organization_id": registration["organization_id"],
        "status": registration["status"],
        "position": position if registration["status"] == "waitlisted" else None,
        "registered_at": registration["registered_at"],
        "checked_in_at": registration["checked_in_at"],
        "cancelled_at": registration["cancelled_at"],
    }
    if is_registrant(caller, registration) and registration["status"] == "confirmed":
        shown["check_in_code"] = registration["check_in_code"]
    if is_staff(caller):
        shown["person_id"] = registration["person_id"]
        shown["name"] = name
    return shown
