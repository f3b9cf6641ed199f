"""The portal's pure parts: every word of the interface in both languages, forms to bodies and
field errors back to fields, the session cookie, the choice of language, the data export."""

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.portal import console, district, export, forms, imports, me, rendering
from services.portal.messages import MESSAGES
from services.portal.session import Session, SessionCodec
from services.portal.settings import DEVELOPMENT_SESSION_SECRET, PortalSettings, UnsafeSettings
from services.portal.web import locale_of

PORTAL = Path("services/portal")
HAN = re.compile(r"[\u4e00-\u9fff]")


def interface_texts() -> set[str]:
    """Every English text the portal shows: `_("...")` in templates, the texts pages pass to
    `text()` and `flash()`, and the tables of words."""
    found = set()
    for template in PORTAL.rglob("*.html"):
        source = template.read_text()
        found |= set(re.findall(r'''_\(\s*"((?:[^"\\]|\\.)*)"''', source))
        found |= set(re.findall(r"""_\(\s*'((?:[^'\\]|\\.)*)'""", source))
        for table in re.findall(r"_\(\{([^}]*)\}\[", source):
            found |= set(re.findall(r':\s*"([^"]+)"', table))
    for module in PORTAL.glob("*.py"):
        source = module.read_text()
        found |= set(re.findall(r'(?<!\w)text\(\s*[\w.]+,\s*"((?:[^"\\]|\\.)*)"', source))
        found |= set(re.findall(r'flash\(\s*"((?:[^"\\]|\\.)*)"', source))
        found |= set(re.findall(r'flash\(\s*\n\s*"((?:[^"\\]|\\.)*)"', source))
    found |= set(forms.FIELD_NAMES.values()) | set(rendering.TOPICS.values())
    found |= {forms.UNNAMED_FIELD, "Done.", "{what}: {detail}"}
    found |= set(me.DONE.values()) | set(console.CONSULTATION_DONE.values())
    found |= {words for nav in rendering.STAFF_NAV.values() for _, words in nav}
    found |= set(district.PROBLEMS) | set(imports.TEXTS)
    found |= set(rendering.SERVICE_NAMES.values()) | {w for _, w in export.PARTS.values()}
    return found


def test_every_word_of_the_interface_is_in_both_languages():
    texts = interface_texts()
    assert len(texts) > 250
    missing = sorted(t for t in texts if t not in MESSAGES)
    assert not missing, missing
    for english, chinese in MESSAGES.items():
        assert HAN.search(chinese) or "：" in chinese, (english, chinese)
        assert set(re.findall(r"{(\w+)}", english)) == set(re.findall(r"{(\w+)}", chinese)), english


def test_the_catalog_holds_no_text_nobody_shows():
    unused = sorted(set(MESSAGES) - interface_texts())
    assert not unused, unused


# ---------------------------------------------------------------- forms


def test_nested_field_errors_land_on_the_form_fields():
    errors = forms.field_errors(
        {
            "email": ["Not a valid email address."],
            "education": {"1": {"start_date": ["Must be after the birth date."]}},
            "company": {"registration_date": ["Must not be in the future."]},
        }
    )
    assert errors == {
        "email": ["Not a valid email address."],
        "education-1-start_date": ["Must be after the birth date."],
        "company-registration_date": ["Must not be in the future."],
    }
    words = lambda english, **p: english.format(**p)  # noqa: E731
    assert forms.field_name("education-1-start_date", words) == "Degree 2: Start date"
    assert forms.field_name("company-name", words) == "Your company: Company name"
    assert forms.field_name("something-else", words) == "This field"


