"""accounts' use cases, one per command: `(command, uow) -> answer`, path ids first. The only
place that orchestrates; refusals are the chassis' HttpError family. Who may call is declared
at the entrypoints (`@http(roles=..., owner=...)`), not checked here.

Use cases that throttle or verify a password take the database and open their units of work
themselves: an attempt is counted in a unit that commits although the request is refused, and a
password is hashed or verified outside any (tens of milliseconds of CPU)."""

import uuid
from uuid import UUID

from marshmallow import ValidationError

from chassis import access as staff_access
from chassis import batches
from chassis.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    invalid,
)
from chassis.paging import Keyset, Page
from contracts.vocabulary import LOCALES, STAFF_ROLES
from services.accounts import messages  # noqa: F401  (the catalog of the texts below)
from services.accounts.credentials import (
    LINK_LIFETIMES,
    REFRESH_TOKEN_LIFETIME,
    RESET_REQUESTS_PER_ADDRESS,
    SIGN_IN_PER_ACCOUNT_AND_ADDRESS,
    SIGN_IN_PER_ADDRESS,
    Throttle,
    digest,
    hash_password,
    link,
    new_secret,
    password_matches,
)
from services.accounts.profile import (
    STORED_APART,
    changed_fields,
    consent_changes,
    merged_problems,
    normalize_email,
    password_problems,
    profile_problems,
)
from services.accounts.schemas import ImportedReturnee, OrganizationIn
from services.accounts.store import EmailTaken
from services.accounts.views import (
    consent_times,
    event_profile,
    returnee_view,
    staff_registered,
    staff_view,
)

# Purposes of the links that set a password: using one uses up the others.
PASSWORD_LINKS = ("reset_password", "set_password")
ACCEPTED = {"status": "accepted"}  # what a reset request answers, whoever has the address


def register_returnee(command: dict, client_address: str, db, sealer, settings,
                      source: str | None = None) -> dict:  # fmt: skip
    """A returnee's account, profile and consents → `returnee.registered`, and the welcome
    email's verification link → `account.link_issued`. Throttled per client address
    (`settings.registrations`)."""
    with db.unit_of_work() as uow:
        _refuse_invalid(command, uow.today(), _field_problems(command))
        _count(uow, [(settings.registrations, (client_address,))],
               "Too many registrations from your address; try again later.", ids=False)  # fmt: skip
    returnee_id = str(uuid.uuid4())
    email = normalize_email(command["email"])
    # Hashed before the unit's first statement: no transaction stays open for its CPU time.
    password_hash = hash_password(command["password"])
    document = command.get("id_document")
    sealed = (
        sealer.seal(f"{document['kind']}:{document['number']}", returnee_id) if document else None
    )
    profile = {
        k: v for k, v in command.items() if k not in (*STORED_APART, "password", "id_document")
    }
    # `batched`: its two events' outbox rows written in one statement, before the commit.
    with db.unit_of_work(batched=True) as uow:
        now = uow.now()
        try:
            uow.store.create_account(returnee_id, email, password_hash, "returnee", at=now)
        except EmailTaken:
            raise Conflict("This email is already registered.", code="email_taken") from None
        uow.store.create_returnee(returnee_id, profile, sealed, at=now, sealed_with=sealer.key_id)
        record = {
            **consent_record(None, source),
            "actor_id": returnee_id,
            "actor_role": "returnee",
        }
        uow.store.set_consents(returnee_id, command["consents"], now, record)
        row = uow.store.returnee(returnee_id)
        uow.publish(
            "returnee.registered",
            {"returnee_id": returnee_id, **event_profile(row), "email_verified": False},
            subject=returnee_id,
        )
        # A new account has no link to use up: its first, as an import's.
        _issue_links(uow, [(returnee_id, email, profile["name"], profile["locale"])],
                     "verify_email", settings.portal_url)  # fmt: skip
        return returnee_view(row)


