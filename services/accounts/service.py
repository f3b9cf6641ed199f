"""accounts: returnees, organizations, staff, sign-in and tokens, consent and erasure.

Publishes returnee.registered/updated/erased, consent.changed, organization.registered,
staff.registered/updated, credentials.revoked, account.link_issued and account.email_verified
through the outbox; subscribes to nothing. The one service that signs bearer tokens: the others
verify them with the public keys it serves at `/.well-known/jwks.json`. Each entrypoint declares
who may call it and hands its command to one use case in `handlers`.
"""

import logging

from chassis.auth import TokenIssuing
from chassis.batches import BatchOut, batch_of
from chassis.db import Database
from chassis.operable import Operable
from chassis.web import http
from services.accounts import handlers
from services.accounts.bootstrap import AdminBootstrap
from services.accounts.providers import Settings
from services.accounts.schemas import (
    JWK_SET,
    LINK_RULE,
    PASSWORD_RULE,
    PROFILE_RULES,
    Accepted,
    AccessEntryOut,
    AccessLogQuery,
    ConsentChangeOut,
    ConsentsOut,
    ConsentUpdate,
    ImportedReturnee,
    LinkToken,
    OrganizationIn,
    OrganizationOut,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    ProfileChanges,
    RefreshRequest,
    Registration,
    ReturneeFound,
    ReturneeOut,
    ReturneeQuery,
    ReturneeSearch,
    StaffIn,
    StaffOut,
    StaffRole,
    TokenOut,
    TokenRequest,
)
from services.accounts.sealing import Sealing
from services.accounts.store import AccountsStore

log = logging.getLogger(__name__)
# Through what a consent is given: the portal says `web`; an import tool `import`; else `api`.
CONSENT_SOURCE_HEADER = "X-Consent-Source"


# What a staff member states with a read of a returnee's data, recorded in their access log.
ACCESS_CASE_HEADER = "X-Access-Case"  # e.g. consultation:<id>
ACCESS_REASON_HEADER = "X-Access-Reason"


def _access(request) -> dict:
    caller = request.caller
    return {
        "reader_id": caller.id,
        "reader_role": caller.role,
        "case_ref": (request.headers.get(ACCESS_CASE_HEADER) or "")[:200] or None,
        "reason": (request.headers.get(ACCESS_REASON_HEADER) or "")[:500] or None,
    }


def _consent_record(request) -> dict:
    return handlers.consent_record(request.caller, request.headers.get(CONSENT_SOURCE_HEADER))


