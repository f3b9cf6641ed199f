"""accounts' use cases over the in-memory unit of work: the state each leaves and the events it
publishes, refusals included. Bodies are loaded by the entrypoints' own schemas."""

import base64
import copy
import inspect
import uuid
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from marshmallow import ValidationError

from chassis.auth import Caller, KeySet, TokenIssuer
from chassis.clock import FrozenClock
from chassis.errors import Conflict, Forbidden, HttpError, NotFound, TooManyRequests, Unauthorized
from chassis.i18n import translate_errors
from chassis.keys import new_key
from chassis.uow import MemoryDatabase
from contracts.examples import EXAMPLES
from services.accounts import handlers
from services.accounts.credentials import (
    LINK_LIFETIMES,
    REFRESH_TOKEN_LIFETIME,
    REGISTRATIONS_PER_ADDRESS,
    RESET_REQUESTS_PER_ADDRESS,
    SIGN_IN_PER_ACCOUNT_AND_ADDRESS,
    SIGN_IN_PER_ADDRESS,
    digest,
    hash_password,
)
from services.accounts.memory import MemoryStore
from services.accounts.providers import AccountsSettings
from services.accounts.schemas import (
    ConsentUpdate,
    OrganizationIn,
    PasswordChange,
    PasswordResetConfirm,
    ProfileChanges,
    Registration,
    StaffIn,
    StaffRole,
)
from services.accounts.sealing import Sealer
from services.accounts.store import AccountsStore

PASSWORD = "Returnee2026!"
# 07:30 on 1 October in Shanghai, when it is still 30 September in UTC (the system clock's zone).
NOW = datetime(2026, 9, 30, 23, 30, tzinfo=UTC)
SEALER = Sealer(base64.b64encode(b"k" * 32).decode())
TOKENS = TokenIssuer([new_key()], "issuer", "audience", 600)
PORTAL = "https://portal.example"
ADDRESS = "203.0.113.5"
SETTINGS = AccountsSettings(PORTAL, REGISTRATIONS_PER_ADDRESS)


def claims(token: str) -> dict:
    """The token's claims, its signature verified with the issuer's published key; its times
    are the frozen clock's, so they are read, not checked against today."""
    key = KeySet(TOKENS.jwks()).get(jwt.get_unverified_header(token)["kid"])
    return jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience="audience",
        issuer="issuer",
        options={"verify_exp": False, "verify_iat": False},
    )


# `POST /returnees` exactly as contract v1 lists it: no `education[].overseas`, no
# `prior_awards`, none of the later optional fields.
V1_BODY = {
    "name": "李伟",
    "email": "Li.Wei@Example.com",
    "password": PASSWORD,
    "phone": "+86 138 0013 8000",
    "locale": "zh-CN",
    "birth_date": "1992-05-14",
    "education": [
        {
            "institution": "Fudan University",
            "country": "CN",
            "degree": "bachelor",
            "field": "Biological Sciences",
            "start_date": "2010-09-01",
            "end_date": "2014-07-01",
            "qs_rank": 39,
        },
        {
            "institution": "Imperial College London",
            "country": "GB",
            "degree": "master",
            "field": "Bioengineering",
            "start_date": "2015-09-28",
            "end_date": "2016-09-30",
        },
    ],
    "return_date": "2021-07-01",
    "industry": "biotech",
    "startup_stage": "registered",
    "needs": ["financing", "office_space"],
    "company": {
        "name": "上海维康生物科技有限公司",
        "registered_district": "Changning",
        "registration_date": "2024-03-18",
        "registered_capital_cny": 1000000,
        "shareholding_pct": 60.0,
        "is_legal_representative": True,
    },
    "consents": {"matching": True, "notifications": True, "share_with_partners": False},
}


def body(**changes) -> dict:
    """A whole registration, as the current event carries the profile."""
    registration = copy.deepcopy(EXAMPLES[("returnee.registered", 1)].data)
    registration.pop("returnee_id")
    registration["email"] = f"li.wei.{uuid.uuid4().hex[:8]}@example.com"
    registration["password"] = PASSWORD
    registration.update(changes)
    return registration


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def db(clock):
    return MemoryDatabase("accounts", MemoryStore(), clock=clock)


def register(db, registration: dict | None = None, address: str = ADDRESS) -> dict:
    command = Registration().load(registration or body())
    return handlers.register_returnee(command, address, db, SEALER, SETTINGS)


def change(db, returnee_id: str, changes: dict) -> dict:
    with db.unit_of_work() as uow:
        return handlers.change_returnee(returnee_id, ProfileChanges().load(changes), uow)


def registering(command, db):
    return handlers.register_returnee(command, ADDRESS, db, SEALER, SETTINGS)


def refusal(db, use_case, *args, error=HttpError, opens_units=False) -> HttpError:
    """The refusal of `use_case(*args, uow)` (`opens_units`: of `use_case(*args, db)`, a use case
    that opens its units itself), which must leave the state and outbox as they were."""
    store, outbox = copy.deepcopy(db.store.__dict__), list(db.outbox)
    with pytest.raises(error) as refused:
        if opens_units:
            use_case(*args, db)
        else:
            with db.unit_of_work() as uow:
                use_case(*args, uow)
    assert db.store.__dict__ == store and db.outbox == outbox
    return refused.value


def link_token(event) -> str:
    """The token of the link an `account.link_issued` carries."""
    return parse_qs(urlsplit(event.data["link"]).query)["token"][0]


# register_returnee


def test_staff_reads_are_in_the_returnees_access_log_newest_first(db, clock):
    returnee = register(db)
    advisor = {"reader_id": str(uuid.uuid4()), "reader_role": "advisor",
               "case_ref": "consultation:1f1e", "reason": None}  # fmt: skip
    admin = {"reader_id": str(uuid.uuid4()), "reader_role": "admin", "case_ref": None,
             "reason": "Checking a complaint"}  # fmt: skip
    me = {"reader_id": returnee["id"], "reader_role": "returnee", "case_ref": None,
          "reason": None}  # fmt: skip
    with db.unit_of_work() as uow:
        handlers.read_returnee(returnee["id"], uow, advisor)
    clock.advance(minutes=1)
    with db.unit_of_work() as uow:
        handlers.read_consents(returnee["id"], uow, admin)
        handlers.read_returnee(returnee["id"], uow, me)  # their own reads are not staff's
    with db.unit_of_work() as uow:
        log = handlers.access_log(returnee["id"], {"limit": 50}, uow)
    assert [(e["reader_role"], e["what"], e["case_ref"], e["reason"], e["read_at"]) for e in log
            ] == [("admin", "consents", None, "Checking a complaint", clock.at),
                  ("advisor", "profile", "consultation:1f1e", None, NOW)]  # fmt: skip
    assert all(e["service"] == "accounts" for e in log)
    with db.unit_of_work() as uow:
        handlers.erase_returnee(returnee["id"], uow)
    assert db.store.access_entries == []  # the log goes with the person


