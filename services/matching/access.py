"""Who may act on an organization's resources and intentions: the rules that need the thing
itself (the organization it belongs to).

Roles alone are declared on the entrypoints (`@http(..., roles=..., owner=...)`).
"""

from chassis.auth import Caller


def may_publish_for(caller: Caller, organization_id) -> bool:
    """An admin for any organization; a provider for their own."""
    return caller.role != "provider" or caller.organization_id == str(organization_id)


def acts_for(caller: Caller, organization_id) -> bool:
    """An admin acts on every organization's resources and intentions; a provider on their
    organization's."""
    return caller.role == "admin" or caller.organization_id == str(organization_id)


def intention_scope(caller: Caller) -> dict:
    """Whose intentions a listing shows: a returnee's own, a provider's organization's, an
    advisor's and an admin's everyone's (an export). A provider's account without an
    organization sees none (the caller is refused: `None`)."""
    if caller.role == "returnee":
        return {"returnee_id": caller.id}
    if caller.role == "provider":
        return {"organization_id": caller.organization_id} if caller.organization_id else None
    return {}


def is_staff(caller: Caller) -> bool:
    """An advisor or an admin: records an intention met at an activity for the returnee."""
    return caller.role in ("advisor", "admin")
