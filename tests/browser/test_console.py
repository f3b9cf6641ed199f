"""The staff's part of the portal in Chromium against the whole platform: each role's home
after signing in and the 403 page on another role's pages; an advisor answers the oldest
consultation of the queue and the returnee reads the answer; an advisor publishes a slot and
checks in an activity's registrant by the code; a provider accepts an intention and the
returnee sees it; an official's dashboard shows the figures insights gives, and nobody's name;
admins' pages. axe-core on every page in both languages, a screenshot of each."""

import io
import re
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from kombu import Connection, Exchange
from openpyxl import load_workbook
from playwright.sync_api import expect

from contracts import labels
from tests.browser.support import Browsing
from tests.platform import STAFF_PASSWORD
from tests.support import wait_until

ADVISOR = "wang.min@station.example"  # deploy/reference/organizations.yml
PROVIDER = "provider@linkong-park.example.cn"
ADMIN = ("admin@station.example", "Station-admin-2026")
OFFICIAL_PASSWORD = "District-official-2026"
WIDE = {"width": 1280, "height": 900}  # staff often sit at a desk


@pytest.fixture(scope="module")
def official(portal):
    """A district official, invited by the admin (their password set through the email)."""
    email = f"official.{uuid.uuid4().hex[:8]}@district.example"
    portal.invite(portal.admin(), OFFICIAL_PASSWORD, email=email, name="Zhao Min", role="official")
    return email


def staff_sign_in(browsing: Browsing, page, email, password=STAFF_PASSWORD, home="/"):
    page.goto("/login")
    english = page.evaluate("document.documentElement.lang") == "en"
    words = ("Email", "Password", "Sign in") if english else ("邮箱", "密码", "登录")
    page.get_by_label(words[0], exact=True).fill(email)
    page.get_by_label(words[1], exact=True).fill(password)
    page.get_by_role("button", name=words[2], exact=True).click()
    page.wait_for_url(re.compile(re.escape(home) + r"(\?.*)?$"))


def both_languages(browsing, page, name):
    """Look at the page in Chinese and in English (and leave it in English)."""
    parts = urlsplit(page.url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "lang"]
    for locale in ("zh-CN", "en"):
        page.goto(urlunsplit(parts._replace(query=urlencode([*query, ("lang", locale)]))))
        browsing.look(page, name)


# ---------------------------------------------------------------- homes and refusals


def test_each_role_starts_at_its_home_and_is_refused_the_others(browsing, official):
    homes = {
        "advisor": (ADVISOR, STAFF_PASSWORD, "/console"),
        "provider": (PROVIDER, STAFF_PASSWORD, "/partner"),
        "admin": (*ADMIN, "/admin"),
        "official": (official, OFFICIAL_PASSWORD, "/district"),
    }
    others = {
        "advisor": ("/partner", "/admin", "/district", "/me"),
        "provider": ("/console", "/admin/staff", "/district"),
        "admin": ("/console", "/partner/intentions", "/me"),
        "official": ("/console", "/partner", "/admin", "/admin/organizations", "/me"),
    }
    for role, (email, password, home) in homes.items():
        page = browsing.page("en", viewport=WIDE)
        staff_sign_in(browsing, page, email, password, home)
        both_languages(browsing, page, f"home-{role}")
        for path in others[role]:
            response = page.goto(f"{path}?lang=en")
            assert response.status == 403, (role, path, response.status)
            expect(
                page.get_by_role("heading", name="This page is not for your account")
            ).to_be_visible()
            page.get_by_role("link", name="Back to the start").click()
            page.wait_for_url(re.compile(re.escape(home)))
        page.goto("/login")  # signed in already: their home
        page.wait_for_url(re.compile(re.escape(home)))
    page = browsing.page("en")
    page.goto("/district")
    assert "/login" in page.url  # not signed in: sign in first
    returnee = browsing.page("en")
    _, _, body = browsing.platform.register(locale="en")
    browsing.sign_in(returnee, body["email"])
    assert returnee.goto("/console").status == 403
    browsing.look(returnee, "forbidden")


# ---------------------------------------------------------------- advisors


