"""Every activities use case in memory: the state each handler leaves (through the memory store)
and the events it publishes, refusals included. Commands are loaded by the entrypoints' own
schemas and events checked by the contract, as the service receives them; time is frozen."""

import ast
import inspect
import re
import string
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from marshmallow import ValidationError

from chassis.auth import Caller
from chassis.clock import SHANGHAI, FrozenClock
from chassis.errors import Conflict, Forbidden, HttpError, NotFound, Unprocessable
from chassis.uow import MemoryDatabase
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.activities import activity, handlers, schemas, seats
from services.activities.memory import MemoryStore
from services.activities.messages import MESSAGES
from services.activities.schemas import (
    ActivityIn,
    ActivityQuery,
    AgreementIn,
    CheckInIn,
    CloseIn,
    RegistrationQuery,
)
from services.activities.store import ActivitiesStore

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
PROFILE = EXAMPLES[("returnee.registered", 1)].data  # biotech, registered, office_space, ...
WRSA = str(uuid.uuid4())
BEIXINJING = str(uuid.uuid4())
ADVISOR = Caller(str(uuid.uuid4()), "advisor")
ADMIN = Caller(str(uuid.uuid4()), "admin")


# ---------------------------------------------------------------- helpers


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def db(clock):
    """The service's state with two organizations known."""
    db = MemoryDatabase("activities", MemoryStore(), clock=clock)
    for organization_id, name in ((WRSA, "WRSA Changning"), (BEIXINJING, "Beixinjing")):
        db.handle(handlers.remember_organization, organization(organization_id, name))
    return db


def run(db, use_case, *args):
    with db.unit_of_work() as uow:
        return use_case(*args, uow)


def received(type_, data, producer="accounts", time=None, version=1):
    """An event as a subscriber receives it: created by its producer, loaded by the contract."""
    subject = next(
        str(data[k])
        for k in ("activity_id", "returnee_id", "staff_id", "organization_id")
        if data.get(k)
    )
    attrs = {"time": time} if time else {}
    created = CATALOG.create(producer, type_, data, subject=subject, version=version, **attrs)
    return CATALOG.check(created)


def organization(organization_id, name):
    data = {"organization_id": organization_id, "name": name, "kind": "alumni_association"}
    return received("organization.registered", data)


def join(db, returnee_id=None, time=None, consent=True, **changes):
    """A returnee registers with accounts and activities takes them in."""
    returnee_id = returnee_id or str(uuid.uuid4())
    consents = {**PROFILE["consents"], "notifications": consent}
    data = {**PROFILE, "consents": consents, **changes, "returnee_id": returnee_id}
    db.handle(handlers.take_returnee, received("returnee.registered", data, time=time or T0))
    return returnee_id


def provider(db, organization_id=WRSA, name="Chen Jing"):
    staff_id = str(uuid.uuid4())
    data = {
        "staff_id": staff_id,
        "email": f"{staff_id[:8]}@example.cn",
        "name": name,
        "role": "provider",
        "organization_id": organization_id,
    }
    db.handle(handlers.remember_provider, received("staff.registered", data))
    return Caller(staff_id, "provider", organization_id)


def activity_body(**changes):
    body = {
        "kind": "exchange",
        "title": {"zh-CN": "海归人才交流会", "en": "Returnee exchange session"},
        "summary": {"zh-CN": "交流与合作", "en": "Exchange and cooperation"},
        "starts_at": (T0 + timedelta(days=7)).isoformat(),
        "ends_at": (T0 + timedelta(days=7, hours=3)).isoformat(),
        "venue": {"name": "Service station", "address": "1 Example Road, Changning"},
        "capacity": 2,
        "organizer_ids": [WRSA, BEIXINJING],
    }
    body.update(changes)
    return body


def publish(db, caller=ADVISOR, **changes):
    return run(db, handlers.publish_activity, ActivityIn().load(activity_body(**changes)), caller)


def returnee(returnee_id=None):
    return Caller(returnee_id or str(uuid.uuid4()), "returnee")


def sign_up(db, activity_id, caller):
    return run(db, lambda uow: handlers.register(activity_id, caller, uow))


def published_event(db, activity_id):
    event = next(e for e in db.published("activity.published") if e.subject == activity_id)
    return CATALOG.check(event)


# ---------------------------------------------------------------- the seams


def test_the_memory_store_answers_to_the_sql_stores_methods():
    def public(cls):
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert public(MemoryStore) == public(ActivitiesStore)


