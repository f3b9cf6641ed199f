"""'Download my data' (PIPL art. 45): everything the platform holds about a person, gathered
from each service's API with their own token, as JSON and as an XLSX workbook (one sheet per
part). Incomplete is wrong here: a service that does not answer fails the download."""

import io
import json
from datetime import UTC, datetime

from openpyxl import Workbook

from services.portal.rendering import text
from services.portal.upstream import ApiError, ServiceDown, Unavailable

# part -> (service, what it is), in the order the workbook shows them
PARTS = {
    "profile": ("accounts", "Your profile"),
    "consents": ("accounts", "Your consents and their history"),
    "eligibility": ("consulting", "Your eligibility, policy by policy"),
    "consultations": ("consulting", "Your consultations with their messages"),
    "appointments": ("consulting", "Your appointments"),
    "matches": ("matching", "Resources matched to you"),
    "intentions": ("matching", "Your cooperation intentions"),
    "notifications": ("notify", "Notifications sent to you"),
    "notification_preferences": ("notify", "Your notification preferences"),
    "activity_registrations": ("activities", "Your activity registrations"),
}


def _or_none_when_missing(call):
    try:
        return call()
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def everything(api, returnee_id: str, registrations: dict) -> dict:
    consultations_path = "/consultations"
    found = api.gather(
        profile=("GET", "accounts", f"/returnees/{returnee_id}"),
        consents=("GET", "accounts", f"/returnees/{returnee_id}/consents"),
        eligibility=lambda: _or_none_when_missing(
            lambda: api.get("consulting", f"/returnees/{returnee_id}/eligibility")
        ),
        consultations=lambda: [
            api.get("consulting", f"{consultations_path}/{c['id']}")
            for c in api.get("consulting", consultations_path)  # every page
        ],
        appointments=("GET", "consulting", f"/returnees/{returnee_id}/appointments"),
        matches=("GET", "matching", f"/returnees/{returnee_id}/matches"),
        intentions=("GET", "matching", "/intentions"),
        notifications=(
            "GET",
            "notify",
            "/notifications",
            {"params": {"recipient_id": returnee_id}},  # every page: the whole inbox
        ),
        notification_preferences=("GET", "notify", f"/recipients/{returnee_id}/preferences"),
        activity_registrations=lambda: [
            _or_none_when_missing(
                lambda a=a, r=r: api.get("activities", f"/activities/{a}/registrations/{r}")
            )
            for a, r in registrations.items()
        ],
    )
    for answer in found.values():
        if isinstance(answer, Unavailable):
            raise ServiceDown(answer.service)
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "returnee_id": returnee_id,
        **{part: found[part] for part in PARTS},
    }


def as_json(held: dict) -> bytes:
    return json.dumps(held, ensure_ascii=False, indent=2).encode()


def _flatten(value, prefix: str = "") -> dict:
    """Nested answers as columns: `education.0.institution`."""
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    if isinstance(value, list):
        return {prefix: ", ".join(str(v) for v in value)}
    return {prefix: value}


def as_xlsx(held: dict, locale: str) -> bytes:
    workbook = Workbook()
    about = workbook.active
    about.title = "about"
    about.append([text(locale, "Everything the platform holds about you")])
    about.append([text(locale, "Made on"), held["generated_at"]])
    about.append([])
    for part, (service, what) in PARTS.items():
        about.append([part, text(locale, what), service])
    for part in PARTS:
        sheet = workbook.create_sheet(part[:31])
        answer = held[part]
        if answer is None:
            continue
        if isinstance(answer, dict):
            for key, value in _flatten(answer).items():
                sheet.append([key, _cell(value)])
            continue
        rows = [_flatten(item) for item in answer if item is not None]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        sheet.append(columns)
        for row in rows:
            sheet.append([_cell(row.get(c)) for c in columns])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _cell(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)