def test_id_documents_record_their_key_and_are_resealed_under_a_new_one(db):
    passport = {"kind": "passport", "number": "E12345678"}
    first = register(db, body(id_document=passport))
    second = register(db, body(id_document={**passport, "number": "E87654321"}))
    db.store.returnees[second["id"]]["id_document_key"] = None  # sealed before key ids
    register(db)  # none to re-seal
    assert db.store.returnees[first["id"]]["id_document_key"] == SEALER.key_id
    new_key = base64.b64encode(bytes(range(100, 132))).decode()
    old_key = base64.b64encode(b"k" * 32).decode()
    rotated = Sealer(new_key, previous=(old_key,))
    assert rotated.key_id != SEALER.key_id
    with db.unit_of_work() as uow:
        assert handlers.reseal_batch(uow, rotated, batch_size=1) == 1
    with db.unit_of_work() as uow:
        assert handlers.reseal_batch(uow, rotated) == 1
    with db.unit_of_work() as uow:
        assert handlers.reseal_batch(uow, rotated) == 0
    for returnee, number in ((first, "E12345678"), (second, "E87654321")):
        row = db.store.returnees[returnee["id"]]
        assert row["id_document_key"] == rotated.key_id
        assert Sealer(new_key).open(row["id_document"], returnee["id"],
                                    rotated.key_id) == f"passport:{number}"  # fmt: skip


def test_registering_stores_the_account_profile_and_consents_and_announces_them(db):
    returnee = register(
        db,
        body(email=" Li.Wei@Example.COM ", id_document={"kind": "passport", "number": "E12345678"}),
    )
    account = db.store.accounts[returnee["id"]]
    assert account["email"] == "li.wei@example.com" and account["role"] == "returnee"
    assert account["password_hash"].startswith("$argon2id$")
    sealed = db.store.returnees[returnee["id"]]["id_document"]
    assert SEALER.open(sealed, returnee["id"]) == "passport:E12345678"
    assert returnee["has_id_document"] is True and returnee["created_at"] == NOW
    assert [(h["purpose"], h["granted"]) for h in db.store.history] == [
        ("matching", True),
        ("notifications", True),
        ("share_with_partners", False),
    ]

    [event] = db.published("returnee.registered")
    assert event.subject == returnee["id"] == event.data["returnee_id"]
    assert event.data["email"] == "li.wei@example.com"
    assert event.data["consents"] == {
        "matching": True,
        "notifications": True,
        "share_with_partners": False,
    }
    assert "password" not in event.data and "id_document" not in event.data
    assert "E12345678" not in event.to_json().decode()
    assert event.data["email_verified"] is False and account["email_verified_at"] is None
    # the welcome email's link, to confirm the address
    [issued] = db.published("account.link_issued")
    assert issued.subject == returnee["id"]
    assert issued.data == {
        "account_id": returnee["id"],
        "purpose": "verify_email",
        "email": "li.wei@example.com",
        "name": returnee["name"],
        "locale": returnee["locale"],
        "link": f"{PORTAL}/verify-email?token={link_token(issued)}",
        "expires_at": (NOW + LINK_LIFETIMES["verify_email"]).isoformat(),
    }
    [stored] = db.store.links.values()
    assert stored["token_hash"] == digest(link_token(issued))  # the token itself is not kept
    assert db.outbox == [event, issued]


def test_the_contract_v1_body_registers_with_overseas_derived_from_the_country(db):
    returnee = register(db, V1_BODY)
    [event] = db.published("returnee.registered")
    assert [e["overseas"] for e in event.data["education"]] == [False, True]  # CN, GB
    assert event.data["prior_awards"] == []
    assert event.data["company"]["is_largest_shareholder"] is None
    assert [e["overseas"] for e in returnee["education"]] == [False, True]


def test_overseas_given_is_kept_and_study_abroad_bounds_the_return(db):
    given = body()
    given["education"][0]["overseas"] = True  # e.g. a joint programme taught abroad
    register(db, given)
    assert db.published("returnee.registered")[0].data["education"][0]["overseas"] is True

    early = copy.deepcopy(V1_BODY)
    early["return_date"] = "2016-01-01"  # before the end of the derived study abroad (GB)
    error = refusal(db, registering, Registration().load(early), opens_units=True)
    assert error.fields == {"return_date": ["Must not be before the end of study abroad."]}


def test_field_errors_and_profile_rules_are_answered_together(db):
    invalid = body(email="not-an-email", return_date="2026-12-01")  # the future
    invalid["education"][1]["degree"] = "diploma"
    error = refusal(db, registering, Registration().load(invalid), opens_units=True)
    assert error.status == 400 and error.code == "invalid"
    assert error.fields == {
        "email": ["Not a valid email address."],
        "education": {1: {"degree": ["Must be one of: bachelor, master, phd."]}},
        "return_date": ["Must not be in the future."],
    }
    # a rule and a field error on the same entry: both named, under the entry
    same_entry = body(birth_date="2011-01-01")
    same_entry["education"][0].update(degree="diploma", start_date="2010-09-01")
    error = refusal(db, registering, Registration().load(same_entry), opens_units=True)
    assert error.fields["education"] == {
        0: {
            "degree": ["Must be one of: bachelor, master, phd."],
            "start_date": ["Must be after the birth date."],
        },
    }
    assert error.fields["birth_date"] == ["Age must be between 16 and 100 years."]
    assert translate_errors(error.fields, "zh-CN")["birth_date"] == [
        "年龄必须在 16 到 100 岁之间。"
    ]


def test_today_is_the_day_in_shanghai(db):
    # At 07:30 on 1 October in Shanghai it is 30 September in UTC: a return today is not future.
    register(db, body(return_date="2026-10-01"))
    error = refusal(
        db, registering, Registration().load(body(return_date="2026-10-02")), opens_units=True
    )
    assert error.fields == {"return_date": ["Must not be in the future."]}


def test_a_taken_email_is_a_conflict_and_changes_nothing_but_the_count_of_attempts(db):
    first = body()
    register(db, first)
    accounts, outbox = copy.deepcopy(db.store.accounts), list(db.outbox)
    again = Registration().load({**first, "email": first["email"].upper()})
    with pytest.raises(Conflict) as refused:
        registering(again, db)
    assert refused.value.code == "email_taken"
    assert refused.value.message_in("zh-CN") == "该邮箱已注册。"
    assert db.store.accounts == accounts and db.outbox == outbox
    assert len(db.store.throttle_hits) == 2  # both attempts count


def test_the_registrations_limit_is_a_setting():
    assert AccountsSettings.load({}).registrations == REGISTRATIONS_PER_ADDRESS
    loaded = AccountsSettings.load({"REGISTRATIONS_PER_HOUR": "500", "PORTAL_URL": PORTAL})
    assert (loaded.registrations.limit, loaded.portal_url) == (500, PORTAL)


def test_registrations_are_throttled_per_client_address(db, clock, monkeypatch):
    monkeypatch.setattr(handlers, "hash_password", lambda password: STAFF_HASH)  # time
    for _ in range(REGISTRATIONS_PER_ADDRESS.limit):
        register(db)
    error = refusal(db, registering, Registration().load(body()), error=TooManyRequests,
                    opens_units=True)  # fmt: skip
    assert error.headers == {"Retry-After": str(REGISTRATIONS_PER_ADDRESS.window_seconds)}
    assert error.message_in("zh-CN") == "您的地址注册次数过多，请稍后再试。"
    assert register(db, address="198.51.100.9")["id"]  # another address is not held up
    clock.advance(seconds=REGISTRATIONS_PER_ADDRESS.window_seconds + 1)
    assert register(db)["id"]


