"""accounts' state in memory: `AccountsStore`'s methods over dicts, for handler unit tests.
Same answers as the SQL: unique emails, the rows' keys, `ORDER BY`, cascades on erasure."""

from chassis.paging import Page
from services.accounts.store import (
    ACCESS_LOG,
    CONSENT_CHANGES,
    FOUND,
    HITS_KEPT,
    PROFILE_DOCUMENT,
    RETURNEES,
    EmailTaken,
)


class MemoryStore:
    def __init__(self):
        self.accounts: dict[str, dict] = {}
        self.staff: dict[str, dict] = {}
        self.returnees: dict[str, dict] = {}
        self.consents: dict[tuple[str, str], dict] = {}
        self.history: list[dict] = []
        self.throttle_hits: dict[int, tuple[str, object]] = {}
        self.erasures: dict[str, object] = {}
        self.organization_rows: dict[str, dict] = {}
        self.refresh_tokens: dict[bytes, dict] = {}
        self.links: dict[bytes, dict] = {}
        self.revoked_subjects: dict[str, object] = {}
        self._last_id = 0  # consent_history.id, a bigserial
        self.access_entries: list[dict] = []
        self.case_links: dict[tuple[str, str], str] = {}
        self._last_hit = 0  # throttle_hits.id, a bigserial

    def create_account(self, account_id, email, password_hash, role, organization_id=None, *,
                       at, verified_at=None) -> None:  # fmt: skip
        if any(a["email"] == email for a in self.accounts.values()):
            raise EmailTaken(email)
        self.accounts[str(account_id)] = {
            "id": str(account_id),
            "email": email,
            "password_hash": password_hash,
            "role": role,
            "organization_id": None if organization_id is None else str(organization_id),
            "created_at": at,
            "email_verified_at": verified_at,
            "disabled_at": None,
        }

    def account_by_email(self, email) -> dict | None:
        return next((dict(a) for a in self.accounts.values() if a["email"] == email), None)

    def account(self, account_id, for_update=False) -> dict | None:
        account = self.accounts.get(str(account_id))
        if account is None:
            return None
        staff = self.staff.get(str(account_id)) or {}
        return {**account, "staff_name": staff.get("name"), "staff_locale": staff.get("locale")}

    def set_password(self, account_id, password_hash) -> None:
        if str(account_id) in self.accounts:
            self.accounts[str(account_id)]["password_hash"] = password_hash

    def mark_email_verified(self, account_id, *, at) -> bool:
        account = self.accounts.get(str(account_id))
        if account is None or account["email_verified_at"] is not None:
            return False
        account["email_verified_at"] = at
        return True

    def set_disabled(self, account_id, at) -> None:
        if str(account_id) in self.accounts:
            self.accounts[str(account_id)]["disabled_at"] = at

    def set_role(self, account_id, role, organization_id) -> None:
        if str(account_id) in self.accounts:
            self.accounts[str(account_id)].update(
                role=role, organization_id=None if organization_id is None else str(organization_id)
            )

    def create_returnee(self, account_id, profile: dict, sealed_id_document: bytes | None, *,
                        at, sealed_with: str | None = None) -> None:  # fmt: skip
        self.returnees[str(account_id)] = {
            "profile": PROFILE_DOCUMENT.dump(profile),  # stored as the JSON document is
            "id_document": sealed_id_document,
            "id_document_key": sealed_with if sealed_id_document is not None else None,
            "created_at": at,
            "updated_at": at,
        }

    def sealed_not_under(self, key: str, limit: int) -> list[dict]:
        found = [
            {"account_id": k, "id_document": r["id_document"],
             "id_document_key": r["id_document_key"]}
            for k, r in sorted(self.returnees.items())
            if r["id_document"] is not None and r.get("id_document_key") != key
        ]  # fmt: skip
        return found[:limit]

    def reseal(self, account_id, sealed: bytes, key: str) -> None:
        self.returnees[str(account_id)].update(id_document=sealed, id_document_key=key)

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

    def search_returnees(self, term: str, limit: int, cursor=None) -> Page:
        term = term.casefold()
        found = []
        for account_id, returnee in self.returnees.items():
            profile = returnee["profile"]
            row = {
                "id": account_id,
                "email": self.accounts[account_id]["email"],
                "name": profile.get("name"),
                "phone": profile.get("phone"),
                "company": (profile.get("company") or {}).get("name"),
            }
            if row["name"] is not None and any(
                term in (row[k] or "").casefold() for k in ("email", "name", "phone", "company")
            ):
                found.append(row)
        return FOUND.slice(found, {"cursor": cursor, "limit": limit})

    def returnee_page(self, limit: int, offset: int = 0, cursor=None) -> Page:
        rows = [self.returnee(key) for key in self.returnees]
        after = RETURNEES.slice(rows, {"cursor": cursor, "limit": len(rows) + 1})[offset:]
        return RETURNEES.page(after, limit)

    def update_profile(self, returnee_id, profile: dict, *, at) -> None:
        returnee = self.returnees.get(str(returnee_id))
        if returnee is not None:
            returnee.update(profile=PROFILE_DOCUMENT.dump(profile), updated_at=at)

    def set_consents(self, returnee_id, consents: dict[str, bool], changed_at,
                     record: dict | None = None) -> None:  # fmt: skip
        self._record_consents(returnee_id, consents, changed_at, record or {})

    def _record_consents(self, returnee_id, consents, changed_at, record: dict) -> None:
        for purpose, granted in consents.items():
            decision = {"purpose": purpose, "granted": granted, "changed_at": changed_at}
            self.consents[(str(returnee_id), purpose)] = decision
            self._last_id += 1
            actor = record.get("actor_id")
            self.history.append({
                "id": self._last_id, "returnee_id": str(returnee_id), **decision,
                "source": record.get("source", "api"),
                "actor_id": None if actor is None else str(actor),
                "actor_role": record.get("actor_role"),
                "text_version": record.get("text_version", "unrecorded"),
                "evidence": record.get("evidence"),
            })  # fmt: skip

    def consent_history(self, returnee_id, newest_first: bool = False) -> list[dict]:
        rows = [h for h in self.history if h["returnee_id"] == str(returnee_id)]
        keys = ("purpose", "granted", "changed_at", "source", "actor_id", "actor_role",
                "text_version", "evidence")  # fmt: skip
        ordered = sorted(rows, key=lambda h: (h["changed_at"], h["id"]), reverse=newest_first)
        return [{k: h[k] for k in keys} for h in ordered]

    def consent_changes(self, returnee_id, cursor=None, limit: int = 50) -> Page:
        rows = [h for h in self.history if h["returnee_id"] == str(returnee_id)]
        keys = ("id", "purpose", "granted", "changed_at", "source", "actor_id", "actor_role",
                "text_version", "evidence")  # fmt: skip
        shown = [{k: h[k] for k in keys} for h in rows]
        return CONSENT_CHANGES.slice(shown, {"cursor": cursor, "limit": limit})

    def record_access(self, entry: dict) -> None:
        self._last_id += 1
        self.access_entries.append(
            {**entry, "returnee_id": str(entry["returnee_id"]), "id": self._last_id}
        )

    def access_log(self, returnee_id, limit: int, cursor=None) -> Page:
        keys = ("id", "reader_id", "reader_role", "service", "what", "case_ref", "reason",
                "read_at")  # fmt: skip
        mine = [{k: e[k] for k in keys} for e in self.access_entries
                if e["returnee_id"] == str(returnee_id)]  # fmt: skip
        return ACCESS_LOG.slice(mine, {"cursor": cursor, "limit": limit})

    def accounts_by_emails(self, emails) -> dict[str, dict]:
        wanted = set(emails)
        return {
            a["email"]: {"id": a["id"], "email": a["email"], "role": a["role"]}
            for a in self.accounts.values()
            if a["email"] in wanted
        }

    def import_returnees(self, imported: list[dict], *, at, actor, record=None) -> set[str]:
        ids = set()
        base = {**(record or {}), "source": "import", "actor_id": actor}
        for r in imported:
            try:
                self.create_account(r["id"], r["email"], None, "returnee", at=at)
            except EmailTaken:
                continue
            self.create_returnee(r["id"], r["profile"], r["sealed"], at=at,
                                 sealed_with=r.get("sealed_with"))  # fmt: skip
            self._record_consents(r["id"], r["consents"], at, {**base, "evidence": r["evidence"]})
            ids.add(r["id"])
        return ids

    def keep_case_link(self, kind: str, case_id, returnee_id) -> None:
        self.case_links.setdefault((kind, str(case_id)), str(returnee_id))

    def case_returnee(self, kind: str, case_id) -> str | None:
        return self.case_links.get((kind, str(case_id)))

    def is_erased(self, returnee_id) -> bool:
        return str(returnee_id) in self.erasures

    def erase_returnee(self, returnee_id, email, *, at) -> None:
        account_id = str(returnee_id)
        self.case_links = {k: r for k, r in self.case_links.items() if r != account_id}
        self.accounts.pop(account_id, None)
        self.staff.pop(account_id, None)
        self.returnees.pop(account_id, None)
        self.consents = {k: v for k, v in self.consents.items() if k[0] != account_id}
        self.access_entries = [e for e in self.access_entries if e["returnee_id"] != account_id]
        self.history = [h for h in self.history if h["returnee_id"] != account_id]
        self.refresh_tokens = {
            k: t for k, t in self.refresh_tokens.items() if t["account_id"] != account_id
        }
        self.links = {k: link for k, link in self.links.items() if link["account_id"] != account_id}
        self.erasures.setdefault(account_id, at)

    def create_organization(self, organization_id, data: dict, *, at) -> dict:
        row = {
            "id": str(organization_id),
            **{k: data[k] for k in ("name", "kind", "district", "contact_email")},
            "created_at": at,
        }
        self.organization_rows[row["id"]] = row
        return dict(row)

    def organizations_by_names(self, names) -> dict[str, dict]:
        found = {}
        for o in sorted(self.organization_rows.values(), key=lambda o: (o["created_at"], o["id"])):
            if o["name"] in set(names):
                found.setdefault(o["name"], dict(o))
        return found

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

    def staff_members(self) -> list[dict]:
        found = [self.staff_member(staff_id) for staff_id in self.staff]
        return sorted(found, key=lambda m: (m["name"], m["id"]))

    def staff_member(self, staff_id, for_update=False) -> dict | None:
        staff = self.staff.get(str(staff_id))
        if staff is None:
            return None
        account = self.accounts[str(staff_id)]
        return {
            "id": account["id"],
            "email": account["email"],
            "name": staff["name"],
            "role": account["role"],
            "organization_id": account["organization_id"],
            "locale": staff["locale"],
            "email_verified_at": account["email_verified_at"],
            "disabled_at": account["disabled_at"],
        }

    # -- refresh tokens ----------------------------------------------------------------------

    def add_refresh_token(self, token_hash, family_id, account_id, *, at, expires_at) -> None:
        self.refresh_tokens[token_hash] = {
            "token_hash": token_hash,
            "family_id": str(family_id),
            "account_id": str(account_id),
            "issued_at": at,
            "expires_at": expires_at,
            "used_at": None,
            "revoked_at": None,
        }

    def refresh_token(self, token_hash, for_update=False) -> dict | None:
        token = self.refresh_tokens.get(token_hash)
        return None if token is None else dict(token)

    def use_refresh_token(self, token_hash, *, at) -> None:
        if token_hash in self.refresh_tokens:
            self.refresh_tokens[token_hash]["used_at"] = at

    def revoke_refresh_family(self, family_id, *, at) -> None:
        for token in self.refresh_tokens.values():
            if token["family_id"] == str(family_id) and token["revoked_at"] is None:
                token["revoked_at"] = at

    def revoke_refresh_tokens(self, account_id, *, at) -> None:
        for token in self.refresh_tokens.values():
            if token["account_id"] == str(account_id) and token["revoked_at"] is None:
                token["revoked_at"] = at
        self.refresh_tokens = {
            k: t
            for k, t in self.refresh_tokens.items()
            if not (t["account_id"] == str(account_id) and t["expires_at"] < at)
        }

    def revoke_subject(self, subject, not_before) -> None:
        held = self.revoked_subjects.get(str(subject))
        self.revoked_subjects[str(subject)] = not_before if held is None else max(held, not_before)

    # -- single-use links ----------------------------------------------------------------------

    def add_links(self, links: list[tuple], *, at) -> None:
        for token_hash, account_id, purpose, expires_at in links:
            self.add_link(token_hash, account_id, purpose, at=at, expires_at=expires_at)

    def add_link(self, token_hash, account_id, purpose, *, at, expires_at) -> None:
        self.links[token_hash] = {
            "token_hash": token_hash,
            "account_id": str(account_id),
            "purpose": purpose,
            "created_at": at,
            "expires_at": expires_at,
            "used_at": None,
        }

    def link(self, token_hash, for_update=False) -> dict | None:
        link = self.links.get(token_hash)
        return None if link is None else dict(link)

    def use_links(self, account_id, purposes, *, at) -> None:
        for link in self.links.values():
            if (
                link["account_id"] == str(account_id)
                and link["purpose"] in purposes
                and link["used_at"] is None
            ):
                link["used_at"] = at
        self.links = {
            k: link
            for k, link in self.links.items()
            if not (link["account_id"] == str(account_id) and link["expires_at"] < at)
        }

    # -- throttling ----------------------------------------------------------------------------

    def lock_throttles(self, keys: list[str]) -> None:
        pass  # one unit of work at a time: nothing runs in between

    def throttle_window(self, key: str, since) -> tuple[int, object]:
        times = [at for k, at in self.throttle_hits.values() if k == key and at > since]
        return len(times), min(times, default=None)

    def record_hits(self, keys: list[str], at, ids: bool = True) -> list[int]:
        made = []
        for key in keys:
            self._last_hit += 1
            self.throttle_hits[self._last_hit] = (key, at)
            made.append(self._last_hit)
        self.throttle_hits = {
            i: hit for i, hit in self.throttle_hits.items() if hit[1] >= at - HITS_KEPT
        }
        return made if ids else []

    def forget_hits(self, ids: list[int]) -> None:
        for hit_id in ids:
            self.throttle_hits.pop(hit_id, None)

    def clear_hits(self, key: str) -> None:
        self.throttle_hits = {i: hit for i, hit in self.throttle_hits.items() if hit[0] != key}
