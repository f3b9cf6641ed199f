"""`station export KIND FILE.xlsx` (advisors, admins): what the services answer the signed-in
person, as one sheet with an English and a Chinese header row. Returnees never with ID
numbers (no API answers them); their email and phone only for an admin, and only of those who
consented to sharing (`share_with_partners`): an export leaves the platform."""

from pathlib import Path
from urllib.parse import quote

from chassis.access import ACCESS_REASON_HEADER
from chassis.sheets import label_of, write_xlsx
from station.client import Session, StationError, answer

PAGE = 100  # the most a list answers at once (chassis.paging.MAX_LIMIT)
NEXT_CURSOR = "X-Next-Cursor"  # where the next page starts, absent on the last
CONTACTS = ("email", "phone")
# What an advisor's export leaves out, beyond the contacts.
ADVISOR_OMITS = ("birth_date",)
SOURCES = {
    "returnees": ("accounts", "/returnees", {}),
    "organizations": ("accounts", "/organizations", {}),
    "resources": ("matching", "/resources", {"include_expired": "true"}),
    "intentions": ("matching", "/intentions", {}),
}


def fetch(session: Session, kind: str, reason: str = "") -> list[dict]:
    """Every page of the list, following the cursors (a row added meanwhile is not read
    twice, none is skipped), each call stating the reason (`X-Access-Reason`): what names a
    returnee is recorded in their access log."""
    service, path, params = SOURCES[kind]
    headers = {ACCESS_REASON_HEADER: quote(reason, safe="")} if reason else {}
    found, cursor = [], None
    while True:
        query = {**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
        response = session.call("GET", service, path, params=query, headers=headers)
        found.extend(answer(response))
        cursor = response.headers.get(NEXT_CURSOR)
        if not cursor:
            return found


def allowed(kind: str, role: str | None, record: dict) -> dict:
    """The record as the role may take it out of the platform."""
    if kind != "returnees":
        return record
    shown = dict(record)
    shareable = (record.get("consents") or {}).get("share_with_partners") is True
    if role != "admin" or not shareable:
        for name in CONTACTS:
            shown.pop(name, None)
    if role != "admin":
        for name in ADVISOR_OMITS:
            shown.pop(name, None)
    shown.pop("consent_times", None)
    shown.pop("role", None)
    return shown


def flatten(record: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}_"))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for n, entry in enumerate(value, start=1):
                flat.update(flatten(entry, f"{name}_{n}_"))
        elif isinstance(value, list):
            flat[name] = ";".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def run(session: Session, kind: str, path: Path, reason: str = "") -> int:
    if path.suffix.lower() != ".xlsx":
        raise StationError("station exports .xlsx files")
    if session.role not in ("advisor", "admin"):
        raise StationError("Exports are for advisors and admins.")
    reason = " ".join(reason.split())
    if kind == "returnees" and session.role == "advisor" and not reason:
        raise StationError("An advisor's export of returnees says why: --reason TEXT (it is "
                           "kept in each returnee's access log).")  # fmt: skip
    rows = [flatten(allowed(kind, session.role, r)) for r in fetch(session, kind, reason)]
    headers: list[str] = []
    for row in rows:
        headers.extend(h for h in row if h not in headers)
    write_xlsx(path, headers, [label_of(h, kind) for h in headers],
               [[row.get(h) for h in headers] for row in rows])  # fmt: skip
    print(f"{kind}: {len(rows)} rows to {path}")
    return 0
