"""HTTP payloads of accounts. The profile reuses the published event schemas' field definitions,
so what a returnee enters and what consumers receive cannot drift apart."""

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from chassis.errors import add_rules
from contracts.schemas.accounts import Consents, Education, ReturneeProfile
from contracts.vocabulary import LOCALES, NEEDS, ORGANIZATION_KINDS, POLICY_CODE, STAFF_ROLES
from services.accounts import messages  # noqa: F401  (the catalog of the texts below)
from services.accounts.profile import (
    HOME_COUNTRY,
    OLDEST_AGE_YEARS,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    PASSWORD_PATTERN,
    YOUNGEST_AGE_YEARS,
    abroad,
    normalize_email,
    password_problems,
)


class NormalizedEmail:
    """Mixin: `email` is trimmed and lower-cased before it is validated."""

    @pre_load
    def _normalize_email(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("email"), str):
            data = {**data, "email": normalize_email(data["email"])}
        return data


ID_DOCUMENT_KINDS = ("id_card", "passport")

# Checked beyond the fields (with another field, or with today): a 422 (chassis.web.invalid).
RULES = {
    "Must not be in the future.",
    f"Age must be between {YOUNGEST_AGE_YEARS} and {OLDEST_AGE_YEARS} years.",
    "Must not be before the end of study abroad.",
    "Must be after the birth date.",
    "must not be before start_date",
    "Must not contain your email address.",
    "A provider belongs to an organization.",
    "No such organization.",
}
add_rules(*RULES)
PROFILE_RULES = (
    "birth_date is not in the future and gives an age of "
    f"{YOUNGEST_AGE_YEARS} to {OLDEST_AGE_YEARS} years today",
    "return_date is not in the future and not before the end_date of any overseas education",
    "each education's start_date is after birth_date and not in the future; its end_date is"
    " not before its start_date",
    "company.registration_date is not in the future",
)
PASSWORD_RULE = (
    "password does not contain the local part of email (when it has 4 characters or more)"
)
LINK_RULE = "token is that of an emailed link of this kind, not used yet and not expired"


def _unique_needs(component: dict) -> dict:
    """The document says what the profile check refuses: a need named twice."""
    component["properties"]["needs"]["uniqueItems"] = True
    return component


class IdDocument(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(ID_DOCUMENT_KINDS))
    number = fields.String(
        required=True, validate=[validate.Length(min=5, max=30), validate.Regexp(r"^[A-Za-z0-9]+$")]
    )


def _password_policy(password: str) -> None:
    problems = password_problems(password)
    if problems:
        raise ValidationError(problems)


class Password(fields.String):
    """A new password: the policy is checked here; that it does not contain the email is
    checked by the schema, which sees both (or by the use case, which knows the email)."""

    def __init__(self, **kwargs):
        super().__init__(
            required=True,
            load_only=True,
            validate=[validate.Length(max=PASSWORD_MAX_LENGTH), _password_policy],
            # documented, so that clients (and the API fuzzer) know the policy before trying
            metadata={"minLength": PASSWORD_MIN_LENGTH, "pattern": PASSWORD_PATTERN},
            **kwargs,
        )


class Secret(fields.String):
    """A token handed out before (a refresh token, a link's): opaque text."""

    def __init__(self, **kwargs):
        super().__init__(required=True, load_only=True, validate=validate.Length(min=1, max=256),
                         **kwargs)  # fmt: skip


def _password_apart_from_email(data) -> None:
    problems = password_problems(data.get("password", ""), data.get("email"))
    if problems:
        raise ValidationError(problems, "password")


class Loaded(dict):
    """What loaded of a body, with the field errors of what did not (`problems`)."""

    def __init__(self, data: dict, problems: dict | None = None):
        super().__init__(data)
        self.problems = problems or {}


class CheckedWithRules:
    """A body the use case checks further, by rules that need the day (which its unit of work
    knows, the schema does not): loading does not raise on field errors but answers what
    loaded with them (`Loaded.problems`); the use case checks its rules on what loaded and
    answers one 400 naming the invalid fields of both."""

    def load(self, data, **kwargs):
        try:
            return Loaded(super().load(data, **kwargs))
        except ValidationError as error:
            return Loaded(error.valid_data or {}, error.messages)


class EducationIn(Education):
    """An education entry as a returnee enters it: `overseas` may be left out (contract v1
    has no such field) and then says whether `country` is abroad."""

    overseas = fields.Boolean(
        metadata={
            "description": f"Study abroad; when absent, whether country is not {HOME_COUNTRY}."
        }
    )

    @pre_load
    def _overseas_by_country(self, data, **kwargs):
        if (
            isinstance(data, dict)
            and "overseas" not in data
            and isinstance(data.get("country"), str)
        ):
            data = {**data, "overseas": abroad(data["country"])}
        return data


