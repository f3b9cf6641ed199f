"""The platform's security as a client meets it, every service running as its own process:
forged tokens refused everywhere, revocation on every service within seconds of each trigger,
the verification, reset and invitation emails read from the SMTP server, sign-in throttling
that locks nobody out, bodies too large refused before they are read."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from chassis.settings import SERVICES, TOKEN_ISSUER, nameko_config
from tests.platform import ADMIN, PASSWORD
from tests.support import forged_tokens, wait_until

REVOKED_WITHIN = 5.0  # seconds, on every service
STAFF_PASSWORD = "Invited-staff-2026"


def guarded(platform, returnee_id: str, caller_id: str) -> dict[str, tuple[str, str]]:
    """A route of each service that needs a token: (method, path). What a valid token gets
    there may be any answer but 401 (a 403 for a role, a 404 for an id that names nothing)."""
    nothing = uuid.uuid4()
    return {
        "accounts": ("GET", f"/returnees/{returnee_id}"),
        "consulting": ("GET", f"/returnees/{returnee_id}/eligibility"),
        "matching": ("GET", f"/returnees/{returnee_id}/matches"),
        "notify": ("GET", f"/notifications?recipient_id={caller_id}"),
        "activities": ("GET", f"/activities/{nothing}/registrations/{nothing}"),
        "insights": ("GET", "/statistics/overview"),
    }


def statuses(platform, routes, headers) -> dict[str, int]:
    return {
        service: platform.call(method, service, path, headers).status_code
        for service, (method, path) in routes.items()
    }


@pytest.fixture(scope="module")
def admin(platform) -> dict:
    return platform.admin()


def from_address(address: str) -> requests.Session:
    """A client connecting from `address` (a loopback one: 127.0.0.0/8 is all this host's)."""

    class FromAddress(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, source_address=(address, 0), **kwargs)

    session = requests.Session()
    session.mount("http://", FromAddress())
    return session


def invite(platform, admin: dict, role: str = "advisor", **fields) -> tuple[dict, dict]:
    """A staff member the admin invites, who sets a password through the emailed link:
    (the staff account, their token headers)."""
    email = f"{role}.{uuid.uuid4().hex[:8]}@station.example"
    staff = {"email": email, "name": "邀请的同事", "role": role, "locale": "zh-CN", **fields}
    created, headers = platform.invite(admin, STAFF_PASSWORD, **staff)
    assert created["email_verified"] is False  # until the invitation is taken up
    return created, headers


# --- item 2: only accounts signs; forged tokens fail everywhere ------------------------------


def test_accounts_serves_its_public_keys_and_no_other_service_holds_a_private_one(platform):
    keys = platform.call("GET", "accounts", "/.well-known/jwks.json").json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["alg"] == "EdDSA" and "d" not in k for k in keys)
    for service in SERVICES:
        settings = nameko_config(service)["JWT"]
        assert bool(settings["private_key_file"]) is (service == TOKEN_ISSUER), service


def test_forged_tokens_are_refused_by_every_service(platform):
    returnee, headers, _ = platform.register()
    routes = guarded(platform, returnee["id"], returnee["id"])
    assert 401 not in statuses(platform, routes, headers).values()  # the real one passes
    for name, forged in forged_tokens(returnee["id"]).items():
        seen = statuses(platform, routes, {"Authorization": f"Bearer {forged}"})
        assert seen == dict.fromkeys(SERVICES, 401), name


# --- item 3: every token of a person revoked on every service, within seconds ----------------


def revoked_everywhere(platform, routes, headers, since: float) -> float:
    """Seconds from `since` until every service refuses the token as revoked."""
    refused = {}

    def check():
        for service, (method, path) in routes.items():
            if service in refused:
                continue
            response = platform.call(method, service, path, headers)
            if response.status_code == 401:
                assert response.json()["error"] == "token_revoked", (service, response.text)
                refused[service] = time.monotonic() - since
        return len(refused) == len(routes)

    wait_until(check, REVOKED_WITHIN + 5, 0.05, "the token refused everywhere")
    slowest = max(refused.values())
    print("revoked after: " + ", ".join(f"{s} {t:.2f} s" for s, t in sorted(refused.items())))
    assert slowest < REVOKED_WITHIN, refused
    return slowest


