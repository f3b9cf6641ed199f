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
from openpyxl import Workbook, load_workbook
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
SMALL_PHONE = {"width": 375, "height": 812}  # and sometimes have only their phone


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


def on_a_phone_too(browsing, page, name):
    """Both languages at a desk, then both on a small phone (`NAME-phone`), back to the desk."""
    both_languages(browsing, page, name)
    page.set_viewport_size(SMALL_PHONE)
    both_languages(browsing, page, f"{name}-phone")
    page.set_viewport_size(WIDE)


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
    # Who booked: accounts lets the advisor read the name through the appointment once it has
    # the appointment.booked event (`chassis.access`); until then the page says "The returnee".
    who = page.get_by_role("link", name=booking["name"])
    browsing.reload_until(page, lambda p: who.count() > 0, message="the booker's name")
    both_languages(browsing, page, "console-appointments")

    page.goto("/console/activities")
    both_languages(browsing, page, "console-activities")
    page.goto("/console/activities/new?lang=en")
    browsing.look(page, "console-new-activity")
    page.get_by_label("Kind", exact=True).select_option("exchange")
    page.get_by_label("Title in Chinese").fill("海归创业者交流会")
    page.get_by_label("Title in English").fill("Founders' evening")
    page.get_by_label("Summary in Chinese").fill("与园区和银行面对面")
    page.get_by_label("Summary in English").fill("Meet the parks and the banks")
    page.get_by_label("Starts", exact=True).fill("2030-05-06T18:00")
    page.get_by_label("Ends", exact=True).fill("2030-05-06T20:00")
    page.get_by_label("Venue", exact=True).fill("Linkong park hall")
    page.get_by_label("Address", exact=True).fill("Changning, Shanghai")
    page.get_by_label("Seats", exact=True).fill("20")
    page.get_by_label("Linkong Economic Park", exact=True).check()
    page.get_by_role("button", name="Publish the activity").click()
    expect(page.get_by_text("The activity is published.")).to_be_visible()
    activity_id = page.url.split("?")[0].rsplit("/", 1)[-1]

    _, headers, body = platform.register(locale="en")
    signed_up = platform.call(
        "POST", "activities", f"/activities/{activity_id}/registrations", headers, json={}
    )
    assert signed_up.status_code == 201, signed_up.text
    code = signed_up.json()["check_in_code"]
    # The registrant's name: activities keeps it from returnee.registered, a moment after.
    registrant = page.get_by_role("cell", name=body["name"])
    browsing.reload_until(page, lambda p: registrant.count() > 0, message="the registrant's name")
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

    # An intention met there, recorded for the returnee who came (matching learns who came
    # from activities' event: until then it answers that they did not attend).
    page.goto(f"/console/activities/{activity_id}?lang=en")
    on_a_phone_too(browsing, page, "console-activity-intention")

    def recorded():
        page.goto(f"/console/activities/{activity_id}?lang=en")
        page.get_by_label("The returnee (checked in)").select_option(label=body["name"])
        page.get_by_label("With the organization").select_option(label="Linkong Economic Park")
        page.get_by_label("What they want to do together").fill("A pilot in the park's lab")
        page.get_by_role("button", name="Record the intention").click()
        done = page.get_by_text("The intention is recorded")
        expect(done.or_(page.locator("#error-summary"))).to_be_visible()
        return done.count() > 0

    wait_until(recorded, 30, 0.5, "matching taking the intention met at the activity")
    advisor = platform.token(ADVISOR, STAFF_PASSWORD)
    intentions = platform.call("GET", "matching", "/intentions", advisor).json()
    [met] = [i for i in intentions if i.get("activity_id") == activity_id]
    assert (met["status"], met["message"]) == ("expressed", "A pilot in the park's lab")


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

    wait_until(counted, 30, 0.3, "insights counting the registrations")
    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, official, OFFICIAL_PASSWORD, home="/district")

    def steady():
        """The figures insights gives, unchanged while the page was drawn (other tests' events
        may still be counted)."""
        before = platform.call("GET", "insights", "/statistics/overview", headers).json()
        page.reload()
        after = platform.call("GET", "insights", "/statistics/overview", headers).json()
        return after if after == before else None

    overview = wait_until(steady, 30, 0.3, "insights' figures unchanged while the page loads")
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
    row = page.get_by_role("row").filter(has_text=email)
    expect(row).to_contain_text("Invited")
    expect(page.get_by_role("row").filter(has_text=ADMIN[0])).to_contain_text("Active")
    on_a_phone_too(browsing, page, "admin-staff-list")
    row.get_by_role("button", name="Disable").click()
    expect(page.get_by_text("The account is disabled")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=email)).to_contain_text("Disabled")
    listed = browsing.platform.call("GET", "accounts", "/staff", browsing.platform.admin()).json()
    assert [m["state"] for m in listed if m["email"] == email] == ["disabled"]


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


