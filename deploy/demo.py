"""`make demo`: a station's morning, run against the platform `make run` started (development
mode: its demo staff and admin sign in with their published passwords).

Three returnees register (zh-CN and en) and confirm their email addresses with the link of the
welcome email the mail sink caught; the platform assesses their eligibility and matches
resources, with reasons; one expresses interest in a park's office space and the park accepts;
another asks a funding question and an advisor answers; one goes from eligible to awarded (what
is still missing, a consultation about the grant, the checklist, submission, review, approval,
award); an admin previews a new version of the grant before publishing it; the funnel per
policy as the events count it; then each one's notifications, the emails the mail sink caught,
the day's figures as a district official reads them. Last, an exchange session like the
one the platform was founded at: registrations (one on the waitlist, promoted), the check-in at
the door, an agreement signed on site, a cooperation intention met there and accepted, the
closing report, and the session in the district's figures.
"""

import itertools
import json
import re
import sys
import time
import unicodedata
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import requests
import yaml
from kombu import Exchange, Queue, binding

from chassis.broker import connect
from chassis.clock import SHANGHAI
from chassis.settings import PORTS, setting
from deploy.local import DEMO_ADMIN, ROOT

REFERENCE = yaml.safe_load((ROOT / "deploy" / "reference" / "organizations.yml").read_text())
PASSWORD = "Returnee-demo-2026"
SPINNER = itertools.cycle("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


def url(service: str, path: str) -> str:
    return f"http://{setting(service, 'HTTP_HOST')}:{PORTS[service]}{path}"


def call(method, service, path, token=None, locale="en", **kwargs) -> requests.Response:
    headers = {"Accept-Language": locale}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, url(service, path), headers=headers, timeout=30, **kwargs)


def sign_in(email: str, password: str) -> str:
    response = call("POST", "accounts", "/auth/token", json={"email": email, "password": password})
    response.raise_for_status()
    return response.json()["access_token"]


def wait(what: str, check, timeout: float = 60.0):
    """Poll `check` with a progress line until it returns something truthy."""
    started = time.monotonic()
    while True:
        value = check()
        elapsed = time.monotonic() - started
        if value:
            print(f"\r  ✓ {what} ({elapsed:.1f} s)" + " " * 20, flush=True)
            return value
        if elapsed > timeout:
            print(f"\r  ✗ {what}: nothing after {timeout:.0f} s", flush=True)
            raise SystemExit(1)
        print(f"\r  {next(SPINNER)} {what} … {elapsed:.1f} s", end="", flush=True)
        time.sleep(0.2)


def heading(text: str) -> None:
    print(f"\n\033[1m{text}\033[0m")


PEOPLE = [
    {
        "name": "李伟",
        "locale": "zh-CN",
        "industry": "biotech",
        "startup_stage": "registered",
        "needs": ["office_space", "financing", "policy_advice"],
    },
    {
        "name": "Emma Zhang",
        "locale": "en",
        "industry": "ai",
        "startup_stage": "idea",
        "needs": ["mentorship", "incubation", "cross_border_finance"],
        "company": None,
    },
    {
        "name": "王芳",
        "locale": "zh-CN",
        "industry": "fintech",
        "startup_stage": "growth",
        "needs": ["legal", "partners", "financing"],
    },
]


def registration(person: dict) -> dict:
    from contracts.examples import EXAMPLES

    body = {k: v for k, v in EXAMPLES[("returnee.registered", 1)].data.items()}
    body.pop("returnee_id")
    body.update(person)
    body["email"] = f"demo.{uuid.uuid4().hex[:8]}@example.com"
    body["password"] = PASSWORD
    return body


# The funnel per policy: newly eligible → consulted → applied → approved → awarded, each stage
# a distinct returnee, counted from consulting's events alone (as a statistics system would).
FUNNEL = ("newly_eligible", "consulted", "applied", "approved", "awarded")
FUNNEL_EVENTS = (
    "eligibility.assessed",
    "consultation.requested",
    "application.submitted",
    "application.approved",
    "application.awarded",
)
_STAGE_OF = {
    "application.submitted": "applied",
    "application.approved": "approved",
    "application.awarded": "awarded",
}