def reseal_batch(uow, sealer, batch_size: int = 200) -> int:
    """Up to `batch_size` ID documents sealed under another key than the current one opened
    and sealed again under it (`python -m services.accounts.reseal`); returns how many."""
    rows = uow.store.sealed_not_under(sealer.key_id, batch_size)
    for row in rows:
        account_id = str(row["account_id"])
        plain = sealer.open(row["id_document"], account_id, row["id_document_key"])
        uow.store.reseal(account_id, sealer.seal(plain, account_id), sealer.key_id)
    return len(rows)


IMPORTED_ROW = ImportedReturnee()  # rows of a spreadsheet: cells may be text
ORGANIZATION_ROW = OrganizationIn()
EMAIL_TAKEN = "This email is already registered."
NO_CONSENT = dict.fromkeys(("matching", "notifications", "share_with_partners"), False)


def import_returnees(command: dict, caller, uow, sealer, portal_url: str) -> dict:
    """A batch of returnees from the station's records, one answer per row: `created`, `exists`
    (a returnee has the email: re-importing a file creates nothing twice) or `invalid` (the
    rules of `POST /returnees`, but the password's). Each new returnee has no password and is
    emailed an invitation to set one → `returnee.registered` and `account.link_issued`
    (`set_password`); consents are recorded with source `import`, the admin as actor and the
    row's `consent_reference` as evidence, and without a reference every consent is off."""
    today = uow.today()
    results, valid = [], []
    for index, row in enumerate(command["rows"]):
        loaded = IMPORTED_ROW.load(row)
        problems = merged_problems(loaded.problems, profile_problems(loaded, today))
        if problems:
            results.append(batches.refused(index, problems))
        else:
            valid.append((index, loaded))
    known = uow.store.accounts_by_emails({loaded["email"] for _, loaded in valid})
    imported, seen = [], {}
    for index, loaded in valid:
        email = loaded["email"]
        account = known.get(email)
        if account is not None and account["role"] != "returnee":
            results.append(batches.refused(index, {"email": [EMAIL_TAKEN]}))
        elif account is not None or email in seen:
            results.append(batches.existing(index, account["id"] if account else seen[email]))
        else:
            seen[email] = str(uuid.uuid4())
            imported.append(_imported(seen[email], index, loaded, sealer))
    now = uow.now()
    record = {"actor_role": caller.role, "text_version": CONSENT_TEXT_VERSION}
    made = uow.store.import_returnees(imported, at=now, actor=caller.id, record=record)
    taken = [r for r in imported if r["id"] not in made]  # by another import meanwhile
    if taken:
        known = uow.store.accounts_by_emails({r["email"] for r in taken})
        results.extend(batches.existing(r["row"], known[r["email"]]["id"]) for r in taken)
    imported = [r for r in imported if r["id"] in made]
    results.extend(batches.created(r["row"], r["id"]) for r in imported)
    uow.publish_many(
        "returnee.registered",
        [
            (
                {"returnee_id": r["id"], **r["profile"], "email": r["email"],
                 "consents": r["consents"], "email_verified": False},
                r["id"],
            )
            for r in imported
        ],
    )  # fmt: skip
    _issue_links(uow, [(r["id"], r["email"], r["profile"]["name"], r["profile"]["locale"])
                       for r in imported], "set_password", portal_url)  # fmt: skip
    return batches.outcome(results)


def _imported(returnee_id: str, index: int, loaded: dict, sealer) -> dict:
    document = loaded.get("id_document")
    reference = loaded.get("consent_reference")
    consents = {**NO_CONSENT, **loaded["consents"]} if reference else dict(NO_CONSENT)
    profile = {
        k: v
        for k, v in loaded.items()
        if k not in (*STORED_APART, "id_document", "consent_reference")
    }
    return {
        "row": index,
        "id": returnee_id,
        "email": loaded["email"],
        "profile": profile,
        "sealed": sealer.seal(f"{document['kind']}:{document['number']}", returnee_id)
        if document
        else None,
        "sealed_with": sealer.key_id,
        "consents": consents,
        "evidence": reference,
    }


