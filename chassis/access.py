"""Staff reads of a returnee's personal data (PIPL art. 44-45): what the reader states, the rule
that an advisor reads only through a case that links them to the returnee or with a reason,
and the record of the read, for accounts' access log.

A staff member states with a read
- `X-Access-Case: <kind>:<id>`: the case the read goes through (a consultation, appointment,
  application or activity registration of that returnee), or
- `X-Access-Reason`: why, in their words (UTF-8, percent-encoded: a header is Latin-1).

`@http(..., access=True)` reads both into `request.access` and documents them; the use case
calls `require_link` (advisors; admins are logged, not restricted) and `record`. A service
knows the returnee of its own cases from its own tables and of the others' from the events
that open them (`CASE_EVENTS`, kept by `keep_case_link` in its store's `case_links`). The
returnee's own reads are never recorded.
"""

import re
from urllib.parse import unquote

from chassis.errors import Forbidden, add_rules, invalid
from chassis.i18n import add_translations
from contracts.schemas.access import CASE_KINDS, CASE_PATTERN, read_type

ACCESS_CASE_HEADER = "X-Access-Case"
ACCESS_REASON_HEADER = "X-Access-Reason"
REASON_MAX = 500
# Who must state a case or a reason; admins' reads are logged without one.
RESTRICTED_ROLES = ("advisor",)
_CASE = re.compile(CASE_PATTERN)

# The events that open a case, by producer: (kind, the field naming the case). The returnee is
# the event's `returnee_id` (a registration of a staff member or organization links nobody).
CASE_EVENTS = {
    "consulting": {
        "consultation.requested": ("consultation", "consultation_id"),
        "appointment.booked": ("appointment", "appointment_id"),
        "application.submitted": ("application", "application_id"),
    },
    "activities": {
        "registration.confirmed": ("registration", "registration_id"),
        "registration.waitlisted": ("registration", "registration_id"),
    },
}

CASE_NOT_LINKED = "The case you named is not one of this returnee's."
CASE_NOT_LINKED_ZH = "您所指明的事项不属于该归国人员。"
CASE_OR_REASON = (
    "Reading a returnee's data needs a case that links you to them (a consultation, "
    "appointment, application or activity registration) or a stated reason."
)
CASE_OR_REASON_ZH = "查看归国人员的资料需要有关联的事项（咨询、预约、申请或活动报名），或说明理由。"

CASE_FORM = "Name a case as <kind>:<id>, e.g. consultation:<id>."
add_translations({CASE_FORM: "请以 <类型>:<编号> 指明事项，例如 consultation:<编号>。"})
add_rules(CASE_FORM)
HEADER_LENGTH = "Length must be between 1 and {most}."  # marshmallow's words, translated
# The rule each operation reading personal data states (chassis.web).
CASE_RULE = (
    f"{ACCESS_CASE_HEADER}, when given, names a case as <kind>:<id> (kind: "
    + ", ".join(CASE_KINDS)
    + ")"
)

