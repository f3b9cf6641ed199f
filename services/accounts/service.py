"""accounts: returnees, organizations, staff, authentication, consent and erasure.

Publishes returnee.registered/updated/erased, consent.changed, organization.registered and
staff.registered through the outbox.
"""

import uuid
from datetime import UTC, date, datetime

from chassis.auth import Authenticator
from chassis.db import Database
from chassis.web import (
    Conflict,
    NotFound,
    Operable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    http,
    invalid,
)
from services.accounts import store
from services.accounts.bootstrap import AdminBootstrap
from services.accounts.credentials import (
    PER_ADDRESS,
    PER_EMAIL,
    hash_password,
    password_matches,
)
from services.accounts.profile import (
    STORED_APART,
    changed_fields,
    consent_changes,
    normalize_email,
    profile_problems,
)
from services.accounts.schemas import (
    PASSWORD_RULE,
    PROFILE_RULES,
    ConsentUpdate,
    OrganizationIn,
    OrganizationOut,
    ProfileChanges,
    Registration,
    ReturneeOut,
    StaffIn,
    StaffOut,
    TokenOut,
    TokenRequest,
)
from services.accounts.sealing import Sealing


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
        "consent_times": {
            p: {"granted": c["granted"], "changed_at": c["changed_at"]}
            for p, c in row["consents"].items()
        },
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _check(profile: dict, today: date) -> None:
    problems = profile_problems(profile, today)
    if problems:
        raise invalid(problems)


