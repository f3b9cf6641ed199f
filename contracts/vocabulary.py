"""The closed vocabularies of the platform, shared by event schemas and the services' own code.

An event field restricted to one of these sets publishes it as a JSON schema `enum`; adding or
removing a value is then a breaking change for consumers (they may switch on it), so a value
changes here only together with a new event version. Open-ended sets that grow with operations
(consultation topics, policy codes, templates, match factors) are slugs, not enums: see `SLUG`.
"""

LOCALES = ("zh-CN", "en")

DEGREES = ("bachelor", "master", "phd")

INDUSTRIES = (
    "biotech",
    "ai",
    "fintech",
    "advanced_manufacturing",
    "digital_commerce",
    "culture_creative",
    "healthcare",
    "new_energy",
    "education",
    "consulting",
    "other",
)

STARTUP_STAGES = ("idea", "registered", "growth")

NEEDS = (
    "financing",
    "cross_border_finance",
    "office_space",
    "incubation",
    "policy_advice",
    "residence_hukou",
    "talent_recruitment",
    "market_access",
    "mentorship",
    "partners",
    "legal",
)

RESIDENCE_STATUSES = ("hukou", "residence_permit", "none")

CONSENT_PURPOSES = ("matching", "notifications", "share_with_partners")

ORGANIZATION_KINDS = (
    "bank",
    "industrial_park",
    "incubator",
    "enterprise",
    "alumni_association",
    "government_office",
    "law_firm",
    "investor",
)

STAFF_ROLES = ("advisor", "provider", "admin")

CONSULTATION_STATUSES = (
    "new",
    "assigned",
    "answered",
    "waiting_on_returnee",
    "closed",
    "reopened",
)

SLA_DEADLINES = ("first_response", "resolution")

# An application for a policy: draft → submitted → under_review → approved | rejected, approved →
# awarded; withdrawn from any open state (draft, submitted, under_review, approved).
APPLICATION_STATUSES = (
    "draft",
    "submitted",
    "under_review",
    "approved",
    "rejected",
    "awarded",
    "withdrawn",
)

RESOURCE_KINDS = (
    "financing",
    "cross_border_finance",
    "office_space",
    "incubation",
    "mentorship",
    "cooperation",
    "talent",
    "market_access",
    "legal",
)

INTENTION_STATUSES = ("expressed", "accepted", "declined")

ACTIVITY_KINDS = ("exchange", "site_visit", "briefing", "training")

REGISTRATION_STATUSES = ("confirmed", "waitlisted", "cancelled")

# Who registers for an activity: a returnee for themself, a provider for their organization.
REGISTRANT_ROLES = ("returnee", "provider")

# Who cancelled a registration; "system" is the erasure of the registrant.
REGISTRATION_CANCELLERS = ("registrant", "advisor", "admin", "system")

CHANNELS = ("email", "in_app", "webhook", "sms")

# Who acted on a consultation or an appointment; "system" is a timer (auto-close, expiry).
ACTORS = ("returnee", "advisor", "admin", "system")

# Lower-case identifier for open-ended sets: consultation topics, templates, match factors, tiers.
SLUG = r"^[a-z][a-z0-9_]{0,63}$"

# Policy (programme) codes, e.g. "national-startup-support-2024"; also used for prior awards.
POLICY_CODE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

# ISO 3166-1 alpha-2 country code, e.g. "GB".
COUNTRY_CODE = r"^[A-Z]{2}$"