def funnel(events: list[dict]) -> dict[str, dict]:
    """{policy code: {stage: returnees, "awarded_cny": total}} from CloudEvents bodies in any
    order. A consultation names its policy by id: the code comes from the other events."""
    codes, asked = {}, []
    reached: dict[str, dict[str, set]] = defaultdict(lambda: {s: set() for s in FUNNEL})
    awards: dict[str, tuple[str, int]] = {}  # application → (code, amount): once each
    for event in events:
        data, type_ = event["data"], event["type"]
        if type_ == "eligibility.assessed":
            codes.update({p["policy_id"]: p["code"] for p in data["eligible"]})
            for code in data["newly_eligible"]:
                reached[code]["newly_eligible"].add(data["returnee_id"])
        elif type_ == "consultation.requested" and data.get("policy_id"):
            asked.append((data["policy_id"], data["returnee_id"]))
        elif type_ in _STAGE_OF:
            codes[data["policy_id"]] = data["code"]
            reached[data["code"]][_STAGE_OF[type_]].add(data["returnee_id"])
            if type_ == "application.awarded":
                awards[data["application_id"]] = (data["code"], data["amount_cny"])
    for policy_id, returnee_id in asked:
        if policy_id in codes:
            reached[codes[policy_id]]["consulted"].add(returnee_id)
    awarded: dict[str, int] = defaultdict(int)
    for code, amount in awards.values():
        awarded[code] += amount
    return {
        code: {**{s: len(stages[s]) for s in FUNNEL}, "awarded_cny": awarded[code]}
        for code, stages in sorted(reached.items())
    }


def listen(types: tuple[str, ...]):
    """A queue of consulting's events of `types`, for this demo only (gone when it ends)."""
    connection = connect(setting("consulting", "AMQP_URI"))
    exchange = Exchange("consulting.events", type="topic", passive=True)
    queue = Queue(
        f"demo.funnel.{uuid.uuid4().hex[:8]}",
        bindings=[binding(exchange, routing_key=t) for t in types],
        exclusive=True,
        auto_delete=True,
    )(connection.channel())
    queue.declare()
    return connection, queue


def drained(queue) -> list[dict]:
    events = []
    while (message := queue.get(no_ack=True)) is not None:
        events.append(json.loads(message.body))
    return events


