"""SQL of the accounts database, reached through the unit of work (`uow.store`). Times come from
the unit of work's clock (`at`, `since`), as the use cases read it."""

import json
from datetime import timedelta

from psycopg2.errors import UniqueViolation
from psycopg2.extras import execute_values

from contracts.schemas.accounts import ReturneeProfile
from services.accounts.profile import STORED_APART

# The profile document in `returnees.profile`: every profile field but email and consents.
PROFILE_DOCUMENT = ReturneeProfile(exclude=STORED_APART)
# Throttling needs minutes of history; failed sign-ins are kept a day at most.
FAILURES_KEPT = timedelta(days=1)


class EmailTaken(Exception):
    pass


class AccountsStore:
    def __init__(self, uow):
        self.uow = uow

    def create_account(self, account_id, email, password_hash, role, organization_id=None, *,
                       at) -> None:  # fmt: skip
        """`EmailTaken` when another account has the email; the transaction goes on."""
        self.uow.execute("SAVEPOINT create_account")
        try:
            self.uow.execute(
                "INSERT INTO accounts (id, email, password_hash, role, organization_id, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (account_id, email, password_hash, role, organization_id, at),
            )
        except UniqueViolation:
            self.uow.execute("ROLLBACK TO SAVEPOINT create_account")
            raise EmailTaken(email) from None

    def account_by_email(self, email) -> dict | None:
        return self.uow.one("SELECT * FROM accounts WHERE email = %s", (email,))

    def create_returnee(self, account_id, profile: dict, sealed_id_document: bytes | None, *,
                        at) -> None:  # fmt: skip
        self.uow.execute(
            "INSERT INTO returnees (account_id, profile, id_document, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (account_id, json.dumps(PROFILE_DOCUMENT.dump(profile)), sealed_id_document, at, at),
        )

    def returnee(self, returnee_id, for_update=False) -> dict | None:
        """The returnee's profile (loaded: dates as dates), email, consents and timestamps."""
        row = self.uow.one(
            "SELECT a.id, a.email, r.profile, r.id_document IS NOT NULL AS has_id_document,"
            " r.created_at, r.updated_at"
            " FROM returnees r JOIN accounts a ON a.id = r.account_id WHERE r.account_id = %s"
            + (" FOR UPDATE OF r" if for_update else ""),
            (str(returnee_id),),
        )
        if row is None:
            return None
        consents = self.uow.all(
            "SELECT purpose, granted, changed_at FROM consents WHERE returnee_id = %s",
            (row["id"],),
        )
        return {
            **row,
            "profile": PROFILE_DOCUMENT.load(row["profile"]),
            "consents": {c["purpose"]: c for c in consents},
        }

    def update_profile(self, returnee_id, profile: dict, *, at) -> None:
        self.uow.execute(
            "UPDATE returnees SET profile = %s, updated_at = %s WHERE account_id = %s",
            (json.dumps(PROFILE_DOCUMENT.dump(profile)), at, str(returnee_id)),
        )

    def set_consents(self, returnee_id, consents: dict[str, bool], changed_at) -> None:
        """The current decision per purpose, and the history, in two statements."""
        if not consents:
            return
        rows = [
            (str(returnee_id), purpose, granted, changed_at)
            for purpose, granted in consents.items()
        ]
        execute_values(
            self.uow.cursor,
            "INSERT INTO consents (returnee_id, purpose, granted, changed_at) VALUES %s"
            " ON CONFLICT (returnee_id, purpose)"
            " DO UPDATE SET granted = excluded.granted, changed_at = excluded.changed_at",
            rows,
        )
        execute_values(
            self.uow.cursor,
            "INSERT INTO consent_history (returnee_id, purpose, granted, changed_at) VALUES %s",
            rows,
        )

    def consent_history(self, returnee_id) -> list[dict]:
        return self.uow.all(
            "SELECT purpose, granted, changed_at FROM consent_history"
            " WHERE returnee_id = %s ORDER BY changed_at, id",
            (str(returnee_id),),
        )

    def erase_returnee(self, returnee_id, email, *, at) -> None:
        """Delete the person's data here; keep only the fact and time of the erasure."""
        self.uow.execute("DELETE FROM accounts WHERE id = %s", (str(returnee_id),))  # cascades
        self.uow.execute("DELETE FROM login_failures WHERE key = %s", (f"email:{email}",))
        self.uow.execute(
            "INSERT INTO erasures (returnee_id, erased_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (str(returnee_id), at),
        )

    def create_organization(self, organization_id, data: dict, *, at) -> dict:
        return self.uow.one(
            "INSERT INTO organizations (id, name, kind, district, contact_email, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
            (
                organization_id,
                data["name"],
                data["kind"],
                data["district"],
                data["contact_email"],
                at,
            ),
        )

    def organization(self, organization_id) -> dict | None:
        return self.uow.one("SELECT * FROM organizations WHERE id = %s", (str(organization_id),))

    def organizations(self) -> list[dict]:
        return self.uow.all("SELECT * FROM organizations ORDER BY name, id")

    def create_staff(self, account_id, name, locale) -> None:
        self.uow.execute(
            "INSERT INTO staff (account_id, name, locale) VALUES (%s, %s, %s)",
            (account_id, name, locale),
        )

    def recent_failures(self, key: str, since) -> int:
        return self.uow.one(
            "SELECT count(*) AS n FROM login_failures WHERE key = %s AND failed_at > %s",
            (key, since),
        )["n"]

    def record_failures(self, keys: list[str], at) -> None:
        for key in keys:
            self.uow.execute(
                "INSERT INTO login_failures (key, failed_at) VALUES (%s, %s)", (key, at)
            )
        self.uow.execute("DELETE FROM login_failures WHERE failed_at < %s", (at - FAILURES_KEPT,))

    def clear_failures(self, key: str) -> None:
        self.uow.execute("DELETE FROM login_failures WHERE key = %s", (key,))
