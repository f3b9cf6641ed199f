"""The portal as returnees use it, in Chromium on a phone-sized screen, against the whole
platform: register, confirm the email, sign in, read why they are eligible, answer a match and
follow the intention a provider accepts; a consultation and an appointment; both languages;
errors next to their fields; pages without JavaScript; a service that is down; and axe-core on
every page, with a screenshot of each under test-output/portal/."""

import base64
import io
import json
import re
import uuid
from pathlib import Path

import jwt
import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from chassis.loader import service_class
from chassis.openapi import openapi_document
from chassis.settings import SERVICES
from tests.platform import PASSWORD, STAFF_PASSWORD
from tests.support import ServiceProcess, free_port, wait_until
from tests.unit.test_notify_activities import decoded, from_png

PROVIDER = "provider@linkong-park.example.cn"  # deploy/reference/organizations.yml
ADVISORS = ("wang.min@station.example", "david.chen@station.example")


def has_endpoint(service: str, path: str) -> bool:
    """Whether the service's OpenAPI document lists the path (an endpoint not built yet is
    not there, and the tests of the pages that need it wait for it)."""
    if service not in SERVICES:
        return False
    return path in openapi_document(service_class(service))["paths"]


VERIFYING = has_endpoint("accounts", "/auth/verify-email")
RESETTING = has_endpoint("accounts", "/auth/password-reset/confirm")
ACTIVITIES = has_endpoint("activities", "/activities")
needs_verification = pytest.mark.skipif(
    not VERIFYING, reason="accounts has no POST /auth/verify-email yet"
)
needs_reset = pytest.mark.skipif(
    not RESETTING, reason="accounts has no POST /auth/password-reset/confirm yet"
)
needs_activities = pytest.mark.skipif(not ACTIVITIES, reason="no activities service yet")


def fresh_email() -> str:
    return f"browser.{uuid.uuid4().hex[:10]}@example.com"


def fill_registration(page, email: str) -> None:
    """The registration form, as Li Wei fills it (contracts/examples.py)."""
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password_repeat").fill(PASSWORD)
    page.locator("#name").fill("Li Wei")
    page.locator("#birth_date").fill("1992-05-14")
    page.check("#locale-en")
    row = "#education-0-"
    page.locator(f"{row}institution").fill("Imperial College London")
    page.select_option(f"{row}country", "GB")
    page.select_option(f"{row}degree", "master")
    page.locator(f"{row}field").fill("Bioengineering")
    page.locator(f"{row}start_date").fill("2015-09-28")
    page.locator(f"{row}end_date").fill("2016-09-30")
    page.locator(f"{row}qs_rank").fill("2")
    page.locator("#return_date").fill("2021-07-01")
    page.check("#has_overseas_job-yes")
    page.select_option("#residence_status", "hukou")
    page.select_option("#industry", "biotech")
    page.select_option("#startup_stage", "registered")
    for need in ("financing", "office_space", "policy_advice"):
        page.check(f"#needs-{need}")
    page.check("#has_company-yes")
    page.locator("#company-name").fill("Weikang Biotech Co., Ltd.")
    page.locator("#company-registered_district").fill("Changning")
    page.locator("#company-registration_date").fill("2024-03-18")
    page.locator("#company-registered_capital_cny").fill("1000000")
    page.locator("#company-shareholding_pct").fill("60")
    page.check("#company-is_legal_representative")
    page.check("#company-is_largest_shareholder-yes")
    page.check("#consents-matching")
    page.check("#consents-notifications")


def api_token(platform, email: str, password: str = PASSWORD) -> dict:
    return platform.token(email, password)


# ---------------------------------------------------------------- the returnee's journey