def test_a_password_change_revokes_the_persons_tokens_everywhere(platform):
    returnee, headers, body = platform.register()
    session = platform.call("POST", "accounts", "/auth/token",
                            json={"email": body["email"], "password": PASSWORD}).json()  # fmt: skip
    routes = guarded(platform, returnee["id"], returnee["id"])
    assert 401 not in statuses(platform, routes, headers).values()
    started = time.monotonic()
    changed = platform.call("POST", "accounts", "/auth/password", headers,
                            json={"current_password": PASSWORD,
                                  "new_password": "Changed-pass-2026"})  # fmt: skip
    assert changed.status_code == 204, changed.text
    revoked_everywhere(platform, routes, headers, started)
    refreshed = platform.call("POST", "accounts", "/auth/refresh",
                              json={"refresh_token": session["refresh_token"]})  # fmt: skip
    assert refreshed.status_code == 401
    fresh = platform.token(body["email"], "Changed-pass-2026")  # signed in again: all works
    assert 401 not in statuses(platform, routes, fresh).values()


def test_an_erasure_revokes_the_persons_tokens_everywhere(platform):
    returnee, headers, _ = platform.register()
    routes = guarded(platform, returnee["id"], returnee["id"])
    assert 401 not in statuses(platform, routes, headers).values()
    started = time.monotonic()
    erased = platform.call("DELETE", "accounts", f"/returnees/{returnee['id']}", headers)
    assert erased.status_code == 204
    revoked_everywhere(platform, routes, headers, started)


def test_disabling_staff_revokes_their_tokens_everywhere_and_enabling_lets_them_in(platform, admin):
    returnee, _, _ = platform.register()
    advisor, headers = invite(platform, admin)
    routes = guarded(platform, returnee["id"], advisor["id"])
    assert 401 not in statuses(platform, routes, headers).values()
    started = time.monotonic()
    disabled = platform.call("POST", "accounts", f"/staff/{advisor['id']}/disable", admin)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    revoked_everywhere(platform, routes, headers, started)
    sign_in = {"email": advisor["email"], "password": STAFF_PASSWORD}
    refused = platform.call("POST", "accounts", "/auth/token", json=sign_in)
    assert refused.status_code == 403 and refused.json()["error"] == "account_disabled"
    enabled = platform.call("POST", "accounts", f"/staff/{advisor['id']}/enable", admin)
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    again = platform.token(advisor["email"], STAFF_PASSWORD)
    assert 401 not in statuses(platform, routes, again).values()


def test_a_role_change_revokes_the_old_roles_tokens_everywhere(platform, admin):
    returnee, _, _ = platform.register()
    advisor, headers = invite(platform, admin)
    routes = guarded(platform, returnee["id"], advisor["id"])
    assert 401 not in statuses(platform, routes, headers).values()
    started = time.monotonic()
    changed = platform.call("PUT", "accounts", f"/staff/{advisor['id']}/role", admin,
                            json={"role": "admin"})  # fmt: skip
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
    revoked_everywhere(platform, routes, headers, started)
    promoted = platform.token(advisor["email"], STAFF_PASSWORD)
    claims = jwt.decode(promoted["Authorization"][7:], options={"verify_signature": False})
    assert claims["role"] == "admin"


# --- item 4: verification, reset and invitation, by email ------------------------------------


def test_an_address_gets_nothing_but_its_welcome_email_until_it_is_confirmed(platform):
    returnee, headers, body = platform.register(locale="en")
    rid = returnee["id"]
    token = platform.link_token(body["email"], "/verify-email")
    [welcome] = platform.smtp.to(body["email"])
    assert welcome["Subject"].startswith("Welcome to")

    def emails(reason=None):
        listed = platform.call("GET", "notify", "/notifications", headers,
                               params={"recipient_id": rid, "channel": "email"}).json()  # fmt: skip
        return [n for n in listed if reason is None or n["reason"] == reason]

    # the registration's own news (eligibility, matches) is held back from the address
    wait_until(lambda: emails("email address not confirmed"), 30, 0.2, "a suppressed email")
    assert len(platform.smtp.to(body["email"])) == 1
    confirmed = platform.call("POST", "accounts", "/auth/verify-email", json={"token": token})
    assert confirmed.status_code == 204, confirmed.text
    again = platform.call("POST", "accounts", "/auth/verify-email", json={"token": token})
    assert again.status_code == 422 and "token" in again.json()["fields"]

    # confirmed: what happens next reaches the address
    time.sleep(1.5)  # notify took the confirmation in
    question = {"topic": "funding", "question": "Which grants fit me?"}
    asked = platform.call("POST", "consulting", "/consultations", headers, json=question)
    assert asked.status_code == 201, asked.text
    wait_until(lambda: len(platform.smtp.to(body["email"])) > 1, 30, 0.1, "a second email")


