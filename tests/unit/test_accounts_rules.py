"""accounts' pure rules: profiles, passwords, consents, sealing, throttles, links."""

import base64
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag

from chassis.auth import Caller
from chassis.errors import Forbidden
from chassis.i18n import negotiate, translate_errors
from services.accounts.credentials import (
    SIGN_IN_PER_ACCOUNT_AND_ADDRESS,
    Throttle,
    digest,
    link,
    new_secret,
)
from services.accounts.profile import (
    LETTERS_AND_DIGITS,
    age_on,
    changed_fields,
    consent_changes,
    normalize_email,
    password_problems,
    profile_problems,
)
from services.accounts.sealing import Sealer

TODAY = date(2026, 11, 28)


def education(start, end, overseas=True):
    return {"start_date": start, "end_date": end, "overseas": overseas}


@pytest.mark.parametrize(
    ("profile", "problems"),
    [
        ({"birth_date": date(1992, 5, 14), "return_date": date(2021, 7, 1)}, {}),
        ({"birth_date": date(2027, 1, 1)}, {"birth_date": ["Must not be in the future."]}),
        (
            {"birth_date": date(2012, 1, 1)},
            {"birth_date": ["Age must be between 16 and 100 years."]},
        ),
        (
            {"birth_date": date(1900, 1, 1)},
            {"birth_date": ["Age must be between 16 and 100 years."]},
        ),
        ({"return_date": date(2026, 12, 1)}, {"return_date": ["Must not be in the future."]}),
        (
            {
                "return_date": date(2016, 1, 1),
                "education": [
                    education(date(2010, 9, 1), date(2014, 7, 1), overseas=False),
                    education(date(2015, 9, 1), date(2016, 9, 30)),
                ],
            },
            {"return_date": ["Must not be before the end of study abroad."]},
        ),
        (
            # a domestic degree finishing after the return is fine
            {
                "return_date": date(2017, 1, 1),
                "education": [
                    education(date(2015, 9, 1), date(2016, 9, 30)),
                    education(date(2017, 9, 1), date(2020, 7, 1), overseas=False),
                ],
            },
            {},
        ),
        (
            {
                "birth_date": date(1992, 5, 14),
                "education": [education(date(1990, 1, 1), date(1995, 1, 1))],
            },
            {"education": {0: {"start_date": ["Must be after the birth date."]}}},
        ),
        (
            {"company": {"registration_date": date(2027, 3, 1)}},
            {"company": {"registration_date": ["Must not be in the future."]}},
        ),
        ({"needs": ["financing", "financing"]}, {"needs": ["Must not repeat a need."]}),
    ],
)
def test_profile_problems(profile, problems):
    assert profile_problems(profile, TODAY) == problems


def test_age_counts_whole_years():
    assert age_on(date(2000, 11, 29), TODAY) == 25
    assert age_on(date(2000, 11, 28), TODAY) == 26


@pytest.mark.parametrize(
    ("password", "email", "problems"),
    [
        ("Returnee2026!", "li.wei@example.com", []),
        ("short1", None, ["Must be at least 10 characters long."]),
        ("onlyletters!", None, [LETTERS_AND_DIGITS]),
        ("1234567890", None, [LETTERS_AND_DIGITS]),
        ("密码密码密码密码密码1", None, [LETTERS_AND_DIGITS]),  # letters a-z, as documented
        ("liwei-2026-pass", "LiWei@example.com", ["Must not contain your email address."]),
    ],
)
def test_password_policy(password, email, problems):
    assert password_problems(password, email) == problems


def test_emails_are_normalized():
    assert normalize_email("  Li.Wei@Example.COM ") == "li.wei@example.com"


def test_changes_are_named_in_contract_order_and_consents_per_purpose():
    before = {"name": "Li", "needs": ["financing"], "industry": "ai"}
    after = {"name": "Li", "needs": ["office_space"], "industry": "biotech"}
    assert changed_fields(before, after) == ["industry", "needs"]
    assert changed_fields(before, dict(before)) == []
    assert consent_changes(
        {"matching": True, "notifications": True}, {"matching": False, "notifications": True}
    ) == {"matching": False}


def test_sealed_values_open_only_with_their_key_and_binding():
    key = base64.b64encode(b"k" * 32).decode()
    sealer = Sealer(key)
    sealed = sealer.seal("passport:E12345678", "account-1")
    assert b"E12345678" not in sealed
    assert sealer.open(sealed, "account-1") == "passport:E12345678"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, "account-2")
    with pytest.raises(InvalidTag):
        Sealer(base64.b64encode(b"x" * 32).decode()).open(sealed, "account-1")
    with pytest.raises(ValueError):
        Sealer(base64.b64encode(b"short").decode())


def test_throttle_blocks_at_the_limit_and_says_when_to_retry():
    assert not SIGN_IN_PER_ACCOUNT_AND_ADDRESS.blocked(4)
    assert SIGN_IN_PER_ACCOUNT_AND_ADDRESS.blocked(5)
    throttle = Throttle("t", limit=2, window_seconds=600)
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert throttle.retry_after(now - timedelta(seconds=100.2), now) == 500
    assert throttle.retry_after(now - timedelta(seconds=600), now) == 1  # never 0


def test_throttle_keys_are_digests_that_tell_throttles_and_parts_apart():
    throttle = Throttle("sign-in", limit=5, window_seconds=900)
    key = throttle.key("li.wei@example.com", "203.0.113.5")
    assert len(key) == 64 and "li.wei" not in key
    assert key == throttle.key("li.wei@example.com", "203.0.113.5")
    assert key != throttle.key("li.wei@example.com", "203.0.113.6")
    assert key != Throttle("other", 5, 900).key("li.wei@example.com", "203.0.113.5")


def test_secrets_are_random_and_stored_as_digests():
    (one, one_digest), (two, _) = new_secret(), new_secret()
    assert one != two and len(one) >= 43  # 256 bits, URL-safe
    assert one_digest == digest(one) and len(one_digest) == 32 and one.encode() not in one_digest


def test_links_lead_to_the_portal_page_of_their_purpose():
    assert link("https://portal.example/", "verify_email", "abc") == (
        "https://portal.example/verify-email?token=abc"
    )
    assert link("http://127.0.0.1:8080", "reset_password", "x").endswith("/reset-password?token=x")
    assert link("http://127.0.0.1:8080", "set_password", "x").endswith("/set-password?token=x")


def test_callers_may_act_on_their_own_data_or_by_role():
    returnee = Caller("r1", "returnee")
    assert returnee.require_self_or("admin", owner="r1") is returnee
    with pytest.raises(Forbidden):
        returnee.require_self_or("admin", owner="r2")
    with pytest.raises(Forbidden):
        Caller("a1", "advisor").require("admin")
    # an advisor whose id happens to equal the owner is still not "self"
    assert not Caller("r1", "advisor").is_self("r1")


def test_locale_negotiation_and_translation():
    assert negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert negotiate("en-US,en;q=0.9,zh;q=0.5") == "en"
    assert negotiate("fr, zh-TW;q=0.4") == "zh-CN"
    assert negotiate(None) == "en"
    assert translate_errors(
        {"a": ["Missing data for required field."], "b": {"0": ["Must be one of: x, y."]}},
        "zh-CN",
    ) == {"a": ["缺少必填字段。"], "b": {"0": ["必须是以下之一：x, y。"]}}