def test_an_admin_imports_a_small_xlsx_with_one_bad_row_and_sees_its_error(browsing, tmp_path):
    platform = browsing.platform
    suffix = uuid.uuid4().hex[:6]
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["name", "kind", "district", "contact_email"])
    sheet.append(["机构名称", "类型", "区", "联系邮箱"])  # the template's second header row
    sheet.append([f"Gubei incubator {suffix}", "incubator", "Changning", "hi@gubei.example"])
    sheet.append([f"Castle {suffix}", "castle", "Changning", None])  # row 4: no such kind
    sheet.append([f"Xianxia bank {suffix}", "bank", None, None])
    path = tmp_path / "organizations.xlsx"
    workbook.save(path)

    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, *ADMIN, home="/admin")
    page.get_by_role("link", name="Imports", exact=True).first.click()
    page.wait_for_url("**/admin/imports")
    on_a_phone_too(browsing, page, "admin-imports")
    with page.expect_download() as template:  # the same template station writes
        page.get_by_role("link", name="Template for Organizations (XLSX)").click()
    sheet = load_workbook(io.BytesIO(template.value.path().read_bytes())).worksheets[0]
    headers = [c.value for c in sheet[1]]
    assert headers[:2] == ["name", "kind"]

    unknown = b"name,kind,shoe_size\nA,bank,42\n"  # a column nobody takes: nothing is sent
    page.get_by_label("Organizations").check()
    page.get_by_label("The file (.xlsx or .csv)").set_input_files(
        {"name": "odd.csv", "mimeType": "text/csv", "buffer": unknown}
    )
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#file-error")).to_contain_text("shoe_size")

    page.get_by_label("Organizations").check()
    page.get_by_label("The file (.xlsx or .csv)").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/imports/[\w-]{36}$"))
    job_url = page.url
    expect(page.get_by_text("Finished.")).to_be_visible(timeout=30_000)  # htmx polls
    figures = page.locator(".figures")
    expect(figures.locator("div", has_text="Created")).to_contain_text("2")
    expect(figures.locator("div", has_text="Invalid")).to_contain_text("1")
    bad = page.get_by_role("row").filter(has_text="Must be one of")
    expect(bad.locator("td").first).to_have_text("4")  # the row number the spreadsheet shows
    expect(bad.locator("td").nth(1)).to_have_text("kind")
    on_a_phone_too(browsing, page, "admin-import")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the row errors (CSV)").click()
    lines = download.value.path().read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "row,column,field,message_zh,message_en"
    assert [line.split(",")[:3] for line in lines[1:]] == [["4", "kind", "kind"]]
    names = {o["name"] for o in platform.call("GET", "accounts", "/organizations", {}).json()}
    assert {f"Gubei incubator {suffix}", f"Xianxia bank {suffix}"} <= names
    assert f"Castle {suffix}" not in names

    plain = browsing.page("en", javascript=False, viewport=WIDE)  # a page to refresh
    staff_sign_in(browsing, plain, *ADMIN, home="/admin")
    plain.goto(job_url)
    expect(plain.get_by_text("Finished.")).to_be_visible()
    expect(plain.get_by_role("row").filter(has_text="Must be one of")).to_be_visible()