def test_every_handler_has_a_test_here():
    used = set(re.findall(r"handlers\.(\w+)", Path(__file__).read_text()))
    public = {
        name
        for name, f in inspect.getmembers(handlers, inspect.isfunction)
        if not name.startswith("_") and f.__module__ == handlers.__name__
    }
    assert public - used == set()


def test_every_message_raised_is_in_the_catalog_with_its_placeholders():
    """Texts raised (errors, refusals) or given as field errors, in every module that has any;
    each in the catalog with its placeholders supplied, and no catalog entry unused."""

    def placeholders(text):
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    raisers = ("NotFound", "Conflict", "Forbidden", "HttpError", "Unprocessable", "Refusal",
               "ValidationError")  # fmt: skip
    raised = set()
    for module in (handlers, seats, activity, schemas):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in raisers:
                texts = [a.value for a in node.args[:1] if isinstance(a, ast.Constant)]
                params = {k.arg for k in node.keywords} - {"fields", "code", "headers"}
                if len(node.args) > 1 and isinstance(node.args[1], ast.Dict):  # Refusal(t, {})
                    params |= {k.value for k in node.args[1].keys}
            elif isinstance(node, ast.List) or (
                isinstance(node, ast.Dict) and module is not schemas
            ):
                # field errors {"field": ["Message."]}, and tables of them
                texts = [
                    e.value
                    for e in (node.elts if isinstance(node, ast.List) else node.values)
                    if isinstance(e, ast.Constant)
                ]
                params = set()
            else:
                continue
            for text in (t for t in texts if isinstance(t, str) and t.endswith(".")):
                assert text in MESSAGES, text
                assert placeholders(text) | placeholders(MESSAGES[text]) <= params, text
                raised.add(text)
    assert raised == set(MESSAGES)  # and none is left over


# ---------------------------------------------------------------- activities


def test_publish_activity_stores_it_and_publishes_it(db):
    shown = publish(db)

    stored = db.store.activity(shown["id"])
    assert stored["status"] == "published" and stored["confirmed"] == 0
    assert stored["organizer_ids"] == [WRSA, BEIXINJING]
    assert stored["published_by"] == ADVISOR.id
    assert shown["seats_left"] == 2 and shown["waitlisted"] == 0
    assert [o["name"] for o in shown["organizers"]] == ["WRSA Changning", "Beixinjing"]
    event = published_event(db, shown["id"])
    assert event.data["audience"] == {"industries": [], "stages": [], "needs": []}
    assert event.data["starts_at"] == T0 + timedelta(days=7)
    assert [str(o) for o in event.data["organizer_ids"]] == [WRSA, BEIXINJING]


def test_publish_activity_refuses_the_past_and_unknown_organizers_naming_each(db):
    with pytest.raises(HttpError) as refused:
        publish(
            db,
            starts_at=(T0 - timedelta(hours=1)).isoformat(),
            organizer_ids=[WRSA, str(uuid.uuid4())],
        )
    assert refused.value.fields == {
        "starts_at": ["Must be in the future."],
        "organizer_ids": {"1": ["Unknown organization."]},
    }
    assert db.published("activity.published") == [] and db.store.activities_by_id == {}


def test_the_publication_schema_names_every_invalid_field():
    with pytest.raises(ValidationError) as invalid:
        ActivityIn().load(
            activity_body(
                kind="party",
                ends_at=(T0 + timedelta(days=6)).isoformat(),
                registration_closes_at=(T0 + timedelta(days=8)).isoformat(),
                capacity=0,
            )
        )
    assert set(invalid.value.messages) == {"kind", "capacity"}
    with pytest.raises(ValidationError) as invalid:
        ActivityIn().load(
            activity_body(
                ends_at=(T0 + timedelta(days=6)).isoformat(),
                registration_closes_at=(T0 + timedelta(days=8)).isoformat(),
            )
        )
    assert invalid.value.messages == {
        "ends_at": ["Must be after starts_at."],
        "registration_closes_at": ["Must not be after starts_at."],
    }


def test_list_activities_pages_soonest_first_from_now(db, clock):
    later = publish(
        db,
        starts_at=(T0 + timedelta(days=9)).isoformat(),
        ends_at=(T0 + timedelta(days=9, hours=2)).isoformat(),
    )
    sooner = publish(db)
    past = publish(
        db,
        starts_at=(T0 + timedelta(hours=1)).isoformat(),
        ends_at=(T0 + timedelta(hours=2)).isoformat(),
    )
    clock.advance(hours=3)  # the third is over

    first = run(db, handlers.list_activities, ActivityQuery().load({"limit": "1"}))
    assert [a["id"] for a in first["items"]] == [sooner["id"]] and first["next"]
    second = run(
        db, handlers.list_activities, ActivityQuery().load({"limit": "1", "next": first["next"]})
    )
    assert [a["id"] for a in second["items"]] == [later["id"]] and second["next"] is None
    everything = run(db, handlers.list_activities, ActivityQuery().load({"from": T0.isoformat()}))
    assert [a["id"] for a in everything["items"]] == [past["id"], sooner["id"], later["id"]]
    until = (T0 + timedelta(days=8)).isoformat()
    bounded = run(db, handlers.list_activities, ActivityQuery().load({"to": until}))
    assert [a["id"] for a in bounded["items"]] == [sooner["id"]]
    with pytest.raises(ValidationError) as invalid:
        ActivityQuery().load({"next": "not-a-cursor"})
    assert invalid.value.messages == {"next": ["Not a valid cursor."]}


