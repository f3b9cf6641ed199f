"""`station export KIND FILE.xlsx` (advisors, admins): what the services answer the signed-in
person, as one sheet with an English and a Chinese header row. Returnees never with ID
numbers (no API answers them); their email and phone only for an admin, and only of those who
consented to sharing (`share_with_partners`): an export leaves the platform."""

from pathlib import Path

from chassis.sheets import label_of, write_xlsx
from station.client import Session, StationError, answer

PAGE = 500
CONTACTS = ("email", "phone")
# What an advisor's export leaves out, beyond the contacts.
ADVISOR_OMITS = ("birth_date",)
SOURCES = {
    "returnees": ("accounts", "/returnees", True),
    "organizations": ("accounts", "/organizations", False),
    "resources": ("matching", "/resources?include_expired=true", True),
    "intentions": ("matching", "/intentions", False),
}


def fetch(session: Session, kind: str) -> list[dict]:
    service, path, paged = SOURCES[kind]
    if not paged:
        return answer(session.call("GET", service, path))
    found, offset = [], 0
    separator = "&" if "?" in path else "?"
    while True:
        paged_path = f"{path}{separator}limit={PAGE}&offset={offset}"
        page = answer(session.call("GET", service, paged_path))
        found.extend(page)
        if len(page) < PAGE:
            return found
        offset += PAGE


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


def run(session: Session, kind: str, path: Path) -> int:
    if path.suffix.lower() != ".xlsx":
        raise StationError("station exports .xlsx files")
    if session.role not in ("advisor", "admin"):
        raise StationError("Exports are for advisors and admins.")
    rows = [flatten(allowed(kind, session.role, r)) for r in fetch(session, kind)]
    headers: list[str] = []
    for row in rows:
        headers.extend(h for h in row if h not in headers)
    write_xlsx(path, headers, [label_of(h, kind) for h in headers],
               [[row.get(h) for h in headers] for row in rows])  # fmt: skip
    print(f"{kind}: {len(rows)} rows to {path}")
    return 0