def import_organizations(command: dict, uow) -> dict:
    """A batch of partner organizations, one answer per row: `created` (→
    `organization.registered`), `exists` (one of the name is registered: re-importing creates
    nothing twice) or `invalid` (the rules of `POST /organizations`)."""
    results, valid = [], []
    for index, row in enumerate(command["rows"]):
        try:
            valid.append((index, ORGANIZATION_ROW.load(row)))
        except ValidationError as error:
            results.append(batches.refused(index, error.messages))
    known = {
        name: str(row["id"])
        for name, row in uow.store.organizations_by_names({o["name"] for _, o in valid}).items()
    }
    for index, organization in valid:
        if organization["name"] in known:
            results.append(batches.existing(index, known[organization["name"]]))
            continue
        row = register_organization(organization, uow)
        known[organization["name"]] = str(row["id"])
        results.append(batches.created(index, row["id"]))
    return batches.outcome(results)


def list_returnees(query: dict, uow, access: dict | None = None) -> Page:
    """A page of returnees, oldest first, for advisors and admins (an export); an advisor
    states a reason; each read in the returnee's access log."""
    staff_access.require_reason(access)
    rows = uow.store.returnee_page(query["limit"], query["offset"], query["cursor"])
    for row in rows:
        record_access(uow, row["id"], access, "profile (export)")
    return rows.map(returnee_view)


def read_returnee(returnee_id: str, uow, access: dict | None = None) -> dict:
    """The profile; an advisor reads it through a case of the returnee's or with a reason."""
    row = _returnee(returnee_id, uow)
    staff_access.require_link(access, row["id"], uow.store.case_returnee)
    record_access(uow, row["id"], access, "profile")
    return returnee_view(row)


def search_returnees(query: dict, uow, access: dict | None = None) -> Page:
    """Returnees found by part of their name, email, phone or company name (for advisors).
    Each one found gets a `search` entry in their access log (what they were found by is
    not kept: the query is itself personal data)."""
    found = uow.store.search_returnees(query["q"].strip(), query["limit"], query["cursor"])
    for row in found:
        record_access(uow, row["id"], access, "search")
    return found


def record_access(uow, returnee_id, access: dict | None, what: str,
                  service: str = "accounts", read_at=None) -> None:  # fmt: skip
    """A staff member's read of the returnee's data, into their access log (`access`: reader,
    role, case, reason; None for the returnee's own reads)."""
    if staff_access.is_own(access, returnee_id):
        return
    uow.store.record_access({
        "returnee_id": str(returnee_id), "service": service, "what": what,
        "read_at": read_at or uow.now(), "reader_id": access["reader_id"],
        "reader_role": access["reader_role"], "case_ref": access.get("case_ref"),
        "reason": access.get("reason"),
    })  # fmt: skip


def record_read(event, uow) -> None:
    """A staff read in another service (`<service>.personal_data_read`) into the returnee's
    access log; nothing for an erased returnee (or one accounts does not know)."""
    data = event.data
    if uow.store.returnee(data["returnee_id"]) is None:
        return
    record_access(uow, data["returnee_id"], data, data["what"],
                  service=event.source.strip("/"), read_at=data["read_at"])  # fmt: skip


def access_log(returnee_id: str, query: dict, uow) -> Page:
    """Who of the staff read the returnee's data, when, what and why; newest first."""
    row = _returnee(returnee_id, uow)
    return uow.store.access_log(row["id"], query["limit"], query["cursor"])


# The version of the consent wording people agree to (the portal's and the API documents'):
# recorded with every consent change, and raised whenever the wording changes.
CONSENT_TEXT_VERSION = "2026-12-01"
CONSENT_SOURCES = ("web", "api", "import")


def consent_record(caller, source: str | None) -> dict:
    """Who changes a consent, through what, under which text."""
    return {
        "actor_id": caller.id if caller else None,
        "actor_role": caller.role if caller else None,
        "source": source if source in CONSENT_SOURCES else "api",
        "text_version": CONSENT_TEXT_VERSION,
    }