def test_get_activity_shows_seats_waitlist_and_agreements_to_anyone(db):
    shown = publish(db, capacity=1)
    signer = join(db)
    sign_up(db, shown["id"], returnee())
    sign_up(db, shown["id"], returnee())
    parties = [{"organization_id": WRSA}, {"returnee_id": signer}]
    body = AgreementIn().load({"title": "MoU", "parties": parties, "signed_on": "2026-12-05"})
    run(db, lambda uow: handlers.record_agreement(shown["id"], body, ADVISOR, uow))

    public = run(db, lambda uow: handlers.get_activity(shown["id"], None, uow))
    assert (public["seats_left"], public["waitlisted"]) == (0, 1)
    assert public["agreements"][0]["parties"] == [
        {"kind": "organization", "organization_id": WRSA, "name": "WRSA Changning"},
        {"kind": "returnee"},  # who, only staff see
    ]
    staff = run(db, lambda uow: handlers.get_activity(shown["id"], ADVISOR, uow))
    assert staff["agreements"][0]["parties"][1] == {"kind": "returnee", "returnee_id": signer}
    with pytest.raises(NotFound):
        run(db, lambda uow: handlers.get_activity(str(uuid.uuid4()), None, uow))
    with pytest.raises(NotFound):
        run(db, lambda uow: handlers.get_activity("not-an-id", None, uow))


def test_cancel_activity_once_before_it_ends(db, clock):
    shown = publish(db)
    cancelled = run(db, lambda uow: handlers.cancel_activity(shown["id"], ADMIN, uow))

    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] == T0
    assert [e.data for e in db.published("activity.cancelled")] == [
        {"activity_id": shown["id"], "cancelled_by": "admin"}
    ]
    with pytest.raises(Conflict) as again:
        run(db, lambda uow: handlers.cancel_activity(shown["id"], ADMIN, uow))
    assert again.value.message == "The activity is cancelled."
    over = publish(db)
    clock.advance(days=8)
    with pytest.raises(Conflict) as late:
        run(db, lambda uow: handlers.cancel_activity(over["id"], ADMIN, uow))
    assert late.value.message == "The activity is over; it can no longer be cancelled."


# ---------------------------------------------------------------- invitations


def test_invite_audience_invites_the_audience_that_consented_once(db):
    fits = join(db, industry="biotech")
    join(db, industry="ai")  # outside the audience
    join(db, industry="biotech", consent=False)  # in it, without consent
    needs = join(db, industry="biotech", needs=["legal"])  # no need in common
    shown = publish(db, audience={"industries": ["biotech"], "needs": ["office_space", "legal"]})
    event = published_event(db, shown["id"])

    assert db.handle(handlers.invite_audience, event, batch_size=1) == 2
    assert db.handle(handlers.invite_audience, event) is None  # redelivered: nothing again
    assert sorted(e.data["returnee_id"] for e in db.published("invitation.issued")) == sorted(
        [fits, needs]
    )
    assert set(db.store.invitations) == {(shown["id"], fits), (shown["id"], needs)}


def test_invite_audience_of_a_cancelled_activity_invites_nobody(db):
    join(db)
    shown = publish(db)
    run(db, lambda uow: handlers.cancel_activity(shown["id"], ADMIN, uow))
    assert db.handle(handlers.invite_audience, published_event(db, shown["id"])) == 0
    assert db.published("invitation.issued") == []


# ---------------------------------------------------------------- registrations


