"""The access log across the platform (PIPL art. 44-45), every service its own process: an
advisor reads a returnee's data in each service through a case of theirs, an admin with a
reason; each read comes into accounts' `GET /returnees/{id}/access-log`, newest first. Without
a case or a reason, or with another returnee's case, an advisor is refused in every service;
the returnee's own reads are not logged; erasure takes the log and the case links away."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.platform import STAFF_PASSWORD
from tests.support import query, wait_until

ADVISOR = "wang.min@station.example"  # deploy/reference/organizations.yml
CASE, REASON = "X-Access-Case", "X-Access-Reason"


def stating(headers: dict, case: str | None = None, reason: str | None = None) -> dict:
    stated = {**headers}
    if case:
        stated[CASE] = case
    if reason:
        stated[REASON] = reason
    return stated


def access_log(platform, returnee_id, headers) -> list[dict]:
    answered = platform.call("GET", "accounts", f"/returnees/{returnee_id}/access-log", headers)
    assert answered.status_code == 200, answered.text
    return answered.json()


@pytest.fixture(scope="module")
def people(platform):
    """Two returnees, each with a consultation; an advisor; the admin."""
    advisor = platform.token(ADVISOR, STAFF_PASSWORD)
    found = []
    for topic in ("funding", "general"):
        returnee, headers, body = platform.register(locale="en")
        asked = platform.call("POST", "consulting", "/consultations", headers,
                              json={"topic": topic, "question": "Which papers?"})  # fmt: skip
        assert asked.status_code == 201, asked.text
        found.append((returnee["id"], headers, body, f"consultation:{asked.json()['id']}"))
    return found, advisor, platform.admin()


def reads(returnee_id) -> dict[str, tuple[str, str]]:
    """A read of the returnee's data in each service that takes one by returnee: (method, path)."""
    return {
        "accounts": ("GET", f"/returnees/{returnee_id}"),
        "consulting": ("GET", f"/returnees/{returnee_id}/eligibility"),
        "matching": ("GET", f"/returnees/{returnee_id}/matches"),
    }


def publish_activity(platform, advisor, kind: str, starts, hours: int, title, summary):
    """The advisor publishes an activity of 10 places at the station, starting at `starts`."""
    return platform.call("POST", "activities", "/activities", advisor, json={
        "kind": kind, "title": title, "summary": summary,
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=hours)).isoformat(),
        "venue": {"name": "Changning Returnee Service Station", "address": "Changning"},
        "capacity": 10, "organizer_ids": [], "audience": {},
    })  # fmt: skip


def test_an_advisor_without_a_case_or_reason_or_with_another_returnees_case_is_refused(
    platform, people
):
    (mine, theirs), advisor, _ = people
    returnee_id, _, _, _ = mine
    for service, (method, path) in reads(returnee_id).items():
        refused = platform.call(method, service, path, {**advisor, "Accept-Language": "zh-CN"})
        assert refused.status_code == 403, (service, refused.text)
        assert refused.json()["error"] == "case_or_reason_required", service
        assert "理由" in refused.json()["message"]
        # Another returnee's consultation links the advisor to that returnee only: once the
        # service knows it (consulting at once, accounts and matching from its event), it opens
        # their data and not this returnee's.
        their_path = path.replace(returnee_id, theirs[0])
        wait_until(
            lambda m=method, s=service, p=their_path: platform.call(
                m, s, p, stating(advisor, theirs[3])
            ).status_code
            == 200,
            30, 0.1, f"{service} knows the consultation",
        )  # fmt: skip
        other = platform.call(method, service, path, stating(advisor, theirs[3]))
        assert other.status_code == 403 and other.json()["error"] == "case_not_linked", service
        bad = platform.call(method, service, path, stating(advisor, "consultation:nope"))
        assert bad.status_code == 422 and CASE in bad.json()["fields"], service