def main() -> int:
    for service in PORTS:
        try:
            call("GET", service, "/health/ready").raise_for_status()
        except requests.RequestException:
            print(f"{service} is not ready at {url(service, '')}: start the platform with make run")
            return 1
    admin = sign_in(
        setting("accounts", "ADMIN_EMAIL") or DEMO_ADMIN["ADMIN_EMAIL"],
        setting("accounts", "ADMIN_PASSWORD") or DEMO_ADMIN["ADMIN_PASSWORD"],
    )
    connection, events = listen(FUNNEL_EVENTS)

    official = district_official(admin)
    before = _ok(call("GET", "insights", "/statistics/overview", official)) or {}

    heading("1. Three returnees register")
    returnees = []
    for person in PEOPLE:
        body = registration(person)
        response = call("POST", "accounts", "/returnees", json=body, locale=person["locale"])
        response.raise_for_status()
        returnee = response.json()
        returnee["token"] = sign_in(body["email"], PASSWORD)
        returnees.append(returnee)
        print(
            f"  {returnee['name']} <{returnee['email']}> ({returnee['locale']}): "
            f"{returnee['industry']}, {returnee['startup_stage']}, needs "
            f"{', '.join(returnee['needs'])}"
        )

    heading("1b. Each confirms their address with the link of their welcome email")
    if local_mails() is None:
        print("  (no local mail sink: the addresses stay unconfirmed, and get no other email)")
    for r in returnees if local_mails() is not None else []:
        token = wait(f"{r['name']}: the welcome email", lambda r=r: confirmation_token(r["email"]))
        call("POST", "accounts", "/auth/verify-email", json={"token": token}).raise_for_status()

    heading("2. Eligibility, with the reasons (each in the returnee's language)")
    for r in returnees:
        assessments = wait(
            f"{r['name']}: eligibility assessed",
            lambda r=r: _ok(
                call(
                    "GET",
                    "consulting",
                    f"/returnees/{r['id']}/eligibility",
                    r["token"],
                    r["locale"],
                )
            ),
        )
        eligible = [a for a in assessments if a["eligible"]]
        print(f"  {r['name']}: eligible for {len(eligible)} of {len(assessments)} programmes")
        for a in eligible[:3]:
            tier = f" — tier {a['tier']}" if a.get("tier") else ""
            print(f"    ✔ {a['title']}{tier}")
            for reason in a["reasons"][:3]:
                print(f"        · {reason['label']}: {reason['detail']}")
        for a in [a for a in assessments if not a["eligible"]][:1]:
            failed = next((x for x in a["reasons"] if x["passed"] is False), None)
            if failed:
                print(f"    ✘ {a['title']}: {failed['label']} — {failed['detail']}")

    heading("3. Matched resources, best first, with the reasons")
    for r in returnees:
        matches = wait(
            f"{r['name']}: matches proposed",
            lambda r=r: _ok(
                call("GET", "matching", f"/returnees/{r['id']}/matches", r["token"], r["locale"])
            ),
        )
        r["matches"] = matches
        for m in matches[:3]:
            reasons = "; ".join(x["detail"] for x in m["reasons"][:3])
            print(f"    {m['score']:.2f}  {m['title']} ({m['organization_name']}) — {reasons}")

    heading("4. A cooperation intention, accepted by the provider")
    li = returnees[0]
    match = li["matches"][0]
    organization = next(
        o for o in REFERENCE["organizations"] if o["id"] == match["organization_id"]
    )
    intention = call(
        "POST",
        "matching",
        "/intentions",
        li["token"],
        json={"resource_id": match["resource_id"], "message": "希望下周参观园区"},
    )
    intention.raise_for_status()
    provider = sign_in(organization["provider"]["email"], REFERENCE["demo_password"])
    intention_id = intention.json()["intention_id"]
    accepted = call("POST", "matching", f"/intentions/{intention_id}/accept", provider, json={})
    accepted.raise_for_status()
    print(
        f"  {li['name']} → {match['title']}: {accepted.json()['status']} by {organization['name']}"
    )
    so_far = _ok(call("GET", "matching", "/statistics/intentions", admin))
    print(f"  cooperation intentions accepted so far: {so_far['accepted']}")

    heading("5. A consultation, answered by the assigned advisor")
    emma = returnees[1]
    asked = call(
        "POST",
        "consulting",
        "/consultations",
        emma["token"],
        "en",
        json={"topic": "funding", "question": "Which start-up grants fit an AI idea?"},
    )
    asked.raise_for_status()
    ticket = asked.json()
    advisor = next(
        token
        for token in (
            sign_in(a["email"], REFERENCE["demo_password"]) for a in REFERENCE["advisors"]
        )
        if _subject(token) == ticket["advisor_id"]
    )
    call(
        "POST",
        "consulting",
        f"/consultations/{ticket['id']}/messages",
        advisor,
        json={"body": "Look at the district overseas-talent programme; come to the station."},
    ).raise_for_status()
    now = _ok(call("GET", "consulting", f"/consultations/{ticket['id']}", emma["token"]))
    print(f"  {emma['name']} asked about {ticket['topic']}; the ticket is now {now['status']}")

    heading("6. From eligible to awarded")
    awarded_to(li, emma, admin)

    heading("7. Before publishing: the impact of a new version of the grant")
    preview_grant(admin)

    heading("8. The funnel per policy, counted from the events")
    time.sleep(1.5)  # the outbox relay publishes within a second
    for code, stages in funnel(drained(events)).items():
        if stages["consulted"] or stages["applied"]:
            counts = " → ".join(f"{stage} {stages[stage]}" for stage in FUNNEL)
            print(f"  {code}: {counts}; awarded {stages['awarded_cny']:,} CNY")
    connection.release()

    heading("9. What each returnee was told")
    expected = {li["id"]: "application_update", emma["id"]: "consultation_update"}
    for r in returnees:
        template = expected.get(r["id"], "welcome")

        def delivered(r=r, template=template):
            inbox = _ok(call("GET", "notify", "/notifications", r["token"],
                             params={"recipient_id": r["id"]})) or []  # fmt: skip
            sent = [n for n in inbox if n["status"] == "sent"]
            return sent if any(n["template"] == template for n in sent) else None

        inbox = wait(f"{r['name']}: {template} delivered", delivered, timeout=30)
        print(f"  {r['name']}:")
        for n in sorted(inbox, key=lambda n: n["created_at"]):
            print(f"    [{n['channel']:<6}] {n['template']:<20} {n['subject']}")
    print("  (matches_found emails wait for the digest window, DIGEST_WINDOW_SECONDS)")

    heading("10. Emails caught by the mail sink")
    mails = caught_mails()
    if mails is None:
        print("  (no local mail sink: emails went to the configured SMTP server)")
    else:
        addresses = {r["email"] for r in returnees}
        for mail in [m for m in mails if any(a in m["to"] for a in addresses)]:
            print(f"  to {mail['to']}: {mail['subject']}")

    heading("11. Today's figures, as the district office reads them (insights)")
    figures = wait(
        "the morning counted",
        lambda: counted(official, before, registrations=3, accepted=1, answered=1),
    )
    for line in figures_table(figures):
        print(f"  {line}")

    exchange_session(admin, returnees, official)
    print()
    return 0