def test_register_verify_sign_in_eligibility_match_intention_accepted(browsing):
    platform = browsing.platform
    page = browsing.page("en")
    page.goto("/register")
    browsing.look(page, "register")
    email = fresh_email()
    fill_registration(page, email)
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    browsing.look(page, "registered")

    if VERIFYING:  # the link in the email confirms the address
        page.goto(browsing.link_emailed_to(email, "/verify-email"))
        browsing.look(page, "verify-email")
        page.get_by_role("button", name="Confirm my email").click()
        expect(page.get_by_text("your email address is confirmed")).to_be_visible()

    browsing.sign_in(page, email)  # the fields labelled Email and Password, the Sign in button
    browsing.reload_until(
        page, lambda p: p.get_by_text("Eligible", exact=True).count() > 0, message="eligibility"
    )
    page.get_by_text("Why: every condition").first.click()  # the first programme's reasons
    main = page.locator("main").inner_text()
    assert "Your highest overseas degree: Master's" in main
    assert "(required: Bachelor's or higher)" in main or "(required: Master's or higher)" in main
    for raw in ("highest_overseas_degree", "company.registered_district", "study_abroad_days"):
        assert raw not in main, f"a raw field name on the page: {raw}"
    browsing.look(page, "overview")

    page.goto("/me/matches")
    card = page.locator(".card", has_text="Linkong Economic Park").first
    browsing.reload_until(page, lambda p: card.count() > 0, message="a match with the park")
    expect(card.locator("li").first).to_be_visible()  # its reasons
    browsing.look(page, "matches")
    card.get_by_text("Express a cooperation intention").click()
    card.get_by_label(re.compile("Your message to")).fill("We would like a lab bench next spring.")
    card.get_by_role("button", name="Send my intention").click()
    page.wait_for_url("**/me/intentions")
    expect(page.get_by_text("Waiting for an answer")).to_be_visible()

    returnee = api_token(platform, email)
    intentions = platform.call("GET", "matching", "/intentions", returnee).json()
    provider = api_token(platform, PROVIDER, STAFF_PASSWORD)
    accepted = platform.call(
        "POST",
        "matching",
        f"/intentions/{intentions[0]['intention_id']}/accept",
        provider,
        json={"message": "Welcome to Linkong: visit us on Monday."},
    )
    assert accepted.status_code == 200, accepted.text
    page.reload()
    expect(page.get_by_text("Accepted", exact=True)).to_be_visible()
    expect(page.get_by_text("Welcome to Linkong")).to_be_visible()
    browsing.look(page, "intentions")


def test_a_consultation_round_trip_and_an_appointment(browsing):
    platform = browsing.platform
    returnee, headers, body = platform.register(locale="zh-CN")
    page = browsing.page("zh-CN")
    browsing.sign_in(page, body["email"], words=("邮箱", "密码", "登录"))
    page.goto("/me/consultations")
    page.get_by_label("主题").select_option("funding")
    page.get_by_label("您的问题").fill("启动资金申请需要哪些材料？")
    page.get_by_role("button", name="提交问题").click()
    page.wait_for_url(re.compile(r"/me/consultations/[\w-]+$"))
    consultation_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_text("启动资金申请需要哪些材料？")).to_be_visible()

    asked = platform.call("GET", "consulting", f"/consultations/{consultation_id}", headers).json()
    advisor = next(
        h
        for h in (api_token(platform, e, STAFF_PASSWORD) for e in ADVISORS)
        if jwt.decode(h["Authorization"][7:], options={"verify_signature": False})["sub"]
        == asked["advisor_id"]
    )
    answered = platform.call(
        "POST",
        "consulting",
        f"/consultations/{consultation_id}/messages",
        advisor,
        json={"body": "请准备营业执照、股权结构和商业计划书。"},
    )
    assert answered.status_code == 201, answered.text
    page.reload()
    expect(page.get_by_text("请准备营业执照")).to_be_visible()
    page.get_by_label("您的回复").fill("谢谢！商业计划书需要盖章吗？")
    page.get_by_role("button", name="发送回复").click()
    expect(page.get_by_text("商业计划书需要盖章吗")).to_be_visible()
    browsing.look(page, "consultation")
    page.get_by_role("button", name="问题已解决：关闭咨询").click()
    expect(page.get_by_text("已关闭", exact=True)).to_be_visible()
    page.get_by_text("5", exact=True).click()  # the rating's label
    page.get_by_role("button", name="提交评分").click()
    expect(page.get_by_text("您给这次咨询的评分是 5 分")).to_be_visible()
    assert (
        platform.call("GET", "consulting", f"/consultations/{consultation_id}", headers).json()[
            "rating"
        ]
        == 5
    )

    slot = platform.call(
        "POST",
        "consulting",
        "/slots",
        advisor,
        json={
            "starts_at": "2030-03-04T14:00:00+08:00",
            "ends_at": "2030-03-04T14:30:00+08:00",
            "location": "长宁区留学人员创业服务站 201 室",
            "capacity": 2,
        },
    )
    assert slot.status_code == 201, slot.text
    page.goto("/me/appointments")
    free = page.locator(f"#slot-{slot.json()['id']}")
    free.get_by_label("咨询内容").select_option("funding")
    free.get_by_role("button", name="预约这个时段").click()
    expect(page.get_by_text("预约成功。")).to_be_visible()
    browsing.look(page, "appointments")
    mine = platform.call(
        "GET", "consulting", f"/returnees/{returnee['id']}/appointments", headers
    ).json()
    assert [a["status"] for a in mine] == ["booked"]
    page.get_by_role("button", name="取消这个预约").click()
    expect(page.get_by_text("预约已取消。")).to_be_visible()