def registration_form(**changes) -> MultiDict:
    fields = {
        "email": " Li.Wei@Example.com ",
        "password": "Returnee2026!",
        "name": "Li Wei",
        "locale": "en",
        "birth_date": "1992-05-14",
        "return_date": "2021-07-01",
        "industry": "biotech",
        "startup_stage": "registered",
        "has_overseas_job": "yes",
        "education_rows": "2",
        "education-0-institution": "Imperial College London",
        "education-0-country": "GB",
        "education-0-degree": "master",
        "education-0-field": "Bioengineering",
        "education-0-start_date": "2015-09-28",
        "education-0-end_date": "2016-09-30",
        "education-0-qs_rank": "2",
        "has_company": "yes",
        "company-name": "Weikang",
        "company-registered_district": "Changning",
        "company-registration_date": "2024-03-18",
        "company-registered_capital_cny": "1,000,000",
        "company-shareholding_pct": "60",
        "company-is_legal_representative": "yes",
        "consents-matching": "yes",
    }
    fields.update(changes)
    form = MultiDict(fields)
    form.setlist("needs", ["financing", "office_space"])
    return form


def test_a_registration_form_becomes_the_contract_v1_body():
    body = forms.profile_body(registration_form(), registering=True)
    assert body["education"] == [
        {
            "institution": "Imperial College London",
            "country": "GB",
            "degree": "master",
            "field": "Bioengineering",
            "start_date": "2015-09-28",
            "end_date": "2016-09-30",
            "qs_rank": 2,
        }
    ]
    assert body["company"]["registered_capital_cny"] == 1_000_000
    assert body["company"]["shareholding_pct"] == 60.0
    assert body["company"]["is_legal_representative"] is True
    assert body["company"]["is_largest_shareholder"] is None
    assert body["needs"] == ["financing", "office_space"]
    assert body["has_overseas_job"] is True
    assert body["consents"] == {
        "matching": True,
        "notifications": False,
        "share_with_partners": False,
    }
    assert body["email"] == "Li.Wei@Example.com"  # accounts normalizes it


def test_what_is_left_empty_is_missing_when_registering_and_null_when_changing():
    form = registration_form(name="", birth_date="", has_company="no")
    registering = forms.profile_body(form, registering=True)
    assert "name" not in registering and "birth_date" not in registering
    assert registering["company"] is None
    changing = forms.profile_body(form, registering=False)
    assert changing["name"] is None and changing["birth_date"] is None
    assert "email" not in changing and "password" not in changing
    not_a_number = forms.profile_body(
        registration_form(**{"education-0-qs_rank": "top"}), registering=True
    )
    assert not_a_number["education"][0]["qs_rank"] == "top"  # accounts names it


def test_a_stored_profile_fills_the_form_it_came_from():
    body = forms.profile_body(registration_form(), registering=True)
    values = forms.profile_values({**body, "consents": {"matching": True}})
    again = forms.profile_body(MultiDict({**values, "needs": None}), registering=False)
    assert again["education"] == body["education"]
    assert again["company"]["registered_capital_cny"] == 1_000_000
    assert values["consents-matching"] == "yes" and values["consents-notifications"] == ""


def test_another_degree_row_is_added_up_to_a_limit():
    assert forms.education_rows(MultiDict({"education_rows": "2", "add_education": "1"})) == 3
    assert forms.education_rows(MultiDict({"education_rows": "8", "add_education": "1"})) == 8
    assert forms.education_rows(MultiDict({"education_rows": "nonsense"})) == 2


# ---------------------------------------------------------------- session and settings


def test_the_session_cookie_is_sealed_and_tampering_empties_it():
    codec = SessionCodec(
        PortalSettings.from_config({"PLATFORM_ENV": "development"}).session_key, 3600
    )
    session = Session(sub="someone", access="token", csrf="abc")
    cookie = codec.dump(session)
    assert "someone" not in cookie and "token" not in cookie
    assert codec.load(cookie) == session
    tampered = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
    assert codec.load(tampered) == {}
    assert codec.load("not a cookie") == {}
    other = SessionCodec(
        PortalSettings.from_config(
            {"PLATFORM_ENV": "development", "SESSION_SECRET": "another"}
        ).session_key,
        3600,
    )
    assert other.load(cookie) == {}


def test_csrf_tokens_are_compared_and_survive_signing_out():
    session = Session()
    token = session.csrf_token()
    assert session.csrf_matches(token)
    assert not session.csrf_matches("forged") and not session.csrf_matches(None)
    assert not Session().csrf_matches("")
    session.update(access="a", sub="b")
    session.sign_out()
    assert not session.signed_in and session.csrf_matches(token)