def local_mails() -> list[dict] | None:
    """The emails the local sink of `make run` caught, with their text (Mailpit's list has
    none); None without it."""
    try:
        response = requests.get("http://127.0.0.1:8025/api/messages", timeout=5)
        listing = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    return listing if isinstance(listing, list) else None


def confirmation_token(address: str) -> str | None:
    """The token of the verification link in the email to `address`, once it arrived."""
    for mail in local_mails() or []:
        found = re.search(r"/verify-email\?token=([\w-]+)", mail.get("text", ""))
        if address in mail["to"] and found:
            return found.group(1)
    return None


def organization(slug: str) -> dict:
    return next(o for o in REFERENCE["organizations"] if o["slug"] == slug)


FOUNDERS = (  # the founding exchange session's organizers (deploy/reference/activities.yml)
    "changning-overseas-friendship-association",
    "changning-overseas-chinese-affairs-office",
    "beixinjing-subdistrict",
    "wrsa-changning",
)


def exchange_session(admin: str, returnees: list[dict], official: str) -> None:
    """Steps 12-15: an exchange session modelled on the founding one, from publication to report,
    and as the district office counts it."""
    before = _ok(call("GET", "insights", "/statistics/overview", official)) or {}
    heading("12. The station's activities (reference data)")
    listed = _ok(call("GET", "activities", "/activities", locale="zh-CN"))
    for a in (listed or {"items": []})["items"]:
        local = datetime.fromisoformat(a["starts_at"]).astimezone(SHANGHAI)
        print(f"  {local:%Y-%m-%d %H:%M}  {a['title']['zh-CN']} — {a['seats_left']} seats left")

    heading("13. An exchange session like the founding one")
    advisor = sign_in(REFERENCE["advisors"][0]["email"], REFERENCE["demo_password"])
    wrsa, beixinjing = organization("wrsa-changning"), organization("beixinjing-subdistrict")
    starts = datetime.now(UTC) + timedelta(seconds=25)
    published = call(
        "POST", "activities", "/activities", advisor,
        json={
            "kind": "exchange",
            "title": {"zh-CN": "海归人才交流会（演示）", "en": "Returnee exchange session (demo)"},
            "summary": {"zh-CN": "校友会代表与海归交流，现场签约。",
                        "en": "Alumni associations meet returnees; agreements signed on site."},
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "venue": {"name": "长宁区海归创业服务站", "address": "上海市长宁区北新泾街道"},
            "capacity": 3,
            "organizer_ids": [organization(slug)["id"] for slug in FOUNDERS],
        },
    )  # fmt: skip
    published.raise_for_status()
    activity = published.json()
    path = f"/activities/{activity['id']}"
    print(f"  published: {activity['title']['zh-CN']}, {activity['capacity']} seats, organized by")
    for o in activity["organizers"]:
        print(f"    · {o['name']}")

    wrsa_desk = sign_in(wrsa["provider"]["email"], REFERENCE["demo_password"])
    seats = {}
    for who, token in [*((r["name"], r["token"]) for r in returnees), (wrsa["name"], wrsa_desk)]:
        answer = call("POST", "activities", f"{path}/registrations", token)
        answer.raise_for_status()
        seats[who] = {**answer.json(), "token": token}
        place = (
            f" (waitlist place {answer.json()['position']})" if answer.json()["position"] else ""
        )
        print(f"  {who}: {answer.json()['status']}{place}")
    leaving = returnees[2]
    call("DELETE", "activities", f"{path}/registrations/{seats[leaving['name']]['id']}",
         leaving["token"]).raise_for_status()  # fmt: skip
    promoted = _ok(call("GET", "activities", f"{path}/registrations/{seats[wrsa['name']]['id']}",
                        wrsa_desk))  # fmt: skip
    print(f"  {leaving['name']} cancels: {wrsa['name']} is {promoted['status']} from the waitlist")
    seats[wrsa["name"]]["check_in_code"] = promoted["check_in_code"]

    li = returnees[0]

    def confirmation():
        inbox = _ok(call("GET", "notify", "/notifications", li["token"],
                         params={"recipient_id": li["id"]})) or []  # fmt: skip
        return next((n for n in inbox if n["template"] == "registration_confirmed"
                     and n["channel"] == "in_app"), None)  # fmt: skip

    found = wait(f"{li['name']}: confirmation with the check-in code", confirmation, timeout=30)
    print(f"  [{found['channel']}] {found['subject']}")
    for line in found["body"].splitlines():
        print(f"    {line}")

    wait("the session begins", lambda: datetime.now(UTC) > starts, timeout=40)
    heading("14. At the door, on site, and after")
    for who in (li["name"], returnees[1]["name"], wrsa["name"]):
        answer = _ok(call("POST", "activities", f"{path}/check-ins", advisor,
                          json={"code": seats[who]["check_in_code"]}))  # fmt: skip
        print(f"  check-in {seats[who]['check_in_code']}: {answer['name']}")
    again = _ok(call("POST", "activities", f"{path}/check-ins", advisor,
                     json={"code": seats[li["name"]]["check_in_code"]}))  # fmt: skip
    print(f"  scanned again: already checked in = {again['already_checked_in']} (counted once)")
    wrong = call("POST", "activities", f"{path}/check-ins", advisor, json={"code": "WRONG000"})
    print(f"  a wrong code: {wrong.status_code} {wrong.json()['message']}")

    signed = call(
        "POST", "activities", f"{path}/agreements", advisor,
        json={"title": "欧美同学会长宁分会与北新泾街道合作协议",
              "signed_on": datetime.now(UTC).date().isoformat(),
              "parties": [{"organization_id": wrsa["id"]}, {"organization_id": beixinjing["id"]}],
              "summary": "共建海归创业服务站点"},
    )  # fmt: skip
    signed.raise_for_status()
    print(f"  signed on site: {signed.json()['title']}")

    def expressed():  # once matching has learnt of the attendance
        body = {"organization_id": wrsa["id"], "activity_id": activity["id"],
                "message": "会上交流后，希望请分会引荐生物医药领域的导师"}  # fmt: skip
        answer = call("POST", "matching", "/intentions", li["token"], json=body)
        return answer.json() if answer.status_code == 201 else None

    intention = wait(f"{li['name']}: an intention toward {wrsa['name']}", expressed, timeout=30)
    accepted = call("POST", "matching", f"/intentions/{intention['intention_id']}/accept",
                    wrsa_desk, json={"message": "欢迎，我们本周联系您。"})  # fmt: skip
    accepted.raise_for_status()
    print(f"  {wrsa['name']}: intention {accepted.json()['status']}")

    def counted():
        report = _ok(call("GET", "activities", f"{path}/report", advisor))
        return report if report and report["intentions"]["accepted"] else None

    wait("the intention in the activity's records", counted, timeout=30)
    closed = call("POST", "activities", f"{path}/close", advisor,
                  json={"summary": "交流充分，现场签约一项，达成合作意向一项。"})  # fmt: skip
    closed.raise_for_status()
    report = closed.json()
    heading("15. The closing report")
    print(f"  registered {report['registered']}, attended {report['attended']} "
          f"({report['attendance_rate']:.0%}), waitlisted {report['waitlisted']}, "
          f"cancelled {report['cancelled']}")  # fmt: skip
    print(f"  organizations represented: {report['organizations_represented']} "
          f"({', '.join(o['name'] for o in report['organizations'])})")  # fmt: skip
    print(f"  agreements: {report['agreements']} ({'; '.join(report['agreement_titles'])})")
    counts = report["intentions"]
    print(f"  cooperation intentions: {counts['total']} (accepted {counts['accepted']}, "
          f"expressed {counts['expressed']}, declined {counts['declined']})")  # fmt: skip
    statistics = _ok(call("GET", "matching", "/statistics/intentions", admin))
    print(f"  cooperation intentions accepted on the platform: {statistics['accepted']}")

    def session_counted():
        now = _ok(call("GET", "insights", "/statistics/overview", official))
        held = before.get("activities", {}).get("held", 0)
        return now if now and now["activities"]["held"] > held else None

    figures = wait("the session in the district's figures (insights)", session_counted)
    activities = figures["activities"]
    print(
        f"  activities held {activities['held']}, registrations {activities['registrations']}, "
        f"attended {activities['attended']}; agreements signed {figures['agreements_signed']}"
    )