class ProfileIn:
    """The profile fields a returnee enters that differ from what events carry: optional where
    contract v1 of the request has no such field."""

    education = fields.List(
        fields.Nested(EducationIn), required=True, validate=validate.Length(max=10)
    )
    needs = fields.List(
        fields.String(validate=validate.OneOf(NEEDS)),
        required=True,
        validate=validate.Length(max=len(NEEDS)),
    )
    prior_awards = fields.List(
        fields.String(validate=validate.Regexp(POLICY_CODE)),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={"description": "Codes of programmes the returnee was awarded before."},
    )


class Registration(CheckedWithRules, NormalizedEmail, ProfileIn, ReturneeProfile):
    password = Password()
    id_document = fields.Nested(IdDocument, load_only=True, allow_none=True, load_default=None)

    class Meta:
        ordered = True
        openapi = _unique_needs

    @validates_schema
    def _password_apart_from_email(self, data, **kwargs):
        _password_apart_from_email(data)


class ImportedConsents(Consents):
    """An imported row's consents: a purpose left out is not granted."""

    matching = fields.Boolean(load_default=False)
    notifications = fields.Boolean(load_default=False)
    share_with_partners = fields.Boolean(load_default=False)


def _no_consent_default(component: dict) -> dict:
    component = _unique_needs(component)
    component["properties"]["consents"]["description"] = (
        "Recorded only with consent_reference; without it every consent is off."
    )
    return component


class ImportedReturnee(CheckedWithRules, NormalizedEmail, ProfileIn, ReturneeProfile):
    """A returnee registered by an admin from the station's records (`POST /imports/returnees`):
    no password (an invitation to set one is emailed), consents only with a reference to where
    the returnee gave them."""

    consents = fields.Nested(ImportedConsents, load_default=dict)
    consent_reference = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Where the signed consent is kept (a form number, a file)."},
    )
    id_document = fields.Nested(IdDocument, load_only=True, allow_none=True, load_default=None)

    class Meta:
        ordered = True
        openapi = _no_consent_default


class ConsentUpdate(Consents):
    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class ProfileChanges(CheckedWithRules, ProfileIn, ReturneeProfile):
    """Any subset of the profile; `email` and passwords change through their own flows."""

    consents = fields.Nested(ConsentUpdate)  # any of the purposes (so documented)

    class Meta:
        exclude = ("email",)
        openapi = _unique_needs

    def __init__(self, **kwargs):
        # Partial at the top level and in the consents; an education entry or a company is
        # given whole, where `partial=True` would let incomplete ones through.
        consents = (f"consents.{purpose}" for purpose in Consents._declared_fields)
        super().__init__(partial=(*ReturneeProfile._declared_fields, *consents), **kwargs)


class ReturneeQuery(Schema):
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))


class ConsentOut(Schema):
    granted = fields.Boolean(required=True)
    changed_at = fields.AwareDateTime(required=True)


class ReturneeSearch(Schema):
    q = fields.String(
        required=True,
        validate=validate.Length(min=2, max=100),
        metadata={"description": "Part of a name, an email address, a phone number or a "
                  "company's name (case does not matter)."},
    )  # fmt: skip
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))