def test_an_advisor_answers_the_oldest_consultation_and_the_returnee_reads_it(browsing):
    platform = browsing.platform
    asked = []
    for topic, question in (
        ("funding", "Which papers does the start-up grant need?"),
        ("general", "Where do I park at the station?"),
    ):
        _, headers, body = platform.register(locale="en")
        created = platform.call(
            "POST",
            "consulting",
            "/consultations",
            headers,
            json={"topic": topic, "question": question},
        )
        assert created.status_code == 201, created.text
        asked.append((created.json(), headers, body))
    oldest, headers, body = asked[0]

    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, ADVISOR, home="/console")
    first = page.locator(".cards .card").first
    expect(first).to_contain_text("Which papers does the start-up grant need?")
    expect(first).to_contain_text("First response")
    both_languages(browsing, page, "queue")
    page.get_by_label("Topic").select_option("general")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".cards .card")).to_have_count(1)
    page.goto("/console")
    page.locator(".cards .card").first.get_by_role("link").click()
    page.wait_for_url(f"**/console/consultations/{oldest['id']}")
    if page.get_by_role("button", name="Assign to me").count():
        page.get_by_role("button", name="Assign to me").click()
        expect(page.get_by_text("The consultation is yours.")).to_be_visible()
    browsing.look(page, "console-consultation")
    page.get_by_role("button", name="Send the answer").click()  # empty: the field says so
    expect(page.locator("#body-error")).to_be_visible()
    page.get_by_label("Your message").fill("Bring the business licence and your degree check.")
    page.get_by_role("button", name="Send the answer").click()
    expect(page.get_by_text("Your answer is sent.")).to_be_visible()
    expect(page.get_by_text("Bring the business licence")).to_be_visible()
    page.get_by_role("link", name=body["name"]).click()  # the returnee's page
    expect(page.get_by_role("heading", name=body["name"])).to_be_visible()
    browsing.look(page, "console-returnee")
    page.get_by_role("link", name="Find a returnee").click()
    page.get_by_label("Name, email, phone or company").fill(body["email"].split("@")[0])
    page.get_by_role("button", name="Find", exact=True).click()
    expect(page.get_by_text("1 found")).to_be_visible()
    both_languages(browsing, page, "console-find")
    expect(page.get_by_role("link", name=body["name"])).to_be_visible()
    # From the search no case links the advisor to them: the page asks why, and keeps it.
    page.get_by_role("link", name=body["name"]).click()
    expect(
        page.get_by_role("heading", name="Why do you open this returnee's page?")
    ).to_be_visible()
    both_languages(browsing, page, "console-reason")
    page.get_by_role("button", name="Open the page").click()  # no reason: next to the field
    expect(page.locator("#reason-error")).to_be_visible()
    page.get_by_label("Why you open this page").fill("They called about the rent subsidy")
    page.get_by_role("button", name="Open the page").click()
    expect(page.get_by_role("heading", name=body["name"])).to_be_visible()
    logged = platform.call("GET", "accounts", f"/returnees/{oldest['returnee_id']}/access-log",
                           headers).json()  # fmt: skip
    assert "They called about the rent subsidy" in [e["reason"] for e in logged]
    page.goto("/console/returnees?lang=en")
    page.get_by_label("Name, email, phone or company").fill("x")  # too short: next to the field
    page.get_by_role("button", name="Find", exact=True).click()
    expect(page.locator("#q-error")).to_be_visible()

    returnee = browsing.page("en")
    browsing.sign_in(returnee, body["email"])
    returnee.goto(f"/me/consultations/{oldest['id']}")
    expect(
        returnee.get_by_text("Bring the business licence and your degree check.")
    ).to_be_visible()
    answered = platform.call("GET", "consulting", f"/consultations/{oldest['id']}", headers).json()
    assert answered["status"] == "answered"


