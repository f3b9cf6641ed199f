"""Who may see and act on a registration: the rules that need the registration itself.

Roles alone are declared on the entrypoints (`@http(..., roles=...)`). A refusal here is
answered as "not found", so nobody can probe for other people's registrations or codes.
"""

from chassis.auth import Caller

STAFF = ("advisor", "admin")


def is_staff(caller: Caller | None) -> bool:
    return caller is not None and caller.role in STAFF


def is_registrant(caller: Caller, registration: dict) -> bool:
    """The person registered: the returnee themself, or the provider who registered."""
    return (
        caller.role in ("returnee", "provider")
        and registration["person_id"] is not None
        and caller.id == str(registration["person_id"])
    )


def may_read_registration(caller: Caller, registration: dict) -> bool:
    """Staff see every registration; a registrant their own."""
    return is_staff(caller) or is_registrant(caller, registration)


def may_cancel_registration(caller: Caller, registration: dict) -> bool:
    return may_read_registration(caller, registration)