def test_production_needs_a_session_secret_and_secure_cookies():
    with pytest.raises(UnsafeSettings):
        PortalSettings.from_config({"PLATFORM_ENV": "production", "SESSION_SECRET": ""})
    production = PortalSettings.from_config(
        {"PLATFORM_ENV": "production", "SESSION_SECRET": "s" * 32}
    )
    assert production.secure_cookies
    development = PortalSettings.from_config({"PLATFORM_ENV": "development"})
    assert not development.secure_cookies
    assert DEVELOPMENT_SESSION_SECRET  # only in development
    assert development.urls["accounts"] == "http://127.0.0.1:8001"
    assert development.urls["activities"] == "http://127.0.0.1:8005"
    elsewhere = PortalSettings.from_config(
        {"PLATFORM_ENV": "development", "MATCHING_URL": "http://matching:8003/"}
    )
    assert elsewhere.urls["matching"] == "http://matching:8003"


# ---------------------------------------------------------------- language


def request_with(query: str = "", cookie: str | None = None, accept: str | None = None):
    headers = {"Accept-Language": accept} if accept else {}
    if cookie:
        headers["Cookie"] = f"lang={cookie}"
    return Request(EnvironBuilder(path="/", query_string=query, headers=headers).get_environ())


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("", None, None, ("zh-CN", False)),
        ("", None, "fr-FR,fr;q=0.9", ("zh-CN", False)),
        ("", None, "en-GB,en;q=0.9", ("en", False)),
        ("", None, "zh-CN,en;q=0.5", ("zh-CN", False)),
        ("", "en", "zh-CN", ("en", False)),
        ("lang=en", "zh-CN", "zh-CN", ("en", True)),
        ("lang=xx", "en", None, ("en", False)),
    ],
)
def test_chinese_unless_english_is_asked_for(query, cookie, accept, expected):
    assert locale_of(request_with(query, cookie, accept)) == expected


# ---------------------------------------------------------------- my data


def test_the_export_spreadsheet_has_a_sheet_per_part_with_nested_values_as_columns():
    held = {"generated_at": "2026-12-01T10:00:00+00:00", "returnee_id": "r"}
    held.update({part: None for part in export.PARTS})
    held["profile"] = {
        "name": "李伟",
        "education": [{"institution": "Imperial", "qs_rank": 2}],
        "needs": ["financing", "office_space"],
    }
    held["matches"] = [{"title": "Office", "reasons": [{"factor": "need"}], "score": 0.9}]
    workbook = load_workbook(io.BytesIO(export.as_xlsx(held, "zh-CN")))
    assert workbook.sheetnames == ["about", *export.PARTS]
    profile = {row[0]: row[1] for row in workbook["profile"].iter_rows(values_only=True)}
    assert profile["name"] == "李伟"
    assert profile["education.0.institution"] == "Imperial"
    assert profile["needs"] == "financing, office_space"
    header, row = list(workbook["matches"].iter_rows(values_only=True))
    assert dict(zip(header, row, strict=True)) == {
        "title": "Office",
        "reasons.0.factor": "need",
        "score": 0.9,
    }
    assert workbook["about"]["A1"].value == "平台保存的关于您的全部信息"


def test_a_stated_rule_broken_is_shown_as_the_forms_field_errors():
    from services.portal.upstream import ApiError

    fields = {"birth_date": ["Must not be in the future."]}
    refused = ApiError("accounts", 422, {"error": "invalid", "message": "m", "fields": fields})
    assert (refused.status, refused.answered, refused.fields) == (400, 422, fields)
    assert ApiError("accounts", 409, {}).status == 409


# ---------------------------------------------------------------- the staff console


def _consultation(**changes) -> dict:
    created = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    return {
        "id": "c1",
        "status": "assigned",
        "topic": "funding",
        "created_at": created.isoformat(),
        "first_response_due": (created + timedelta(hours=8)).isoformat(),
        "resolution_due": (created + timedelta(days=3)).isoformat(),
        "first_responded_at": None,
        "escalated": False,
        "sla_paused": False,
        **changes,
    }


