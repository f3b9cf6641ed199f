"""The partner view of events (PIPL art. 23): what district systems receive of an event about a
returnee who has not granted `share_with_partners`. Part of the published contract: the
AsyncAPI document describes it beside each event (`contracts.asyncapi`), notify makes it
(`services.notify.partners`).

The pseudonymous view keeps the envelope (id, type, time, subject) and, of the data, ids,
industry, stage, needs, district and dates; never a name, email, phone, birth date, education,
company name or free text. Its `dataschema` is the event's own with `:pseudonymous` appended, so
a subscriber checking the version never mistakes it for the published one with fields missing.
"""

from contracts.schemas.access import ACCESS_PRODUCERS, read_type

PSEUDONYMOUS_SUFFIX = ":pseudonymous"
# The exchange district systems read (`chassis.topology.PARTNER_EXCHANGE`).
PARTNER_EXCHANGE = "partners.events"
# Events for the platform's own services only, never shown to partners: a link that is a
# credential, revocations, the staff reads accounts keeps in the access log.
PRIVATE_EVENTS = (
    "account.link_issued",
    "credentials.revoked",
    *(read_type(producer) for producer in ACCESS_PRODUCERS),
)
# Producers whose events partners may receive (notify's own reports are not theirs).
PARTNER_PRODUCERS = ("accounts", "consulting", "matching", "activities")

PROFILE_EVENTS = ("returnee.registered", "returnee.updated")
# Of a returnee's profile, what a district system may read without consent (plus `district`,
# the company's registered district).
PSEUDONYMOUS_PROFILE = (
    "returnee_id",
    "changed_fields",
    "locale",
    "return_date",
    "industry",
    "startup_stage",
    "needs",
)
# Anywhere in any other event about a returnee: what names them or is their own words.
PERSONAL_FIELDS = frozenset(
    {
        "name", "email", "phone", "birth_date", "education", "company", "company_name",
        "returnee_name", "contact_email", "message", "question", "answer", "body", "note",
        "reason", "id_number",
    }
)  # fmt: skip


def pseudonymous_data(event_type: str, data: dict) -> dict:
    if event_type in PROFILE_EVENTS:
        kept = {k: data[k] for k in PSEUDONYMOUS_PROFILE if k in data}
        company = data.get("company") or {}
        kept["district"] = company.get("registered_district")
        if "changed_fields" in kept:  # what changed, never which contact field
            kept["changed_fields"] = [f for f in kept["changed_fields"] if f in kept]
        return kept
    return without_personal(data)


def without_personal(value):
    if isinstance(value, dict):
        return {k: without_personal(v) for k, v in value.items() if k not in PERSONAL_FIELDS}
    if isinstance(value, list):
        return [without_personal(v) for v in value]
    return value