def change_returnee(returnee_id: str, changes: dict, uow, record: dict | None = None) -> dict:
    """Profile fields and consents → `returnee.updated` naming the changed fields (none
    changed, none published) and `consent.changed` per purpose granted or withdrawn. Consents
    are the returnee's own decision: anyone else (an admin) is refused them (PIPL art. 14)."""
    if (
        changes.get("consents")
        and record is not None
        and str(record["actor_id"]) != str(returnee_id)
    ):
        raise Forbidden(
            "Only the returnee may change their consents.", code="consent_by_returnee_only"
        )
    try:
        row = _returnee(returnee_id, uow, for_update=True)
    except NotFound:
        if _field_problems(changes):  # an invalid body is a 400 before the 404, as it was
            raise invalid(_field_problems(changes)) from None
        raise
    before = event_profile(row)
    profile = {**row["profile"], **{k: v for k, v in changes.items() if k != "consents"}}
    _refuse_invalid(profile, uow.today(), _field_problems(changes))
    now = uow.now()
    uow.store.update_profile(row["id"], profile, at=now)
    consents = consent_changes(before["consents"], changes.get("consents") or {})
    uow.store.set_consents(row["id"], consents, now, record)
    row = uow.store.returnee(row["id"])
    after = event_profile(row)
    changed = changed_fields(before, after)
    if changed:
        uow.publish(
            "returnee.updated",
            {"returnee_id": row["id"], "changed_fields": changed, **after},
            subject=row["id"],
        )
    for purpose, granted in consents.items():
        uow.publish(
            "consent.changed",
            {"returnee_id": row["id"], "purpose": purpose, "granted": granted, "changed_at": now},
            subject=row["id"],
        )
    return returnee_view(row)


def change_consents(returnee_id: str, consents: dict, uow, record: dict | None = None) -> dict:
    """Consent granted or withdrawn per purpose: a profile change of the consents alone."""
    return change_returnee(returnee_id, {"consents": consents}, uow, record)


def read_consents(returnee_id: str, uow, access: dict | None = None) -> dict:
    row = _returnee(returnee_id, uow)
    staff_access.require_link(access, row["id"], uow.store.case_returnee)
    record_access(uow, row["id"], access, "consents")
    return {"current": consent_times(row), "history": uow.store.consent_history(row["id"])}


def consent_history(returnee_id: str, query: dict, uow) -> Page:
    """Every consent change, newest first: purpose, decision, when, by whom, through what and
    under which consent text."""
    row = _returnee(returnee_id, uow)
    return uow.store.consent_changes(row["id"], query["cursor"], query["limit"])


def erase_returnee(returnee_id: str, uow) -> None:
    """The person's data, and the published events about them, deleted → `returnee.erased`;
    their tokens revoked → `credentials.revoked`."""
    row = _returnee(returnee_id, uow, for_update=True)
    uow.store.erase_returnee(row["id"], row["email"], at=uow.now())  # refresh tokens with it
    uow.forget_published(row["id"])
    _announce_revocation(uow, row["id"], "erased")
    uow.publish("returnee.erased", {"returnee_id": row["id"]}, subject=row["id"])


# -- sessions ------------------------------------------------------------------------------------


def issue_token(command: dict, client_address: str, db, tokens) -> dict:
    """Sign-in: an access token and a refresh token starting a new family. Throttled per account
    and client address, and per client address: every attempt counts as failed until its
    password is verified, so parallel guesses get no extra tries, and guesses from one address
    never block the account from another."""
    email = normalize_email(command["email"])
    pair = (SIGN_IN_PER_ACCOUNT_AND_ADDRESS, (email, client_address))
    with db.unit_of_work() as uow:
        attempts = _count(uow, [pair, (SIGN_IN_PER_ADDRESS, (client_address,))],
                          "Too many failed sign-ins; try again later.")  # fmt: skip
        account = uow.store.account_by_email(email)
    if not password_matches(account and account["password_hash"], command["password"]):
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    if account["disabled_at"] is not None:
        raise Forbidden("This account is disabled.", code="account_disabled")
    with db.unit_of_work() as uow:
        uow.store.forget_hits(attempts)
        uow.store.clear_hits(pair[0].key(*pair[1]))
        return _session(uow, account, tokens)