def test_the_queue_shows_each_clock_with_the_time_left_or_missed():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    entry = console.queue_entry(_consultation(), now)
    assert entry["first"]["minutes"] == 6 * 60 and not entry["first"]["breached"]
    assert entry["resolution"]["minutes"] == 3 * 24 * 60 - 2 * 60
    assert not entry["breached"] and entry["nearest"] == entry["first"]["due"]
    late = console.queue_entry(_consultation(), now + timedelta(hours=7))
    assert late["first"]["minutes"] == -60 and late["first"]["breached"] and late["breached"]
    answered = console.queue_entry(
        _consultation(status="answered", first_responded_at=now.isoformat()), now
    )
    assert answered["first"] is None and answered["nearest"] == answered["resolution"]["due"]
    escalated = console.queue_entry(_consultation(escalated=True), now)
    assert escalated["breached"]  # consulting said so, whatever the clocks here
    closed = console.queue_entry(_consultation(status="closed", escalated=True), now)
    assert not closed["breached"] and closed["resolution"] is None
    assert console.queue_entry(_consultation(status="waiting_on_returnee"), now)["paused"]
    assert console._duration(-(2 * 1440 + 3 * 60 + 4)) == (2, 3, 4)


def test_the_queue_puts_the_nearest_deadline_first_then_paused_then_closed():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    soon = _consultation(id="soon")
    later = _consultation(id="later", topic="general",
                          first_response_due="2026-12-03T10:00:00+00:00")  # fmt: skip
    twin = _consultation(id="twin", created_at="2026-12-01T10:30:00+00:00")
    paused = _consultation(id="paused", status="waiting_on_returnee", sla_paused=True,
                           first_response_due="2026-11-30T10:00:00+00:00")  # fmt: skip
    closed = _consultation(id="closed", status="closed")
    entries = [console.queue_entry(c, now) for c in (closed, paused, later, twin, soon)]
    entries.sort(key=console.queue_order)
    assert [e["id"] for e in entries] == ["soon", "twin", "later", "paused", "closed"]


def test_the_dashboard_period_and_its_interval():
    from werkzeug.datastructures import MultiDict

    today = district.today()
    start, end, problems = district.period(MultiDict())
    assert (end - start).days == district.DEFAULT_DAYS - 1 and end == today and not problems
    start, end, _ = district.period(MultiDict({"preset": "year"}))
    assert start == today.replace(month=1, day=1)
    start, end, problems = district.period(MultiDict({"from": "2026-01-01", "to": "2026-03-31"}))
    assert (start.isoformat(), end.isoformat(), problems) == ("2026-01-01", "2026-03-31", {})
    _, _, problems = district.period(MultiDict({"from": "2026-02-01", "to": "2026-01-01"}))
    assert problems == {"from": [district.PROBLEMS[1]]}
    _, _, problems = district.period(MultiDict({"to": "1st of May"}))
    assert problems == {"to": [district.PROBLEMS[0]]}
    assert district.interval_for(start, start + timedelta(days=29)) == "day"
    assert district.interval_for(start, start + timedelta(days=120)) == "week"
    assert district.interval_for(start, start + timedelta(days=800)) == "month"


def test_each_role_has_one_home():
    assert Session().home == "/"
    homes = {}
    for role in ("returnee", "advisor", "provider", "admin", "official"):
        session = Session(access="token", role=role, sub="someone")
        homes[role] = session.home
    assert homes == {
        "returnee": "/me",
        "advisor": "/console",
        "provider": "/partner",
        "admin": "/admin",
        "official": "/district",
    }
    assert Session(access="token", role="auditor").home == "/"  # a role the portal has no page for


def test_a_canned_reply_is_inserted_in_the_language_asked_and_only_of_the_topic_shown():
    replies = [{"id": "r1", "body_zh": "请带上营业执照。", "body_en": "Bring the licence."}]
    assert console.inserted_reply(replies, "r1", "zh-CN") == "请带上营业执照。"
    assert console.inserted_reply(replies, "r1", "en") == "Bring the licence."
    assert console.inserted_reply(replies, "r1", "fr") is None
    assert console.inserted_reply(replies, "another topic's", "en") is None
    assert console.inserted_reply(replies, None, None) is None