def test_register_takes_the_seats_then_the_waitlist_in_order_of_arrival(db):
    shown = publish(db, capacity=2)
    people = [returnee() for _ in range(4)]
    answers = [sign_up(db, shown["id"], p) for p in people]

    assert [(a["status"], a["position"]) for a in answers] == [
        ("confirmed", None),
        ("confirmed", None),
        ("waitlisted", 1),
        ("waitlisted", 2),
    ]
    assert len(answers[0]["check_in_code"]) == seats.CODE_LENGTH
    assert "check_in_code" not in answers[2]  # no seat, no code to show
    assert db.store.activity(shown["id"])["confirmed"] == 2
    confirmed = [CATALOG.check(e) for e in db.published("registration.confirmed")]
    assert [e.data["check_in_code"] for e in confirmed] == [a["check_in_code"] for a in answers[:2]]
    assert all(e.data["promoted"] is False for e in confirmed)
    assert confirmed[0].data["activity"]["title"]["en"] == "Returnee exchange session"
    assert [e.data["position"] for e in db.published("registration.waitlisted")] == [1, 2]
    assert str(confirmed[0].data["returnee_id"]) == people[0].id


def test_a_provider_registers_for_their_organization(db):
    chen = provider(db)
    shown = publish(db)
    answer = sign_up(db, shown["id"], chen)
    assert answer["registrant_role"] == "provider" and answer["organization_id"] == WRSA
    data = db.published("registration.confirmed")[0].data
    assert (data["staff_id"], data["returnee_id"], data["organization_id"]) == (chen.id, None, WRSA)
    with pytest.raises(Forbidden):
        sign_up(db, shown["id"], Caller(str(uuid.uuid4()), "provider", None))


def test_register_twice_or_too_late_is_refused_with_the_reason(db, clock):
    li = returnee()
    shown = publish(db, registration_closes_at=(T0 + timedelta(days=6)).isoformat())
    sign_up(db, shown["id"], li)
    with pytest.raises(Conflict) as twice:
        sign_up(db, shown["id"], li)
    assert twice.value.message == "You are registered for this activity already."

    clock.advance(days=6)
    with pytest.raises(Conflict) as closed:
        sign_up(db, shown["id"], returnee())
    assert closed.value.message == "Registration closed at 2026-12-04 10:00."
    assert closed.value.message_in("zh-CN") == "报名已于 2026-12-04 10:00 截止。"
    open_until_start = publish(db, starts_at=(T0 + timedelta(days=6, hours=1)).isoformat())
    clock.advance(hours=2)
    with pytest.raises(Conflict) as started:
        sign_up(db, open_until_start["id"], returnee())
    assert started.value.message == "The activity has started; registration is over."
    cancelled = publish(db)
    run(db, lambda uow: handlers.cancel_activity(cancelled["id"], ADMIN, uow))
    with pytest.raises(Conflict) as gone:
        sign_up(db, cancelled["id"], returnee())
    assert gone.value.message == "The activity is cancelled."
    assert len(db.published("registration.confirmed")) == 1  # nothing else went through
    with pytest.raises(NotFound):
        sign_up(db, str(uuid.uuid4()), returnee())


def test_get_registration_shows_the_code_to_the_registrant_only(db):
    li, wang = returnee(join(db)), returnee()
    shown = publish(db)
    mine = sign_up(db, shown["id"], li)

    def get(caller, registration_id=mine["id"], activity_id=shown["id"]):
        return run(
            db, lambda uow: handlers.get_registration(activity_id, registration_id, caller, uow)
        )

    own = get(li)
    assert own["check_in_code"] == mine["check_in_code"] and "name" not in own
    staff = get(ADVISOR)
    assert "check_in_code" not in staff and staff["name"] == PROFILE["name"]
    for stranger in (wang, Caller(str(uuid.uuid4()), "provider", WRSA)):
        with pytest.raises(NotFound):  # nobody reads another's registration or code
            get(stranger)
    with pytest.raises(NotFound):  # nor through another activity's path
        get(li, activity_id=publish(db)["id"])
    with pytest.raises(NotFound):
        get(li, registration_id="nope")


def test_list_registrations_in_order_with_names_and_waitlist_places(db):
    shown = publish(db, capacity=1)
    people = [returnee(join(db, name=f"Person {i}")) for i in range(3)]
    for person in people:
        sign_up(db, shown["id"], person)

    page = run(
        db,
        lambda uow: handlers.list_registrations(
            shown["id"], RegistrationQuery().load({"limit": "2"}), ADVISOR, uow
        ),
    )
    assert [(r["name"], r["status"], r["position"]) for r in page["items"]] == [
        ("Person 0", "confirmed", None),
        ("Person 1", "waitlisted", 1),
    ]
    rest = run(
        db,
        lambda uow: handlers.list_registrations(
            shown["id"], RegistrationQuery().load({"next": page["next"]}), ADVISOR, uow
        ),
    )
    assert [(r["name"], r["position"]) for r in rest["items"]] == [("Person 2", 2)]
    assert rest["next"] is None
    assert all("check_in_code" not in r for r in page["items"] + rest["items"])