def refresh_session(command: dict, db, tokens) -> dict:
    """A new access token and the refresh token's successor, for a refresh token used once. A
    used one presented again means a copy exists: its family ends, and the person's access
    tokens are revoked (`credentials.revoked`); they sign in again."""
    token_hash = digest(command["refresh_token"])
    with db.unit_of_work() as uow:
        now = uow.now()
        row = uow.store.refresh_token(token_hash, for_update=True)
        if row is not None and row["used_at"] is not None and row["revoked_at"] is None:
            uow.store.revoke_refresh_family(row["family_id"], at=now)
            _announce_revocation(uow, row["account_id"], "refresh_token_reused")
        elif row is not None and row["revoked_at"] is None and row["expires_at"] > now:
            account = uow.store.account(row["account_id"])
            if account is not None and account["disabled_at"] is None:
                uow.store.use_refresh_token(token_hash, at=now)
                return _session(uow, account, tokens, family_id=row["family_id"])
            uow.store.revoke_refresh_family(row["family_id"], at=now)
    # After the unit: what it revoked stays revoked.
    raise Unauthorized(
        "The refresh token is not valid; sign in again.", code="invalid_refresh_token"
    )


def end_session(command: dict, uow) -> None:
    """Sign-out: the refresh token's family ends (its access token expires by itself)."""
    row = uow.store.refresh_token(digest(command["refresh_token"]))
    if row is not None:
        uow.store.revoke_refresh_family(row["family_id"], at=uow.now())


def _session(uow, account: dict, tokens, family_id: str | None = None) -> dict:
    now = uow.now()
    refresh_token, token_hash = new_secret()
    uow.store.add_refresh_token(token_hash, family_id or uuid.uuid4(), account["id"], at=now,
                                expires_at=now + REFRESH_TOKEN_LIFETIME)  # fmt: skip
    return {
        "access_token": tokens.issue(
            account["id"], account["role"], account["organization_id"], at=now
        ),
        "token_type": "bearer",
        "expires_in": tokens.ttl_seconds,
        "refresh_token": refresh_token,
        "refresh_expires_in": int(REFRESH_TOKEN_LIFETIME.total_seconds()),
    }


# -- passwords and addresses ---------------------------------------------------------------------


def verify_email(command: dict, uow) -> None:
    """The address confirmed with the token of the welcome email's link →
    `account.email_verified`; until then, notify sends it nothing else."""
    found = _valid_link(uow, command["token"], ("verify_email",), for_update=True)
    now = uow.now()
    uow.store.use_links(found["account_id"], ("verify_email",), at=now)
    _mark_verified(uow, found["account_id"], now)


def change_password(command: dict, caller, client_address: str, db) -> None:
    """A signed-in person's new password, given their current one; every token of theirs is
    revoked → `credentials.revoked` (they sign in again). Wrong current passwords count as
    failed sign-ins."""
    with db.unit_of_work() as uow:
        account = uow.store.account(caller.id)
        if account is None:
            raise NotFound()
        problems = password_problems(command["new_password"], account["email"])
        if problems:  # what the schema cannot see: the email (the rest refused it already)
            raise Unprocessable(fields={"new_password": problems})
        attempts = _count(
            uow,
            [(SIGN_IN_PER_ACCOUNT_AND_ADDRESS, (account["email"], client_address))],
            "Too many failed sign-ins; try again later.",
        )
    if not password_matches(account["password_hash"], command["current_password"]):
        raise Unprocessable(fields={"current_password": ["This is not your current password."]})
    password_hash = hash_password(command["new_password"])
    with db.unit_of_work() as uow:
        uow.store.forget_hits(attempts)
        uow.store.set_password(account["id"], password_hash)
        uow.store.use_links(account["id"], PASSWORD_LINKS, at=uow.now())
        _revoke_credentials(uow, account["id"], "password_changed")