# read_returnee


def test_reading_a_returnee_answers_the_profile_and_404_for_what_names_nothing(db):
    returnee = register(db)
    with db.unit_of_work() as uow:
        assert handlers.read_returnee(returnee["id"], uow) == returnee
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        refusal(db, handlers.read_returnee, unknown, error=NotFound)
    assert len(db.outbox) == 2  # reading publishes nothing: the registration's events only


# search_returnees


def test_a_search_finds_returnees_by_name_email_phone_or_company(db):
    li = register(db, body(name="Li Wei", phone="+86 138 0013 8000"))
    wang = register(db, body(name="Wang Fang", phone=None, company=None))

    def search(q, limit=20):
        with db.unit_of_work() as uow:
            return handlers.search_returnees({"q": q, "limit": limit}, uow)

    assert [r["id"] for r in search("li wei")] == [li["id"]]  # case ignored
    assert [r["id"] for r in search(li["email"][:12])] == [li["id"]]
    assert [r["id"] for r in search("0013")] == [li["id"]]
    assert [r["id"] for r in search("维康")] == [li["id"]]
    assert [r["id"] for r in search("@example.com")] == [li["id"], wang["id"]]  # by name
    assert [r["id"] for r in search("@example.com", limit=1)] == [li["id"]]
    assert search("nobody at all") == []
    found = search("Wang")[0]
    assert set(found) == {"id", "email", "name", "phone", "company"}
    assert found["phone"] is None and found["company"] is None


# change_returnee


def test_a_change_announces_the_changed_fields_only_when_something_changed(db, clock):
    returnee = register(db)
    clock.advance(hours=1)
    changed = change(
        db, returnee["id"], {"needs": ["financing", "mentorship"], "startup_stage": "growth"}
    )
    assert changed["needs"] == ["financing", "mentorship"] and changed["updated_at"] == clock.at
    assert db.store.returnees[returnee["id"]]["profile"]["startup_stage"] == "growth"
    [updated] = db.published("returnee.updated")
    assert updated.data["changed_fields"] == ["startup_stage", "needs"]
    assert updated.data["name"] == returnee["name"] and updated.subject == returnee["id"]

    change(db, returnee["id"], {"startup_stage": "growth"})  # no change, no event
    assert len(db.published("returnee.updated")) == 1
    assert db.published("consent.changed") == []


def test_a_change_is_checked_as_the_whole_profile_with_its_field_errors(db):
    returnee = register(db)
    changes = ProfileChanges().load({"birth_date": "1900-01-01", "industry": "space_mining"})
    error = refusal(db, handlers.change_returnee, returnee["id"], changes)
    assert set(error.fields) == {"birth_date", "industry"}
    assert error.fields["birth_date"] == ["Age must be between 16 and 100 years."]
    # an education entry is given whole (overseas may be left out, as at registration)
    entry = {k: v for k, v in V1_BODY["education"][1].items() if k != "start_date"}
    error = refusal(
        db, handlers.change_returnee, returnee["id"], ProfileChanges().load({"education": [entry]})
    )
    assert error.fields == {"education": {0: {"start_date": ["Missing data for required field."]}}}
    whole = change(db, returnee["id"], {"education": [V1_BODY["education"][1]]})
    assert whole["education"][0]["overseas"] is True


def test_changing_an_unknown_returnee_is_404_unless_the_body_is_invalid(db):
    refusal(
        db, handlers.change_returnee, str(uuid.uuid4()), ProfileChanges().load({}), error=NotFound
    )
    invalid = ProfileChanges().load({"industry": "space_mining"})
    error = refusal(db, handlers.change_returnee, "not-a-uuid", invalid)
    assert error.status == 400 and set(error.fields) == {"industry"}


# change_consents


def test_consent_changes_are_recorded_with_their_time_and_announced(db, clock):
    returnee = register(db)
    clock.advance(minutes=5)
    with db.unit_of_work() as uow:
        answer = handlers.change_consents(
            returnee["id"], ConsentUpdate().load({"matching": False, "notifications": True}), uow
        )
    assert answer["consents"]["matching"] is False
    assert answer["consent_times"]["matching"] == {"granted": False, "changed_at": clock.at}
    assert db.store.consents[(returnee["id"], "notifications")]["changed_at"] == NOW  # unchanged
    [changed] = db.published("consent.changed")
    assert changed.data == {
        "returnee_id": returnee["id"],
        "purpose": "matching",
        "granted": False,
        "changed_at": clock.at.isoformat(),
    }
    assert db.published("returnee.updated")[0].data["changed_fields"] == ["consents"]
    refusal(db, handlers.change_consents, str(uuid.uuid4()), {"matching": True}, error=NotFound)


def test_only_the_returnee_changes_their_consents_and_each_change_is_recorded(db, clock):
    returnee = register(db)
    admin = Caller(str(uuid.uuid4()), "admin")
    with db.unit_of_work() as uow, pytest.raises(Forbidden) as refused:
        handlers.change_consents(returnee["id"], {"matching": False}, uow,
                                 handlers.consent_record(admin, "api"))  # fmt: skip
    assert refused.value.code == "consent_by_returnee_only"
    with db.unit_of_work() as uow, pytest.raises(Forbidden):
        handlers.change_returnee(returnee["id"], {"consents": {"matching": False}}, uow,
                                 handlers.consent_record(admin, "api"))  # fmt: skip
    with db.unit_of_work() as uow:  # the rest of the profile an admin may still correct
        handlers.change_returnee(returnee["id"], {"startup_stage": "growth"}, uow,
                                 handlers.consent_record(admin, "api"))  # fmt: skip
    clock.advance(minutes=1)
    me = Caller(returnee["id"], "returnee")
    with db.unit_of_work() as uow:
        handlers.change_consents(returnee["id"], {"matching": False}, uow,
                                 handlers.consent_record(me, "web"))  # fmt: skip
    with db.unit_of_work() as uow:
        history = handlers.consent_history(returnee["id"], uow)
    assert history[0] == {
        "purpose": "matching", "granted": False, "changed_at": clock.at,
        "actor_id": returnee["id"], "actor_role": "returnee", "source": "web",
        "text_version": handlers.CONSENT_TEXT_VERSION, "evidence": None,
    }  # fmt: skip
    # The registration's own decisions, by the returnee, last (newest first).
    assert [h["changed_at"] for h in history] == sorted((h["changed_at"] for h in history),
                                                        reverse=True)  # fmt: skip
    assert {h["actor_id"] for h in history} == {returnee["id"]}


# read_consents


def test_consents_are_read_with_their_history_in_order(db, clock):
    returnee = register(db)
    clock.advance(days=1)
    with db.unit_of_work() as uow:
        handlers.change_consents(returnee["id"], {"matching": False}, uow)
    with db.unit_of_work() as uow:
        record = handlers.read_consents(returnee["id"], uow)
    assert record["current"]["matching"] == {"granted": False, "changed_at": clock.at}
    assert [(h["purpose"], h["granted"], h["changed_at"]) for h in record["history"]] == [
        ("matching", True, NOW),
        ("notifications", True, NOW),
        ("share_with_partners", False, NOW),
        ("matching", False, clock.at),
    ]
    refusal(db, handlers.read_consents, "not-a-uuid", error=NotFound)