def test_a_provider_changes_a_resources_places_and_validity(browsing):
    platform = browsing.platform
    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, PROVIDER, home="/partner")
    card = page.locator(".card").filter(has=page.get_by_role("link", name=re.compile("Change")))
    card = card.first
    title = card.locator("h2").inner_text()
    card.get_by_role("link", name=re.compile("Change places or validity")).click()
    page.wait_for_url(re.compile(r"/partner/resources/[\w-]+$"))
    resource_id = page.url.rsplit("/", 1)[-1]
    on_a_phone_too(browsing, page, "partner-resource")
    before = int(page.get_by_label("Places").input_value())
    page.get_by_label("Valid until").fill("2020-01-01")
    page.get_by_role("button", name="Save the changes").click()
    expect(page.locator("#valid_until-error")).to_contain_text("Must not be in the past.")
    page.get_by_label("Places").fill(str(before + 5))
    page.get_by_label("Valid until").fill("2031-12-31")
    page.get_by_role("button", name="Save the changes").click()
    expect(page.get_by_text("The resource is changed")).to_be_visible()
    expect(page.locator(".card").filter(has_text=title).first).to_contain_text(
        f"of {before + 5} places left"
    )
    found = platform.call("GET", "matching", f"/resources/{resource_id}", {}).json()
    assert (found["capacity"], found["valid_until"]) == (before + 5, "2031-12-31")
    out_of_range = platform.call(  # a body the document refuses: 400 naming the field
        "PATCH", "matching", f"/resources/{resource_id}", platform.admin(), json={"capacity": 0}
    )
    assert out_of_range.status_code == 400 and "capacity" in out_of_range.json()["fields"]


def test_an_admin_keeps_canned_replies_and_an_advisor_inserts_one(browsing):
    platform = browsing.platform
    suffix = uuid.uuid4().hex[:4]
    title = f"Start-up grant papers {suffix}"
    text = "Please bring your business licence and the degree verification."
    admin = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, admin, *ADMIN, home="/admin")
    admin.goto("/admin/canned-replies")
    admin.get_by_label("Topic").select_option("funding")
    admin.get_by_label("Title (Chinese)").fill("创业资助材料")
    admin.get_by_label("Text (Chinese)").fill("请带上营业执照和学历认证。")
    admin.get_by_label("Title (English)").fill(title)
    admin.get_by_role("button", name="Save the canned reply").click()  # no English text
    expect(admin.locator("#body_en-error")).to_be_visible()
    admin.get_by_label("Text (English)").fill("Please bring your business licence.")
    admin.get_by_role("button", name="Save the canned reply").click()
    expect(admin.get_by_text("The canned reply is saved")).to_be_visible()
    on_a_phone_too(browsing, admin, "admin-canned-replies")
    admin.get_by_role("link", name=title).click()
    admin.wait_for_url(re.compile(r"/admin/canned-replies/[\w-]+$"))
    on_a_phone_too(browsing, admin, "admin-canned-reply")
    admin.get_by_label("Text (English)").fill(text)
    admin.get_by_role("button", name="Save the canned reply").click()
    expect(admin.get_by_text("The canned reply is saved")).to_be_visible()
    admin.get_by_label("Topic").select_option("hukou")  # a second one, deleted again
    admin.get_by_label("Title (Chinese)").fill("落户")
    admin.get_by_label("Text (Chinese)").fill("请预约。")
    admin.get_by_label("Title (English)").fill(f"Hukou {suffix}")
    admin.get_by_label("Text (English)").fill("Please book a slot.")
    admin.get_by_role("button", name="Save the canned reply").click()
    admin.get_by_role("link", name=f"Hukou {suffix}").click()
    admin.get_by_role("button", name="Delete the canned reply").click()
    expect(admin.get_by_text("The canned reply is deleted.")).to_be_visible()
    expect(admin.get_by_role("link", name=f"Hukou {suffix}")).to_have_count(0)

    _, headers, _ = platform.register(locale="en")
    asked = platform.call(
        "POST", "consulting", "/consultations", headers,
        json={"topic": "funding", "question": "What do I bring for the grant?"},
    )  # fmt: skip
    assert asked.status_code == 201, asked.text
    consultation_id = asked.json()["id"]
    page = browsing.page("en", viewport=WIDE)
    staff_sign_in(browsing, page, ADVISOR, home="/console")
    page.goto(f"/console/consultations/{consultation_id}")
    page.get_by_text("Canned replies for this topic").click()
    reply = page.locator(".canned li").filter(has_text=title)
    reply.get_by_role("link", name=re.compile("^Insert in English")).click()
    expect(page.get_by_label("Your message")).to_have_value(text)
    on_a_phone_too(browsing, page, "console-canned-reply")
    page.get_by_role("button", name="Send the answer").click()
    expect(page.get_by_text("Your answer is sent.")).to_be_visible()
    thread = platform.call("GET", "consulting", f"/consultations/{consultation_id}", headers)
    assert thread.json()["messages"][-1]["body"] == text