def test_cancel_registration_promotes_the_first_on_the_waitlist(db):
    shown = publish(db, capacity=1)
    first, second, third = returnee(), returnee(), returnee()
    seat = sign_up(db, shown["id"], first)
    waiting = sign_up(db, shown["id"], second)
    sign_up(db, shown["id"], third)

    run(db, lambda uow: handlers.cancel_registration(shown["id"], seat["id"], first, uow))

    assert db.store.registration(seat["id"])["status"] == "cancelled"
    assert db.store.registration(waiting["id"])["status"] == "confirmed"
    assert db.store.activity(shown["id"])["confirmed"] == 1
    cancelled = db.published("registration.cancelled")[0].data
    assert (cancelled["cancelled_by"], cancelled["freed_seat"]) == ("registrant", True)
    promoted = db.published("registration.confirmed")[-1]
    assert promoted.subject == waiting["id"] and promoted.data["promoted"] is True
    third_now = run(
        db,
        lambda uow: handlers.get_registration(
            shown["id"], db.published("registration.waitlisted")[-1].subject, third, uow
        ),
    )
    assert third_now["position"] == 1
    with pytest.raises(Conflict):
        run(db, lambda uow: handlers.cancel_registration(shown["id"], seat["id"], first, uow))
    with pytest.raises(NotFound):  # another returnee cannot cancel it
        run(db, lambda uow: handlers.cancel_registration(shown["id"], waiting["id"], first, uow))


def test_cancelling_a_waitlisted_registration_frees_no_seat(db):
    shown = publish(db, capacity=1)
    sign_up(db, shown["id"], returnee())
    waiting_person = returnee()
    waiting = sign_up(db, shown["id"], waiting_person)
    run(db, lambda uow: handlers.cancel_registration(shown["id"], waiting["id"], ADVISOR, uow))
    cancelled = db.published("registration.cancelled")[0].data
    assert (cancelled["cancelled_by"], cancelled["freed_seat"]) == ("advisor", False)
    assert len(db.published("registration.confirmed")) == 1  # nobody promoted
    assert db.store.activity(shown["id"])["confirmed"] == 1


def test_no_cancellation_once_the_activity_started(db, clock):
    li = returnee()
    shown = publish(db)
    seat = sign_up(db, shown["id"], li)
    clock.advance(days=7, minutes=1)
    with pytest.raises(Conflict) as late:
        run(db, lambda uow: handlers.cancel_registration(shown["id"], seat["id"], li, uow))
    assert (
        late.value.message == "The activity has started; registrations can no longer be cancelled."
    )


# ---------------------------------------------------------------- at the door


def test_check_in_counts_once_and_refuses_a_wrong_code(db):
    li = returnee(join(db))
    shown = publish(db, capacity=1)
    seat = sign_up(db, shown["id"], li)
    waiting = returnee()
    sign_up(db, shown["id"], waiting)
    code = seat["check_in_code"]

    def scan(text):
        return run(
            db, lambda uow: handlers.check_in(shown["id"], CheckInIn().load({"code": text}), uow)
        )

    first = scan(f"{code[:4].lower()}-{code[4:]}")  # as typed at the door
    assert (first["registration_id"], first["name"], first["already_checked_in"]) == (
        seat["id"],
        PROFILE["name"],
        False,
    )
    again = scan(code)
    assert again["already_checked_in"] is True and again["checked_in_at"] == first["checked_in_at"]
    assert [e.subject for e in db.published("attendance.recorded")] == [seat["id"]]
    with pytest.raises(Unprocessable):  # a code names a registration: one that must exist
        scan("WRONG123")
    waiting_code = db.store.registration(db.published("registration.waitlisted")[0].subject)
    with pytest.raises(Conflict) as not_seated:
        scan(waiting_code["check_in_code"])
    assert not_seated.value.message == "This registration is on the waitlist, not confirmed."
    other = publish(db)["id"]
    with pytest.raises(Unprocessable):  # the code belongs to this activity only
        run(db, lambda uow: handlers.check_in(other, CheckInIn().load({"code": code}), uow))


# ---------------------------------------------------------------- agreements


