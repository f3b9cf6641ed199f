"""HTML forms and the services' bodies: a form's fields are named after the body's paths
(`education-0-start_date`, `company-name`, `consents-matching`), so a field error a service
answers lands next to the field it names. Values are passed on as typed, with numbers and
booleans given their JSON type: the service validates, the page shows what it says.
"""

from contracts.vocabulary import CONSENT_PURPOSES

# ISO 3166-1 codes offered for an institution's country, with their names.
COUNTRIES = (
    ("GB", "United Kingdom", "英国"),
    ("US", "United States", "美国"),
    ("AU", "Australia", "澳大利亚"),
    ("CA", "Canada", "加拿大"),
    ("DE", "Germany", "德国"),
    ("FR", "France", "法国"),
    ("JP", "Japan", "日本"),
    ("SG", "Singapore", "新加坡"),
    ("KR", "South Korea", "韩国"),
    ("NL", "Netherlands", "荷兰"),
    ("CH", "Switzerland", "瑞士"),
    ("SE", "Sweden", "瑞典"),
    ("DK", "Denmark", "丹麦"),
    ("FI", "Finland", "芬兰"),
    ("IE", "Ireland", "爱尔兰"),
    ("IT", "Italy", "意大利"),
    ("ES", "Spain", "西班牙"),
    ("BE", "Belgium", "比利时"),
    ("AT", "Austria", "奥地利"),
    ("NZ", "New Zealand", "新西兰"),
    ("RU", "Russia", "俄罗斯"),
    ("MY", "Malaysia", "马来西亚"),
    ("HK", "Hong Kong, China", "中国香港"),
    ("MO", "Macao, China", "中国澳门"),
    ("CN", "Chinese mainland", "中国大陆"),
)
EDUCATION_FIELDS = (
    "institution",
    "country",
    "degree",
    "field",
    "start_date",
    "end_date",
    "qs_rank",
)
COMPANY_FIELDS = (
    "name",
    "registered_district",
    "registration_date",
    "registered_capital_cny",
    "shareholding_pct",
    "is_legal_representative",
    "is_largest_shareholder",
    "vc_raised_cny",
)
MIN_EDUCATION_ROWS = 2
MAX_EDUCATION_ROWS = 8


# Form fields as their labels name them (English; the page translates), for error summaries.
FIELD_NAMES = {
    "email": "Email",
    "password": "Password",
    "password_repeat": "Password again",
    "name": "Full name",
    "phone": "Mobile phone",
    "birth_date": "Date of birth",
    "locale": "Language of our messages to you",
    "return_date": "Date you returned to China",
    "has_overseas_job": "Did you work abroad?",
    "residence_status": "Residence in Shanghai",
    "industry": "Industry",
    "startup_stage": "Stage of your start-up",
    "needs": "What do you need?",
    "education": "Education",
    "institution": "University or school",
    "country": "Country or region",
    "degree": "Degree",
    "field": "Subject",
    "start_date": "Start date",
    "end_date": "End date",
    "qs_rank": "QS world ranking of the university",
    "company": "Your company",
    "registered_district": "District where it is registered",
    "registration_date": "Registration date",
    "registered_capital_cny": "Registered capital (CNY)",
    "shareholding_pct": "Your shareholding (%)",
    "is_legal_representative": "I am the company's legal representative",
    "is_largest_shareholder": "Are you the largest shareholder?",
    "vc_raised_cny": "Venture capital raised (CNY)",
    "consents": "Your consent",
    "topic": "Topic",
    "policy_id": "About a programme",
    "question": "Your question",
    "body": "Your reply",
    "rating": "Your rating, 1 (not helpful) to 5 (very helpful)",
    "comment": "Comment",
    "confirm": "I understand: delete my account and my data",
    "quiet": "Quiet hours",
    "start": "From",
    "end": "Until",
    "token": "The link",
    # the staff console's forms
    "title": "Title",
    "summary": "Summary",
    "kind": "Kind",
    "venue": "Venue",
    "capacity": "Capacity",
    "starts_at": "Starts",
    "ends_at": "Ends",
    "location": "Place",
    "code": "Check-in code",
    "parties": "Organizations that signed",
    "returnee_id": "A returnee who signed",
    "signed_on": "Signed on",
    "message": "Your message",
    "valid_from": "Valid from",
    "valid_until": "Valid until",
    "description": "Description",
    "contact_email": "Contact email",
    "district": "District",
    "organization_id": "Organization",
    "role": "Role",
    "q": "Name, email, phone or company",
    "document": "The new version (JSON)",
    "file": "The file (.xlsx or .csv)",
    "account_id": "Accounts",
    "organizer_ids": "Organized with (partner organizations)",
    "title_zh": "Title (Chinese)",
    "title_en": "Title (English)",
    "body_zh": "Text (Chinese)",
    "body_en": "Text (English)",
}


UNNAMED_FIELD = "This field"


def field_name(name: str, words) -> str:
    """`education-1-start_date` as "Degree 2: Start date", `company-name` as "Your company:
    Company name"; `words(english, **params)` translates."""
    parts = name.split("-")
    if parts[0] == "education" and len(parts) == 3 and parts[1].isdigit():
        degree = words("Degree {n}", n=int(parts[1]) + 1)
        inner = words(FIELD_NAMES.get(parts[2], UNNAMED_FIELD))
        return words("{what}: {detail}", what=degree, detail=inner)
    if parts[0] == "company" and len(parts) == 2:
        inner = "Company name" if parts[1] == "name" else FIELD_NAMES.get(parts[1], UNNAMED_FIELD)
        return words("{what}: {detail}", what=words("Your company"), detail=words(inner))
    if parts[0] == "consents" and len(parts) == 2:
        return words("Your consent")
    english = FIELD_NAMES.get(parts[-1]) or FIELD_NAMES.get(parts[0])
    return words(english or UNNAMED_FIELD)


