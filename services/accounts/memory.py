"""accounts' state in memory: `AccountsStore`'s methods over dicts, for handler unit tests.
Same answers as the SQL: unique emails, the rows' keys, `ORDER BY`, cascades on erasure."""

from services.accounts.store import FAILURES_KEPT, PROFILE_DOCUMENT, EmailTaken


class MemoryStore:
    def __init__(self):
        self.accounts: dict[str, dict] = {}
        self.staff: dict[str, dict] = {}
        self.returnees: dict[str, dict] = {}
        self.consents: dict[tuple[str, str], dict] = {}
        self.history: list[dict] = []
        self.login_failures: list[tuple[str, object]] = []
        self.erasures: dict[str, object] = {}
        self.organization_rows: dict[str, dict] = {}
        self._last_id = 0  # consent_history.id, a bigserial

    def create_account(self, account_id, email, password_hash, role, organization_id=None, *,
                       at) -> None:  # fmt: skip
        if any(a["email"] == email for a in self.accounts.values()):
            raise EmailTaken(email)
        self.accounts[str(account_id)] = {
            "id": str(account_id),
            "email": email,
            "password_hash": password_hash,
            "role": role,
            "organization_id": None if organization_id is None else str(organization_id),
            "created_at": at,
        }

    def account_by_email(self, email) -> dict | None:
        return next((dict(a) for a in self.accounts.values() if a["email"] == email), None)

    def create_returnee(self, account_id, profile: dict, sealed_id_document: bytes | None, *,
                        at) -> None:  # fmt: skip
        self.returnees[str(account_id)] = {
            "profile": PROFILE_DOCUMENT.dump(profile),  # stored as the JSON document is
            "id_document": sealed_id_document,
            "created_at": at,
            "updated_at": at,
        }

    def returnee(self, returnee_id, for_update=False) -> dict | None:
        returnee = self.returnees.get(str(returnee_id))
        if returnee is None:
            return None
        account_id = str(returnee_id)
        return {
            "id": account_id,
            "email": self.accounts[account_id]["email"],
            "profile": PROFILE_DOCUMENT.load(returnee["profile"]),
            "has_id_document": returnee["id_document"] is not None,
            "created_at": returnee["created_at"],
            "updated_at": returnee["updated_at"],
            "consents": {
                purpose: dict(c) for (owner, purpose), c in self.consents.items()
                if owner == account_id
            },
        }  # fmt: skip

    def update_profile(self, returnee_id, profile: dict, *, at) -> None:
        returnee = self.returnees.get(str(returnee_id))
        if returnee is not None:
            returnee.update(profile=PROFILE_DOCUMENT.dump(profile), updated_at=at)

    def set_consents(self, returnee_id, consents: dict[str, bool], changed_at) -> None:
        for purpose, granted in consents.items():
            decision = {"purpose": purpose, "granted": granted, "changed_at": changed_at}
            self.consents[(str(returnee_id), purpose)] = decision
            self._last_id += 1
            self.history.append({"id": self._last_id, "returnee_id": str(returnee_id), **decision})

    def consent_history(self, returnee_id) -> list[dict]:
        rows = [h for h in self.history if h["returnee_id"] == str(returnee_id)]
        return [
            {k: h[k] for k in ("purpose", "granted", "changed_at")}
            for h in sorted(rows, key=lambda h: (h["changed_at"], h["id"]))
        ]

    def erase_returnee(self, returnee_id, email, *, at) -> None:
        account_id = str(returnee_id)
        self.accounts.pop(account_id, None)
        self.staff.pop(account_id, None)
        self.returnees.pop(account_id, None)
        self.consents = {k: v for k, v in self.consents.items() if k[0] != account_id}
        self.history = [h for h in self.history if h["returnee_id"] != account_id]
        self.login_failures = [f for f in self.login_failures if f[0] != f"email:{email}"]
        self.erasures.setdefault(account_id, at)

    def create_organization(self, organization_id, data: dict, *, at) -> dict:
        row = {
            "id": str(organization_id),
            **{k: data[k] for k in ("name", "kind", "district", "contact_email")},
            "created_at": at,
        }
        self.organization_rows[row["id"]] = row
        return dict(row)

    def organization(self, organization_id) -> dict | None:
        row = self.organization_rows.get(str(organization_id))
        return None if row is None else dict(row)

    def organizations(self) -> list[dict]:
        return [
            dict(o)
            for o in sorted(self.organization_rows.values(), key=lambda o: (o["name"], o["id"]))
        ]

    def create_staff(self, account_id, name, locale) -> None:
        self.staff[str(account_id)] = {
            "account_id": str(account_id),
            "name": name,
            "locale": locale,
        }

    def recent_failures(self, key: str, since) -> int:
        return sum(1 for k, at in self.login_failures if k == key and at > since)

    def record_failures(self, keys: list[str], at) -> None:
        self.login_failures.extend((key, at) for key in keys)
        self.login_failures = [f for f in self.login_failures if f[1] >= at - FAILURES_KEPT]

    def clear_failures(self, key: str) -> None:
        self.login_failures = [f for f in self.login_failures if f[0] != key]