# ---------------------------------------------------------------- language and errors


def test_chinese_by_default_english_one_click_away_and_remembered(browsing):
    page = browsing.page("fr-FR")  # neither language asked for: Chinese
    page.goto("/")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name="登录", exact=True)).to_be_visible()
    page.get_by_role("link", name="English").click()
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.evaluate("document.documentElement.lang") == "en"
    expect(nav.get_by_role("link", name="Sign in", exact=True)).to_be_visible()
    page.goto("/policies")  # the choice is remembered
    assert page.evaluate("document.documentElement.lang") == "en"
    page.goto("/policies?lang=zh-CN")
    expect(page.get_by_role("heading", name="政策", exact=True)).to_be_visible()
    english = browsing.page("en-GB")  # Accept-Language
    english.goto("/login")
    expect(english.get_by_role("button", name="Sign in", exact=True)).to_be_visible()


@pytest.mark.parametrize(
    ("locale", "email_error", "birth_error"),
    [
        ("en", "Not a valid email address.", "Must not be in the future."),
        ("zh-CN", "不是有效的电子邮箱地址。", "不能是将来的日期。"),
    ],
)
def test_a_form_error_is_shown_next_to_its_field(browsing, locale, email_error, birth_error):
    page = browsing.page(locale)
    page.goto("/register")
    fill_registration(page, "not-an-email")
    page.locator("#birth_date").fill("2090-01-01")
    page.locator("form button.primary").click()
    email = page.locator("#email")
    expect(page.locator("#email-error")).to_contain_text(email_error)
    expect(email).to_have_attribute("aria-invalid", "true")
    assert "email-error" in email.get_attribute("aria-describedby")
    expect(page.locator("#birth_date-error")).to_contain_text(birth_error)
    expect(page.locator("#error-summary a[href='#email']")).to_be_visible()
    assert page.locator("#password").input_value() == ""  # never shown back
    assert page.locator("#name").input_value() == "Li Wei"  # the rest is kept
    browsing.look(page, "register-errors")


def test_wrong_password_is_said_next_to_the_fields_and_the_session_is_protected(browsing):
    platform = browsing.platform
    _, _, body = platform.register(locale="en")
    page = browsing.page("en")
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(body["email"])
    page.get_by_label("Password", exact=True).fill("Wrong-password-1")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#email-error")).to_contain_text("Wrong email or password.")
    browsing.sign_in(page, body["email"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "portal_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert body["email"] not in cookie["value"] and "ey" not in cookie["value"][:4]
    # A form posted without the session's CSRF token is refused.
    answer = page.request.post(f"{browsing.base}/me/delete", form={"confirm": "yes"})
    assert answer.status == 403
    assert platform.call("GET", "accounts", "/organizations").status_code == 200
    headers = answer.headers
    assert "script-src 'self'" in headers["content-security-policy"]


# ---------------------------------------------------------------- without JavaScript


def test_the_core_flows_work_without_javascript(browsing):
    platform = browsing.platform
    _, headers, body = platform.register(locale="en", needs=["office_space"])
    page = browsing.page("en", javascript=False)
    browsing.sign_in(page, body["email"])
    page.goto("/me/consultations")
    page.get_by_label("Topic").select_option("policy")
    page.get_by_label("Your question").fill("Which rent subsidy can I get?")
    page.get_by_role("button", name="Send my question").click()
    expect(page.get_by_text("Which rent subsidy can I get?")).to_be_visible()
    page.goto("/me/profile")
    page.locator("#phone").fill("+86 139 0000 0000")
    page.get_by_role("button", name="Save my profile").click()
    expect(page.get_by_text("Your profile is saved.")).to_be_visible()
    rid = jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})["sub"]
    profile = platform.call("GET", "accounts", f"/returnees/{rid}", headers).json()
    assert profile["phone"] == "+86 139 0000 0000"