def countries(locale: str) -> list[tuple[str, str]]:
    return [(code, zh if locale == "zh-CN" else en) for code, en, zh in COUNTRIES]


def field_errors(fields, prefix: str = "") -> dict[str, list[str]]:
    """A service's `fields` (nested by body path, list entries by index) by form field name."""
    flat: dict[str, list[str]] = {}
    if isinstance(fields, dict):
        for key, value in fields.items():
            name = f"{prefix}-{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(field_errors(value, name))
            else:
                flat.setdefault(name, []).extend(value if isinstance(value, list) else [value])
    return flat


def _text(form, name: str):
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else value


def _number(value: str, kind=int):
    """A number typed in a form, as JSON carries it; what is no number goes on as typed, so
    the service names it."""
    try:
        return kind(value.replace(",", "")) if kind is int else float(value.replace(",", ""))
    except ValueError:
        return value


def _choice(value: str):
    """A yes / no / unsaid select: true, false or null."""
    return {"yes": True, "no": False}.get(value)


def education_rows(form) -> int:
    """How many education entries the form shows (it grows with "add another")."""
    try:
        rows = int(form.get("education_rows") or MIN_EDUCATION_ROWS)
    except ValueError:
        rows = MIN_EDUCATION_ROWS
    if "add_education" in form:
        rows += 1
    return max(MIN_EDUCATION_ROWS, min(rows, MAX_EDUCATION_ROWS))


def _education(form) -> list[dict]:
    entries = []
    for index in range(education_rows(form)):
        entry = {name: _text(form, f"education-{index}-{name}") for name in EDUCATION_FIELDS}
        if not any(entry.values()):
            continue  # a row left empty is no entry
        if entry["qs_rank"]:
            entry["qs_rank"] = _number(entry["qs_rank"])
        else:
            entry["qs_rank"] = None
        entries.append({k: v for k, v in entry.items() if v != ""})
    return entries


def _company(form) -> dict | None:
    if form.get("has_company") != "yes":
        return None
    company = {}
    for name in ("name", "registered_district", "registration_date"):
        if _text(form, f"company-{name}"):
            company[name] = _text(form, f"company-{name}")
    for name, kind in (
        ("registered_capital_cny", int),
        ("shareholding_pct", float),
        ("vc_raised_cny", int),
    ):
        if _text(form, f"company-{name}"):
            company[name] = _number(_text(form, f"company-{name}"), kind)
    company["is_legal_representative"] = form.get("company-is_legal_representative") == "yes"
    company["is_largest_shareholder"] = _choice(form.get("company-is_largest_shareholder", ""))
    return company


def profile_body(form, *, registering: bool) -> dict:
    """The profile as accounts takes it (`POST /returnees`, `PATCH /returnees/{id}`). A field
    left empty is left out when registering (accounts says it is missing) and null when
    changing (accounts says it may not be null, or clears what may be cleared)."""
    body: dict = {}
    for name in ("name", "locale", "birth_date", "return_date", "industry", "startup_stage"):
        value = _text(form, name)
        if value:
            body[name] = value
        elif not registering:
            body[name] = None
    phone = _text(form, "phone")
    body["phone"] = phone or None
    body["residence_status"] = _text(form, "residence_status") or None
    body["has_overseas_job"] = _choice(form.get("has_overseas_job", ""))
    body["needs"] = form.getlist("needs")
    body["education"] = _education(form)
    body["company"] = _company(form)
    if registering:
        body["email"] = _text(form, "email")
        body["password"] = form.get("password", "")
        body["consents"] = consents_body(form)
        body = {k: v for k, v in body.items() if v != ""}
    return body


def consents_body(form) -> dict:
    return {purpose: form.get(f"consents-{purpose}") == "yes" for purpose in CONSENT_PURPOSES}


def profile_values(profile: dict) -> dict:
    """A stored profile as the form's fields show it."""
    values = {
        name: profile.get(name) or ""
        for name in (
            "name",
            "phone",
            "locale",
            "birth_date",
            "return_date",
            "industry",
            "startup_stage",
            "residence_status",
        )
    }
    job = profile.get("has_overseas_job")
    values["has_overseas_job"] = {True: "yes", False: "no"}.get(job, "")
    values["needs"] = list(profile.get("needs") or ())
    for index, entry in enumerate(profile.get("education") or ()):
        for name in EDUCATION_FIELDS:
            value = entry.get(name)
            values[f"education-{index}-{name}"] = "" if value is None else str(value)
    values["education_rows"] = max(MIN_EDUCATION_ROWS, len(profile.get("education") or ()))
    company = profile.get("company")
    values["has_company"] = "yes" if company else "no"
    for name in COMPANY_FIELDS:
        value = (company or {}).get(name)
        if isinstance(value, bool) or value is None:
            value = {True: "yes", False: "no", None: ""}[value]
        values[f"company-{name}"] = str(value)
    for purpose in CONSENT_PURPOSES:
        granted = (profile.get("consents") or {}).get(purpose)
        values[f"consents-{purpose}"] = "yes" if granted else ""
    return values


def form_values(form) -> dict:
    """What a person typed, to show it again with the errors (passwords never)."""
    values = {k: v for k, v in form.items() if "password" not in k and k != "csrf_token"}
    values["needs"] = form.getlist("needs")
    values["education_rows"] = education_rows(form)
    return values