def test_record_agreement_with_its_parties(db):
    shown = publish(db)
    signer = join(db)
    body = AgreementIn().load(
        {
            "title": "Cooperation agreement",
            "signed_on": "2026-12-05",
            "summary": "Services",
            "parties": [{"organization_id": WRSA}, {"organization_id": BEIXINJING}],
        }
    )
    made = run(db, lambda uow: handlers.record_agreement(shown["id"], body, ADVISOR, uow))

    assert [p["name"] for p in made["parties"]] == ["WRSA Changning", "Beixinjing"]
    assert len(db.store.agreements(shown["id"])) == 1
    event = CATALOG.check(db.published("agreement.signed")[0])
    assert event.data["signed_on"] == date(2026, 12, 5) and len(event.data["parties"]) == 2
    bad = AgreementIn().load(
        {
            "title": "x",
            "signed_on": "2026-12-05",
            "parties": [
                {"organization_id": WRSA},
                {"organization_id": WRSA},
                {"returnee_id": str(uuid.uuid4())},
                {"returnee_id": signer},
            ],
        }
    )
    with pytest.raises(HttpError) as refused:
        run(db, lambda uow: handlers.record_agreement(shown["id"], bad, ADVISOR, uow))
    assert refused.value.fields == {
        "parties": {
            "1": {"organization_id": ["Each organization is listed once."]},
            "2": {"returnee_id": ["Unknown returnee."]},
        }
    }
    with pytest.raises(ValidationError) as both:
        AgreementIn().load(
            {
                "title": "x",
                "signed_on": "2026-12-05",
                "parties": [{"organization_id": WRSA, "returnee_id": signer}, {}],
            }
        )
    assert set(both.value.messages["parties"]) == {0, 1}


# ---------------------------------------------------------------- closing


def test_close_activity_after_it_took_place_with_the_report(db, clock):
    shown = publish(db)
    with pytest.raises(Conflict) as early:
        run(db, lambda uow: handlers.close_activity(shown["id"], CloseIn().load({}), uow))
    assert early.value.message == "The activity has not taken place yet."
    clock.advance(days=7, hours=4)
    made = run(
        db,
        lambda uow: handlers.close_activity(
            shown["id"], CloseIn().load({"summary": "Well attended."}), uow
        ),
    )

    assert made["status"] == "closed" and made["summary"] == "Well attended."
    assert db.published("activity.closed")[0].data["registered"] == 0
    with pytest.raises(Conflict):
        run(db, lambda uow: handlers.close_activity(shown["id"], CloseIn().load({}), uow))
    with pytest.raises(Conflict) as final:  # nothing is recorded after the report
        run(db, lambda uow: handlers.check_in(shown["id"], CheckInIn().load({"code": "X"}), uow))
    assert final.value.message == "The activity is closed."


def test_the_report_counts_what_happened(db, clock):
    shown = publish(db, capacity=3)
    chen = provider(db, WRSA, "Chen Jing")
    zhao = provider(db, BEIXINJING, "Zhao Lei")
    attendee, absentee, walked_out = returnee(join(db)), returnee(join(db)), returnee(join(db))
    answers = {
        who: sign_up(db, shown["id"], who) for who in (attendee, chen, absentee, zhao)
    }  # three seats: zhao waits
    sign_up(db, shown["id"], walked_out)
    run(
        db,
        lambda uow: handlers.cancel_registration(
            shown["id"], db.published("registration.waitlisted")[-1].subject, walked_out, uow
        ),
    )
    for who in (attendee, chen):
        code = answers[who]["check_in_code"]
        run(
            db,
            lambda uow, c=code: handlers.check_in(shown["id"], CheckInIn().load({"code": c}), uow),
        )
    body = AgreementIn().load(
        {
            "title": "MoU",
            "signed_on": "2026-12-05",
            "parties": [{"organization_id": WRSA}, {"organization_id": BEIXINJING}],
        }
    )
    run(db, lambda uow: handlers.record_agreement(shown["id"], body, ADVISOR, uow))
    for status in ("expressed", "accepted"):
        data = {**EXAMPLES[(f"intention.{status}", 2)].data, "activity_id": shown["id"]}
        db.handle(
            handlers.record_intention, received(f"intention.{status}", data, "matching", version=2)
        )
    clock.advance(days=8)

    made = run(db, lambda uow: handlers.activity_report(shown["id"], uow))

    assert (made["registered"], made["waitlisted"], made["cancelled"], made["attended"]) == (
        3,
        1,
        1,
        2,
    )
    assert made["attendance_rate"] == round(2 / 3, 4)
    assert made["organizations"] == [{"organization_id": WRSA, "name": "WRSA Changning"}]
    assert (made["organizations_represented"], made["agreements"]) == (1, 1)
    assert made["intentions"]["total"] == 1 and made["intentions"]["accepted"] == 1


# ---------------------------------------------------------------- events of others