def district_official(admin: str) -> str:
    """A district office account (role `official`: statistics only), signed in."""
    email = f"official.{uuid.uuid4().hex[:8]}@district.example"
    body = {"email": email, "password": PASSWORD, "name": "区政府 Official", "role": "official"}
    call("POST", "accounts", "/staff", admin, json=body).raise_for_status()
    return sign_in(email, PASSWORD)


def counted(token: str, before: dict, registrations: int, accepted: int, answered: int):
    """Today's overview once it holds this run's registrations, intention and answer."""
    now = _ok(call("GET", "insights", "/statistics/overview", token))
    if now is None:
        return None
    grew = {
        "registrations": now["registrations"] - before.get("registrations", 0),
        "accepted": now["intentions"]["accepted"] - before.get("intentions", {}).get("accepted", 0),
        "answered": now["consultations"]["answered"]
        - before.get("consultations", {}).get("answered", 0),
    }
    wanted = {"registrations": registrations, "accepted": accepted, "answered": answered}
    return now if all(grew[k] >= n for k, n in wanted.items()) else None


def figures_table(figures: dict) -> list[str]:
    """The overview as a small table of the period's figures."""
    consultations, intentions = figures["consultations"], figures["intentions"]
    applications, activities = figures["applications"], figures["activities"]
    pct = consultations["first_response_within_sla_pct"]
    rows = [
        ("注册 Registrations", figures["registrations"]),
        ("在册 Returnees active", figures["returnees_active"]),
        ("政策资格 Became eligible", sum(figures["eligible_by_policy"].values())),
        ("匹配 Matches proposed", figures["matches_proposed"]),
        ("合作意向 Intentions expressed / accepted",
         f"{intentions['expressed']} / {intentions['accepted']}"),
        ("咨询 Consultations requested / answered",
         f"{consultations['requested']} / {consultations['answered']}"),
        ("首次响应达标 First response in time", "—" if pct is None else f"{pct:.0f} %"),
        ("驿站预约 Appointments booked", figures["appointments"]["booked"]),
        ("政策申请 Applications submitted / awarded",
         f"{applications['submitted']} / {applications['awarded']}"),
        ("兑现金额 Amount awarded (CNY)", f"{applications['awarded_amount_cny']:,}"),
        ("活动 Activities held / attended", f"{activities['held']} / {activities['attended']}"),
        ("签约 Agreements signed", figures["agreements_signed"]),
    ]  # fmt: skip
    industries = ", ".join(f"{k} {n}" for k, n in list(figures["by_industry"].items())[:4])
    width = max(_columns(label) for label, _ in rows) + 2
    since = min(datetime.fromisoformat(t) for t in figures["counted_from"].values() if t)
    lines = [
        f"{figures['from']} – {figures['to']} (Asia/Shanghai days), counted from "
        f"{since.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"
    ]
    lines += [f"{_pad(label, width)}{value:>8}" for label, value in rows]
    lines.append(f"{_pad('行业 By industry', width)}{industries}")
    if not figures["complete"]:
        lines.append(
            "(incomplete: the period began before every producer was counted; see counted_from)"
        )
    return lines