def test_an_advisor_publishes_a_slot_and_checks_in_a_registrant_by_code(browsing):
    platform = browsing.platform
    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, ADVISOR, home="/console")

    page.goto("/console/appointments?view=week&day=2030-05-06")
    page.get_by_label("Starts").fill("2030-05-07T10:00")
    page.get_by_label("Ends").fill("2030-05-07T10:30")
    page.get_by_label("Place").fill("Station, room 2")
    page.get_by_label("People at once").fill("2")
    page.get_by_role("button", name="Publish the slot").click()
    expect(page.get_by_text("The time slot is published.")).to_be_visible()
    expect(page.get_by_role("cell", name="Station, room 2")).to_be_visible()
    _, booker, booking = platform.register(locale="en")
    slots = platform.call("GET", "consulting", "/slots", booker).json()
    offered = next(s for s in slots if s["location"] == "Station, room 2")
    booked = platform.call(
        "POST",
        "consulting",
        "/appointments",
        booker,
        json={"slot_id": offered["id"], "topic": "hukou"},
    )
    assert booked.status_code == 201, booked.text
    page.goto("/console/appointments?view=week&day=2030-05-06")
    expect(page.get_by_role("link", name=booking["name"])).to_be_visible()  # who booked
    both_languages(browsing, page, "console-appointments")

    page.goto("/console/activities")
    both_languages(browsing, page, "console-activities")
    page.goto("/console/activities/new?lang=en")
    browsing.look(page, "console-new-activity")
    page.get_by_label("Kind").select_option("exchange")
    page.get_by_label("Title in Chinese").fill("海归创业者交流会")
    page.get_by_label("Title in English").fill("Founders' evening")
    page.get_by_label("Summary in Chinese").fill("与园区和银行面对面")
    page.get_by_label("Summary in English").fill("Meet the parks and the banks")
    page.get_by_label("Starts").fill("2030-05-06T18:00")
    page.get_by_label("Ends").fill("2030-05-06T20:00")
    page.get_by_label("Venue").fill("Linkong park hall")
    page.get_by_label("Address").fill("Changning, Shanghai")
    page.get_by_label("Seats").fill("20")
    page.get_by_role("button", name="Publish the activity").click()
    expect(page.get_by_text("The activity is published.")).to_be_visible()
    activity_id = page.url.split("?")[0].rsplit("/", 1)[-1]

    _, headers, body = platform.register(locale="en")
    signed_up = platform.call(
        "POST", "activities", f"/activities/{activity_id}/registrations", headers, json={}
    )
    assert signed_up.status_code == 201, signed_up.text
    code = signed_up.json()["check_in_code"]
    page.reload()
    expect(page.get_by_role("cell", name=body["name"])).to_be_visible()
    both_languages(browsing, page, "console-activity")

    assert "camera=()" in page.request.get(page.url).headers["permissions-policy"]
    page.get_by_role("link", name="Check-in at the door").click()
    page.wait_for_url("**/check-in")
    door = page.request.get(page.url)  # the one page that may use the camera, for its scanner
    assert door.headers["permissions-policy"].startswith("camera=(self)")
    browsing.look(page, "console-check-in")
    page.get_by_label("Check-in code").fill("NOT-A-CODE")
    page.get_by_role("button", name="Check in").click()
    expect(page.locator("#code-error")).to_be_visible()
    page.get_by_label("Check-in code").fill(code.lower())  # case does not matter
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_text(f"Welcome, {body['name']}: checked in.")).to_be_visible()
    report = platform.call(
        "GET",
        "activities",
        f"/activities/{activity_id}/report",
        platform.token(ADVISOR, STAFF_PASSWORD),
    ).json()
    assert report["attended"] == 1


# ---------------------------------------------------------------- providers


def test_a_provider_accepts_an_intention_and_the_returnee_sees_it(browsing):
    platform = browsing.platform
    _, headers, body = platform.register(locale="en")

    def matched():
        found = platform.call("GET", "matching", f"/returnees/{_sub(headers)}/matches", headers)
        return (
            next(
                (m for m in found.json() if m["organization_name"] == "Linkong Economic Park"), None
            )
            if found.status_code == 200
            else None
        )

    match = wait_until(matched, 30, 0.3, "a match with the park")
    sent = platform.call(
        "POST",
        "matching",
        "/intentions",
        headers,
        json={"resource_id": match["resource_id"], "message": "A lab bench next spring?"},
    )
    assert sent.status_code == 201, sent.text

    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, PROVIDER, home="/partner")
    both_languages(browsing, page, "partner-resources")
    page.goto("/partner/intentions")
    card = page.locator(".card", has_text="A lab bench next spring?")
    both_languages(browsing, page, "partner-intentions")
    card.get_by_label("Your message to the returnee").fill("Welcome: visit us on Monday.")
    card.get_by_role("button", name="Accept").click()
    expect(page.get_by_text("Accepted: the returnee is told.")).to_be_visible()
    page.goto("/partner/figures")
    both_languages(browsing, page, "partner-figures")

    returnee = browsing.page("en")
    browsing.sign_in(returnee, body["email"])
    returnee.goto("/me/intentions")
    expect(returnee.get_by_text("Accepted", exact=True)).to_be_visible()
    expect(returnee.get_by_text("Welcome: visit us on Monday.")).to_be_visible()


def _sub(headers) -> str:
    import jwt

    return jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})["sub"]


# ---------------------------------------------------------------- officials and admins