class AccountsService(Operable):
    """Returnees, partner organizations and station staff; sign-in; consent; erasure."""

    name = "accounts"
    db = Database()
    auth = Authenticator()
    admin = AdminBootstrap()
    sealer = Sealing()

    @http(
        "POST",
        "/returnees",
        body=Registration,
        response=ReturneeOut(),
        status=201,
        rules=(*PROFILE_RULES, PASSWORD_RULE),
        summary="Register a returnee (public)",
    )
    def register(self, request, body):
        _check(body, date.today())
        returnee_id = str(uuid.uuid4())
        email = normalize_email(body["email"])
        password_hash = hash_password(body["password"])
        document = body.get("id_document")
        sealed = (
            self.sealer.seal(f"{document['kind']}:{document['number']}", returnee_id)
            if document
            else None
        )
        profile = {
            k: v for k, v in body.items() if k not in (*STORED_APART, "password", "id_document")
        }
        now = datetime.now(UTC)
        with self.db.transaction() as tx:
            try:
                store.create_account(tx, returnee_id, email, password_hash, "returnee")
            except store.EmailTaken:
                raise Conflict(
                    "This email is already registered.", code="email_taken", zh="该邮箱已注册。"
                ) from None
            store.create_returnee(tx, returnee_id, profile, sealed)
            store.set_consents(tx, returnee_id, body["consents"], now)
            row = store.returnee(tx, returnee_id)
            tx.publish(
                "returnee.registered",
                {"returnee_id": returnee_id, **event_profile(row)},
                subject=returnee_id,
            )
        return returnee_view(row)

    @http(
        "GET",
        "/returnees/<returnee_id>",
        response=ReturneeOut(),
        roles=["returnee", "advisor", "admin"],
        summary="A returnee's profile (the returnee, advisors, admins)",
    )
    def read_returnee(self, request, returnee_id):
        self.auth.caller(request).require_self_or("advisor", "admin", owner=returnee_id)
        with self.db.transaction() as tx:
            row = store.returnee(tx, _uuid(returnee_id))
        if row is None:
            raise NotFound()
        return returnee_view(row)

    @http(
        "PATCH",
        "/returnees/<returnee_id>",
        body=ProfileChanges,
        response=ReturneeOut(),
        roles=["returnee", "admin"],
        rules=PROFILE_RULES,
        summary="Change a returnee's profile or consents (the returnee, admins)",
    )
    def change_returnee(self, request, returnee_id, body):
        self.auth.caller(request).require_self_or("admin", owner=returnee_id)
        now = datetime.now(UTC)
        with self.db.transaction() as tx:
            row = store.returnee(tx, _uuid(returnee_id), for_update=True)
            if row is None:
                raise NotFound()
            before = event_profile(row)
            profile = {**row["profile"], **{k: v for k, v in body.items() if k != "consents"}}
            _check(profile, now.date())
            store.update_profile(tx, row["id"], profile)
            consents = consent_changes(before["consents"], body.get("consents") or {})
            store.set_consents(tx, row["id"], consents, now)
            row = store.returnee(tx, row["id"])
            after = event_profile(row)
            changed = changed_fields(before, after)
            if changed:
                tx.publish(
                    "returnee.updated",
                    {"returnee_id": row["id"], "changed_fields": changed, **after},
                    subject=row["id"],
                )
            for purpose, granted in consents.items():
                tx.publish(
                    "consent.changed",
                    {
                        "returnee_id": row["id"],
                        "purpose": purpose,
                        "granted": granted,
                        "changed_at": now,
                    },
                    subject=row["id"],
                )
        return returnee_view(row)

    @http(
        "PUT",
        "/returnees/<returnee_id>/consents",
        body=ConsentUpdate,
        roles=["returnee", "admin"],
        summary="Grant or withdraw consent per purpose (the returnee, admins)",
    )
    def change_consents(self, request, returnee_id, body):
        return self.change_returnee(request, returnee_id, {"consents": body})

    @http(
        "GET",
        "/returnees/<returnee_id>/consents",
        roles=["returnee", "advisor", "admin"],
        summary="Current consents and their history (the returnee, advisors, admins)",
    )
    def read_consents(self, request, returnee_id):
        self.auth.caller(request).require_self_or("advisor", "admin", owner=returnee_id)
        with self.db.transaction() as tx:
            row = store.returnee(tx, _uuid(returnee_id))
            if row is None:
                raise NotFound()
            history = store.consent_history(tx, row["id"])
        return {
            "current": returnee_view(row)["consent_times"],
            "history": history,
        }

    @http(
        "DELETE",
        "/returnees/<returnee_id>",
        status=204,
        roles=["returnee", "admin"],
        summary="Erase a returnee's account and data (the returnee, admins)",
    )
    def erase_returnee(self, request, returnee_id):
        self.auth.caller(request).require_self_or("admin", owner=returnee_id)
        with self.db.transaction() as tx:
            row = store.returnee(tx, _uuid(returnee_id), for_update=True)
            if row is None:
                raise NotFound()
            store.erase_returnee(tx, row["id"], row["email"])
            tx.forget_published(row["id"])
            tx.publish("returnee.erased", {"returnee_id": row["id"]}, subject=row["id"])
        return None

    @http(
        "POST",
        "/auth/token",
        body=TokenRequest,
        response=TokenOut(),
        summary="Sign in: exchange email and password for a bearer token",
    )
    def issue_token(self, request, body):
        email = normalize_email(body["email"])
        keys = [f"email:{email}", f"address:{request.client_address}"]
        with self.db.transaction() as tx:
            for key, throttle in zip(keys, (PER_EMAIL, PER_ADDRESS), strict=True):
                if throttle.blocked(store.recent_failures(tx, key, throttle.window_seconds)):
                    raise TooManyRequests(
                        "Too many failed sign-ins; try again later.",
                        zh="登录失败次数过多，请稍后再试。",
                        headers={"Retry-After": str(throttle.window_seconds)},
                    )
            account = store.account_by_email(tx, email)
        if not password_matches(account and account["password_hash"], body["password"]):
            with self.db.transaction() as tx:
                store.record_failures(tx, keys)
            raise Unauthorized(
                "Wrong email or password.", code="invalid_credentials", zh="邮箱或密码错误。"
            )
        with self.db.transaction() as tx:
            store.clear_failures(tx, keys[0])
        codec = self.auth.codec
        token = codec.issue(account["id"], account["role"], account["organization_id"])
        return {"access_token": token, "token_type": "bearer", "expires_in": codec.ttl_seconds}

    @http(
        "POST",
        "/organizations",
        body=OrganizationIn,
        response=OrganizationOut(),
        status=201,
        roles=["admin"],
        summary="Register a partner organization (admins)",
    )
    def register_organization(self, request, body):
        organization_id = str(uuid.uuid4())
        with self.db.transaction() as tx:
            row = store.create_organization(tx, organization_id, body)
            tx.publish(
                "organization.registered",
                {"organization_id": organization_id, **body},
                subject=organization_id,
            )
        return row

    @http(
        "GET",
        "/organizations",
        response=OrganizationOut(many=True),
        summary="Partner organizations (public)",
    )
    def list_organizations(self, request):
        with self.db.transaction() as tx:
            return store.organizations(tx)

    @http(
        "POST",
        "/staff",
        body=StaffIn,
        response=StaffOut(),
        status=201,
        roles=["admin"],
        rules=(
            "a provider has an organization_id",
            "organization_id names a registered organization",
            PASSWORD_RULE,
        ),
        summary="Create a staff account: advisor, provider or admin (admins)",
    )
    def register_staff(self, request, body):
        staff = {**body, "email": normalize_email(body["email"])}
        return register_staff(self.db, staff, hash_password(body["password"]))


def register_staff(db, staff: dict, password_hash: str) -> dict:
    """Create a staff account and publish `staff.registered`; shared with the admin bootstrap."""
    staff_id = str(uuid.uuid4())
    organization_id = staff.get("organization_id")
    with db.transaction() as tx:
        if organization_id and store.organization(tx, organization_id) is None:
            raise Unprocessable(fields={"organization_id": ["No such organization."]})
        try:
            store.create_account(
                tx, staff_id, staff["email"], password_hash, staff["role"], organization_id
            )
        except store.EmailTaken:
            raise Conflict(
                "This email is already registered.", code="email_taken", zh="该邮箱已注册。"
            ) from None
        store.create_staff(tx, staff_id, staff["name"], staff.get("locale"))
        view = {
            "staff_id": staff_id,
            "email": staff["email"],
            "name": staff["name"],
            "role": staff["role"],
            "organization_id": organization_id,
            "locale": staff.get("locale"),
        }
        tx.publish("staff.registered", view, subject=staff_id)
    return {**view, "id": staff_id}


def _uuid(value: str) -> str:
    """A path id that is not a UUID names nothing here: 404, not a database error."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound() from None