def _columns(text: str) -> int:
    """Terminal columns of `text`: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _columns(text))


GRANT = "changning-overseas-talent-2026"


def awarded_to(li: dict, emma: dict, admin: str) -> None:
    """Li Wei goes from eligible to awarded; Emma learns what is still missing."""
    missing = _ok(call("GET", "consulting", f"/returnees/{emma['id']}/missing-facts",
                       emma["token"], "en"))  # fmt: skip
    print(f"  {emma['name']}: still missing, to tell or bring at the station (一次告知):")
    for fact in missing["facts"][:4]:
        codes = ", ".join(p["code"] for p in fact["policies"])
        print(f"    · tell us: {fact['tell_us']} — bring: {fact['bring']}  ({codes})")
    grant = _ok(call("GET", "consulting", "/policies", li["token"]))
    policy = next(p for p in grant if p["code"] == GRANT)
    asked = call("POST", "consulting", "/consultations", li["token"], li["locale"],
                 json={"topic": "funding", "question": "这项资助需要准备哪些材料？",
                       "policy_id": policy["id"]})  # fmt: skip
    asked.raise_for_status()
    started = call("POST", "consulting", "/applications", li["token"], li["locale"],
                   json={"policy_id": policy["id"]})  # fmt: skip
    started.raise_for_status()
    application = started.json()
    print(f"  {li['name']} applies for {GRANT} (tier {application['tier']}, rules version "
          f"{application['policy_version']}); the checklist:")  # fmt: skip
    for item in application["checklist"]:
        print(f"    ☐ {item['title']}")
        call("PUT", "consulting",
             f"/applications/{application['id']}/checklist/{item['document_id']}",
             li["token"], json={"reference": "窗口3已收"}).raise_for_status()  # fmt: skip
    advisor = sign_in(REFERENCE["advisors"][0]["email"], REFERENCE["demo_password"])
    aid = application["id"]
    steps = [
        (li["token"], "submit", {}),
        (advisor, "review", {"note": "材料齐全"}),
        (advisor, "approve", {}),
        # Granted today: the day's figures (step 11) count it.
        (
            advisor,
            "award",
            {"amount_cny": 100000, "awarded_on": datetime.now(SHANGHAI).date().isoformat()},
        ),
    ]
    for token, action, body in steps:
        call("POST", "consulting", f"/applications/{aid}/{action}", token,
             json=body).raise_for_status()  # fmt: skip
    seen = _ok(call("GET", "consulting", f"/applications/{aid}", li["token"], li["locale"]))
    print("  the history the returnee sees:")
    for step in seen["history"]:
        note = f"  · {step['note']}" if step["note"] else ""
        moved = f"{step['from_status'] or '—':>12} → {step['status']:<12}"
        print(f"    {step['at'][:19]}  {moved} by {step['actor_role']}{note}")
    print(f"  awarded {seen['amount_cny']:,} CNY on {seen['awarded_on']}")


def preview_grant(admin: str) -> None:
    grant = next(p for p in _ok(call("GET", "consulting", "/policies", admin))
                 if p["code"] == GRANT)  # fmt: skip
    draft = {k: grant[k] for k in ("code", "title", "summary", "citation", "criteria", "tiers",
                                   "documents", "effective_from", "effective_to",
                                   "application_deadline")}  # fmt: skip
    # The draft: key industries only, tier B raised to 120,000 CNY.
    draft["criteria"].append(
        {"id": "key_industry", "label": {"zh-CN": "重点产业", "en": "A key industry"},
         "field": "industry", "op": "in", "value": ["biotech", "ai", "advanced_manufacturing"]}
    )  # fmt: skip
    draft["tiers"][1]["award_cny"] = 120000
    impact = call("POST", "consulting", "/policies/preview", admin, json=draft)
    impact.raise_for_status()
    found = impact.json()
    print(f"  over {found['caseload']} consenting returnees (nothing stored or announced):")
    newly, gone = found["newly_eligible"]["count"], found["no_longer_eligible"]["count"]
    print(f"    eligible {found['eligible']['before']} → {found['eligible']['after']}; newly "
          f"{newly}, no longer {gone}")  # fmt: skip
    for way in ("newly_eligible", "no_longer_eligible"):
        for entry in found[way]["by_industry"]:
            print(f"    {way}: {entry['count']} in {entry['industry']}")
    print(f"    budget {found['budget']['before_cny']:,} → {found['budget']['after_cny']:,} CNY")


def caught_mails() -> list[dict] | None:
    """The emails the mail sink on port 8025 caught: the local sink of `make run` lists them on
    `/api/messages`, Mailpit (compose) on `/api/v1/messages`. None without a mail sink."""
    for path in ("/api/messages", "/api/v1/messages"):
        try:
            response = requests.get(f"http://127.0.0.1:8025{path}", timeout=5)
            mails = as_mails(response.json()) if response.status_code == 200 else None
        except requests.RequestException:  # nothing listening, or not JSON
            continue
        if mails is not None:
            return mails
    return None


def as_mails(listing) -> list[dict] | None:
    """Either sink's list as `{"to", "subject"}` per email, oldest first; None for anything else."""
    if isinstance(listing, list):  # the local sink: oldest first, `to` as the header reads
        return [{"to": m["to"], "subject": m["subject"]} for m in listing]
    if isinstance(listing, dict) and "messages" in listing:  # Mailpit: newest first
        return [
            {"to": ", ".join(_address(a) for a in m["To"] or []), "subject": m["Subject"]}
            for m in reversed(listing["messages"])
        ]
    return None


def _address(mailbox: dict) -> str:
    return f"{mailbox['Name']} <{mailbox['Address']}>" if mailbox["Name"] else mailbox["Address"]


def _ok(response: requests.Response):
    return response.json() if response.status_code == 200 else None


def _subject(token: str) -> str:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})["sub"]


if __name__ == "__main__":
    sys.exit(main())