def test_the_officials_dashboard_shows_what_insights_counts_and_nobody(browsing, official):
    platform = browsing.platform
    _, _, body = platform.register(locale="en")  # one more registration to count
    headers = platform.token(official, OFFICIAL_PASSWORD)

    def counted():
        found = platform.call("GET", "insights", "/statistics/overview", headers).json()
        return found if found["registrations"] >= 1 else None

    overview = wait_until(counted, 30, 0.3, "insights counting the registrations")
    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, official, OFFICIAL_PASSWORD, home="/district")
    overview = platform.call("GET", "insights", "/statistics/overview", headers).json()
    page.reload()
    assert page.locator("#figure-registrations").inner_text() == str(overview["registrations"])
    assert page.locator("#figure-active").inner_text() == str(overview["returnees_active"])
    industry_table = page.locator("section", has=page.locator("#industry-title")).locator("tbody")
    for industry, count in overview["by_industry"].items():
        row = industry_table.locator("tr", has_text=labels.label("industries", industry, "en"))
        expect(row.locator("td")).to_have_text(str(count))
    page.wait_for_function("document.querySelectorAll('[data-drawn]').length === 7")
    main = page.locator("main").inner_text()
    assert body["email"] not in main and body["name"] not in main  # no personal data
    both_languages(browsing, page, "district")

    page.goto("/district?from=2026-02-01&to=2026-01-01")
    expect(page.locator("#from-error")).to_be_visible()
    page.goto("/district?preset=year")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as a spreadsheet (XLSX)").click()
    workbook = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    assert len(workbook.sheetnames) >= 5


def test_an_admin_registers_an_organization_and_invites_staff(browsing):
    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, *ADMIN, home="/admin")
    page.goto("/admin/organizations")
    both_languages(browsing, page, "admin-organizations")
    name = f"Hongqiao Angels {uuid.uuid4().hex[:4]}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Kind").select_option(index=1)
    page.get_by_role("button", name="Register the organization").click()
    expect(page.get_by_text("The organization is registered.")).to_be_visible()
    expect(page.get_by_role("cell", name=name)).to_be_visible()

    page.goto("/admin/staff")
    both_languages(browsing, page, "admin-staff")
    email = f"advisor.{uuid.uuid4().hex[:8]}@station.example"
    page.get_by_label("Name", exact=True).fill("Sun Li")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Role").select_option("advisor")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_text("The invitation is sent")).to_be_visible()
    invited = re.search(r"account ([\w-]{36})", page.locator(".notice").inner_text()).group(1)
    page.get_by_label("Account id").fill(invited)
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_text("The account is disabled")).to_be_visible()


def test_an_admin_previews_and_publishes_a_new_version_of_a_policy(browsing):
    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, *ADMIN, home="/admin")
    page.get_by_role("link", name="Policies", exact=True).first.click()
    page.wait_for_url("**/admin/policies")
    both_languages(browsing, page, "admin-policies")
    page.locator("tbody a").first.click()
    page.wait_for_url(re.compile(r"/admin/policies/[\w-]+$"))
    versions = page.locator("tbody tr").count()
    document = page.get_by_label("The new version (JSON)")
    text = document.input_value()
    document.fill(text[:-3])  # broken JSON: said next to the field
    page.get_by_role("button", name="Preview the impact").click()
    expect(page.locator("#document-error")).to_contain_text("not valid JSON")
    page.get_by_label("The new version (JSON)").fill(text)
    page.get_by_role("button", name="Preview the impact").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    both_languages(browsing, page, "admin-policy")
    page.get_by_role("button", name="Publish the new version").click()
    expect(page.get_by_text("The new version is published")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(versions + 1)


def test_an_admin_reads_and_discards_a_dead_letter(browsing):
    platform = browsing.platform
    admin = platform.admin()
    with Connection(platform.amqp_uri) as connection:  # an event nobody can read
        connection.Producer().publish(
            b"not json at all",
            exchange=Exchange(
                "accounts.events",
                "topic",
                durable=True,
                arguments={"alternate-exchange": "accounts.unrouted"},
            ),  # fmt: skip
            routing_key="organization.registered",
            content_type="application/cloudevents+json",
            message_id=str(uuid.uuid4()),
            retry=True,
        )

    def dead_lettered():
        found = platform.call("GET", "matching", "/dead-letters", admin)
        assert found.status_code == 200, found.text
        return found.json() or None

    [letter] = wait_until(dead_lettered, 30, 0.3, "matching dead-lettering the event")
    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, *ADMIN, home="/admin")
    page.goto("/admin/dead-letters")
    both_languages(browsing, page, "admin-dead-letters")
    page.locator(f"a[href='/admin/dead-letters/matching/{letter['event_id']}']").click()
    expect(page.get_by_text("not json at all")).to_be_visible()
    both_languages(browsing, page, "admin-dead-letter")
    page.get_by_role("button", name="Discard").click()
    expect(page.get_by_text("The dead letter is discarded.")).to_be_visible()
    assert platform.call("GET", "matching", "/dead-letters", admin).json() == []
