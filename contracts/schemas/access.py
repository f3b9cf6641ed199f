"""`<producer>.personal_data_read`: a staff member read a returnee's personal data in that
service (PIPL art. 44-45). Published by consulting, matching, activities and notify for
accounts alone, which keeps the returnee's access log from them: never relayed to district
systems (`contracts.partners.PRIVATE_EVENTS`). Ids and what was read, never the data read.
"""

from marshmallow import Schema, fields, validate

from contracts.catalog import EventType
from contracts.vocabulary import STAFF_ROLES

__all__ = ["ACCESS_PRODUCERS", "CASE_KINDS", "EVENT_TYPES", "PersonalDataRead", "read_type"]

# The services that publish their staff reads; accounts records its own directly.
ACCESS_PRODUCERS = ("consulting", "matching", "activities", "notify")
# What links a staff member's read to a returnee: `<kind>:<id>` in `X-Access-Case`.
CASE_KINDS = ("consultation", "appointment", "application", "registration")
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
CASE_PATTERN = f"^({'|'.join(CASE_KINDS)}):{_UUID}$"


class PersonalDataRead(Schema):
    returnee_id = fields.UUID(required=True, metadata={"description": "Whose data was read."})
    reader_id = fields.UUID(required=True, metadata={"description": "The staff member's account."})
    reader_role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    what = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z][a-z0-9_ ()-]{0,79}$"),
        metadata={"description": "What was read, e.g. `eligibility`, `matches`, "
                  "`consultation`, `registrations`."},
    )  # fmt: skip
    case_ref = fields.String(
        allow_none=True,
        validate=validate.Regexp(CASE_PATTERN),
        metadata={"description": "The case the read went through, `<kind>:<id>`."},
    )
    reason = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "The reason the staff member stated, when no case links them."},
    )
    read_at = fields.AwareDateTime(required=True)


def read_type(producer: str) -> str:
    return f"{producer}.personal_data_read"


EVENT_TYPES = [
    EventType(
        type=read_type(producer),
        version=1,
        producer=producer,
        schema=PersonalDataRead,
        emitted_when=f"A staff member reads a returnee's personal data in {producer} (for "
        "accounts' access log; never shown to district systems).",
    )
    for producer in ACCESS_PRODUCERS
]
