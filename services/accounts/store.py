"""SQL of the accounts database, reached through the unit of work (`uow.store`). Times come from
the unit of work's clock (`at`, `since`), as the use cases read it."""

import json
from datetime import datetime, timedelta
from uuid import UUID

from psycopg2.extras import execute_values

from chassis import access
from chassis.paging import Keyset, Page
from chassis.revocation import record
from contracts.schemas.accounts import ReturneeProfile
from services.accounts.profile import STORED_APART

# The orders of the listings answered a page at a time (chassis.paging).
RETURNEES = Keyset(
    "created_at", "id", types=(datetime, UUID), columns=("r.created_at", "r.account_id")
)
FOUND = Keyset("name", "id", types=(str, UUID), columns=("r.profile->>'name'", "a.id"))
CONSENT_CHANGES = Keyset("changed_at", "id", types=(datetime, int), descending=True)
ACCESS_LOG = Keyset("read_at", "id", types=(datetime, int), descending=True)

# The profile document in `returnees.profile`: every profile field but email and consents.
PROFILE_DOCUMENT = ReturneeProfile(exclude=STORED_APART)
# Throttling needs minutes of history; attempts are kept a day at most.
HITS_KEPT = timedelta(days=1)
CONSENT_ARRAYS = ("purposes", "granted", "changed_at")  # of `returnee`


class EmailTaken(Exception):
    pass


