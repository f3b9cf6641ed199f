"""accounts: returnees, organizations, staff, authentication, consent and erasure.

Publishes returnee.registered/updated/erased, consent.changed, organization.registered and
staff.registered through the outbox; subscribes to nothing. Each entrypoint declares who may
call it and hands its command to one use case in `handlers`.
"""

from chassis.auth import Authenticator
from chassis.db import Database
from chassis.web import Operable, http
from services.accounts import handlers
from services.accounts.bootstrap import AdminBootstrap
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
from services.accounts.store import AccountsStore


class AccountsService(Operable):
    """Returnees, partner organizations and station staff; sign-in; consent; erasure."""

    name = "accounts"
    db = Database(store=AccountsStore)
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
        with self.db.unit_of_work() as uow:
            return handlers.register_returnee(body, uow, self.sealer)

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
            return handlers.read_returnee(returnee_id, uow)

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
            return handlers.change_returnee(returnee_id, body, uow)

    @http(
        "PUT",
        "/returnees/<returnee_id>/consents",
        body=ConsentUpdate,
        roles=["admin"],
        owner="returnee_id",
        summary="Grant or withdraw consent per purpose (the returnee, admins)",
    )
    def change_consents(self, request, returnee_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.change_consents(returnee_id, body, uow)

    @http(
        "GET",
        "/returnees/<returnee_id>/consents",
        roles=["advisor", "admin"],
        owner="returnee_id",
        summary="Current consents and their history (the returnee, advisors, admins)",
    )
    def read_consents(self, request, returnee_id):
        with self.db.unit_of_work() as uow:
            return handlers.read_consents(returnee_id, uow)

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
            return handlers.erase_returnee(returnee_id, uow)

    @http(
        "POST",
        "/auth/token",
        body=TokenRequest,
        response=TokenOut(),
        summary="Sign in: exchange email and password for a bearer token",
    )
    def issue_token(self, request, body):
        return handlers.issue_token(body, request.client_address, self.db, self.auth.codec)

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
            PASSWORD_RULE,
        ),
        summary="Create a staff account: advisor, provider, admin or official (admins)",
    )
    def register_staff(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.register_staff(body, uow)