# ---------------------------------------------------------------- a service down


def test_a_service_that_is_down_gives_a_page_that_says_so(browsing):
    platform = browsing.platform
    env = {**platform.env, **platform.portal_environment(consulting=True)}
    port = free_port()
    env["PORTAL_HTTP_PORT"] = str(port)
    lonely = ServiceProcess("portal", env).start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/health/ready"), 30, 0.2, "the second portal")
        for locale, words in (("en", "policy consultation service"), ("zh-CN", "政策咨询服务")):
            page = browsing.page(locale)
            page.goto(f"{base}/policies")
            expect(page.locator("main")).to_contain_text(words)
            assert "Traceback" not in page.content()
            browsing.look(page, "service-down")
        answer = page.request.get(f"{base}/policies")
        assert answer.status == 503
    finally:
        lonely.stop()


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


# ---------------------------------------------------------------- every page, both languages

PUBLIC_PAGES = (
    "/",
    "/policies",
    "/login",
    "/register",
    "/reset-password",
    "/activities",
    "/no-such-page",
)
SIGNED_IN_PAGES = (
    "/me",
    "/me/matches",
    "/me/intentions",
    "/me/consultations",
    "/me/appointments",
    "/me/activities",
    "/me/notifications",
    "/me/preferences",
    "/me/profile",
    "/me/data",
    "/me/delete",
)


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_page_passes_axe_in_both_languages(browsing, locale):
    platform = browsing.platform
    _, headers, body = platform.register(locale=locale)
    page = browsing.page(locale)
    for path in PUBLIC_PAGES:
        page.goto(path)
        assert page.evaluate("document.documentElement.lang") == locale
        browsing.look(page, _name(path))
    policies = platform.call("GET", "consulting", "/policies").json()
    page.goto(f"/policies/{policies[0]['id']}")
    browsing.look(page, "policy")
    browsing.sign_in(page, body["email"], words=_sign_in_words(locale))
    for path in SIGNED_IN_PAGES:
        page.goto(path)
        assert page.evaluate("document.documentElement.lang") == locale
        browsing.look(page, _name(path))


def _name(path: str) -> str:
    return path.strip("/").replace("/", "-") or "home"


def _sign_in_words(locale: str):
    return ("邮箱", "密码", "登录") if locale == "zh-CN" else ("Email", "Password", "Sign in")


# ---------------------------------------------------------------- notifications, data, deletion


def test_inbox_counts_unread_then_data_download_and_account_deletion(browsing):
    platform = browsing.platform
    returnee, headers, body = platform.register(locale="en")
    platform.settled_inbox(returnee["id"], headers)  # every notice of the registration in
    page = browsing.page("en")
    browsing.sign_in(page, body["email"])
    badge = page.locator("nav a[href='/me/notifications'] .badge")
    browsing.reload_until(page, lambda p: badge.count() > 0, message="an unread notification")
    page.goto("/me/notifications")
    expect(page.get_by_text("new since your last visit")).to_be_visible()
    page.goto("/me")
    assert badge.count() == 0  # seen

    page.goto("/me/preferences")
    page.locator("#receive-matches_found-email").uncheck()
    page.get_by_label("Hold messages during quiet hours").check()
    page.get_by_label(re.compile("^From")).fill("22:00")
    page.get_by_label(re.compile("^Until")).fill("07:30")
    page.get_by_role("button", name="Save my preferences").click()
    expect(page.get_by_text("Your preferences are saved.")).to_be_visible()
    path = f"/recipients/{returnee['id']}/preferences"
    saved = platform.call("GET", "notify", path, headers).json()
    assert {"channel": "email", "topic": "matches_found"} in saved["opt_outs"]
    assert saved["quiet_hours"]["start"].startswith("22:00")
    expect(page.locator("#receive-matches_found-email")).not_to_be_checked()

    page.goto("/me/data")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as JSON").click()
    held = json.loads(Path(download.value.path()).read_text())
    assert held["profile"]["email"] == body["email"]
    assert {"consents", "eligibility", "matches", "notifications"} <= set(held)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as a spreadsheet (XLSX)").click()
    workbook = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert {"profile", "notifications", "matches"} <= set(workbook.sheetnames)

    page.goto("/me/delete")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#confirm-error")).to_contain_text("Tick the box to confirm.")
    page.get_by_label("I understand: delete my account and my data").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_text("Your account and your data are deleted.")).to_be_visible()
    gone = platform.call("GET", "accounts", f"/returnees/{returnee['id']}", platform.admin())
    assert gone.status_code == 404