HEADER_PARAMETERS = [
    {
        "in": "header",
        "name": ACCESS_CASE_HEADER,
        "required": False,
        "description": "Staff: the case this read goes through, `<kind>:<id>` (kind: "
        + ", ".join(CASE_KINDS)
        + "); it must be one of the returnee's. Recorded in the returnee's access log.",
        # No `pattern`: the form is a rule the operation states (a 422, `CASE_RULE`), as
        # header generators do not all honour patterns.
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    {
        "in": "header",
        "name": ACCESS_REASON_HEADER,
        "required": False,
        "description": "Staff: why they read the returnee's data when no case links them "
        f"(UTF-8, percent-encoded). Its first {REASON_MAX} characters are recorded in the "
        "returnee's access log.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 3 * 3 * REASON_MAX},
    },
]
FORBIDDEN_WHY = (
    "The caller's role may not do this; or an advisor states neither a case nor a reason "
    "(`case_or_reason_required`), or a case that is not this returnee's (`case_not_linked`)."
)


def stated(request) -> dict | None:
    """What the caller states with the read: reader, role, case, reason (None: no caller)."""
    caller = request.caller
    if caller is None:
        return None
    too_long = {
        p["name"]: [HEADER_LENGTH.format(most=p["schema"]["maxLength"])]
        for p in HEADER_PARAMETERS
        if request.headers.get(p["name"]) is not None
        and not 1 <= len(request.headers[p["name"]]) <= p["schema"]["maxLength"]
    }
    if too_long:  # breaks the document: a 400 naming each header
        raise invalid(too_long)
    case = (request.headers.get(ACCESS_CASE_HEADER) or "").strip() or None
    # Its first REASON_MAX characters are kept (a NUL, which no column stores, dropped): any
    # header the document allows is taken.
    reason = unquote(request.headers.get(ACCESS_REASON_HEADER) or "").replace("\x00", "")
    reason = reason.strip()[:REASON_MAX].strip() or None
    if case is not None and not _CASE.match(case):
        raise invalid({ACCESS_CASE_HEADER: [CASE_FORM]})  # a stated rule: 422
    return {"reader_id": caller.id, "reader_role": caller.role, "case_ref": case,
            "reason": reason}  # fmt: skip


def is_own(access: dict | None, returnee_id) -> bool:
    return access is None or str(access["reader_id"]) == str(returnee_id)


def require_link(access: dict | None, returnee_id, case_returnee) -> None:
    """An advisor's read of `returnee_id`'s data goes through a case of that returnee or a
    reason; `case_returnee(kind, case_id)` is the store's: whose the case is (None: unknown)."""
    if is_own(access, returnee_id) or access["reader_role"] not in RESTRICTED_ROLES:
        return
    if access["case_ref"]:
        kind, case_id = access["case_ref"].split(":", 1)
        if str(case_returnee(kind, case_id.lower()) or "") != str(returnee_id):
            raise Forbidden(CASE_NOT_LINKED, code="case_not_linked", zh=CASE_NOT_LINKED_ZH)
        return
    if not access["reason"]:
        raise Forbidden(CASE_OR_REASON, code="case_or_reason_required", zh=CASE_OR_REASON_ZH)


def through(access: dict | None, kind: str, case_id) -> dict | None:
    """The access of a read of a case itself (a consultation, a registration): the case is the
    link, whatever header came along."""
    return None if access is None else {**access, "case_ref": f"{kind}:{case_id}"}


def record(uow, returnee_id, access: dict | None, what: str) -> None:
    """A staff member's read of the returnee's data → `<service>.personal_data_read`, in the
    unit of work that serves it (accounts keeps it in the access log); the returnee's own
    reads are not recorded."""
    if is_own(access, returnee_id) or access["reader_role"] == "returnee":
        return
    uow.publish(
        read_type(uow.service),
        {"returnee_id": str(returnee_id), "what": what, "read_at": uow.now(), **access},
        subject=returnee_id,
    )


def record_each(uow, rows, access: dict | None, what: str, kind: str | None = None,
                key: str = "id") -> None:  # fmt: skip
    """`record` for each row of a list read (by its `returnee_id`), in one statement; a row that
    is a case (`kind`) is its own link."""
    items = []
    for row in rows:
        returnee_id = row.get("returnee_id")
        seen = through(access, kind, row[key]) if kind else access
        if returnee_id and not is_own(seen, returnee_id) and seen["reader_role"] != "returnee":
            data = {"returnee_id": str(returnee_id), "what": what, "read_at": uow.now(), **seen}
            items.append((data, returnee_id))
    uow.publish_many(read_type(uow.service), items)


def keep_case_link(event, uow) -> None:
    """A case opened for a returnee (`CASE_EVENTS`) kept by the store (`keep_case_link`), so a
    read through it can be checked; nothing for an erased returnee (`is_erased`), nor for a
    registration of no returnee."""
    kind, field = CASE_EVENTS[event.source.strip("/")][event.type]
    returnee_id = event.data.get("returnee_id")
    if returnee_id and not uow.store.is_erased(returnee_id):
        uow.store.keep_case_link(kind, str(event.data[field]), str(returnee_id))


def require_reason(access: dict | None) -> None:
    """An advisor's read of many returnees at once (an export) states a reason: no case links
    a page of people."""
    if access is not None and access["reader_role"] in RESTRICTED_ROLES and not access["reason"]:
        raise Forbidden(CASE_OR_REASON, code="case_or_reason_required", zh=CASE_OR_REASON_ZH)


# The SQL of `case_links` (`chassis.schema`), for the stores of the services that keep it.


def store_link(uow, kind: str, case_id, returnee_id) -> None:
    uow.execute(
        "INSERT INTO case_links (kind, case_id, returnee_id) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (kind, str(case_id), str(returnee_id)),
    )


def linked_returnee(uow, kind: str, case_id) -> str | None:
    """Whose case `<kind>:<case_id>` is, as the events told (None: not known here)."""
    row = uow.one(
        "SELECT returnee_id FROM case_links WHERE kind = %s AND case_id = %s",
        (kind, str(case_id)),
    )
    return None if row is None else str(row["returnee_id"])


def forget_links(uow, returnee_id) -> None:
    uow.execute("DELETE FROM case_links WHERE returnee_id = %s", (str(returnee_id),))