def test_remember_organization_and_provider(db):
    db.handle(handlers.remember_organization, organization(WRSA, "WRSA, Changning Branch"))
    assert db.store.organization_names([WRSA]) == {WRSA: "WRSA, Changning Branch"}
    chen = provider(db)
    assert db.store.providers[chen.id] == {
        "id": chen.id,
        "name": "Chen Jing",
        "organization_id": WRSA,
    }
    advisor = {
        "staff_id": str(uuid.uuid4()),
        "email": "a@station.example",
        "name": "Wang",
        "role": "advisor",
    }
    db.handle(handlers.remember_provider, received("staff.registered", advisor))
    assert advisor["staff_id"] not in db.store.providers


def test_take_returnee_keeps_the_minimum_and_invites_to_open_activities(db):
    open_one = publish(db, audience={"industries": ["biotech"]})
    publish(db, audience={"industries": ["ai"]})
    li = join(db)

    assert db.store.returnee(li) == {
        "id": li,
        "name": PROFILE["name"],
        "industry": "biotech",
        "startup_stage": "registered",
        "needs": sorted(PROFILE["needs"]),
        "notifications_consent": True,
    }
    assert [(e.data["activity_id"], e.subject) for e in db.published("invitation.issued")] == [
        (open_one["id"], li)
    ]
    stored = db.store.returnees[li]
    assert "email" not in stored and "phone" not in stored and "birth_date" not in stored
    # An older profile delivered late changes nothing; an update is not invited twice.
    older = {**PROFILE, "returnee_id": li, "name": "Old name"}
    db.handle(
        handlers.take_returnee, received("returnee.registered", older, time=T0 - timedelta(days=1))
    )
    assert db.store.returnee(li)["name"] == PROFILE["name"]
    updated = {**PROFILE, "returnee_id": li, "changed_fields": ["name"], "name": "Li Wei"}
    db.handle(
        handlers.take_returnee,
        received("returnee.updated", updated, time=T0 + timedelta(seconds=1)),
    )
    assert db.store.returnee(li)["name"] == "Li Wei"
    assert len(db.published("invitation.issued")) == 1


def test_follow_consent_records_it_and_invites_on_grant(db, clock):
    shown = publish(db)
    li = join(db, consent=False)
    assert db.published("invitation.issued") == []
    grant = {
        "returnee_id": li,
        "purpose": "notifications",
        "granted": True,
        "changed_at": (T0 + timedelta(minutes=1)).isoformat(),
    }
    db.handle(handlers.follow_consent, received("consent.changed", grant))
    assert db.store.returnee(li)["notifications_consent"] is True
    assert [e.data["activity_id"] for e in db.published("invitation.issued")] == [shown["id"]]
    stale = {**grant, "granted": False, "changed_at": T0.isoformat()}  # older than the grant
    db.handle(handlers.follow_consent, received("consent.changed", stale))
    assert db.store.returnee(li)["notifications_consent"] is True
    other = {**grant, "purpose": "matching", "granted": False}
    assert db.handle(handlers.follow_consent, received("consent.changed", other)) == 0


def test_erase_returnee_keeps_the_counts_and_forgets_the_person(db, clock):
    li = join(db)
    past = publish(db)
    upcoming = publish(
        db,
        capacity=1,
        starts_at=(T0 + timedelta(days=20)).isoformat(),
        ends_at=(T0 + timedelta(days=20, hours=2)).isoformat(),
    )
    attended = sign_up(db, past["id"], returnee(li))
    held = sign_up(db, upcoming["id"], returnee(li))
    next_in_line = sign_up(db, upcoming["id"], returnee())
    body = AgreementIn().load(
        {
            "title": "MoU",
            "signed_on": "2026-12-05",
            "parties": [{"organization_id": WRSA}, {"returnee_id": li}],
        }
    )
    run(db, lambda uow: handlers.record_agreement(past["id"], body, ADVISOR, uow))
    run(
        db,
        lambda uow: handlers.check_in(
            past["id"], CheckInIn().load({"code": attended["check_in_code"]}), uow
        ),
    )
    clock.advance(days=8)
    before = run(db, lambda uow: handlers.activity_report(past["id"], uow))

    db.handle(handlers.erase_returnee, received("returnee.erased", {"returnee_id": li}))

    after = run(db, lambda uow: handlers.activity_report(past["id"], uow))
    assert (
        {k: after[k] for k in ("registered", "attended", "agreements")}
        == {k: before[k] for k in ("registered", "attended", "agreements")}
        == {"registered": 1, "attended": 1, "agreements": 1}
    )
    gone = db.store.registration(attended["id"])
    assert (gone["person_id"], gone["check_in_code"], gone["checked_in_at"] is not None) == (
        None,
        None,
        True,
    )
    assert db.store.returnee(li) is None and db.store.is_erased(li)
    assert db.store.agreements(past["id"])[0]["parties"][1] == {
        "organization_id": None,
        "returnee_id": None,
    }
    # The seat held for what is still to come goes to the waitlist.
    assert db.store.registration(held["id"])["status"] == "cancelled"
    assert db.store.registration(next_in_line["id"])["status"] == "confirmed"
    assert db.published("registration.cancelled")[-1].data["cancelled_by"] == "system"
    # Events kept for retention that name the person are forgotten; the new ones still go out.
    signed = db.store.agreements(past["id"])[0]["id"]
    assert not [
        e
        for e in db.outbox
        if e.subject in (li, attended["id"], signed) and e.type != "registration.cancelled"
    ]
    # A late profile event does not bring them back.
    db.handle(
        handlers.take_returnee,
        received("returnee.updated", {**PROFILE, "returnee_id": li, "changed_fields": ["name"]}),
    )
    assert db.store.returnee(li) is None
    # Nor does a token still valid for the seconds its revocation takes.
    with pytest.raises(Forbidden) as refused:
        sign_up(db, upcoming["id"], returnee(li))
    assert refused.value.code == "erased"


