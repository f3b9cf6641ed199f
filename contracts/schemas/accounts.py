"""Events published by accounts on exchange `accounts.events`.

Personal data is limited to what consumers act on (PIPL, minimum necessary): the profile fields
eligibility rules and matching read, and the contact fields notify sends to. Never passwords, ID
numbers or bank accounts.
"""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.catalog import EventType
from contracts.vocabulary import (
    ACCOUNT_LINK_PURPOSES,
    CONSENT_PURPOSES,
    COUNTRY_CODE,
    DEGREES,
    INDUSTRIES,
    LOCALES,
    NEEDS,
    ORGANIZATION_KINDS,
    POLICY_CODE,
    RESIDENCE_STATUSES,
    SLUG,
    STAFF_ROLES,
    STARTUP_STAGES,
)

__all__ = [
    "EVENT_TYPES",
    "ORGANIZATION_KINDS",
    "PROFILE_FIELDS",
    "AccountEmailVerified",
    "AccountLinkIssued",
    "ConsentChanged",
    "CredentialsRevoked",
    "OrganizationRegistered",
    "ReturneeErased",
    "ReturneeRegistered",
    "ReturneeUpdated",
    "StaffRegistered",
    "StaffUpdated",
]

# Whether the account's email address was confirmed when the event was published. Absent (events
# of producers before it existed): treat as confirmed.
_EMAIL_VERIFIED = {
    "description": "Whether the email address is confirmed; absent means confirmed. Until it "
    "is, nothing but account emails (`account.link_issued`) should go to it."
}


class Education(Schema):
    institution = fields.String(required=True, validate=validate.Length(min=1, max=200))
    country = fields.String(
        required=True,
        validate=validate.Regexp(COUNTRY_CODE),
        metadata={"description": "ISO 3166-1 alpha-2 code of the institution's country."},
    )
    degree = fields.String(required=True, validate=validate.OneOf(DEGREES))
    field = fields.String(required=True, validate=validate.Length(min=1, max=200))
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    qs_rank = fields.Integer(
        allow_none=True, load_default=None, validate=validate.Range(min=1, max=2000)
    )
    overseas = fields.Boolean(required=True)

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        if data["end_date"] < data["start_date"]:
            raise ValidationError("must not be before start_date", "end_date")