def request_password_reset(command: dict, client_address: str, db, portal_url: str) -> dict:
    """A reset link emailed to the address → `account.link_issued`, whether or not an account
    has it (the answer is the same: nobody learns who is registered). An address not confirmed
    yet gets its verification link instead, an invited staff member their invitation again.
    Throttled per client address."""
    with db.unit_of_work() as uow:
        _count(uow, [(RESET_REQUESTS_PER_ADDRESS, (client_address,))],
               "Too many password reset requests; try again later.", ids=False)  # fmt: skip
    with db.unit_of_work() as uow:
        account = uow.store.account_by_email(normalize_email(command["email"]))
        if account is None or account["disabled_at"] is not None:
            return ACCEPTED
        if account["password_hash"] is None:
            purpose = "set_password"
        elif account["email_verified_at"] is None:
            purpose = "verify_email"
        else:
            purpose = "reset_password"
        name, locale = _addressee(uow, account["id"])
        _issue_link(uow, account["id"], account["email"], name, locale, purpose, portal_url)
    return ACCEPTED


def confirm_password_reset(command: dict, db) -> None:
    """The password set with the token of a reset or invitation link, once; the address is
    confirmed by it (→ `account.email_verified`) and, after a reset, every token of the person
    revoked (→ `credentials.revoked`)."""
    with db.unit_of_work() as uow:
        found = _valid_link(uow, command["token"], PASSWORD_LINKS)
        account = uow.store.account(found["account_id"])
    problems = password_problems(command["password"], account["email"])
    if problems:  # what the schema cannot see: the email (the rest refused it already)
        raise Unprocessable(fields={"password": problems})
    password_hash = hash_password(command["password"])
    with db.unit_of_work() as uow:
        found = _valid_link(uow, command["token"], PASSWORD_LINKS, for_update=True)  # once
        now = uow.now()
        uow.store.set_password(account["id"], password_hash)
        uow.store.use_links(account["id"], PASSWORD_LINKS, at=now)
        _mark_verified(uow, account["id"], now)
        if account["password_hash"] is not None:
            _revoke_credentials(uow, account["id"], "password_reset")


def register_organization(command: dict, uow, organization_id: str | None = None) -> dict:
    """A partner organization → `organization.registered`. `organization_id`: a given id (the
    reference data's); a new one otherwise."""
    organization_id = organization_id or str(uuid.uuid4())
    row = uow.store.create_organization(organization_id, command, at=uow.now())
    uow.publish(
        "organization.registered",
        {"organization_id": organization_id, **command},
        subject=organization_id,
    )
    return row


# Partner organizations, read whole (a district has tens to hundreds) and paged by name.
ORGANIZATIONS = Keyset("name", "id", types=(str, UUID))


def list_organizations(query: dict, uow) -> Page:
    return ORGANIZATIONS.slice(uow.store.organizations(), query)


def register_staff(command: dict, uow, portal_url: str | None = None,
                   password_hash: str | None = None) -> dict:  # fmt: skip
    """A staff account (advisor, provider, admin, official) → `staff.registered` (an official's
    is not announced), and an invitation to set its password → `account.link_issued`
    (`set_password`). The admin bootstrap and the development seed give `password_hash` (hashed
    already, outside the unit): a password, no invitation, and an address taken as confirmed."""
    staff_id = str(uuid.uuid4())
    staff = {**command, "email": normalize_email(command["email"])}
    organization_id = staff.get("organization_id")
    if organization_id and uow.store.organization(organization_id) is None:
        raise Unprocessable(fields={"organization_id": ["No such organization."]})
    now = uow.now()
    verified = password_hash is not None
    try:
        uow.store.create_account(staff_id, staff["email"], password_hash, staff["role"],
                                 organization_id, at=now,
                                 verified_at=now if verified else None)  # fmt: skip
    except EmailTaken:
        raise Conflict("This email is already registered.", code="email_taken") from None
    uow.store.create_staff(staff_id, staff["name"], staff.get("locale"))
    data = staff_registered(staff_id, staff, email_verified=verified)
    if staff["role"] in STAFF_ROLES:
        uow.publish("staff.registered", data, subject=staff_id)
    # else an official: `staff.registered` v1 publishes its role enum, and a new value would
    # break consumers that switch on it; no consumer acts on officials (docs/accounts.md).
    if not verified:
        _issue_link(uow, staff_id, staff["email"], staff["name"],
                    staff.get("locale") or LOCALES[0], "set_password", portal_url)  # fmt: skip
    return staff_view(uow.store.staff_member(staff_id))