def test_record_intention_counts_only_intentions_met_at_an_activity(db):
    shown = publish(db)
    resource_intention = received(
        "intention.expressed", EXAMPLES[("intention.expressed", 1)].data, "matching"
    )
    assert db.handle(handlers.record_intention, resource_intention) is None
    assert db.store.intentions_by_id == {}
    data = {**EXAMPLES[("intention.accepted", 2)].data, "activity_id": shown["id"]}
    db.handle(
        handlers.record_intention, received("intention.accepted", data, "matching", version=2)
    )
    late = {**EXAMPLES[("intention.expressed", 2)].data, "activity_id": shown["id"]}
    db.handle(
        handlers.record_intention, received("intention.expressed", late, "matching", version=2)
    )
    assert [i["status"] for i in db.store.intentions(shown["id"])] == ["accepted"]  # final


def test_seed_reference_publishes_the_founding_session_and_the_site_visit_once(clock):
    from services.activities.seed import activity_id, organizations, planned

    db = MemoryDatabase("activities", MemoryStore(), clock=clock)
    with db.unit_of_work() as uow:
        first = handlers.seed_reference(organizations(), planned(uow.today()), uow)
    with db.unit_of_work() as uow:
        again = handlers.seed_reference(organizations(), planned(uow.today()), uow)

    founding = activity_id("founding-exchange-session")
    assert first == [founding, activity_id("site-visit-shenghe-biopharma")] and again == []
    assert len(db.published("activity.published")) == 2
    names = set(db.store.organization_names(db.store.activity(founding)["organizer_ids"]).values())
    assert names == {
        "Changning Overseas Friendship Association",
        "Changning District Overseas Chinese Affairs Office",
        "Beixinjing Subdistrict Office",
        "Western Returned Scholars Association, Changning Branch",
    }
    assert db.store.activity(founding)["starts_at"] == datetime(2026, 12, 5, 14, 0, tzinfo=SHANGHAI)


def test_staff_reads_of_registrations_are_recorded_through_each_registration(db):
    shown = publish(db, capacity=1)
    li = returnee(join(db))
    mine = sign_up(db, shown["id"], li)
    sign_up(db, shown["id"], provider(db))  # waitlisted; no returnee's data
    db.outbox.clear()
    seen = {"reader_id": ADVISOR.id, "reader_role": "advisor", "case_ref": None,
            "reason": None}  # fmt: skip
    query = RegistrationQuery().load({})
    run(db, lambda uow: handlers.list_registrations(shown["id"], query, ADVISOR, uow, seen))
    run(db, lambda uow: handlers.get_registration(shown["id"], mine["id"], ADVISOR, uow, seen))
    own = {**seen, "reader_id": li.id, "reader_role": "returnee"}
    run(db, lambda uow: handlers.get_registration(shown["id"], mine["id"], li, uow, own))
    checked = CheckInIn().load({"code": mine["check_in_code"]})
    run(db, lambda uow: handlers.check_in(shown["id"], checked, uow, seen))  # the name shown
    run(db, lambda uow: handlers.check_in(shown["id"], checked, uow, seen))  # scanned again
    reads = [(str(e.data["returnee_id"]), e.data["what"], e.data["case_ref"])
             for e in db.published("activities.personal_data_read")]  # fmt: skip
    case = f"registration:{mine['id']}"
    assert reads == [
        (li.id, "registrations", case),
        (li.id, "registration", case),
        (li.id, "check-in", case),
        (li.id, "check-in", case),
    ]