def test_every_services_staff_reads_come_into_the_access_log_newest_first(platform, people):
    (mine, _), advisor, admin = people
    returnee_id, headers, body, case = mine
    started = datetime.now(UTC)
    through = stating(advisor, case)
    for service, (method, path) in reads(returnee_id).items():
        wait_until(  # accounts and matching learn the case from consulting's event
            lambda m=method, s=service, p=path: platform.call(m, s, p, through).status_code
            == 200,
            30, 0.1, f"{service} reads through the case",
        )  # fmt: skip
    consultation_id = case.split(":", 1)[1]
    seen = platform.call("GET", "consulting", f"/consultations/{consultation_id}", advisor)
    assert seen.status_code == 200, seen.text
    # An activity the advisor publishes, the returnee registers for, the advisor lists.
    starts = datetime.now(UTC) + timedelta(days=3)
    published = publish_activity(
        platform, advisor, "briefing", starts, hours=1,
        title={"zh-CN": "政策说明会", "en": "Policy briefing"},
        summary={"zh-CN": "创业补贴", "en": "Start-up grants"},
    )  # fmt: skip
    assert published.status_code == 201, published.text
    path = f"/activities/{published.json()['id']}/registrations"
    wait_until(  # activities knows the returnee once it took in their registration
        lambda: platform.call("POST", "activities", path, headers).status_code == 201,
        30, 0.1, "the returnee registers",
    )  # fmt: skip
    listed = platform.call("GET", "activities", path, advisor)
    assert listed.status_code == 200, listed.text
    reason = "The returnee asked why no reminder came"
    notifications = platform.call(
        "GET", "notify", f"/notifications?recipient_id={returnee_id}", stating(admin, None, reason)
    )
    assert notifications.status_code == 200, notifications.text
    found = platform.call("GET", "accounts", "/search/returnees", advisor,
                          params={"q": body["email"].split("@")[0]})  # fmt: skip
    assert [r["id"] for r in found.json()] == [returnee_id]
    platform.call("GET", "consulting", f"/returnees/{returnee_id}/eligibility", headers)  # own

    wanted = {
        ("accounts", "profile"), ("accounts", "search"), ("consulting", "eligibility"),
        ("consulting", "consultation"), ("matching", "matches"),
        ("activities", "registrations"), ("notify", "notifications"),
    }  # fmt: skip
    log = wait_until(
        lambda: (entries := access_log(platform, returnee_id, headers))
        and wanted <= {(e["service"], e["what"]) for e in entries} and entries,
        30, 0.1, "every service's reads in the access log",
    )  # fmt: skip
    times = [datetime.fromisoformat(e["read_at"]) for e in log]
    assert times == sorted(times, reverse=True) and min(times) >= started - timedelta(seconds=5)
    entries = {(e["service"], e["what"]): e for e in log}
    assert entries[("consulting", "eligibility")]["case_ref"] == case
    assert entries[("consulting", "consultation")]["case_ref"] == case
    assert entries[("activities", "registrations")]["case_ref"].startswith("registration:")
    assert entries[("notify", "notifications")]["reason"] == reason
    assert entries[("notify", "notifications")]["reader_role"] == "admin"
    assert {e["reader_role"] for e in log} <= {"advisor", "admin"}  # never the returnee's own
    assert all(body["email"].split("@")[0] not in str(e) for e in log)  # nor the search query


def test_erasure_takes_the_access_log_and_the_case_links_away(platform, people):
    (_, theirs), advisor, _ = people
    returnee_id, headers, _, case = theirs
    wait_until(
        lambda: platform.call("GET", "accounts", f"/returnees/{returnee_id}",
                              stating(advisor, case)).status_code == 200,
        30, 0.1, "accounts knows the consultation",
    )  # fmt: skip
    assert access_log(platform, returnee_id, headers)
    erased = platform.call("DELETE", "accounts", f"/returnees/{returnee_id}", headers)
    assert erased.status_code == 204, erased.text
    accounts = platform.database_urls["accounts"]
    for table in ("access_log", "case_links"):
        assert query(accounts, f"SELECT 1 FROM {table} WHERE returnee_id = %s",
                     (returnee_id,)) == [], table  # fmt: skip
    matching = platform.database_urls["matching"]  # its links go with its erasure too
    wait_until(
        lambda: query(matching, "SELECT 1 FROM case_links WHERE returnee_id = %s",
                      (returnee_id,)) == [],
        30, 0.1, "matching forgets the case links",
    )  # fmt: skip


def test_a_check_in_at_the_door_comes_into_the_registrants_access_log(platform, people):
    """The door shows the registrant's name to the staff member scanning the code: the person
    reads that check-in in their access log, by whom, through which registration, and when."""
    (mine, _), advisor, _ = people
    returnee_id, headers, _, _ = mine
    advisor_id = jwt.decode(advisor["Authorization"][7:], options={"verify_signature": False})
    # Registration closes at the start, so the activity starts shortly after the returnee has
    # their seat and the door opens once it has begun, as at the station.
    starts = datetime.now(UTC) + timedelta(seconds=4)
    published = publish_activity(
        platform, advisor, "exchange", starts, hours=2,
        title={"zh-CN": "海归人才交流会", "en": "Returnee exchange session"},
        summary={"zh-CN": "面对面", "en": "Face to face"},
    )  # fmt: skip
    assert published.status_code == 201, published.text
    path = f"/activities/{published.json()['id']}"
    seat = wait_until(  # activities knows the returnee once it took in their registration
        lambda: (r := platform.call("POST", "activities", f"{path}/registrations", headers))
        .status_code == 201 and r,
        30, 0.1, "the returnee registers",
    )  # fmt: skip
    registration = seat.json()
    assert registration["status"] == "confirmed", registration
    wait_until(lambda: datetime.now(UTC) > starts, 20, 0.2, "the session begins")

    scanned_from = datetime.now(UTC)
    door = platform.call("POST", "activities", f"{path}/check-ins", advisor,
                         json={"code": registration["check_in_code"]})  # fmt: skip
    scanned_until = datetime.now(UTC)
    assert door.status_code == 200, door.text
    assert door.json()["already_checked_in"] is False and door.json()["name"]
    assert door.json()["registration_id"] == registration["id"]

    def checked_in() -> list[dict]:
        return [e for e in access_log(platform, returnee_id, headers)
                if (e["service"], e["what"]) == ("activities", "check-in")]  # fmt: skip

    (entry,) = wait_until(checked_in, 30, 0.1, "the check-in in the access log")
    assert entry["reader_id"] == advisor_id["sub"] and entry["reader_role"] == "advisor"
    assert entry["case_ref"] == f"registration:{registration['id']}" and entry["reason"] is None
    read_at = datetime.fromisoformat(entry["read_at"])
    assert scanned_from - timedelta(seconds=1) <= read_at <= scanned_until + timedelta(seconds=1)
    assert read_at >= starts  # at the door of a session that had begun
    assert door.json()["name"] not in str(entry)  # the log names the read, never the data read