# ---------------------------------------------------------------- waiting for other services


@needs_reset
def test_forgotten_password_reset_through_the_emailed_link(browsing):
    platform = browsing.platform
    _, _, body = platform.register(locale="en")
    # An address not confirmed yet is answered with its verification link: confirm it first.
    token = platform.link_token(body["email"], "/verify-email")
    verified = platform.call("POST", "accounts", "/auth/verify-email", json={"token": token})
    assert verified.status_code in (200, 204), verified.text
    page = browsing.page("en")
    page.goto("/reset-password")
    page.get_by_label("Email", exact=True).fill(body["email"])
    page.get_by_role("button", name="Send me the link").click()
    expect(page.get_by_text("we have sent it a link")).to_be_visible()
    page.goto(browsing.link_emailed_to(body["email"], "/reset-password"))
    browsing.look(page, "reset-password")
    page.get_by_label("New password", exact=True).fill("Another-secret-2027")
    page.get_by_label("New password again").fill("Another-secret-2027")
    page.get_by_role("button", name="Save my password").click()
    expect(page.get_by_text("Your password is set.")).to_be_visible()
    browsing.sign_in(page, body["email"], "Another-secret-2027")


@needs_reset
def test_an_invited_staff_member_sets_a_password(browsing):
    platform = browsing.platform
    email = fresh_email()
    invited = platform.call(
        "POST",
        "accounts",
        "/staff",
        platform.admin(),
        json={"email": email, "name": "Zhou Lan", "role": "advisor", "locale": "en"},
    )
    assert invited.status_code == 201, invited.text
    page = browsing.page("en")
    page.goto(browsing.link_emailed_to(email, "/set-password"))
    browsing.look(page, "set-password")
    page.get_by_label("New password", exact=True).fill("Advisor-secret-2027")
    page.get_by_label("New password again").fill("Advisor-secret-2027")
    page.get_by_role("button", name="Save my password").click()
    expect(page.get_by_text("Your password is set.")).to_be_visible()


@needs_activities
def test_activities_listed_signed_up_and_the_check_in_code_shown(browsing):
    platform = browsing.platform
    _, _, body = platform.register(locale="en")
    created = platform.call(
        "POST",
        "activities",
        "/activities",
        platform.admin(),
        json={
            "kind": "exchange",
            "title": {"zh-CN": "海归创业交流会", "en": "Returnee founders meet-up"},
            "summary": {"zh-CN": "与园区和银行面对面", "en": "Meet the parks and banks"},
            "starts_at": "2030-05-06T14:00:00+08:00",
            "ends_at": "2030-05-06T17:00:00+08:00",
            "venue": {"name": "Linkong park hall", "address": "Changning, Shanghai"},
            "capacity": 30,
        },
    )
    assert created.status_code == 201, created.text
    page = browsing.page("en")
    page.goto("/activities")
    page.get_by_role("link", name="Returnee founders meet-up").click()
    browsing.look(page, "activity")
    page.get_by_role("link", name="Sign in to sign up").click()
    page.get_by_label("Email", exact=True).fill(body["email"])
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/me/activities")
    image = page.get_by_role("img", name=re.compile("QR code of the check-in code"))
    expect(image).to_be_visible()
    code = page.locator(".card strong").last.inner_text()
    png = page.request.get(f"{browsing.base}{image.get_attribute('src')}").body()
    scanned = decoded(from_png("data:image/png;base64," + base64.b64encode(png).decode()))
    assert scanned == [code]  # what the scanner at the door reads
    browsing.look(page, "my-activities")