class AccountsStore:
    def __init__(self, uow):
        self.uow = uow

    def create_account(self, account_id, email, password_hash, role, organization_id=None, *,
                       at, verified_at=None) -> None:  # fmt: skip
        """`EmailTaken` when another account has the email; the transaction goes on.
        `password_hash` None: an invited account, no password yet."""
        # Nothing inserted on a taken email, without an error: no savepoint to roll back to.
        created = self.uow.one(
            "INSERT INTO accounts (id, email, password_hash, role, organization_id, created_at,"
            " email_verified_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (email) DO NOTHING RETURNING id",
            (account_id, email, password_hash, role, organization_id, at, verified_at),
        )
        if created is None:
            raise EmailTaken(email)

    def account_by_email(self, email) -> dict | None:
        return self.uow.one("SELECT * FROM accounts WHERE email = %s", (email,))

    def account(self, account_id, for_update=False) -> dict | None:
        """The account with its staff name and locale (None for returnees)."""
        return self.uow.one(
            "SELECT a.*, s.name AS staff_name, s.locale AS staff_locale"
            " FROM accounts a LEFT JOIN staff s ON s.account_id = a.id WHERE a.id = %s"
            + (" FOR UPDATE OF a" if for_update else ""),
            (str(account_id),),
        )

    def set_password(self, account_id, password_hash) -> None:
        self.uow.execute(
            "UPDATE accounts SET password_hash = %s WHERE id = %s", (password_hash, str(account_id))
        )

    def mark_email_verified(self, account_id, *, at) -> bool:
        """Whether the address was not verified before."""
        return (
            self.uow.execute(
                "UPDATE accounts SET email_verified_at = %s"
                " WHERE id = %s AND email_verified_at IS NULL",
                (at, str(account_id)),
            ).rowcount
            == 1
        )

    def set_disabled(self, account_id, at) -> None:
        """Disabled since `at`; None enables."""
        self.uow.execute(
            "UPDATE accounts SET disabled_at = %s WHERE id = %s", (at, str(account_id))
        )

    def set_role(self, account_id, role, organization_id) -> None:
        self.uow.execute(
            "UPDATE accounts SET role = %s, organization_id = %s WHERE id = %s",
            (role, organization_id, str(account_id)),
        )

    def create_returnee(self, account_id, profile: dict, sealed_id_document: bytes | None, *,
                        at, sealed_with: str | None = None) -> None:  # fmt: skip
        self.uow.write(  # sent with the next statement: nothing is read back here
            "INSERT INTO returnees (account_id, profile, id_document, id_document_key, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (account_id, json.dumps(PROFILE_DOCUMENT.dump(profile)), sealed_id_document,
             sealed_with if sealed_id_document is not None else None, at, at),
        )  # fmt: skip

    def sealed_not_under(self, key: str, limit: int) -> list[dict]:
        """ID documents sealed under another key than `key`, or before key ids, locked."""
        return self.uow.all(
            "SELECT account_id, id_document, id_document_key FROM returnees"
            " WHERE id_document IS NOT NULL"
            " AND (id_document_key IS NULL OR id_document_key <> %s)"
            " ORDER BY account_id LIMIT %s FOR UPDATE SKIP LOCKED",
            (key, limit),
        )

    def reseal(self, account_id, sealed: bytes, key: str) -> None:
        self.uow.execute(
            "UPDATE returnees SET id_document = %s, id_document_key = %s WHERE account_id = %s",
            (sealed, key, str(account_id)),
        )

    def returnee(self, returnee_id, for_update=False) -> dict | None:
        """The returnee's profile (loaded: dates as dates), email, consents and timestamps."""
        # The consents in the same statement, as three arrays of one order.
        row = self.uow.one(
            "SELECT a.id, a.email, r.profile, r.id_document IS NOT NULL AS has_id_document,"
            " r.created_at, r.updated_at, c.purposes, c.granted, c.changed_at"
            " FROM returnees r JOIN accounts a ON a.id = r.account_id,"
            " LATERAL (SELECT array_agg(purpose) AS purposes, array_agg(granted) AS granted,"
            " array_agg(changed_at) AS changed_at FROM consents"
            " WHERE returnee_id = r.account_id) c"
            " WHERE r.account_id = %s" + (" FOR UPDATE OF r" if for_update else ""),
            (str(returnee_id),),
        )
        if row is None:
            return None
        purposes, granted, changed_at = (row.pop(k) or [] for k in CONSENT_ARRAYS)
        return {
            **row,
            "profile": PROFILE_DOCUMENT.load(row["profile"]),
            "consents": {
                purpose: {"purpose": purpose, "granted": g, "changed_at": at}
                for purpose, g, at in zip(purposes, granted, changed_at, strict=True)
            },
        }

    def search_returnees(self, term: str, limit: int, cursor=None) -> Page:
        """Returnees whose name, email, phone or company name holds `term` (case ignored),
        by name. A scan of the table: enough for a district's caseload; a trigram index
        is the next step past it."""
        like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        after, values = FOUND.clause(cursor)
        for i in range(len(values)):  # the query's parameters are named
            after = after.replace("%s", f"%(after{i})s", 1)
        rows = self.uow.all(
            f"""SELECT a.id, a.email, r.profile->>'name' AS name, r.profile->>'phone' AS phone,
                       r.profile->'company'->>'name' AS company
                FROM returnees r JOIN accounts a ON a.id = r.account_id
                WHERE (a.email ILIKE %(like)s OR r.profile->>'name' ILIKE %(like)s
                   OR r.profile->>'phone' ILIKE %(like)s
                   OR r.profile->'company'->>'name' ILIKE %(like)s)
                  AND r.profile->>'name' IS NOT NULL AND {after}
                ORDER BY {FOUND.order_by()}
                LIMIT %(limit)s""",
            {"like": like, "limit": limit + 1, **{f"after{i}": v for i, v in enumerate(values)}},
        )
        return FOUND.page(rows, limit)

    def returnee_page(self, limit: int, offset: int = 0, cursor=None) -> Page:
        """A page of returnees as `returnee` has each, oldest first, after `cursor` (and
        `offset` more), in two statements."""
        after, values = RETURNEES.clause(cursor)
        rows = self.uow.all(
            "SELECT a.id, a.email, r.profile, r.id_document IS NOT NULL AS has_id_document,"
            " r.created_at, r.updated_at"
            f" FROM returnees r JOIN accounts a ON a.id = r.account_id WHERE {after}"
            f" ORDER BY {RETURNEES.order_by()} LIMIT %s OFFSET %s",
            (*values, limit + 1, offset),
        )
        consents: dict[str, dict] = {}
        for c in self.uow.all(
            "SELECT returnee_id, purpose, granted, changed_at FROM consents"
            " WHERE returnee_id = ANY(%s::uuid[])",
            ([str(row["id"]) for row in rows],),
        ):
            consents.setdefault(str(c["returnee_id"]), {})[c["purpose"]] = c
        return RETURNEES.page([
            {**row, "id": str(row["id"]), "profile": PROFILE_DOCUMENT.load(row["profile"]),
             "consents": consents.get(str(row["id"]), {})}
            for row in rows
        ], limit)  # fmt: skip

    def update_profile(self, returnee_id, profile: dict, *, at) -> None:
        self.uow.execute(
            "UPDATE returnees SET profile = %s, updated_at = %s WHERE account_id = %s",
            (json.dumps(PROFILE_DOCUMENT.dump(profile)), at, str(returnee_id)),
        )

    def set_consents(self, returnee_id, consents: dict[str, bool], changed_at,
                     record: dict | None = None) -> None:  # fmt: skip
        """The current decision per purpose, and the history (with `record`: actor_id,
        actor_role, source, text_version), in two statements."""
        if consents:
            self._record_consents([(returnee_id, consents, record or {})], changed_at)

    def _record_consents(self, decisions, changed_at) -> None:
        """`(returnee_id, {purpose: granted}, record)` of many returnees; a record holds
        actor_id, actor_role, source, text_version and evidence, each optional."""
        current = [
            (str(returnee_id), purpose, granted, changed_at)
            for returnee_id, consents, _ in decisions
            for purpose, granted in consents.items()
        ]
        if not current:
            return
        # Both sent with the next statement: nothing is read back here.
        self.uow.write_values(
            "INSERT INTO consents (returnee_id, purpose, granted, changed_at) VALUES %s"
            " ON CONFLICT (returnee_id, purpose)"
            " DO UPDATE SET granted = excluded.granted, changed_at = excluded.changed_at",
            current,
        )
        self.uow.write_values(
            "INSERT INTO consent_history (returnee_id, purpose, granted, changed_at, source,"
            " actor_id, actor_role, text_version, evidence) VALUES %s",
            [
                (str(returnee_id), purpose, granted, changed_at, record.get("source", "api"),
                 None if record.get("actor_id") is None else str(record["actor_id"]),
                 record.get("actor_role"), record.get("text_version", "unrecorded"),
                 record.get("evidence"))
                for returnee_id, consents, record in decisions
                for purpose, granted in consents.items()
            ],
        )  # fmt: skip

    def accounts_by_emails(self, emails) -> dict[str, dict]:
        """The accounts having these emails, by email."""
        rows = self.uow.all(
            "SELECT id, email, role FROM accounts WHERE email = ANY(%s)", (list(emails),)
        )
        return {row["email"]: {**row, "id": str(row["id"])} for row in rows}

    def import_returnees(self, imported: list[dict], *, at, actor, record=None) -> set[str]:
        """Invited returnees (no password) with profile and consents, in a few statements:
        `imported` holds id, email, profile, sealed (ID document, with `sealed_with` its key),
        consents, evidence. The ids created: an email another transaction took meanwhile is
        skipped. `record`: what the consent history records besides (actor_role,
        text_version)."""
        if not imported:
            return set()
        made = execute_values(
            self.uow.cursor,
            "INSERT INTO accounts (id, email, password_hash, role, created_at) VALUES %s"
            " ON CONFLICT (email) DO NOTHING RETURNING id",
            [(r["id"], r["email"], None, "returnee", at) for r in imported],
            fetch=True,
        )
        ids = {str(row["id"]) for row in made}
        kept = [r for r in imported if r["id"] in ids]
        if not kept:
            return ids
        execute_values(
            self.uow.cursor,
            "INSERT INTO returnees (account_id, profile, id_document, id_document_key,"
            " created_at, updated_at) VALUES %s",
            [
                (r["id"], json.dumps(PROFILE_DOCUMENT.dump(r["profile"])), r["sealed"],
                 r.get("sealed_with") if r["sealed"] is not None else None, at, at)
                for r in kept
            ],
        )  # fmt: skip
        base = {**(record or {}), "source": "import", "actor_id": actor}
        self._record_consents(
            [(r["id"], r["consents"], {**base, "evidence": r["evidence"]}) for r in kept], at
        )
        return ids

    def consent_history(self, returnee_id, newest_first: bool = False) -> list[dict]:
        order = "changed_at DESC, id DESC" if newest_first else "changed_at, id"
        return self.uow.all(
            "SELECT purpose, granted, changed_at, source, actor_id, actor_role, text_version,"
            f" evidence FROM consent_history WHERE returnee_id = %s ORDER BY {order}",
            (str(returnee_id),),
        )

    def consent_changes(self, returnee_id, cursor=None, limit: int = 50) -> Page:
        """A page of the consent history, newest first, after `cursor`."""
        after, values = CONSENT_CHANGES.clause(cursor)
        rows = self.uow.all(
            "SELECT id, purpose, granted, changed_at, source, actor_id, actor_role,"
            f" text_version, evidence FROM consent_history WHERE returnee_id = %s AND {after}"
            f" ORDER BY {CONSENT_CHANGES.order_by()} LIMIT %s",
            (str(returnee_id), *values, limit + 1),
        )
        return CONSENT_CHANGES.page(rows, limit)

    def record_access(self, entry: dict) -> None:
        self.uow.execute(
            "INSERT INTO access_log (returnee_id, reader_id, reader_role, service, what,"
            " case_ref, reason, read_at) VALUES (%(returnee_id)s, %(reader_id)s,"
            " %(reader_role)s, %(service)s, %(what)s, %(case_ref)s, %(reason)s, %(read_at)s)",
            entry,
        )

    def access_log(self, returnee_id, limit: int, cursor=None) -> Page:
        """A page of the returnee's access log, newest first, after `cursor`."""
        after, values = ACCESS_LOG.clause(cursor)
        rows = self.uow.all(
            "SELECT id, reader_id, reader_role, service, what, case_ref, reason, read_at"
            f" FROM access_log WHERE returnee_id = %s AND {after}"
            f" ORDER BY {ACCESS_LOG.order_by()} LIMIT %s",
            (str(returnee_id), *values, limit + 1),
        )
        return ACCESS_LOG.page(rows, limit)

    def keep_case_link(self, kind: str, case_id, returnee_id) -> None:
        access.store_link(self.uow, kind, case_id, returnee_id)

    def case_returnee(self, kind: str, case_id) -> str | None:
        """Whose case `<kind>:<case_id>` is (None: no such case known here)."""
        return access.linked_returnee(self.uow, kind, case_id)

    def is_erased(self, returnee_id) -> bool:
        return (
            self.uow.one(
                "SELECT 1 AS erased FROM erasures WHERE returnee_id = %s", (str(returnee_id),)
            )
            is not None
        )

    def erase_returnee(self, returnee_id, email, *, at) -> None:
        """Delete the person's data here; keep only the fact and time of the erasure."""
        self.uow.execute("DELETE FROM accounts WHERE id = %s", (str(returnee_id),))  # cascades
        access.forget_links(self.uow, returnee_id)
        # The previous release's sign-in failures, counted by email (migration accounts_0003).
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

    def organizations_by_names(self, names) -> dict[str, dict]:
        """The first registered organization of each name, by name."""
        rows = self.uow.all(
            "SELECT DISTINCT ON (name) * FROM organizations WHERE name = ANY(%s)"
            " ORDER BY name, created_at, id",
            (list(names),),
        )
        return {row["name"]: row for row in rows}

    def organization(self, organization_id) -> dict | None:
        return self.uow.one("SELECT * FROM organizations WHERE id = %s", (str(organization_id),))

    def organizations(self) -> list[dict]:
        return self.uow.all("SELECT * FROM organizations ORDER BY name, id")

    def create_staff(self, account_id, name, locale) -> None:
        self.uow.execute(
            "INSERT INTO staff (account_id, name, locale) VALUES (%s, %s, %s)",
            (account_id, name, locale),
        )

    def staff_members(self) -> list[dict]:
        """Every staff account as `staff_member` has it, by name."""
        return self.uow.all(
            "SELECT a.id, a.email, s.name, a.role, a.organization_id, s.locale,"
            " a.email_verified_at, a.disabled_at"
            " FROM staff s JOIN accounts a ON a.id = s.account_id ORDER BY s.name, a.id"
        )

    def staff_member(self, staff_id, for_update=False) -> dict | None:
        """A staff account: id, email, name, role, organization, locale, verified and
        disabled times."""
        return self.uow.one(
            "SELECT a.id, a.email, s.name, a.role, a.organization_id, s.locale,"
            " a.email_verified_at, a.disabled_at"
            " FROM staff s JOIN accounts a ON a.id = s.account_id WHERE s.account_id = %s"
            + (" FOR UPDATE OF a" if for_update else ""),
            (str(staff_id),),
        )

    # -- refresh tokens ----------------------------------------------------------------------

    def add_refresh_token(self, token_hash, family_id, account_id, *, at, expires_at) -> None:
        self.uow.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, account_id, issued_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (token_hash, str(family_id), str(account_id), at, expires_at),
        )

    def refresh_token(self, token_hash, for_update=False) -> dict | None:
        return self.uow.one(
            "SELECT * FROM refresh_tokens WHERE token_hash = %s"
            + (" FOR UPDATE" if for_update else ""),
            (token_hash,),
        )

    def use_refresh_token(self, token_hash, *, at) -> None:
        self.uow.execute(
            "UPDATE refresh_tokens SET used_at = %s WHERE token_hash = %s", (at, token_hash)
        )

    def revoke_refresh_family(self, family_id, *, at) -> None:
        self.uow.execute(
            "UPDATE refresh_tokens SET revoked_at = %s WHERE family_id = %s AND revoked_at IS NULL",
            (at, str(family_id)),
        )

    def revoke_refresh_tokens(self, account_id, *, at) -> None:
        """Every refresh token of the account; expired ones go."""
        self.uow.execute(
            "UPDATE refresh_tokens SET revoked_at = %s"
            " WHERE account_id = %s AND revoked_at IS NULL",
            (at, str(account_id)),
        )
        self.uow.execute(
            "DELETE FROM refresh_tokens WHERE account_id = %s AND expires_at < %s",
            (str(account_id), at),
        )

    def revoke_subject(self, subject, not_before) -> None:
        """What every service keeps of `credentials.revoked` (`chassis.revocation`), kept here
        at once by the unit of work that revokes."""
        record(self.uow, subject, not_before)

    # -- single-use links ----------------------------------------------------------------------

    def add_links(self, links: list[tuple], *, at) -> None:
        """`(token_hash, account_id, purpose, expires_at)` of many new accounts' first links."""
        rows = [(h, str(a), purpose, at, expires) for h, a, purpose, expires in links]
        if len(rows) == 1:  # a registration's: execute_values' paging costs more than the row
            self.add_link(*links[0][:3], at=at, expires_at=links[0][3])
            return
        execute_values(
            self.uow.cursor,
            "INSERT INTO account_links (token_hash, account_id, purpose, created_at, expires_at)"
            " VALUES %s",
            rows,
        )

    def add_link(self, token_hash, account_id, purpose, *, at, expires_at) -> None:
        self.uow.write(  # sent with the next statement: nothing is read back here
            "INSERT INTO account_links (token_hash, account_id, purpose, created_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (token_hash, str(account_id), purpose, at, expires_at),
        )

    def link(self, token_hash, for_update=False) -> dict | None:
        return self.uow.one(
            "SELECT * FROM account_links WHERE token_hash = %s"
            + (" FOR UPDATE" if for_update else ""),
            (token_hash,),
        )

    def use_links(self, account_id, purposes, *, at) -> None:
        """Every unused link of the account for `purposes` used up (and expired ones gone)."""
        self.uow.execute(
            "UPDATE account_links SET used_at = %s"
            " WHERE account_id = %s AND purpose = ANY(%s) AND used_at IS NULL",
            (at, str(account_id), list(purposes)),
        )
        self.uow.execute(
            "DELETE FROM account_links WHERE account_id = %s AND expires_at < %s",
            (str(account_id), at),
        )

    # -- throttling ----------------------------------------------------------------------------

    def lock_throttles(self, keys: list[str]) -> None:
        """Until the transaction ends, no other one counts or records under these keys: a check
        and its record are one step, so parallel attempts get no extra tries. Sent with the
        unit's next statement (`uow.write`), the count, which PostgreSQL runs once they are
        taken."""
        for key in sorted(keys):  # one order for everyone: no deadlock
            self.uow.write("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def throttle_window(self, key: str, since) -> tuple[int, object]:
        """How many attempts under `key` since `since`, and when the oldest of them was."""
        row = self.uow.one(
            "SELECT count(*) AS n, min(hit_at) AS oldest FROM throttle_hits"
            " WHERE key = %s AND hit_at > %s",
            (key, since),
        )
        return row["n"], row["oldest"]

    def record_hits(self, keys: list[str], at, ids: bool = True) -> list[int]:
        """The hits' ids in the order of `keys`; with `ids=False` none (`[]`), and the statement
        goes with the unit's next one or its `COMMIT` (`uow.write`)."""
        # One statement: the hits and the clean-up (the previous release's table too, while it
        # still exists: migration accounts_0003). The deletes see the table as it was before
        # the statement, and the new hits are not older than HITS_KEPT anyway.
        sql = (
            "WITH old AS (DELETE FROM throttle_hits WHERE hit_at < %(before)s),"
            " old_failures AS (DELETE FROM login_failures WHERE failed_at < %(before)s)"
            " INSERT INTO throttle_hits (key, hit_at)"
            " SELECT key, %(at)s FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS k(key, n)"
            " ORDER BY n"
        )
        params = {"before": at - HITS_KEPT, "at": at, "keys": list(keys)}
        if not ids:
            self.uow.write(sql, params)
            return []
        rows = self.uow.all(sql + " RETURNING id, key", params)
        ids: dict[str, list[int]] = {}
        for row in sorted(rows, key=lambda row: row["id"]):  # ids in the order of `keys`
            ids.setdefault(row["key"], []).append(row["id"])
        return [ids[key].pop(0) for key in keys]

    def forget_hits(self, ids: list[int]) -> None:
        self.uow.execute("DELETE FROM throttle_hits WHERE id = ANY(%s)", (list(ids),))

    def clear_hits(self, key: str) -> None:
        self.uow.execute("DELETE FROM throttle_hits WHERE key = %s", (key,))