# erase_returnee


def test_erasure_deletes_the_person_and_their_published_events_and_announces_it(db, clock):
    registration = body()
    returnee = register(db, registration)
    sign_in(db, registration["email"], "Wrong-pass-1", error=Unauthorized)
    sign_in(db, registration["email"], PASSWORD)
    other = register(db)
    clock.advance(hours=2)
    with db.unit_of_work() as uow:
        assert handlers.erase_returnee(returnee["id"], uow) is None
    store = db.store
    assert returnee["id"] not in store.accounts and returnee["id"] not in store.returnees
    assert all(owner != returnee["id"] for owner, _ in store.consents)
    assert all(h["returnee_id"] != returnee["id"] for h in store.history)
    assert all(t["account_id"] != returnee["id"] for t in store.refresh_tokens.values())
    assert all(link["account_id"] != returnee["id"] for link in store.links.values())
    # attempts are counted under digests: nothing names the person
    assert all(registration["email"] not in key for key, _ in store.throttle_hits.values())
    assert store.erasures == {returnee["id"]: clock.at}
    # what was published about the person is forgotten; what announces the erasure is not
    assert [(e.type, e.subject) for e in db.outbox] == [
        ("returnee.registered", other["id"]),
        ("account.link_issued", other["id"]),
        ("credentials.revoked", returnee["id"]),
        ("returnee.erased", returnee["id"]),
    ]
    assert db.published("credentials.revoked")[0].data == {
        "subject": returnee["id"],
        "not_before": clock.at.isoformat(),
        "reason": "erased",
    }
    assert db.outbox[-1].data == {"returnee_id": returnee["id"]}
    refusal(db, handlers.erase_returnee, returnee["id"], error=NotFound)


# issue_token, refresh_session, end_session


def sign_in(db, email, password, address=ADDRESS, error=None):
    command = {"email": email, "password": password}
    if error is None:
        return handlers.issue_token(command, address, db, TOKENS)
    with pytest.raises(error) as refused:
        handlers.issue_token(command, address, db, TOKENS)
    return refused.value


def refresh(db, token, error=None):
    if error is None:
        return handlers.refresh_session({"refresh_token": token}, db, TOKENS)
    with pytest.raises(error) as refused:
        handlers.refresh_session({"refresh_token": token}, db, TOKENS)
    return refused.value


def test_signing_in_issues_an_access_token_and_a_refresh_token_stored_as_a_digest(db):
    registration = body()
    returnee = register(db, registration)
    answer = sign_in(db, registration["email"].upper(), PASSWORD)
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 600
    assert answer["refresh_expires_in"] == REFRESH_TOKEN_LIFETIME.total_seconds()
    token = claims(answer["access_token"])
    assert (token["sub"], token["role"]) == (returnee["id"], "returnee")
    assert token["iat"] == NOW.timestamp() and token["exp"] == NOW.timestamp() + 600
    assert jwt.get_unverified_header(answer["access_token"])["kid"] == TOKENS.keys[0].kid
    [stored] = db.store.refresh_tokens.values()
    assert stored["token_hash"] == digest(answer["refresh_token"])
    assert (stored["account_id"], stored["used_at"], stored["revoked_at"]) == (
        returnee["id"], None, None,
    )  # fmt: skip
    assert stored["expires_at"] == NOW + REFRESH_TOKEN_LIFETIME
    assert (
        len(db.store.throttle_hits) == 1
    )  # the registration's: a sign-in that succeeds leaves none
    # signing in publishes nothing
    assert {e.type for e in db.outbox} == {"returnee.registered", "account.link_issued"}


def test_failed_sign_ins_block_that_account_from_that_address_only(db, clock):
    registration = body()
    register(db, registration)
    error = sign_in(db, "nobody@example.com", PASSWORD, error=Unauthorized)
    assert error.code == "invalid_credentials"
    assert error.message_in("zh-CN") == "邮箱或密码错误。"
    for _ in range(SIGN_IN_PER_ACCOUNT_AND_ADDRESS.limit):
        sign_in(db, registration["email"], "Wrong-pass-1", address="198.51.100.1",
                error=Unauthorized)  # fmt: skip
    clock.advance(seconds=60)
    blocked = sign_in(db, registration["email"], PASSWORD, address="198.51.100.1",
                      error=TooManyRequests)  # fmt: skip
    window = SIGN_IN_PER_ACCOUNT_AND_ADDRESS.window_seconds
    assert blocked.headers == {"Retry-After": str(window - 60)}  # when the oldest leaves it
    assert blocked.message_in("zh-CN") == "登录失败次数过多，请稍后再试。"
    # the owner, elsewhere, is not locked out
    assert sign_in(db, registration["email"], PASSWORD, address="203.0.113.77")["access_token"]

    clock.advance(seconds=window)
    assert sign_in(db, registration["email"], PASSWORD, address="198.51.100.1")["access_token"]


def test_one_address_guessing_across_accounts_is_throttled(db, monkeypatch):
    registration = body()
    register(db, registration)
    # The outcome of Argon2 without its time: 20 verifications would take a second.
    monkeypatch.setattr(handlers, "password_matches", lambda h, p: h is not None and p == PASSWORD)
    for n in range(SIGN_IN_PER_ADDRESS.limit):
        sign_in(db, f"guess.{n}@example.com", "Wrong-pass-1", error=Unauthorized)
    assert sign_in(db, registration["email"], PASSWORD, error=TooManyRequests)
    assert sign_in(db, registration["email"], PASSWORD, address="198.51.100.2")["access_token"]


def test_an_attempt_counts_before_its_password_is_verified(db, monkeypatch):
    # Parallel guesses: each is counted, in the unit that checks the throttle, before any of
    # them is verified, so none of them gets a try the others have used up.
    registration = body()
    register(db, registration)
    seen = []

    def verify_later(password_hash, password):
        seen.append(len(db.store.throttle_hits))
        return False

    monkeypatch.setattr(handlers, "password_matches", verify_later)
    for _ in range(SIGN_IN_PER_ACCOUNT_AND_ADDRESS.limit):
        sign_in(db, registration["email"], "Wrong-pass-1", error=Unauthorized)
    # the pair's and the address's, counted already (after the registration's)
    assert seen == [3, 5, 7, 9, 11]
    sign_in(db, registration["email"], PASSWORD, error=TooManyRequests)


def test_a_disabled_account_cannot_sign_in(db):
    admin = staff_with_password(db, "admin")
    advisor = staff_with_password(db, "advisor")
    with db.unit_of_work() as uow:
        handlers.disable_staff(advisor["id"], caller(admin), uow)
    error = sign_in(db, advisor["email"], STAFF_PASSWORD, error=Forbidden)
    assert error.code == "account_disabled" and error.message_in("zh-CN") == "该账户已停用。"
    sign_in(db, advisor["email"], "Wrong-pass-1", error=Unauthorized)  # says nothing more


