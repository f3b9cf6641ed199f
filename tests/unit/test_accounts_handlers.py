"""accounts' use cases over the in-memory unit of work: the state each leaves and the events it
publishes, refusals included. Bodies are loaded by the entrypoints' own schemas."""

import base64
import copy
import inspect
import uuid
from datetime import UTC, date, datetime

import pytest
from marshmallow import ValidationError

from chassis.auth import TokenCodec
from chassis.clock import FrozenClock
from chassis.i18n import translate_errors
from chassis.uow import MemoryDatabase
from chassis.web import Conflict, HttpError, NotFound, TooManyRequests, Unauthorized
from contracts.examples import EXAMPLES
from services.accounts import handlers
from services.accounts.credentials import PER_EMAIL, hash_password
from services.accounts.memory import MemoryStore
from services.accounts.schemas import (
    ConsentUpdate,
    OrganizationIn,
    ProfileChanges,
    Registration,
    StaffIn,
)
from services.accounts.sealing import Sealer
from services.accounts.store import AccountsStore

PASSWORD = "Returnee2026!"
# 07:30 on 1 October in Shanghai, when it is still 30 September in UTC (the system clock's zone).
NOW = datetime(2026, 9, 30, 23, 30, tzinfo=UTC)
SEALER = Sealer(base64.b64encode(b"k" * 32).decode())
CODEC = TokenCodec("HS256", "s" * 40, "", "", "issuer", "audience", 600)

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


def register(db, registration: dict | None = None) -> dict:
    with db.unit_of_work() as uow:
        return handlers.register_returnee(Registration().load(registration or body()), uow, SEALER)


def change(db, returnee_id: str, changes: dict) -> dict:
    with db.unit_of_work() as uow:
        return handlers.change_returnee(returnee_id, ProfileChanges().load(changes), uow)


def registering(command, uow):
    return handlers.register_returnee(command, uow, SEALER)


def refusal(db, use_case, *args, error=HttpError) -> HttpError:
    """The refusal of `use_case(*args, uow)`, which must leave the state and outbox as they were."""
    store, outbox = copy.deepcopy(db.store.__dict__), list(db.outbox)
    with pytest.raises(error) as refused, db.unit_of_work() as uow:
        use_case(*args, uow)
    assert db.store.__dict__ == store and db.outbox == outbox
    return refused.value


# register_returnee


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
    assert db.outbox == [event]


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
    error = refusal(db, registering, Registration().load(early))
    assert error.fields == {"return_date": ["Must not be before the end of study abroad."]}


def test_field_errors_and_profile_rules_are_answered_together(db):
    invalid = body(email="not-an-email", return_date="2026-12-01")  # the future
    invalid["education"][1]["degree"] = "diploma"
    error = refusal(db, registering, Registration().load(invalid))
    assert error.status == 400 and error.code == "invalid"
    assert error.fields == {
        "email": ["Not a valid email address."],
        "education": {1: {"degree": ["Must be one of: bachelor, master, phd."]}},
        "return_date": ["Must not be in the future."],
    }
    # a rule and a field error on the same entry: both named, under the entry
    same_entry = body(birth_date="2011-01-01")
    same_entry["education"][0].update(degree="diploma", start_date="2010-09-01")
    error = refusal(db, registering, Registration().load(same_entry))
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
    error = refusal(db, registering, Registration().load(body(return_date="2026-10-02")))
    assert error.fields == {"return_date": ["Must not be in the future."]}


def test_a_taken_email_is_a_conflict_and_changes_nothing(db):
    first = body()
    register(db, first)
    again = Registration().load({**first, "email": first["email"].upper()})
    error = refusal(db, registering, again, error=Conflict)
    assert error.code == "email_taken" and error.message_in("zh-CN") == "该邮箱已注册。"
    assert len(db.published("returnee.registered")) == 1


# read_returnee


def test_reading_a_returnee_answers_the_profile_and_404_for_what_names_nothing(db):
    returnee = register(db)
    with db.unit_of_work() as uow:
        assert handlers.read_returnee(returnee["id"], uow) == returnee
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        refusal(db, handlers.read_returnee, unknown, error=NotFound)
    assert db.published("returnee.registered") == db.outbox  # reading publishes nothing


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
    other = register(db)
    clock.advance(hours=2)
    with db.unit_of_work() as uow:
        assert handlers.erase_returnee(returnee["id"], uow) is None
    store = db.store
    assert returnee["id"] not in store.accounts and returnee["id"] not in store.returnees
    assert all(owner != returnee["id"] for owner, _ in store.consents)
    assert all(h["returnee_id"] != returnee["id"] for h in store.history)
    assert [k for k, _ in store.login_failures] == ["address:203.0.113.5"]
    assert store.erasures == {returnee["id"]: clock.at}
    # what was published about the person is forgotten; what announces the erasure is not
    assert [(e.type, e.subject) for e in db.outbox] == [
        ("returnee.registered", other["id"]),
        ("returnee.erased", returnee["id"]),
    ]
    assert db.outbox[-1].data == {"returnee_id": returnee["id"]}
    refusal(db, handlers.erase_returnee, returnee["id"], error=NotFound)


# issue_token