class Company(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    registered_district = fields.String(required=True, validate=validate.Length(min=1, max=100))
    registration_date = fields.Date(required=True)
    # Whole yuan as integers: JSON numbers stay exact and rules compare thresholds like 500000.
    registered_capital_cny = fields.Integer(required=True, validate=validate.Range(min=0))
    shareholding_pct = fields.Float(
        required=True,
        validate=validate.Range(min=0, max=100),
        metadata={"description": "The returnee's share of the company, in percent."},
    )
    is_legal_representative = fields.Boolean(required=True)
    is_largest_shareholder = fields.Boolean(allow_none=True, load_default=None)
    vc_raised_cny = fields.Integer(
        allow_none=True, load_default=None, validate=validate.Range(min=0)
    )


class Consents(Schema):
    matching = fields.Boolean(required=True)
    notifications = fields.Boolean(required=True)
    share_with_partners = fields.Boolean(required=True)


class ReturneeProfile(Schema):
    """Contact, profile and consent fields: the state consumers keep a copy of."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    email = fields.Email(required=True)
    phone = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Regexp(r"^\+?[0-9][0-9 -]{4,30}$"),
    )
    locale = fields.String(required=True, validate=validate.OneOf(LOCALES))
    birth_date = fields.Date(required=True)
    education = fields.List(fields.Nested(Education), required=True)
    return_date = fields.Date(required=True)
    has_overseas_job = fields.Boolean(allow_none=True, load_default=None)
    residence_status = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(RESIDENCE_STATUSES)
    )
    industry = fields.String(required=True, validate=validate.OneOf(INDUSTRIES))
    startup_stage = fields.String(required=True, validate=validate.OneOf(STARTUP_STAGES))
    needs = fields.List(fields.String(validate=validate.OneOf(NEEDS)), required=True)
    company = fields.Nested(Company, allow_none=True, load_default=None)
    prior_awards = fields.List(
        fields.String(validate=validate.Regexp(POLICY_CODE)),
        required=True,
        metadata={"description": "Codes of programmes the returnee was awarded before."},
    )
    consents = fields.Nested(Consents, required=True)


# What `returnee.updated` may name as changed: the profile's own fields, in declaration order.
PROFILE_FIELDS = tuple(ReturneeProfile._declared_fields)


class ReturneeRegistered(ReturneeProfile):
    returnee_id = fields.UUID(required=True)
    email_verified = fields.Boolean(metadata=_EMAIL_VERIFIED)


class ReturneeUpdated(ReturneeProfile):
    returnee_id = fields.UUID(required=True)
    changed_fields = fields.List(
        fields.String(validate=validate.OneOf(PROFILE_FIELDS)),
        required=True,
        validate=validate.Length(min=1),
    )


class ReturneeErased(Schema):
    returnee_id = fields.UUID(required=True)


class ConsentChanged(Schema):
    returnee_id = fields.UUID(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf(CONSENT_PURPOSES))
    granted = fields.Boolean(required=True)
    changed_at = fields.AwareDateTime(required=True)


class OrganizationRegistered(Schema):
    organization_id = fields.UUID(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(ORGANIZATION_KINDS))
    district = fields.String(allow_none=True, load_default=None)
    contact_email = fields.Email(allow_none=True, load_default=None)


class StaffRegistered(Schema):
    staff_id = fields.UUID(required=True)
    email = fields.Email(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    organization_id = fields.UUID(allow_none=True, load_default=None)
    locale = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(LOCALES))
    email_verified = fields.Boolean(metadata=_EMAIL_VERIFIED)


class StaffUpdated(StaffRegistered):
    """The staff account as it is after the change: the whole of it, as at registration. Its
    role may also be the district office's `official` (which `staff.registered` v1 does not
    name, so an official's registration is not announced)."""

    role = fields.String(required=True, validate=validate.OneOf((*STAFF_ROLES, "official")))


class CredentialsRevoked(Schema):
    subject = fields.UUID(
        required=True, metadata={"description": "The account: the `sub` of its bearer tokens."}
    )
    not_before = fields.AwareDateTime(
        required=True,
        metadata={"description": "Tokens of the subject issued (`iat`) before this are void."},
    )
    reason = fields.String(
        required=True,
        validate=validate.Regexp(SLUG),
        metadata={
            "description": "Why, for audit: password_changed, password_reset, erased, "
            "disabled, role_changed, refresh_token_reused, ..."
        },
    )


class AccountLinkIssued(Schema):
    """A single-use link to the account's own address, for notify to send as it is. Only notify
    should read it: the link is a credential until it is used or expires."""

    account_id = fields.UUID(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf(ACCOUNT_LINK_PURPOSES))
    email = fields.Email(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    locale = fields.String(required=True, validate=validate.OneOf(LOCALES))
    link = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    expires_at = fields.AwareDateTime(required=True)


class AccountEmailVerified(Schema):
    account_id = fields.UUID(required=True)
    verified_at = fields.AwareDateTime(required=True)


EVENT_TYPES = [
    EventType(
        type="returnee.registered",
        version=1,
        producer="accounts",
        schema=ReturneeRegistered,
        emitted_when="A returnee creates an account with their profile and consents.",
    ),
    EventType(
        type="returnee.updated",
        version=1,
        producer="accounts",
        schema=ReturneeUpdated,
        emitted_when="A returnee's profile, contact data or consents change; carries the whole "
        "current profile so consumers need not call back.",
    ),
    EventType(
        type="returnee.erased",
        version=1,
        producer="accounts",
        schema=ReturneeErased,
        emitted_when="A returnee's account is erased; every consumer deletes or anonymizes what "
        "it holds about them.",
    ),
    EventType(
        type="consent.changed",
        version=1,
        producer="accounts",
        schema=ConsentChanged,
        emitted_when="A returnee grants or withdraws consent for one processing purpose.",
    ),
    EventType(
        type="organization.registered",
        version=1,
        producer="accounts",
        schema=OrganizationRegistered,
        emitted_when="An admin registers a partner organization (bank, park, incubator, ...).",
    ),
    EventType(
        type="staff.registered",
        version=1,
        producer="accounts",
        schema=StaffRegistered,
        emitted_when="An admin creates a staff account: an advisor, a provider or an admin.",
    ),
    EventType(
        type="staff.updated",
        version=1,
        producer="accounts",
        schema=StaffUpdated,
        emitted_when="An admin changes a staff account's role (and with it, maybe, its "
        "organization).",
    ),
    EventType(
        type="credentials.revoked",
        version=1,
        producer="accounts",
        schema=CredentialsRevoked,
        emitted_when="A person's bearer tokens stop counting: a password change or reset, an "
        "erasure, a disabled staff account, a role change.",
    ),
    EventType(
        type="account.link_issued",
        version=1,
        producer="accounts",
        schema=AccountLinkIssued,
        emitted_when="Accounts needs an email sent with a single-use link: to verify the "
        "address, to reset a password, to set a staff member's first one.",
    ),
    EventType(
        type="account.email_verified",
        version=1,
        producer="accounts",
        schema=AccountEmailVerified,
        emitted_when="A person confirms their email address (or sets a password through a link "
        "sent to it).",
    ),
]