def test_a_refresh_token_is_used_once_for_the_next_pair(db, clock):
    registration = body()
    returnee = register(db, registration)
    first = sign_in(db, registration["email"], PASSWORD)
    clock.advance(minutes=10)
    second = refresh(db, first["refresh_token"])
    assert claims(second["access_token"])["sub"] == returnee["id"]
    assert claims(second["access_token"])["iat"] == clock.at.timestamp()
    assert second["refresh_token"] != first["refresh_token"]
    old, new = (db.store.refresh_tokens[digest(t)] for t in (first["refresh_token"],
                                                             second["refresh_token"]))  # fmt: skip
    assert old["used_at"] == clock.at and old["family_id"] == new["family_id"]
    assert refresh(db, second["refresh_token"])["access_token"]
    assert db.published("credentials.revoked") == []


def test_a_spent_refresh_token_presented_again_ends_its_family_and_the_persons_tokens(db, clock):
    registration = body()
    returnee = register(db, registration)
    stolen = sign_in(db, registration["email"], PASSWORD)["refresh_token"]
    elsewhere = sign_in(db, registration["email"], PASSWORD, address="198.51.100.3")
    successor = refresh(db, stolen)["refresh_token"]
    clock.advance(seconds=30)

    error = refresh(db, stolen, error=Unauthorized)
    assert error.code == "invalid_refresh_token"
    [revoked] = db.published("credentials.revoked")
    assert revoked.data == {
        "subject": returnee["id"],
        "not_before": clock.at.isoformat(),
        "reason": "refresh_token_reused",
    }
    assert refresh(db, successor, error=Unauthorized)  # the family ended with it
    assert len(db.published("credentials.revoked")) == 1  # said once
    # another sign-in's family goes on, and its next access token is issued after the revocation
    assert claims(refresh(db, elsewhere["refresh_token"])["access_token"])["iat"] == (
        clock.at.timestamp()
    )


def test_an_unknown_expired_or_disabled_refresh_token_is_refused(db, clock):
    registration = body()
    register(db, registration)
    refresh(db, "not-a-token", error=Unauthorized)
    answer = sign_in(db, registration["email"], PASSWORD)
    clock.advance(seconds=REFRESH_TOKEN_LIFETIME.total_seconds() + 1)
    refresh(db, answer["refresh_token"], error=Unauthorized)
    assert db.published("credentials.revoked") == []

    admin, advisor = staff_with_password(db, "admin"), staff_with_password(db, "advisor")
    advisors = sign_in(db, advisor["email"], STAFF_PASSWORD)
    with db.unit_of_work() as uow:
        handlers.disable_staff(advisor["id"], caller(admin), uow)
    refresh(db, advisors["refresh_token"], error=Unauthorized)


def test_signing_out_ends_the_refresh_tokens_family(db):
    registration = body()
    register(db, registration)
    answer = sign_in(db, registration["email"], PASSWORD)
    other = sign_in(db, registration["email"], PASSWORD)
    with db.unit_of_work() as uow:
        assert handlers.end_session({"refresh_token": answer["refresh_token"]}, uow) is None
        handlers.end_session({"refresh_token": "unknown"}, uow)  # says nothing either way
    refresh(db, answer["refresh_token"], error=Unauthorized)
    assert refresh(db, other["refresh_token"])["access_token"]  # another sign-in goes on
    assert db.published("credentials.revoked") == []


# verify_email


def test_the_welcome_emails_link_confirms_the_address_once(db, clock):
    returnee = register(db)
    token = link_token(db.published("account.link_issued")[0])
    clock.advance(hours=3)
    with db.unit_of_work() as uow:
        assert handlers.verify_email({"token": token}, uow) is None
    assert db.store.accounts[returnee["id"]]["email_verified_at"] == clock.at
    [verified] = db.published("account.email_verified")
    assert verified.subject == returnee["id"]
    assert verified.data == {"account_id": returnee["id"], "verified_at": clock.at.isoformat()}
    error = refusal(db, handlers.verify_email, {"token": token})
    assert error.fields == {"token": ["This link is not valid or has expired."]}
    assert translate_errors(error.fields, "zh-CN") == {"token": ["该链接无效或已过期。"]}


def test_an_expired_or_foreign_link_does_not_confirm(db, clock):
    register(db)
    token = link_token(db.published("account.link_issued")[0])
    refusal(db, handlers.verify_email, {"token": "made-up"})
    clock.advance(seconds=LINK_LIFETIMES["verify_email"].total_seconds())
    refusal(db, handlers.verify_email, {"token": token})
    assert db.published("account.email_verified") == []


# change_password


def changing(command, caller, db):
    return handlers.change_password(PasswordChange().load(command), caller, ADDRESS, db)


def test_a_password_change_revokes_every_token_of_the_person(db, clock):
    registration = body()
    returnee = register(db, registration)
    session = sign_in(db, registration["email"], PASSWORD)
    clock.advance(minutes=1)
    me = Caller(returnee["id"], "returnee")
    changing({"current_password": PASSWORD, "new_password": "Another-pass-2"}, me, db)
    [revoked] = db.published("credentials.revoked")
    assert revoked.data == {
        "subject": returnee["id"],
        "not_before": clock.at.isoformat(),
        "reason": "password_changed",
    }
    assert db.store.refresh_tokens[digest(session["refresh_token"])]["revoked_at"] == clock.at
    assert db.store.revoked_subjects == {returnee["id"]: clock.at}  # accounts' own, at once
    refresh(db, session["refresh_token"], error=Unauthorized)
    sign_in(db, registration["email"], PASSWORD, error=Unauthorized)
    assert sign_in(db, registration["email"], "Another-pass-2")["access_token"]


def test_a_password_change_needs_the_current_password_and_the_policy(db):
    registration = body()
    returnee = register(db, registration)
    me = Caller(returnee["id"], "returnee")
    wrong = {"current_password": "Wrong-pass-1", "new_password": "Another-pass-2"}
    with pytest.raises(HttpError) as refused:
        changing(wrong, me, db)
    assert refused.value.fields == {"current_password": ["This is not your current password."]}
    local = registration["email"].split("@")[0]
    error = refusal(db, changing, {"current_password": PASSWORD, "new_password": f"{local}-2026x"},
                    me, opens_units=True)  # fmt: skip
    assert error.fields == {"new_password": ["Must not contain your email address."]}
    assert db.published("credentials.revoked") == []
    # wrong current passwords are failed sign-ins of the account from that address
    for _ in range(SIGN_IN_PER_ACCOUNT_AND_ADDRESS.limit - 1):
        with pytest.raises(HttpError):
            changing(wrong, me, db)
    with pytest.raises(TooManyRequests):
        changing({"current_password": PASSWORD, "new_password": "Another-pass-2"}, me, db)


# request_password_reset, confirm_password_reset


def requesting_reset(email, db, address=ADDRESS):
    return handlers.request_password_reset({"email": email}, address, db, PORTAL)


def confirming(token, password, db):
    command = PasswordResetConfirm().load({"token": token, "password": password})
    return handlers.confirm_password_reset(command, db)


def verified_returnee(db, registration):
    returnee = register(db, registration)
    with db.unit_of_work() as uow:
        handlers.verify_email({"token": link_token(db.published("account.link_issued")[-1])}, uow)
    return returnee