def sign_in(db, email, password, address="203.0.113.5", error=None):
    command = {"email": email, "password": password}
    if error is None:
        return handlers.issue_token(command, address, db, CODEC)
    with pytest.raises(error) as refused:
        handlers.issue_token(command, address, db, CODEC)
    return refused.value


def test_signing_in_issues_a_token_with_the_accounts_claims(db):
    registration = body()
    returnee = register(db, registration)
    answer = sign_in(db, registration["email"].upper(), PASSWORD)
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 600
    caller = CODEC.verify(answer["access_token"])
    assert (caller.id, caller.role) == (returnee["id"], "returnee")
    assert db.outbox == db.published("returnee.registered")  # signing in publishes nothing


def test_failed_sign_ins_are_recorded_throttled_and_forgotten_after_the_window(db, clock):
    registration = body()
    register(db, registration)
    error = sign_in(db, "nobody@example.com", PASSWORD, error=Unauthorized)
    assert error.code == "invalid_credentials"
    assert error.message_in("zh-CN") == "邮箱或密码错误。"
    assert db.store.login_failures == [
        ("email:nobody@example.com", NOW),
        ("address:203.0.113.5", NOW),
    ]
    for _ in range(PER_EMAIL.limit):
        sign_in(
            db, registration["email"], "Wrong-pass-1", address="198.51.100.1", error=Unauthorized
        )
    blocked = sign_in(db, registration["email"], PASSWORD, error=TooManyRequests)
    assert blocked.headers == {"Retry-After": str(PER_EMAIL.window_seconds)}
    assert blocked.message_in("zh-CN") == "登录失败次数过多，请稍后再试。"

    clock.advance(seconds=PER_EMAIL.window_seconds + 1)
    assert sign_in(db, registration["email"], PASSWORD)["access_token"]
    keys = {k for k, _ in db.store.login_failures}
    assert f"email:{registration['email']}" not in keys  # a success clears the email's count
    assert "address:198.51.100.1" in keys


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


# register_staff


def organization(db) -> str:
    with db.unit_of_work() as uow:
        return handlers.register_organization(
            {"name": "Park", "kind": "industrial_park", "district": None, "contact_email": None},
            uow,
        )["id"]


def test_staff_are_stored_and_announced(db):
    park = organization(db)
    command = StaffIn().load(
        {
            "email": " P@Park.example ",
            "password": "Provider-1x",
            "name": "P",
            "role": "provider",
            "organization_id": park,
        }
    )
    with db.unit_of_work() as uow:
        staff = handlers.register_staff(command, uow)
    assert staff["email"] == "p@park.example" and str(staff["organization_id"]) == park
    assert db.store.staff[staff["id"]] == {"account_id": staff["id"], "name": "P", "locale": None}
    assert db.store.accounts[staff["id"]]["role"] == "provider"
    [event] = db.published("staff.registered")
    assert event.subject == staff["id"]
    assert event.data == {
        "staff_id": staff["id"],
        "email": "p@park.example",
        "name": "P",
        "role": "provider",
        "organization_id": park,
        "locale": None,
    }
    assert (
        CODEC.verify(sign_in(db, "p@park.example", "Provider-1x")["access_token"]).organization_id
        == park
    )


def test_an_official_signs_in_with_its_role_and_is_not_announced(db):
    command = StaffIn().load(
        {
            "email": "Zhou@District.example",
            "password": "Official-1x",
            "name": "Z",
            "role": "official",
        }
    )
    with db.unit_of_work() as uow:
        staff = handlers.register_staff(command, uow)
    assert db.store.accounts[staff["id"]]["role"] == "official"
    # staff.registered v1 publishes its role enum: a new value would break its consumers.
    assert db.published("staff.registered") == []
    caller = CODEC.verify(sign_in(db, "zhou@district.example", "Official-1x")["access_token"])
    assert (caller.id, caller.role) == (staff["id"], "official")
    with pytest.raises(ValidationError) as refused:
        StaffIn().load({**command, "role": "mayor", "password": "Official-1x"})
    assert "role" in refused.value.messages


def test_staff_refusals_change_nothing(db):
    command = {
        "email": "a@station.example",
        "password": "Advisor-pass-1",
        "name": "A",
        "role": "provider",
        "organization_id": uuid.uuid4(),
    }
    error = refusal(db, handlers.register_staff, command)
    assert error.fields == {"organization_id": ["No such organization."]}
    with db.unit_of_work() as uow:
        handlers.register_staff({**command, "role": "advisor", "organization_id": None}, uow)
    taken = {**command, "email": "A@Station.example", "role": "admin", "organization_id": None}
    assert refusal(db, handlers.register_staff, taken, error=Conflict).code == "email_taken"


def test_a_precomputed_password_hash_is_used_as_given(db):
    password_hash = hash_password("Seeded-pass-1")
    with db.unit_of_work() as uow:
        staff = handlers.register_staff(
            {"email": "seed@station.example", "name": "S", "role": "advisor"},
            uow,
            password_hash=password_hash,
        )
    assert db.store.accounts[staff["id"]]["password_hash"] == password_hash
    assert sign_in(db, "seed@station.example", "Seeded-pass-1")["access_token"]


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
