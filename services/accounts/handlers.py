"""accounts' use cases, one per command: `(command, uow) -> answer`, path ids first. The only
place that orchestrates; refusals are the chassis' HttpError family. Who may call is declared
at the entrypoints (`@http(roles=..., owner=...)`), not checked here."""

import uuid

from chassis.web import (
    Conflict,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    invalid,
)
from contracts.vocabulary import STAFF_ROLES
from services.accounts import messages  # noqa: F401  (the catalog of the texts below)
from services.accounts.credentials import PER_ADDRESS, PER_EMAIL, hash_password, password_matches
from services.accounts.profile import (
    STORED_APART,
    changed_fields,
    consent_changes,
    merged_problems,
    normalize_email,
    profile_problems,
)
from services.accounts.store import EmailTaken
from services.accounts.views import consent_times, event_profile, returnee_view, staff_registered


def register_returnee(command: dict, uow, sealer) -> dict:
    """A returnee's account, profile and consents → `returnee.registered`."""
    _refuse_invalid(command, uow.today(), _field_problems(command))
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
    now = uow.now()
    try:
        uow.store.create_account(returnee_id, email, password_hash, "returnee", at=now)
    except EmailTaken:
        raise Conflict("This email is already registered.", code="email_taken") from None
    uow.store.create_returnee(returnee_id, profile, sealed, at=now)
    uow.store.set_consents(returnee_id, command["consents"], now)
    row = uow.store.returnee(returnee_id)
    uow.publish(
        "returnee.registered",
        {"returnee_id": returnee_id, **event_profile(row)},
        subject=returnee_id,
    )
    return returnee_view(row)


def read_returnee(returnee_id: str, uow) -> dict:
    return returnee_view(_returnee(returnee_id, uow))


def change_returnee(returnee_id: str, changes: dict, uow) -> dict:
    """Profile fields and consents → `returnee.updated` naming the changed fields (none
    changed, none published) and `consent.changed` per purpose granted or withdrawn."""
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
    uow.store.set_consents(row["id"], consents, now)
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


def change_consents(returnee_id: str, consents: dict, uow) -> dict:
    """Consent granted or withdrawn per purpose: a profile change of the consents alone."""
    return change_returnee(returnee_id, {"consents": consents}, uow)


def read_consents(returnee_id: str, uow) -> dict:
    row = _returnee(returnee_id, uow)
    return {"current": consent_times(row), "history": uow.store.consent_history(row["id"])}


def erase_returnee(returnee_id: str, uow) -> None:
    """The person's data, and the published events about them, deleted → `returnee.erased`."""
    row = _returnee(returnee_id, uow, for_update=True)
    uow.store.erase_returnee(row["id"], row["email"], at=uow.now())
    uow.forget_published(row["id"])
    uow.publish("returnee.erased", {"returnee_id": row["id"]}, subject=row["id"])


def issue_token(command: dict, client_address: str, db, codec) -> dict:
    """Sign-in, throttled per email and per client address. Takes the database and opens its
    units of work itself: the password is verified outside any (tens of milliseconds of CPU),
    and a failure is recorded in a unit that commits although the request is refused."""
    email = normalize_email(command["email"])
    keys = [f"email:{email}", f"address:{client_address}"]
    with db.unit_of_work() as uow:
        for key, throttle in zip(keys, (PER_EMAIL, PER_ADDRESS), strict=True):
            since = throttle.window_start(uow.now())
            if throttle.blocked(uow.store.recent_failures(key, since)):
                raise TooManyRequests(
                    "Too many failed sign-ins; try again later.",
                    headers={"Retry-After": str(throttle.window_seconds)},
                )
        account = uow.store.account_by_email(email)
    if not password_matches(account and account["password_hash"], command["password"]):
        with db.unit_of_work() as uow:
            uow.store.record_failures(keys, uow.now())
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    with db.unit_of_work() as uow:
        uow.store.clear_failures(keys[0])
    token = codec.issue(account["id"], account["role"], account["organization_id"])
    return {"access_token": token, "token_type": "bearer", "expires_in": codec.ttl_seconds}


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


def list_organizations(uow) -> list[dict]:
    return uow.store.organizations()


def register_staff(command: dict, uow, password_hash: str | None = None) -> dict:
    """A staff account (advisor, provider, admin) → `staff.registered`; an official's account
    is not announced. The admin bootstrap and the seed create theirs here too. `password_hash`:
    the password already hashed (the seed hashes its one demo password once for all)."""
    staff_id = str(uuid.uuid4())
    staff = {**command, "email": normalize_email(command["email"])}
    # Hashed before the unit's first statement: no transaction stays open for its CPU time.
    password_hash = password_hash or hash_password(command["password"])
    organization_id = staff.get("organization_id")
    if organization_id and uow.store.organization(organization_id) is None:
        raise Unprocessable(fields={"organization_id": ["No such organization."]})
    try:
        uow.store.create_account(
            staff_id, staff["email"], password_hash, staff["role"], organization_id, at=uow.now()
        )
    except EmailTaken:
        raise Conflict("This email is already registered.", code="email_taken") from None
    uow.store.create_staff(staff_id, staff["name"], staff.get("locale"))
    data = staff_registered(staff_id, staff)
    if staff["role"] in STAFF_ROLES:
        uow.publish("staff.registered", data, subject=staff_id)
    # else an official: `staff.registered` v1 publishes its role enum, and a new value would
    # break consumers that switch on it; no consumer acts on officials (docs/accounts.md).
    return {**data, "id": staff_id}


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