def test_a_reset_link_is_emailed_to_a_confirmed_address_and_sets_the_password_once(db, clock):
    registration = body()
    returnee = verified_returnee(db, registration)
    session = sign_in(db, registration["email"], PASSWORD)
    assert requesting_reset(registration["email"].upper(), db) == {"status": "accepted"}
    issued = db.published("account.link_issued")[-1]
    assert issued.data["purpose"] == "reset_password"
    assert issued.data["link"].startswith(f"{PORTAL}/reset-password?token=")
    assert issued.data["expires_at"] == (NOW + LINK_LIFETIMES["reset_password"]).isoformat()
    clock.advance(minutes=5)
    assert confirming(link_token(issued), "Reset-pass-2026", db) is None
    assert sign_in(db, registration["email"], "Reset-pass-2026")["access_token"]
    [revoked] = db.published("credentials.revoked")
    assert revoked.data["reason"] == "password_reset" and revoked.subject == returnee["id"]
    refresh(db, session["refresh_token"], error=Unauthorized)
    with pytest.raises(HttpError) as again:
        confirming(link_token(issued), "Another-pass-2026", db)
    assert again.value.fields == {"token": ["This link is not valid or has expired."]}


def test_a_reset_request_answers_the_same_for_an_unknown_address_and_sends_nothing(db):
    register(db)
    before = list(db.outbox)
    assert requesting_reset("nobody@example.com", db) == {"status": "accepted"}
    assert db.outbox == before


def test_a_reset_request_for_an_unconfirmed_address_sends_its_verification_link_again(db):
    registration = body()
    register(db, registration)
    requesting_reset(registration["email"], db)
    first, again = db.published("account.link_issued")
    assert again.data["purpose"] == "verify_email"
    with db.unit_of_work() as uow:  # the newest link is the one that works
        handlers.verify_email({"token": link_token(again)}, uow)
    refusal(db, handlers.verify_email, {"token": link_token(first)})


def test_a_reset_link_expires_and_the_new_password_follows_the_policy(db, clock):
    registration = body()
    verified_returnee(db, registration)
    requesting_reset(registration["email"], db)
    token = link_token(db.published("account.link_issued")[-1])
    with pytest.raises(HttpError) as weak:
        confirming(token, registration["email"].split("@")[0] + "-2026x", db)
    assert weak.value.fields == {"password": ["Must not contain your email address."]}
    clock.advance(seconds=LINK_LIFETIMES["reset_password"].total_seconds())
    with pytest.raises(HttpError) as expired:
        confirming(token, "Reset-pass-2026", db)
    assert "token" in expired.value.fields
    sign_in(db, registration["email"], PASSWORD)  # unchanged


def test_reset_requests_are_throttled_per_client_address(db):
    registration = body()
    verified_returnee(db, registration)
    for _ in range(RESET_REQUESTS_PER_ADDRESS.limit):
        requesting_reset(registration["email"], db)
    with pytest.raises(TooManyRequests) as refused:
        requesting_reset("nobody@example.com", db)
    assert refused.value.headers == {"Retry-After": str(RESET_REQUESTS_PER_ADDRESS.window_seconds)}
    requesting_reset(registration["email"], db, address="198.51.100.4")


# register_organization, list_organizations


def test_organizations_are_stored_announced_and_listed_by_name(db, clock):
    with db.unit_of_work() as uow:
        park = handlers.register_organization(
            OrganizationIn().load(
                {"name": "漕河泾开发区", "kind": "industrial_park", "district": "Xuhui"}
            ),
            uow,
        )
        given = str(uuid.uuid4())
        bank = handlers.register_organization(
            OrganizationIn().load({"name": "ICBC Changning", "kind": "bank"}),
            uow,
            organization_id=given,
        )
    assert park["created_at"] == NOW and park["contact_email"] is None
    assert bank["id"] == given
    assert [(e.subject, e.data["name"]) for e in db.published("organization.registered")] == [
        (park["id"], "漕河泾开发区"),
        (given, "ICBC Changning"),
    ]
    assert db.published("organization.registered")[0].data == {
        "organization_id": park["id"],
        "name": "漕河泾开发区",
        "kind": "industrial_park",
        "district": "Xuhui",
        "contact_email": None,
    }
    with db.unit_of_work() as uow:
        assert handlers.list_organizations(uow) == [bank, park]


# register_staff, disable_staff, enable_staff, change_staff_role

STAFF_PASSWORD = "Seeded-pass-1"
STAFF_HASH = hash_password(STAFF_PASSWORD)


def organization(db) -> str:
    with db.unit_of_work() as uow:
        return handlers.register_organization(
            {"name": "Park", "kind": "industrial_park", "district": None, "contact_email": None},
            uow,
        )["id"]


def staff_with_password(db, role: str, organization_id=None) -> dict:
    """A staff member as the bootstrap and the development seed create them."""
    command = {"email": f"{role}.{uuid.uuid4().hex[:6]}@station.example", "name": role.title(),
               "role": role, "organization_id": organization_id}  # fmt: skip
    with db.unit_of_work() as uow:
        return handlers.register_staff(command, uow, password_hash=STAFF_HASH)


def caller(staff: dict) -> Caller:
    return Caller(staff["id"], staff["role"], staff["organization_id"])


def test_staff_are_invited_to_set_their_password_through_an_emailed_link(db, clock):
    park = organization(db)
    command = StaffIn().load(
        {"email": " P@Park.example ", "name": "P", "role": "provider", "organization_id": park}
    )
    with db.unit_of_work() as uow:
        staff = handlers.register_staff(command, uow, PORTAL)
    assert staff == {
        "id": staff["id"],
        "email": "p@park.example",
        "name": "P",
        "role": "provider",
        "organization_id": park,
        "locale": None,
        "email_verified": False,
        "disabled": False,
        "state": "invited",
    }
    assert db.store.staff[staff["id"]] == {"account_id": staff["id"], "name": "P", "locale": None}
    assert db.store.accounts[staff["id"]]["password_hash"] is None  # nobody knows one yet
    [event] = db.published("staff.registered")
    assert event.subject == staff["id"]
    assert event.data == {
        "staff_id": staff["id"],
        "email": "p@park.example",
        "name": "P",
        "role": "provider",
        "organization_id": park,
        "locale": None,
        "email_verified": False,
    }
    [invitation] = db.published("account.link_issued")
    assert invitation.data["purpose"] == "set_password" and invitation.data["locale"] == "zh-CN"
    assert invitation.data["link"].startswith(f"{PORTAL}/set-password?token=")
    assert invitation.data["expires_at"] == (NOW + LINK_LIFETIMES["set_password"]).isoformat()
    sign_in(db, "p@park.example", "", error=Unauthorized)

    clock.advance(days=1)
    confirming(link_token(invitation), "Provider-pass-1", db)
    assert db.published("account.email_verified")[0].data["account_id"] == staff["id"]
    assert db.published("credentials.revoked") == []  # a first password revokes nothing
    token = claims(sign_in(db, "p@park.example", "Provider-pass-1")["access_token"])
    assert token["org"] == park and token["role"] == "provider"


