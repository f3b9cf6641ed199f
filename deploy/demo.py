"""`make demo`: a station's morning, run against the platform `make run` started.

Three returnees register (zh-CN and en); the platform assesses their eligibility and matches
resources, with reasons; one expresses interest in a park's office space and the park accepts;
another asks a funding question and an advisor answers; then each one's notifications, the
emails the mail sink caught, and the day's figures as a district official reads them.
"""

import itertools
import sys
import time
import unicodedata
import uuid
from datetime import datetime

import requests
import yaml

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
    counted = _ok(call("GET", "matching", "/statistics/intentions", admin))
    print(f"  cooperation intentions accepted so far: {counted['accepted']}")

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

    heading("6. What each returnee was told")
    expected = {li["id"]: "intention_update", emma["id"]: "consultation_update"}
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

    heading("7. Emails caught by the mail sink")
    mails = caught_mails()
    if mails is None:
        print("  (no local mail sink: emails went to the configured SMTP server)")
    else:
        addresses = {r["email"] for r in returnees}
        for mail in [m for m in mails if any(a in m["to"] for a in addresses)]:
            print(f"  to {mail['to']}: {mail['subject']}")

    heading("8. Today's figures, as the district office reads them (insights)")
    figures = wait(
        "the morning counted",
        lambda: counted(official, before, registrations=3, accepted=1, answered=1),
    )
    for line in figures_table(figures):
        print(f"  {line}")
    print()
    return 0


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
        lines.append("(incomplete: see counted_from; activities are not counted yet)")
    return lines


def _columns(text: str) -> int:
    """Terminal columns of `text`: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _columns(text))


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
