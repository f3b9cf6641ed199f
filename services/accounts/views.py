"""What accounts' events and answers carry, built from stored rows. No I/O."""


def event_profile(row: dict) -> dict:
    """The profile as events carry it: stored document + email + current consents."""
    consents = {purpose: c["granted"] for purpose, c in row["consents"].items()}
    return {**row["profile"], "email": row["email"], "consents": consents}


def returnee_view(row: dict) -> dict:
    return {
        **event_profile(row),
        "id": row["id"],
        "role": "returnee",
        "has_id_document": row["has_id_document"],
        "consent_times": consent_times(row),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def consent_times(row: dict) -> dict:
    """The current decision per purpose, with when it was made."""
    return {
        p: {"granted": c["granted"], "changed_at": c["changed_at"]}
        for p, c in row["consents"].items()
    }


def staff_registered(staff_id: str, staff: dict, email_verified: bool) -> dict:
    """`staff.registered`'s (and `staff.updated`'s) data."""
    return {
        "staff_id": staff_id,
        "email": staff["email"],
        "name": staff["name"],
        "role": staff["role"],
        "organization_id": staff.get("organization_id"),
        "locale": staff.get("locale"),
        "email_verified": email_verified,
    }


def staff_view(row: dict) -> dict:
    """A staff account as `/staff` answers it."""
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "role": row["role"],
        "organization_id": row["organization_id"],
        "locale": row["locale"],
        "email_verified": row["email_verified_at"] is not None,
        "disabled": row["disabled_at"] is not None,
        "state": staff_state(row),
    }


def staff_state(row: dict) -> str:
    """`disabled`; else `invited` until the invitation's password is set (which confirms the
    address); else `active`."""
    if row["disabled_at"] is not None:
        return "disabled"
    return "invited" if row["email_verified_at"] is None else "active"