def test_the_staff_list_says_who_is_invited_active_or_disabled_by_name(db):
    park = organization(db)
    admin = staff_with_password(db, "admin")
    with db.unit_of_work() as uow:
        invited = handlers.register_staff(StaffIn().load(
            {"email": "b@park.example", "name": "Bai", "role": "provider",
             "organization_id": park}), uow, PORTAL)  # fmt: skip
        handlers.register_staff(
            StaffIn().load({"email": "c@station.example", "name": "Chen", "role": "advisor"}),
            uow,
            PORTAL,
        )
        handlers.register_staff(
            StaffIn().load({"email": "d@district.example", "name": "Dong", "role": "official"}),
            uow,
            PORTAL,
        )
    [_, second, _] = db.published("account.link_issued")
    confirming(link_token(second), "Advisor-pass-1", db)
    with db.unit_of_work() as uow:
        handlers.disable_staff(invited["id"], caller(admin), uow)
    with db.unit_of_work() as uow:
        found = handlers.list_staff(uow)
    assert [(m["name"], m["role"], m["organization_id"], m["state"]) for m in found] == sorted(
        [("Bai", "provider", park, "disabled"), ("Chen", "advisor", None, "active"),
         ("Dong", "official", None, "invited"),
         (admin["name"], "admin", None, "active")])  # fmt: skip


def test_an_invitation_is_sent_again_on_a_reset_request(db):
    with db.unit_of_work() as uow:
        handlers.register_staff(StaffIn().load({"email": "a@station.example", "name": "A",
                                                "role": "advisor"}), uow, PORTAL)  # fmt: skip
    requesting_reset("a@station.example", db)
    first, again = db.published("account.link_issued")
    assert again.data["purpose"] == "set_password"
    with pytest.raises(HttpError):
        confirming(link_token(first), "Advisor-pass-1", db)
    confirming(link_token(again), "Advisor-pass-1", db)


def test_an_official_is_invited_signs_in_with_its_role_and_is_not_announced(db):
    command = StaffIn().load({"email": "Zhou@District.example", "name": "Z", "role": "official"})
    with db.unit_of_work() as uow:
        staff = handlers.register_staff(command, uow, PORTAL)
    assert db.store.accounts[staff["id"]]["role"] == "official"
    # staff.registered v1 publishes its role enum: a new value would break its consumers.
    assert db.published("staff.registered") == []
    [invitation] = db.published("account.link_issued")
    confirming(link_token(invitation), "Official-pass-1", db)
    token = claims(sign_in(db, "zhou@district.example", "Official-pass-1")["access_token"])
    assert (token["sub"], token["role"]) == (staff["id"], "official")
    with pytest.raises(ValidationError) as refused:
        StaffIn().load({**command, "role": "mayor"})
    assert "role" in refused.value.messages


def test_staff_refusals_change_nothing(db):
    command = {
        "email": "a@station.example",
        "name": "A",
        "role": "provider",
        "organization_id": uuid.uuid4(),
    }
    error = refusal(db, handlers.register_staff, command)
    assert error.fields == {"organization_id": ["No such organization."]}
    with db.unit_of_work() as uow:
        handlers.register_staff({**command, "role": "advisor", "organization_id": None}, uow,
                                PORTAL)  # fmt: skip
    taken = {**command, "email": "A@Station.example", "role": "admin", "organization_id": None}
    assert refusal(db, handlers.register_staff, taken, error=Conflict).code == "email_taken"


def test_a_password_is_no_part_of_a_staff_body():
    with pytest.raises(Exception) as refused:
        StaffIn().load({"email": "a@station.example", "name": "A", "role": "advisor",
                        "password": "Advisor-pass-1"})  # fmt: skip
    assert refused.value.messages == {"password": ["Unknown field."]}


def test_a_precomputed_password_hash_is_used_as_given_and_the_address_taken_as_confirmed(db):
    staff = staff_with_password(db, "advisor")
    assert db.store.accounts[staff["id"]]["password_hash"] == STAFF_HASH
    assert staff["email_verified"] is True
    assert db.published("staff.registered")[0].data["email_verified"] is True
    assert db.published("account.link_issued") == []
    assert sign_in(db, staff["email"], STAFF_PASSWORD)["access_token"]


def test_disabling_staff_revokes_their_tokens_and_enabling_lets_them_sign_in(db, clock):
    admin, advisor = staff_with_password(db, "admin"), staff_with_password(db, "advisor")
    session = sign_in(db, advisor["email"], STAFF_PASSWORD)
    clock.advance(minutes=2)
    with db.unit_of_work() as uow:
        disabled = handlers.disable_staff(advisor["id"], caller(admin), uow)
    assert disabled["disabled"] is True
    assert db.store.accounts[advisor["id"]]["disabled_at"] == clock.at
    [revoked] = db.published("credentials.revoked")
    assert revoked.data == {
        "subject": advisor["id"],
        "not_before": clock.at.isoformat(),
        "reason": "disabled",
    }
    assert db.store.refresh_tokens[digest(session["refresh_token"])]["revoked_at"] == clock.at
    with db.unit_of_work() as uow:  # again: nothing more to revoke
        handlers.disable_staff(advisor["id"], caller(admin), uow)
    assert len(db.published("credentials.revoked")) == 1

    with db.unit_of_work() as uow:
        assert handlers.enable_staff(advisor["id"], uow)["disabled"] is False
    assert sign_in(db, advisor["email"], STAFF_PASSWORD)["access_token"]


def test_staff_refusals_of_disabling_and_role_changes(db):
    admin = staff_with_password(db, "admin")
    error = refusal(db, handlers.disable_staff, admin["id"], caller(admin), error=Conflict)
    assert error.message_in("zh-CN") == "您不能停用自己的账户。"
    role = StaffRole().load({"role": "advisor"})
    error = refusal(db, handlers.change_staff_role, admin["id"], role, caller(admin),
                    error=Conflict)  # fmt: skip
    assert error.message_in("zh-CN") == "您不能更改自己的角色。"
    returnee = register(db)  # not staff
    for unknown in (returnee["id"], str(uuid.uuid4()), "not-a-uuid"):
        refusal(db, handlers.disable_staff, unknown, caller(admin), error=NotFound)
        refusal(db, handlers.enable_staff, unknown, error=NotFound)
        refusal(db, handlers.change_staff_role, unknown, role, caller(admin), error=NotFound)
    advisor = staff_with_password(db, "advisor")
    nowhere = {"role": "provider", "organization_id": uuid.uuid4()}
    error = refusal(db, handlers.change_staff_role, advisor["id"], nowhere, caller(admin))
    assert error.fields == {"organization_id": ["No such organization."]}


def test_a_role_change_is_announced_and_revokes_the_tokens_of_the_old_role(db, clock):
    park = organization(db)
    admin, advisor = staff_with_password(db, "admin"), staff_with_password(db, "advisor")
    clock.advance(minutes=3)
    command = StaffRole().load({"role": "provider", "organization_id": park})
    with db.unit_of_work() as uow:
        changed = handlers.change_staff_role(advisor["id"], command, caller(admin), uow)
    assert (changed["role"], changed["organization_id"]) == ("provider", park)
    [updated] = db.published("staff.updated")
    assert updated.subject == advisor["id"]
    assert updated.data == {
        "staff_id": advisor["id"],
        "email": advisor["email"],
        "name": "Advisor",
        "role": "provider",
        "organization_id": park,
        "locale": None,
        "email_verified": True,
    }
    [revoked] = db.published("credentials.revoked")
    assert revoked.data["reason"] == "role_changed" and revoked.data["subject"] == advisor["id"]
    assert claims(sign_in(db, advisor["email"], STAFF_PASSWORD)["access_token"])["role"] == (
        "provider"
    )
    with db.unit_of_work() as uow:  # the same role again: nothing changes, nothing is said
        handlers.change_staff_role(advisor["id"], command, caller(admin), uow)
    assert len(db.published("staff.updated")) == 1