class ReturneeFound(Schema):
    """A returnee a search found: enough to tell them apart, the profile is one click on."""

    id = fields.UUID(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    phone = fields.String(allow_none=True)
    company = fields.String(allow_none=True, metadata={"description": "The company's name."})


class AccessLogQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class AccessEntryOut(Schema):
    reader_id = fields.UUID(required=True, metadata={"description": "The staff member."})
    reader_role = fields.String(required=True)
    service = fields.String(required=True, metadata={"description": "Where it was read."})
    what = fields.String(required=True, metadata={"description": "profile, consents, ..."})
    case_ref = fields.String(
        allow_none=True, metadata={"description": "The case stated (X-Access-Case)."}
    )
    reason = fields.String(
        allow_none=True, metadata={"description": "The reason stated (X-Access-Reason)."}
    )
    read_at = fields.AwareDateTime(required=True)


class ConsentChange(Schema):
    purpose = fields.String(required=True)
    granted = fields.Boolean(required=True)
    changed_at = fields.AwareDateTime(required=True)
    source = fields.String(
        allow_none=True,
        metadata={"description": "web, api or import: through what (self or admin before "
                  "sources were recorded)"},
    )  # fmt: skip
    actor_id = fields.String(
        allow_none=True, metadata={"description": "who changed it (the importing staff member)"}
    )
    actor_role = fields.String(allow_none=True)
    text_version = fields.String(
        allow_none=True, metadata={"description": "the version of the consent text agreed to"}
    )
    evidence = fields.String(
        allow_none=True, metadata={"description": "the reference of the signed consent, if any"}
    )


# GET /returnees/{id}/consents/history: the same changes, newest first.
ConsentChangeOut = ConsentChange


class ConsentsOut(Schema):
    current = fields.Dict(
        keys=fields.String(), values=fields.Nested(ConsentOut), required=True,
        metadata={"description": "the decision per purpose, with when it was made"},
    )  # fmt: skip
    history = fields.List(
        fields.Nested(ConsentChange), required=True, metadata={"description": "oldest first"}
    )


# RFC 7517's JWK Set, with the members the platform's keys have (Ed25519 or RSA).
JWK_SET = {
    "type": "object",
    "description": "The public keys bearer tokens are signed with (RFC 7517).",
    "required": ["keys"],
    "properties": {
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kty", "kid"],
                "properties": {
                    name: {"type": "string"}
                    for name in ("kty", "kid", "use", "alg", "crv", "x", "n", "e")
                },
            },
        }
    },
}


class ReturneeOut(ReturneeProfile):
    id = fields.UUID(required=True)
    role = fields.String(dump_default="returnee")
    has_id_document = fields.Boolean(required=True)
    consent_times = fields.Dict(keys=fields.String(), values=fields.Nested(ConsentOut))
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class TokenRequest(NormalizedEmail, Schema):
    email = fields.Email(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=128))


class TokenOut(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds, at most 900."})
    refresh_token = fields.String(
        required=True,
        metadata={
            "description": "For POST /auth/refresh, once: each use answers its successor, and "
            "a used one presented again ends the sign-in."
        },
    )
    refresh_expires_in = fields.Integer(required=True)


class RefreshRequest(Schema):
    refresh_token = Secret()


class LinkToken(Schema):
    token = Secret(metadata={"description": "The token of the emailed link."})


class PasswordChange(Schema):
    current_password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=128)
    )
    new_password = Password()


class PasswordResetRequest(NormalizedEmail, Schema):
    email = fields.Email(required=True)


class Accepted(Schema):
    """The same answer whether an account has the address or not: nobody learns who has one."""

    status = fields.String(required=True, validate=validate.OneOf(["accepted"]))


class PasswordResetConfirm(Schema):
    token = Secret(metadata={"description": "The token of the reset or invitation link."})
    password = Password()


class OrganizationIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(ORGANIZATION_KINDS))
    district = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=100))
    contact_email = fields.Email(allow_none=True, load_default=None)


class OrganizationOut(OrganizationIn):
    id = fields.UUID(required=True)
    created_at = fields.AwareDateTime(required=True)


# Staff roles an admin creates: those `staff.registered` announces, and the district office's
# `official` (read-only statistics), which that event's published role enum does not name.
ACCOUNT_STAFF_ROLES = (*STAFF_ROLES, "official")


def _provider_has_an_organization(data) -> None:
    if data.get("role") == "provider" and not data.get("organization_id"):
        raise ValidationError("A provider belongs to an organization.", "organization_id")


class StaffIn(NormalizedEmail, Schema):
    """No password: the new staff member sets theirs through the invitation emailed to them."""

    email = fields.Email(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=validate.OneOf(ACCOUNT_STAFF_ROLES))
    organization_id = fields.UUID(allow_none=True, load_default=None)
    locale = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(LOCALES))

    @validates_schema
    def _rules(self, data, **kwargs):
        _provider_has_an_organization(data)


class StaffRole(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ACCOUNT_STAFF_ROLES))
    organization_id = fields.UUID(allow_none=True, load_default=None)

    @validates_schema
    def _rules(self, data, **kwargs):
        _provider_has_an_organization(data)


class StaffOut(Schema):
    id = fields.UUID(required=True)
    email = fields.Email(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    organization_id = fields.UUID(allow_none=True)
    locale = fields.String(allow_none=True)
    email_verified = fields.Boolean(
        required=True, metadata={"description": "Whether the invitation was taken up."}
    )
    disabled = fields.Boolean(required=True)
    state = fields.String(
        validate=validate.OneOf(("invited", "active", "disabled")),
        metadata={
            "description": "invited (the invitation's password not set yet), active or disabled."
        },
    )