# The station's staff, read whole (tens of accounts, made by admins) and paged by name.
STAFF = Keyset("name", "id", types=(str, UUID))


def list_staff(query: dict, uow) -> Page:
    """Every staff account with its state (invited, active, disabled), by name."""
    return STAFF.slice(uow.store.staff_members(), query).map(staff_view)


def disable_staff(staff_id: str, caller, uow) -> dict:
    """A staff account that can no longer sign in; every token of theirs revoked →
    `credentials.revoked`. Not one's own: the last admin would lock everyone out."""
    member = _staff(staff_id, uow, for_update=True)
    if member["id"] == caller.id:
        raise Conflict("You cannot disable your own account.")
    if member["disabled_at"] is None:
        uow.store.set_disabled(member["id"], uow.now())
        _revoke_credentials(uow, member["id"], "disabled")
    return staff_view(uow.store.staff_member(member["id"]))


def enable_staff(staff_id: str, uow) -> dict:
    member = _staff(staff_id, uow, for_update=True)
    uow.store.set_disabled(member["id"], None)
    return staff_view(uow.store.staff_member(member["id"]))


def change_staff_role(staff_id: str, command: dict, caller, uow) -> dict:
    """A staff account's role (and organization, which a provider needs) → `staff.updated`;
    every token of theirs revoked → `credentials.revoked`, so none carries the old role."""
    member = _staff(staff_id, uow, for_update=True)
    if member["id"] == caller.id:
        raise Conflict("You cannot change your own role.")
    role, organization_id = command["role"], command.get("organization_id")
    organization_id = None if organization_id is None else str(organization_id)
    if organization_id and uow.store.organization(organization_id) is None:
        raise Unprocessable(fields={"organization_id": ["No such organization."]})
    if (role, organization_id) != (member["role"], member["organization_id"]):
        uow.store.set_role(member["id"], role, organization_id)
        _revoke_credentials(uow, member["id"], "role_changed")
        changed = staff_view(uow.store.staff_member(member["id"]))
        uow.publish(
            "staff.updated",
            staff_registered(member["id"], changed, email_verified=changed["email_verified"]),
            subject=member["id"],
        )
    return staff_view(uow.store.staff_member(member["id"]))


# -- helpers -------------------------------------------------------------------------------------


def _count(uow, throttles: list[tuple[Throttle, tuple]], refusal: str,
           ids: bool = True) -> list[int]:  # fmt: skip
    """One more attempt under each throttle, checked and recorded in one step (the keys are
    locked until the unit ends); 429 with `Retry-After` when one is spent. The ids of the
    recorded attempts, to forget when the attempt turns out a success; with `ids=False` none,
    and the record goes with the unit's `COMMIT`."""
    keys = [throttle.key(*parts) for throttle, parts in throttles]
    uow.store.lock_throttles(keys)
    now = uow.now()
    for (throttle, _), key in zip(throttles, keys, strict=True):
        count, oldest = uow.store.throttle_window(key, throttle.window_start(now))
        if throttle.blocked(count):
            retry_after = throttle.retry_after(oldest, now)
            raise TooManyRequests(refusal, headers={"Retry-After": str(retry_after)})
    return uow.store.record_hits(keys, now, ids=ids)


def _issue_links(uow, accounts: list[tuple], purpose, portal_url) -> None:
    """First links of new accounts `(id, email, name, locale)`, in two statements →
    `account.link_issued` each."""
    now = uow.now()
    expires_at = now + LINK_LIFETIMES[purpose]
    links, events = [], []
    for account_id, email, name, locale in accounts:
        token, token_hash = new_secret()
        links.append((token_hash, account_id, purpose, expires_at))
        events.append(
            (
                {"account_id": str(account_id), "purpose": purpose, "email": email, "name": name,
                 "locale": locale, "link": link(portal_url, purpose, token),
                 "expires_at": expires_at},
                str(account_id),
            )
        )  # fmt: skip
    if links:
        uow.store.add_links(links, at=now)
        # The links are credentials: gone from the outbox once the broker has them.
        uow.publish_many("account.link_issued", events, keep=False)