def test_a_forgotten_password_is_reset_through_the_emailed_link_once(platform):
    returnee, _, body = platform.register()
    email = body["email"]
    verified = platform.link_token(email, "/verify-email")
    platform.call("POST", "accounts", "/auth/verify-email", json={"token": verified})
    client = from_address("127.0.0.41")
    for address in (email, "nobody-here@example.com"):  # the same answer either way
        response = client.post(f"{platform.url('accounts')}/auth/password-reset",
                               json={"email": address}, timeout=30)  # fmt: skip
        assert response.status_code == 202 and response.json() == {"status": "accepted"}
    token = platform.link_token(email, "/reset-password")
    reset = platform.call("POST", "accounts", "/auth/password-reset/confirm",
                          json={"token": token, "password": "Reset-pass-2026"})  # fmt: skip
    assert reset.status_code == 204, reset.text
    assert platform._try_token(email, PASSWORD) is None
    assert platform.token(email, "Reset-pass-2026")
    twice = platform.call("POST", "accounts", "/auth/password-reset/confirm",
                          json={"token": token, "password": "Another-pass-2026"})  # fmt: skip
    assert twice.status_code == 422
    # reset requests are throttled per address
    for _ in range(10):
        last = client.post(f"{platform.url('accounts')}/auth/password-reset",
                           json={"email": "nobody-here@example.com"}, timeout=30)  # fmt: skip
    assert last.status_code == 429 and int(last.headers["Retry-After"]) > 0


def test_an_invited_staff_member_sets_a_password_through_the_emailed_link(platform, admin):
    with_password = platform.call("POST", "accounts", "/staff", admin, json={
        "email": "x@station.example", "name": "X", "role": "advisor", "password": "Xx-123456789",
    })  # fmt: skip
    assert with_password.status_code == 400
    staff, headers = invite(platform, admin)
    [invitation] = platform.smtp.to(staff["email"])
    assert invitation["Subject"] == "邀请您设置长宁区海归创业服务平台的密码"
    assert platform.call("GET", "notify", "/notifications", headers,
                         params={"recipient_id": staff["id"]}).status_code == 200  # fmt: skip


# --- item 5: throttling that locks nobody out -------------------------------------------------


def test_guesses_from_one_address_never_lock_the_account_out_from_another(platform):
    email, password = ADMIN  # its address is no secret: anyone may try to lock it
    attacker, owner = from_address("127.0.0.51"), from_address("127.0.0.52")
    url = f"{platform.url('accounts')}/auth/token"
    wrong = {"email": email, "password": "Wrong-guess-1"}
    # parallel guesses get no extra tries: five are weighed, the rest refused outright
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: attacker.post(url, json=wrong, timeout=30), range(12)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [401] * 5 + [429] * 7, codes
    blocked = attacker.post(url, json={"email": email, "password": password}, timeout=30)
    assert blocked.status_code == 429 and 0 < int(blocked.headers["Retry-After"]) <= 900
    signed_in = owner.post(url, json={"email": email, "password": password}, timeout=30)
    assert signed_in.status_code == 200, signed_in.text


# --- item 6: bodies too large -----------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_a_body_over_64_kib_is_413_on_every_service(platform, service):
    method, route = {
        "accounts": ("POST", "/returnees"),
        "consulting": ("POST", "/consultations"),
        "matching": ("POST", "/intentions"),
        "notify": ("POST", "/subscriptions"),
        "activities": ("POST", "/activities"),
        "insights": (
            "GET",
            "/statistics/overview",
        ),  # it takes no body: refused unread all the same
    }[service]
    big = {"padding": "x" * (64 * 1024)}
    response = platform.call(method, service, route, json=big)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "request_entity_too_large"
