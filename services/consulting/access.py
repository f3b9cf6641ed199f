"""Who may see and act on stored things: the rules that need the thing itself (its owner).

Roles alone are declared on the entrypoints (`@http(..., roles=..., owner=...)`). A refusal here
is answered as "not found", so a returnee cannot probe for other people's tickets.
"""

from chassis.auth import Caller

STAFF = ("advisor", "admin")


def may_read_consultation(caller: Caller, consultation: dict) -> bool:
    """Staff see every consultation; a returnee their own."""
    return caller.role in STAFF or caller.is_self(consultation["returnee_id"])


def may_cancel_appointment(caller: Caller, appointment: dict) -> bool:
    """Staff may cancel any appointment; a returnee their own."""
    return caller.role in STAFF or caller.is_self(appointment["returnee_id"])


def may_read_application(caller: Caller, application: dict) -> bool:
    """Staff see every application; a returnee their own."""
    return caller.role in STAFF or caller.is_self(application["returnee_id"])


def listed_returnee(caller: Caller, requested: str | None) -> str | None:
    """Whose consultations or applications a listing shows: a returnee's own, whatever they
    ask for; staff whoever they name (None: everyone's)."""
    return caller.id if caller.role == "returnee" else requested
