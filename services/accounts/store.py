"""SQL of the accounts database. Functions take a `chassis.db.Transaction`."""

import json

from psycopg2.errors import UniqueViolation
from psycopg2.extras import execute_values

from contracts.schemas.accounts import ReturneeProfile
from services.accounts.profile import STORED_APART

# The profile document in `returnees.profile`: every profile field but email and consents.
PROFILE_DOCUMENT = ReturneeProfile(exclude=STORED_APART)


class EmailTaken(Exception):
    pass


def create_account(tx, account_id, email, password_hash, role, organization_id=None) -> None:
    tx.execute("SAVEPOINT create_account")
    try:
        tx.execute(
            "INSERT INTO accounts (id, email, password_hash, role, organization_id)"
            " VALUES (%s, %s, %s, %s, %s)",
            (account_id, email, password_hash, role, organization_id),
        )
    except UniqueViolation:
        tx.execute("ROLLBACK TO SAVEPOINT create_account")
        raise EmailTaken(email) from None


def account_by_email(tx, email) -> dict | None:
    return tx.one("SELECT * FROM accounts WHERE email = %s", (email,))


def create_returnee(tx, account_id, profile: dict, sealed_id_document: bytes | None) -> None:
    tx.execute(
        "INSERT INTO returnees (account_id, profile, id_document) VALUES (%s, %s, %s)",
        (account_id, json.dumps(PROFILE_DOCUMENT.dump(profile)), sealed_id_document),
    )


def returnee(tx, returnee_id, for_update=False) -> dict | None:
    """The returnee's profile (loaded: dates as dates), email, consents and timestamps."""
    row = tx.one(
        "SELECT a.id, a.email, r.profile, r.id_document IS NOT NULL AS has_id_document,"
        " r.created_at, r.updated_at"
        " FROM returnees r JOIN accounts a ON a.id = r.account_id WHERE r.account_id = %s"
        + (" FOR UPDATE OF r" if for_update else ""),
        (str(returnee_id),),
    )
    if row is None:
        return None
    consents = tx.all(
        "SELECT purpose, granted, changed_at FROM consents WHERE returnee_id = %s", (row["id"],)
    )
    return {
        **row,
        "profile": PROFILE_DOCUMENT.load(row["profile"]),
        "consents": {c["purpose"]: c for c in consents},
    }


def update_profile(tx, returnee_id, profile: dict) -> None:
    tx.execute(
        "UPDATE returnees SET profile = %s, updated_at = now() WHERE account_id = %s",
        (json.dumps(PROFILE_DOCUMENT.dump(profile)), str(returnee_id)),
    )


def set_consents(tx, returnee_id, consents: dict[str, bool], changed_at) -> None:
    """The current decision per purpose, and the history, in two statements."""
    if not consents:
        return
    rows = [
        (str(returnee_id), purpose, granted, changed_at) for purpose, granted in consents.items()
    ]
    execute_values(
        tx.cursor,
        "INSERT INTO consents (returnee_id, purpose, granted, changed_at) VALUES %s"
        " ON CONFLICT (returnee_id, purpose)"
        " DO UPDATE SET granted = excluded.granted, changed_at = excluded.changed_at",
        rows,
    )
    execute_values(
        tx.cursor,
        "INSERT INTO consent_history (returnee_id, purpose, granted, changed_at) VALUES %s",
        rows,
    )


def consent_history(tx, returnee_id) -> list[dict]:
    return tx.all(
        "SELECT purpose, granted, changed_at FROM consent_history"
        " WHERE returnee_id = %s ORDER BY changed_at, id",
        (str(returnee_id),),
    )


def erase_returnee(tx, returnee_id, email) -> None:
    """Delete the person's data here; keep only the fact and time of the erasure."""
    tx.execute("DELETE FROM accounts WHERE id = %s", (str(returnee_id),))  # cascades
    tx.execute("DELETE FROM login_failures WHERE key = %s", (f"email:{email}",))
    tx.execute(
        "INSERT INTO erasures (returnee_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (str(returnee_id),),
    )


def create_organization(tx, organization_id, data: dict) -> dict:
    return tx.one(
        "INSERT INTO organizations (id, name, kind, district, contact_email)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING *",
        (organization_id, data["name"], data["kind"], data["district"], data["contact_email"]),
    )


def organization(tx, organization_id) -> dict | None:
    return tx.one("SELECT * FROM organizations WHERE id = %s", (str(organization_id),))


def organizations(tx) -> list[dict]:
    return tx.all("SELECT * FROM organizations ORDER BY name, id")


def create_staff(tx, account_id, name, locale) -> None:
    tx.execute(
        "INSERT INTO staff (account_id, name, locale) VALUES (%s, %s, %s)",
        (account_id, name, locale),
    )


def account_exists(tx, email) -> bool:
    return tx.one("SELECT 1 FROM accounts WHERE email = %s", (email,)) is not None


def recent_failures(tx, key: str, window_seconds: int) -> int:
    return tx.one(
        "SELECT count(*) AS n FROM login_failures"
        " WHERE key = %s AND failed_at > now() - %s * interval '1 second'",
        (key, window_seconds),
    )["n"]


def record_failures(tx, keys: list[str]) -> None:
    for key in keys:
        tx.execute("INSERT INTO login_failures (key) VALUES (%s)", (key,))
    # Throttling needs minutes of history; keep a day at most.
    tx.execute("DELETE FROM login_failures WHERE failed_at < now() - interval '1 day'")


def clear_failures(tx, key: str) -> None:
    tx.execute("DELETE FROM login_failures WHERE key = %s", (key,))