# the memory store is the SQL store's twin


def test_the_memory_store_has_the_sql_stores_methods_and_parameters():
    def methods(cls):
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert methods(MemoryStore) == methods(AccountsStore)


def test_the_profile_is_stored_as_its_json_document(db):
    returnee = register(db, V1_BODY)
    stored = db.store.returnees[returnee["id"]]["profile"]
    assert stored["birth_date"] == "1992-05-14" and "email" not in stored
    assert returnee["birth_date"] == date(1992, 5, 14)


# import_returnees, import_organizations, list_returnees

ADMIN = Caller(str(uuid.uuid4()), "admin")


def imported_row(**changes) -> dict:
    """A spreadsheet's row as station sends it: text cells where the file has text."""
    row = body(**changes)
    row.pop("password")
    row["consents"] = {"matching": "true", "notifications": "1", "share_with_partners": "false"}
    row["company"] = (
        {**row["company"], "registered_capital_cny": "500000"} if row.get("company") else None
    )
    return row


def importing(db, rows: list[dict]) -> dict:
    from services.accounts.service import AccountsService

    schema = AccountsService.import_returnees.nameko_entrypoints.copy().pop().body_schema
    with db.unit_of_work() as uow:
        return handlers.import_returnees(schema.load({"rows": rows}), ADMIN, uow, SEALER, PORTAL)


def test_imported_returnees_have_no_password_and_are_invited_to_set_one(db):
    rows = [imported_row(consent_reference="Form 2026-117"), imported_row()]
    answer = importing(db, rows)
    assert (answer["created"], answer["existing"], answer["invalid"]) == (2, 0, 0)
    first, second = (r["id"] for r in answer["results"])
    assert db.store.accounts[first]["password_hash"] is None
    registered = db.published("returnee.registered")
    assert [e.data["returnee_id"] for e in registered] == [first, second]
    assert all(e.data["email_verified"] is False for e in registered)
    links = db.published("account.link_issued")
    assert [(e.data["account_id"], e.data["purpose"]) for e in links] == [
        (first, "set_password"),
        (second, "set_password"),
    ]
    # The invitation's link sets the password and confirms the address.
    handlers.confirm_password_reset(
        PasswordResetConfirm().load({"token": link_token(links[0]), "password": "Welcome2026x"}),
        db,
    )
    assert db.store.accounts[first]["password_hash"].startswith("$argon2id$")
    assert db.store.accounts[first]["email_verified_at"] == NOW


def test_imported_consents_need_a_reference_and_record_the_admin_and_the_evidence(db):
    answer = importing(db, [imported_row(consent_reference="Form 2026-117"), imported_row()])
    with_reference, without = (r["id"] for r in answer["results"])
    with db.unit_of_work() as uow:
        history = handlers.read_consents(with_reference, uow)["history"]
        assert {(h["purpose"], h["granted"]) for h in history} == {
            ("matching", True),
            ("notifications", True),
            ("share_with_partners", False),
        }
        assert {(h["source"], h["actor_id"], h["evidence"]) for h in history} == {
            ("import", ADMIN.id, "Form 2026-117")
        }
        current = handlers.read_consents(without, uow)["current"]
    assert {p: c["granted"] for p, c in current.items()} == {
        "matching": False,
        "notifications": False,
        "share_with_partners": False,
    }
    assert db.published("returnee.registered")[1].data["consents"]["matching"] is False


def test_reimporting_creates_nothing_twice_and_a_repeated_email_is_the_first_rows(db):
    row = imported_row()
    first = importing(db, [row, {**row, "name": "Another name"}])
    assert [r["status"] for r in first["results"]] == ["created", "exists"]
    assert first["results"][0]["id"] == first["results"][1]["id"]
    events = len(db.outbox)
    again = importing(db, [{**row, "email": row["email"].upper()}])
    assert again["results"] == [
        {"row": 0, "status": "exists", "id": first["results"][0]["id"], "errors": []}
    ]
    assert len(db.outbox) == events


def test_invalid_rows_are_refused_each_with_every_field_in_both_languages(db):
    staff = handlers_staff(db)
    rows = [
        imported_row(email="not an email", industry="mining"),
        imported_row(birth_date="2030-01-01"),
        {**imported_row(), "education": [{**imported_row()["education"][0], "degree": None}]},
        imported_row(email=staff["email"]),
        imported_row(),
    ]
    answer = importing(db, rows)
    assert [r["status"] for r in answer["results"]] == [
        "invalid", "invalid", "invalid", "invalid", "created",
    ]  # fmt: skip
    errors = {r["row"]: {e["field"]: e for e in r["errors"]} for r in answer["results"]}
    assert set(errors[0]) == {"email", "industry"}
    assert errors[0]["email"]["message_zh"] == "不是有效的电子邮箱地址。"
    assert errors[1]["birth_date"]["message_en"] == "Must not be in the future."
    assert errors[1]["birth_date"]["message_zh"] == "不能是将来的日期。"
    assert set(errors[2]) == {"education.0.degree"}
    assert errors[3]["email"]["message_en"] == "This email is already registered."
    assert len(db.published("returnee.registered")) == 1


def handlers_staff(db) -> dict:
    with db.unit_of_work() as uow:
        command = StaffIn().load({"email": "advisor@example.com", "name": "A", "role": "advisor"})
        return handlers.register_staff(command, uow, PORTAL)


def test_organizations_are_imported_once_by_name(db):
    rows = [
        {"name": "Changning Bank", "kind": "bank"},
        {"name": "Park", "kind": "castle", "contact_email": "x"},
        {"name": "Changning Bank", "kind": "bank"},
    ]
    with db.unit_of_work() as uow:
        first = handlers.import_organizations({"rows": rows}, uow)
    assert [r["status"] for r in first["results"]] == ["created", "invalid", "exists"]
    assert {e["field"] for e in first["results"][1]["errors"]} == {"kind", "contact_email"}
    with db.unit_of_work() as uow:
        again = handlers.import_organizations({"rows": rows[:1]}, uow)
    assert again["results"][0] == {**first["results"][0], "status": "exists"}
    assert len(db.published("organization.registered")) == 1


def test_returnees_are_listed_a_page_at_a_time_oldest_first(db, clock):
    answer = importing(db, [imported_row(), imported_row(), imported_row()])
    with db.unit_of_work() as uow:
        everyone = handlers.list_returnees({"limit": 10, "offset": 0}, uow)
        page = handlers.list_returnees({"limit": 2, "offset": 1}, uow)
    assert {r["id"] for r in everyone} == {r["id"] for r in answer["results"]}
    assert [r["id"] for r in page] == [r["id"] for r in everyone[1:3]]