def _issue_link(uow, account_id, email, name, locale, purpose, portal_url) -> None:
    """A new single-use link (the older ones of its purpose used up) → `account.link_issued`."""
    token, token_hash = new_secret()
    now = uow.now()
    expires_at = now + LINK_LIFETIMES[purpose]
    uow.store.use_links(account_id, (purpose,), at=now)
    uow.store.add_link(token_hash, account_id, purpose, at=now, expires_at=expires_at)
    uow.publish(
        "account.link_issued",
        {
            "account_id": str(account_id),
            "purpose": purpose,
            "email": email,
            "name": name,
            "locale": locale,
            "link": link(portal_url, purpose, token),
            "expires_at": expires_at,
        },
        subject=str(account_id),
        keep=False,  # the link is a credential: gone from the outbox once the broker has it
    )


def _valid_link(uow, token: str, purposes, for_update: bool = False) -> dict:
    found = uow.store.link(digest(token), for_update=for_update)
    if (
        found is None
        or found["purpose"] not in purposes
        or found["used_at"] is not None
        or found["expires_at"] <= uow.now()
    ):
        raise Unprocessable(fields={"token": ["This link is not valid or has expired."]})
    return found


def _addressee(uow, account_id) -> tuple[str, str]:
    """The name and language an email to the account is written for."""
    returnee = uow.store.returnee(account_id)
    if returnee is not None:
        return returnee["profile"]["name"], returnee["profile"]["locale"]
    account = uow.store.account(account_id)
    return account["staff_name"], account["staff_locale"] or LOCALES[0]


def _mark_verified(uow, account_id, now) -> None:
    if uow.store.mark_email_verified(account_id, at=now):
        uow.publish(
            "account.email_verified",
            {"account_id": str(account_id), "verified_at": now},
            subject=str(account_id),
        )


def _announce_revocation(uow, account_id, reason: str) -> None:
    """Every service stops taking the person's tokens issued until now: accounts at once, the
    others from the event."""
    now = uow.now()
    uow.store.revoke_subject(account_id, now)
    uow.publish(
        "credentials.revoked",
        {"subject": str(account_id), "not_before": now, "reason": reason},
        subject=str(account_id),
    )


def _revoke_credentials(uow, account_id, reason: str) -> None:
    """Every token of the person: refresh tokens here, access tokens everywhere."""
    uow.store.revoke_refresh_tokens(account_id, at=uow.now())
    _announce_revocation(uow, account_id, reason)


def _staff(staff_id: str, uow, for_update: bool = False) -> dict:
    try:
        staff_id = str(uuid.UUID(staff_id))
    except ValueError:
        raise NotFound() from None
    member = uow.store.staff_member(staff_id, for_update=for_update)
    if member is None:
        raise NotFound()
    return member


def _returnee(returnee_id: str, uow, for_update: bool = False) -> dict:
    """The stored returnee a path id names; 404 otherwise (a path id that is not a UUID names
    nothing here: 404, not a database error)."""
    try:
        returnee_id = str(uuid.UUID(returnee_id))
    except ValueError:
        raise NotFound() from None
    row = uow.store.returnee(returnee_id, for_update=for_update)
    if row is None:
        raise NotFound()
    return row


def _field_problems(command: dict) -> dict:
    """The field errors of a body loaded with `schemas.CheckedWithRules` (none otherwise)."""
    return getattr(command, "problems", {})


def _refuse_invalid(profile: dict, today, field_problems: dict) -> None:
    """One answer naming every invalid field, the body's own and the profile rules': a 400, or
    a 422 when only the rules the operation states are broken (`chassis.web.invalid`)."""
    problems = merged_problems(field_problems, profile_problems(profile, today))
    if problems:
        raise invalid(problems)