class AccountsService(Operable):
    """Returnees, partner organizations and station staff; sign-in; consent; erasure."""

    name = "accounts"
    # Its own revocations are kept by the units of work that make them (`handlers`): accounts
    # consumes no event, and serves while the broker is away.
    keep_revocation = None
    # Nor `returnee.erased`: its own kept queues are scrubbed by the erasure itself, below.
    forget_in_queues = None
    db = Database(store=AccountsStore)
    tokens = TokenIssuing()
    admin = AdminBootstrap()
    sealer = Sealing()
    settings = Settings()

    @http(
        "POST",
        "/returnees",
        body=Registration,
        response=ReturneeOut(),
        status=201,
        rules=(*PROFILE_RULES, PASSWORD_RULE),
        summary="Register a returnee (public): the welcome email asks to confirm the address",
    )
    def register(self, request, body):
        return handlers.register_returnee(
            body, request.client_address, self.db, self.sealer, self.settings,
            request.headers.get(CONSENT_SOURCE_HEADER),
        )  # fmt: skip

    @http(
        "POST",
        "/imports/returnees",
        body=batch_of(ImportedReturnee),
        response=BatchOut(),
        roles=["admin"],
        summary="Import returnees from the station's records (admins): one transaction, one "
        "result per row (created, exists by email, or invalid with its fields); each new "
        "returnee is emailed an invitation to set a password",
    )
    def import_returnees(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.import_returnees(
                body, request.caller, uow, self.sealer, self.settings.portal_url
            )

    @http(
        "GET",
        "/returnees",
        query=ReturneeQuery,
        response=ReturneeOut(many=True),
        roles=["advisor", "admin"],
        summary="Returnees, oldest first, a page at a time (advisors, admins)",
    )
    def list_returnees(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_returnees(query, uow, _access(request))

    @http(
        "GET",
        "/search/returnees",
        query=ReturneeSearch,
        response=ReturneeFound(many=True),
        roles=["advisor", "admin"],
        summary="Find returnees by part of a name, email, phone or company name (advisors, "
        "admins), by name",
    )
    def search_returnees(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.search_returnees(query, uow)

    @http(
        "GET",
        "/returnees/<returnee_id>",
        response=ReturneeOut(),
        roles=["advisor", "admin"],
        owner="returnee_id",
        summary="A returnee's profile (the returnee, advisors, admins)",
    )
    def read_returnee(self, request, returnee_id):
        with self.db.unit_of_work() as uow:
            return handlers.read_returnee(returnee_id, uow, _access(request))

    @http(
        "PATCH",
        "/returnees/<returnee_id>",
        body=ProfileChanges,
        response=ReturneeOut(),
        roles=["admin"],
        owner="returnee_id",
        rules=PROFILE_RULES,
        summary="Change a returnee's profile or consents (the returnee, admins)",
    )
    def change_returnee(self, request, returnee_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.change_returnee(returnee_id, body, uow, _consent_record(request))

    @http(
        "PUT",
        "/returnees/<returnee_id>/consents",
        body=ConsentUpdate,
        response=ReturneeOut(),
        owner="returnee_id",
        summary="Grant or withdraw consent per purpose (the returnee alone; an "
        f"`{CONSENT_SOURCE_HEADER}` header of web, api or import says through what)",
    )
    def change_consents(self, request, returnee_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.change_consents(returnee_id, body, uow, _consent_record(request))

    @http(
        "GET",
        "/returnees/<returnee_id>/consents/history",
        response=ConsentChangeOut(many=True),
        roles=["admin"],
        owner="returnee_id",
        summary="Every consent change, newest first, with who made it, through what and under "
        "which consent text (the returnee, admins)",
    )
    def consent_history(self, request, returnee_id):
        with self.db.unit_of_work() as uow:
            return handlers.consent_history(returnee_id, uow)

    @http(
        "GET",
        "/returnees/<returnee_id>/consents",
        response=ConsentsOut(),
        roles=["advisor", "admin"],
        owner="returnee_id",
        summary="Current consents and their history (the returnee, advisors, admins)",
    )
    def read_consents(self, request, returnee_id):
        with self.db.unit_of_work() as uow:
            return handlers.read_consents(returnee_id, uow, _access(request))

    @http(
        "GET",
        "/returnees/<returnee_id>/access-log",
        query=AccessLogQuery,
        response=AccessEntryOut(many=True),
        roles=["admin"],
        owner="returnee_id",
        summary="Who of the staff read the returnee's data, when, what and the case or reason "
        "stated, newest first (the returnee, admins)",
    )
    def access_log(self, request, returnee_id, query):
        with self.db.unit_of_work() as uow:
            return handlers.access_log(returnee_id, query, uow)

    @http(
        "DELETE",
        "/returnees/<returnee_id>",
        status=204,
        roles=["admin"],
        owner="returnee_id",
        summary="Erase a returnee's account and data (the returnee, admins)",
    )
    def erase_returnee(self, request, returnee_id):
        with self.db.unit_of_work() as uow:
            handlers.erase_returnee(returnee_id, uow)
        # Its parked events naming the person (`chassis.erasure`); with the broker away they
        # expire with UNROUTED_RETENTION_HOURS.
        try:
            self.erased_messages.scrub([returnee_id])
        except Exception as exc:
            log.warning("parked events not scrubbed after an erasure: %s", exc)

    @http(
        "POST",
        "/auth/token",
        body=TokenRequest,
        response=TokenOut(),
        summary="Sign in: exchange email and password for a bearer token and a refresh token",
    )
    def issue_token(self, request, body):
        return handlers.issue_token(body, request.client_address, self.db, self.tokens)

    @http(
        "POST",
        "/auth/refresh",
        body=RefreshRequest,
        response=TokenOut(),
        summary="A new bearer token for a refresh token, which is used up (its successor comes "
        "with the answer)",
    )
    def refresh(self, request, body):
        return handlers.refresh_session(body, self.db, self.tokens)

    @http(
        "POST",
        "/auth/logout",
        body=RefreshRequest,
        status=204,
        summary="Sign out: the refresh token and its successors stop working",
    )
    def logout(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.end_session(body, uow)

    @http("GET", "/.well-known/jwks.json", response=JWK_SET,
          summary="The public keys bearer tokens are signed with")  # fmt: skip
    def jwks(self, request):
        return self.tokens.jwks()

    @http(
        "POST",
        "/auth/verify-email",
        body=LinkToken,
        status=204,
        rules=(LINK_RULE,),
        summary="Confirm an email address with the token of the welcome email's link (public)",
    )
    def verify_email(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.verify_email(body, uow)

    @http(
        "POST",
        "/auth/password",
        body=PasswordChange,
        status=204,
        auth=True,
        rules=(
            "current_password is the caller's password",
            "new_password does not contain the local part of the caller's email (when it has 4"
            " characters or more)",
        ),
        summary="Change one's password; every token of one's own stops working",
    )
    def change_password(self, request, body):
        return handlers.change_password(body, request.caller, request.client_address, self.db)

    @http(
        "POST",
        "/auth/password-reset",
        body=PasswordResetRequest,
        response=Accepted(),
        status=202,
        summary="Email a password reset link, whether or not the address has an account (public)",
    )
    def request_password_reset(self, request, body):
        return handlers.request_password_reset(
            body, request.client_address, self.db, self.settings.portal_url
        )

    @http(
        "POST",
        "/auth/password-reset/confirm",
        body=PasswordResetConfirm,
        status=204,
        rules=(
            LINK_RULE,
            "password does not contain the local part of the account's email (when it has 4"
            " characters or more)",
        ),
        summary="Set a password with the token of a reset or invitation link, once (public)",
    )
    def confirm_password_reset(self, request, body):
        return handlers.confirm_password_reset(body, self.db)

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
        with self.db.unit_of_work() as uow:
            return handlers.register_organization(body, uow)

    @http(
        "POST",
        "/imports/organizations",
        body=batch_of(OrganizationIn),
        response=BatchOut(),
        roles=["admin"],
        summary="Import partner organizations (admins): one transaction, one result per row "
        "(created, exists by name, or invalid with its fields)",
    )
    def import_organizations(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.import_organizations(body, uow)

    @http(
        "GET",
        "/organizations",
        response=OrganizationOut(many=True),
        summary="Partner organizations (public)",
    )
    def list_organizations(self, request):
        with self.db.unit_of_work() as uow:
            return handlers.list_organizations(uow)

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
        ),
        summary="Invite a staff member (advisor, provider, admin or official), who sets a "
        "password through the emailed link (admins)",
    )
    def register_staff(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.register_staff(body, uow, self.settings.portal_url)

    @http(
        "GET",
        "/staff",
        response=StaffOut(many=True),
        roles=["admin"],
        summary="The staff accounts with their role, organization and state (invited, active, "
        "disabled), by name (admins)",
    )
    def list_staff(self, request):
        with self.db.unit_of_work() as uow:
            return handlers.list_staff(uow)

    @http(
        "POST",
        "/staff/<staff_id>/disable",
        response=StaffOut(),
        roles=["admin"],
        summary="Disable a staff account: no sign-in, every token of theirs revoked (admins)",
    )
    def disable_staff(self, request, staff_id):
        with self.db.unit_of_work() as uow:
            return handlers.disable_staff(staff_id, request.caller, uow)

    @http(
        "POST",
        "/staff/<staff_id>/enable",
        response=StaffOut(),
        roles=["admin"],
        summary="Enable a disabled staff account again (admins)",
    )
    def enable_staff(self, request, staff_id):
        with self.db.unit_of_work() as uow:
            return handlers.enable_staff(staff_id, uow)

    @http(
        "PUT",
        "/staff/<staff_id>/role",
        body=StaffRole,
        response=StaffOut(),
        roles=["admin"],
        rules=(
            "a provider has an organization_id",
            "organization_id names a registered organization",
        ),
        summary="Change a staff member's role; every token of theirs is revoked (admins)",
    )
    def change_staff_role(self, request, staff_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.change_staff_role(staff_id, body, request.caller, uow)
