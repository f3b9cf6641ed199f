"""Every use case of notify in memory: the state it leaves (through `MemoryStore`) and the
events it publishes, refusals included. The SQL twin and the channels are tested against the
real database, broker, SMTP server and HTTP receiver in tests/integration/test_notify.py."""

import dataclasses
import inspect
import json
import uuid
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from chassis.auth import Caller
from chassis.clock import SHANGHAI, FrozenClock
from chassis.errors import Conflict, Forbidden, NotFound
from chassis.paging import PageQuery
from chassis.uow import MemoryDatabase
from contracts import CATALOG, Event
from contracts.examples import (
    ADVISOR,
    APPOINTMENT,
    FX_RESOURCE,
    ICBC,
    PROVIDER,
    RETURNEE,
    example,
)
from services.notify import handlers
from services.notify.domain import PLANS, DeliveryOutcome, reminder_trigger
from services.notify.memory import MemoryStore
from services.notify.seed import TOPICS
from services.notify.service import STAFF_READS
from services.notify.settings import DECLARED, NotifySettings
from services.notify.store import NotifyStore

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
# A gateway with a text registered for every SMS, as production has them.
SMS_GATEWAY = {
    "SMS_GATEWAY": "aliyun",
    "ALIYUN_SMS_ACCESS_KEY_ID": "LTAI5tTestKeyId",
    "ALIYUN_SMS_ACCESS_KEY_SECRET": "test-secret",
    "ALIYUN_SMS_SIGN_NAME": "长宁海归服务",
    "ALIYUN_SMS_TEMPLATES": json.dumps({
        "appointment_booked": {"zh-CN": "SMS_1001", "en": "SMS_1002"},
        "appointment_cancelled": {"zh-CN": "SMS_1003"},
        "appointment_reminder": {"zh-CN": "SMS_1005", "en": "SMS_1006"},
    }),
}  # fmt: skip
SETTINGS = NotifySettings.load(
    {**DECLARED, **SMS_GATEWAY, "DIGEST_WINDOW_SECONDS": "0", "DELIVERY_BASE_DELAY_SECONDS": "5"}
)
NO_GATEWAY = NotifySettings.load({**DECLARED, "DIGEST_WINDOW_SECONDS": "0"})
ADMIN = Caller(str(uuid.uuid4()), "admin")
LI_WEI = Caller(RETURNEE, "returnee")


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def db(clock):
    return MemoryDatabase("notify", MemoryStore(clock), clock=clock)


def published(type_: str, at: datetime = NOW, **changes) -> bytes:
    """The example event as its producer puts it on the wire."""
    found = example(type_)
    producer = CATALOG.get(type_).producer
    data = {**found.data, **changes}
    return CATALOG.create(producer, type_, data, subject=found.subject, time=at).to_json()


def received(type_: str, at: datetime = NOW, **changes) -> Event:
    """The example event as the subscriber hands it over: its wire bytes, parsed and checked."""
    return CATALOG.check(Event.from_json(published(type_, at, **changes)))


def take(db, type_: str, settings=SETTINGS, **changes) -> int:
    event = received(type_, **changes)
    return db.handle(handlers.EVENT_HANDLERS[event.type], event, settings=settings)


def rows(db, **where) -> list[dict]:
    return [n for n in db.store.notifications.values() if all(n[k] == v for k, v in where.items())]


def channels(db, **where) -> dict[str, str]:
    return {n["channel"]: n["status"] for n in rows(db, **where)}


def registered(db, settings=SETTINGS, **changes) -> Event:
    event = received("returnee.registered", **changes)
    db.handle(handlers.take_returnee, event, settings=settings)
    return event


# --- the seams ------------------------------------------------------------------------------


def test_the_memory_store_has_the_sql_stores_methods_with_the_same_parameters():
    def public(cls):
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    sql, memory = public(NotifyStore), public(MemoryStore)
    assert set(sql) == set(memory)
    for name, signature in sql.items():
        assert list(signature.parameters) == list(memory[name].parameters), name


def test_the_routing_table_takes_every_event_notify_subscribes_to():
    consumed = {t.type for p in ("accounts", "consulting", "matching", "activities")
                for t in CATALOG.produced_by(p)} - STAFF_READS  # fmt: skip
    assert set(handlers.EVENT_HANDLERS) == consumed
    announcing = {handlers.take_returnee, handlers.take_booking, handlers.take_cancellation,
                  handlers.announce_event, handlers.take_invitation, handlers.take_registration,
                  handlers.take_activity_cancellation, handlers.send_account_email}  # fmt: skip
    for event_type in PLANS:
        assert handlers.EVENT_HANDLERS[event_type] in announcing, event_type


def test_an_event_is_applied_in_one_unit_and_the_loop_woken_after_its_commit(db):
    woken = []
    event = received("returnee.registered")
    due = db.handle(handlers.take_event, event, settings=SETTINGS,
                    wake_delivery=lambda: woken.append(dict(channels(db))))  # fmt: skip
    assert due == 1
    assert woken == [{"email": "queued", "in_app": "sent"}]  # committed when the bell rang

    staff = received("staff.registered")
    assert db.handle(handlers.take_event, staff, settings=SETTINGS,
                     wake_delivery=lambda: woken.append("again")) == 0  # fmt: skip
    assert len(woken) == 1  # nothing to send: the loop sleeps on


# --- the directory ------------------------------------------------------------------------------


def test_a_registration_is_welcomed_once_by_email_and_in_the_inbox(db):
    event = registered(db)
    assert db.store.recipient(RETURNEE).email == "li.wei@example.com"
    assert channels(db, event_id=event.id) == {"email": "queued", "in_app": "sent"}
    [in_app] = rows(db, channel="in_app")
    assert in_app["template"] == "welcome" and in_app["subject"] == "欢迎加入长宁区海归创业服务平台"
    assert in_app["sent_at"] == NOW and in_app["attempts"] == 1
    [sent] = db.published("notification.sent")
    assert sent.subject == in_app["id"]
    assert sent.data == {
        "notification_id": in_app["id"], "recipient_id": RETURNEE, "channel": "in_app",
        "template": "welcome", "event_id": event.id, "event_type": "returnee.registered",
    }  # fmt: skip

    assert db.handle(handlers.take_returnee, event, settings=SETTINGS) is None  # redelivered
    assert len(rows(db)) == 2 and len(db.published()) == 1


def test_an_older_profile_changes_nothing_and_an_update_welcomes_nobody(db):
    registered(db)
    older = received("returnee.updated", at=NOW - timedelta(hours=1), name="Old Name")
    db.handle(handlers.take_returnee, older, settings=SETTINGS)
    assert db.store.recipient(RETURNEE).name == "李伟"
    newer = received("returnee.updated", at=NOW + timedelta(hours=1), name="李维")
    assert db.handle(handlers.take_returnee, newer, settings=SETTINGS) == 0
    assert db.store.recipient(RETURNEE).name == "李维"
    assert rows(db, event_id=newer.id) == []


def test_withdrawn_consent_to_notifications_suppresses_email_but_not_the_inbox(db):
    registered(db)
    other = {"purpose": "share_with_partners", "granted": False}
    take(db, "consent.changed", **other)
    assert db.store.recipient(RETURNEE).notifications_consent is True
    withdrawn = "2026-11-28T10:05:00+08:00"
    take(db, "consent.changed", purpose="notifications", granted=False, changed_at=withdrawn)
    assert db.store.recipient(RETURNEE).notifications_consent is False
    earlier = "2026-11-28T10:03:00+08:00"  # older than the one held: ignored
    take(db, "consent.changed", purpose="notifications", granted=True, changed_at=earlier)
    assert db.store.recipient(RETURNEE).notifications_consent is False

    assessed = received("eligibility.assessed")
    assert db.handle(handlers.announce_event, assessed, settings=SETTINGS) == 0
    assert channels(db, event_id=assessed.id) == {"email": "suppressed", "in_app": "sent"}
    assert rows(db, event_id=assessed.id, channel="email")[0]["reason"] == (
        "no consent to notifications"
    )


def test_staff_and_organizations_hear_of_intentions_expressed_to_them(db):
    take(db, "organization.registered")
    take(db, "staff.registered")
    take(db, "resource.published")
    registered(db)
    assert db.store.recipient(PROVIDER).role == "provider"
    assert db.store.organization_names([ICBC]) == {ICBC: "ICBC Shanghai Changning Sub-branch"}

    expressed = received("intention.expressed")
    assert db.handle(handlers.announce_event, expressed, settings=SETTINGS) == 2
    assert channels(db, event_id=expressed.id, recipient_id=PROVIDER) == {
        "email": "queued", "in_app": "sent"
    }  # fmt: skip
    assert channels(db, event_id=expressed.id, recipient_id=ICBC) == {"email": "queued"}
    context = rows(db, event_id=expressed.id, recipient_id=PROVIDER)[0]["context"]
    assert context["resource_title"].startswith("Cross-border settlement")
    assert context["returnee_name"] == "李伟" and context["recipient_name"] == "陈静"


def test_published_resources_and_policies_name_what_messages_tell_of(db):
    take(db, "resource.published")
    take(db, "policy.published")
    take(db, "resource.published", title="FX hedging, renamed")
    assert db.store.resource_titles([FX_RESOURCE]) == {FX_RESOURCE: "FX hedging, renamed"}
    registered(db)

    assessed = received("eligibility.assessed")
    db.handle(handlers.announce_event, assessed, settings=SETTINGS)
    [policy] = rows(db, event_id=assessed.id, channel="email")[0]["context"]["policies"]
    assert policy == {"code": "national-startup-support", "title": "留学人员回国创业启动支持计划",
                      "tier": "key"}  # fmt: skip
    proposed = received("matches.proposed")
    db.handle(handlers.announce_event, proposed, settings=SETTINGS)
    [match] = rows(db, event_id=proposed.id, channel="in_app")[0]["context"]["matches"]
    assert match["title"] == "FX hedging, renamed" and match["score"] == 86


# --- a batch of events in one unit of work -------------------------------------------------------

OTHER = str(uuid.UUID(int=7))  # a second returnee, not registered
LATER = str(uuid.UUID(int=3))  # a third, registered within the batch (sorts before RETURNEE)
GONE = str(uuid.UUID(int=5))  # registered, then erased within the batch


class CountingStore(MemoryStore):
    """The twin, telling what the batch read ahead and which returnees it locked, in order."""

    def __init__(self, clock):
        super().__init__(clock)
        self.calls = []

    def read_ahead(self, returnee_ids) -> None:
        self.calls.append(("read_ahead", list(returnee_ids)))

    def lock_returnees(self, returnee_ids) -> None:
        self.calls.append(("lock_returnees", sorted(returnee_ids)))


def storm_of_events() -> list[Event]:
    """A batch that writes what it reads: a policy published between two assessments naming
    it, a consent withdrawn between two events for the same returnee, an event for someone
    unknown, a registration whose assessment arrived before it in the same batch, and an
    erasure between a registration and a later event; two invitations to one activity; a
    resource renamed between two matches naming it."""
    return [
        received("returnee.registered"),
        received("eligibility.assessed"),
        received("policy.published", title={"zh-CN": "新的标题", "en": "A new title"}),
        received("eligibility.assessed", returnee_id=LATER),
        received("eligibility.assessed"),
        received(
            "consent.changed",
            purpose="notifications",
            granted=False,
            changed_at="2026-11-28T10:00:05+08:00",
        ),
        received("matches.proposed"),
        received("eligibility.assessed", returnee_id=OTHER),
        received("returnee.registered", returnee_id=LATER, email="later@example.com"),
        received("returnee.registered", returnee_id=GONE, email="gone@example.com"),
        received("returnee.erased", returnee_id=GONE),
        received("eligibility.assessed", returnee_id=GONE),
        received("returnee.updated", returnee_id=GONE, email="gone@example.com"),
        received("invitation.issued"),
        received("invitation.issued", returnee_id=LATER),  # the same activity, kept once
        received("matches.proposed", returnee_id=LATER),
        received("resource.published", title="FX hedging, renamed"),
        received("matches.proposed", returnee_id=LATER),  # names the resource as renamed
    ]


def taken_state(db) -> tuple:
    def plain(n):
        return {k: v for k, v in n.items() if k not in ("id", "digest_id")}

    notifications = sorted(map(plain, db.store.notifications.values()), key=repr)
    published = [(e.type, e.data.get("event_id"), e.data.get("channel")) for e in db.outbox]
    relayed = [(exchange, e.id, body) for exchange, e, body in db.relayed]
    waiting = sorted(w["event_id"] for w in db.store.waiting_events.values())
    return notifications, published, relayed, waiting, db.store.erased


def test_a_batch_of_events_leaves_what_they_leave_one_at_a_time(clock):
    one_by_one = MemoryDatabase("notify", MemoryStore(clock), clock=clock)
    batched = MemoryDatabase("notify", MemoryStore(clock), clock=clock)
    for twin in (one_by_one, batched):
        with twin.unit_of_work() as uow:
            uow.store.keep_topics(TOPICS)
    events = storm_of_events()
    woken = []
    due_alone = [
        one_by_one.handle(handlers.take_event, e, settings=SETTINGS, wake_delivery=lambda: None)
        for e in events
    ]
    due_batched = batched.handle_batch(handlers.take_event, events, settings=SETTINGS,
                                       wake_delivery=lambda: woken.append(1))  # fmt: skip
    assert due_batched == due_alone and sum(due_alone) > 0
    assert taken_state(batched) == taken_state(one_by_one)
    # Waited for the registration later in the batch, named the policy published before it.
    assert channels(batched, event_id=events[3].id) == {"email": "queued", "in_app": "sent"}
    [policy] = rows(batched, event_id=events[3].id, channel="in_app")[0]["context"]["policies"]
    assert policy["title"] == "新的标题"
    assert [w["returnee_id"] for w in batched.store.waiting_events.values()] == [OTHER]
    assert rows(batched, event_id=events[11].id) == []  # erased earlier in the batch
    assert rows(batched, recipient_id=GONE) == [] and batched.store.erased == {GONE}
    assert batched.store.recipient(GONE) is None  # not brought back by the later update
    # The policy's titles read before its publication, and again after it.
    titled = {n["event_id"]: "新的标题" in json.dumps(n["context"], ensure_ascii=False)
              for n in rows(batched, recipient_id=RETURNEE)}  # fmt: skip
    assert titled[events[4].id] and not titled[events[1].id]
    [before], [after] = (
        rows(batched, event_id=events[i].id, channel="in_app")[0]["context"]["matches"]
        for i in (-3, -1)
    )
    assert before["title"] != "FX hedging, renamed" and after["title"] == "FX hedging, renamed"
    # Consent withdrawn between two events: the second's email is suppressed.
    assert channels(batched, event_id=events[1].id)["email"] == "queued"
    assert channels(batched, event_id=events[6].id)["email"] == "suppressed"
    assert len(woken) == sum(1 for d in due_alone if d)  # each after the one commit

    redelivered = batched.handle_batch(handlers.take_event, events[:3], settings=SETTINGS,
                                       wake_delivery=lambda: None)  # fmt: skip
    assert redelivered == [None, None, None]
    assert taken_state(batched) == taken_state(one_by_one)


def test_a_batch_reads_its_returnees_once_and_locks_them_in_one_sorted_statement(clock):
    db = MemoryDatabase("notify", CountingStore(clock), clock=clock)
    registered(db)
    db.store.calls.clear()
    events = storm_of_events()
    db.handle_batch(handlers.take_event, events, settings=SETTINGS, wake_delivery=lambda: None)
    concerned = [RETURNEE, LATER, OTHER, GONE]  # in the order the batch names them, each once
    assert db.store.calls[:3] == [
        ("read_ahead", concerned),
        ("lock_returnees", sorted(concerned)),  # taken in, or not known yet
        ("read_ahead", [OTHER]),  # not known, not taken in: read again under its lock
    ]
    assert [c for c, _ in db.store.calls].count("read_ahead") == 2

    db.store.calls.clear()
    db.handle(handlers.take_event, received("eligibility.assessed", returnee_id=OTHER),
              settings=SETTINGS, wake_delivery=lambda: None)  # fmt: skip
    assert db.store.calls == [("lock_returnees", [OTHER])]  # alone: the waiting's own lock
    db.store.calls.clear()
    known = received("eligibility.assessed", returnee_id=LATER)
    db.handle_batch(handlers.take_event, [known], settings=SETTINGS, wake_delivery=lambda: None)
    assert db.store.calls == [
        ("read_ahead", [LATER]),
        ("lock_returnees", []),
        ("read_ahead", []),
    ]


# --- events that overtake the registration ------------------------------------------------------


def test_an_event_for_an_unknown_returnee_waits_as_it_arrived_then_is_announced(db, clock):
    wire = published("eligibility.assessed")
    assessed = CATALOG.check(Event.from_json(wire))
    assert db.handle(handlers.announce_event, assessed, settings=SETTINGS) == 0
    assert rows(db) == []
    [waiting] = db.store.waiting_events.values()
    assert waiting["body"] == wire  # the producer's bytes, not a re-serialisation
    clock.advance(seconds=90)
    with db.unit_of_work() as uow:
        assert handlers.waiting_events(uow) == {"count": 1, "oldest_seconds": 90.0}

    welcome = registered(db)
    assert db.store.waiting_events == {}
    assert channels(db, event_id=assessed.id) == {"email": "queued", "in_app": "sent"}
    assert channels(db, event_id=welcome.id) == {"email": "queued", "in_app": "sent"}
    with db.unit_of_work() as uow:
        assert handlers.waiting_events(uow) == {"count": 0, "oldest_seconds": 0.0}


def test_erasure_forgets_the_person_and_nothing_brings_them_back(db):
    registered(db)
    take(db, "appointment.booked")
    with db.unit_of_work() as uow:
        handlers.put_preferences(RETURNEE, {"opt_outs": [], "quiet_hours": None}, LI_WEI, uow)
    erased = received("returnee.erased")
    assert db.handle(handlers.erase_returnee, erased, settings=SETTINGS) == 0
    store = db.store
    assert store.recipient(RETURNEE) is None and store.is_erased(RETURNEE)
    assert rows(db) == [] and store.appointments == {} and store.preference_rows == {}

    registered(db)  # late, or redelivered
    assert store.recipient(RETURNEE) is None and rows(db) == []
    take(db, "eligibility.assessed")  # about the erased person: not kept waiting
    assert db.store.waiting_events == {} and rows(db) == []


def test_without_consent_to_share_district_systems_get_the_pseudonymous_view(db):
    subscription = subscribe(db, "returnee.registered", "intention.expressed")
    hidden = example("returnee.registered").data["consents"] | {"share_with_partners": False}
    registered(db, consents=hidden)
    expressed = received("intention.expressed", message="想了解入驻条件")
    db.handle(handlers.announce_event, expressed, settings=SETTINGS)
    deliveries = [json.loads(n["body"]) for n in rows(db, recipient_id=subscription["id"])]
    relayed = [json.loads(body) for exchange, _, body in db.relayed
               if exchange == "partners.events"]  # fmt: skip
    for seen in (deliveries, relayed):
        assert {e["type"] for e in seen} == {"returnee.registered", "intention.expressed"}
        assert all(e["dataschema"].endswith(":pseudonymous") for e in seen)
        text = json.dumps(seen, ensure_ascii=False)
        for personal in ("李伟", "li.wei@example.com", "1990-", "想了解入驻条件"):
            assert personal not in text, personal
        profile = next(e["data"] for e in seen if e["type"] == "returnee.registered")
        assert set(profile) <= {"returnee_id", "locale", "return_date", "industry",
                                "startup_stage", "needs", "district"}  # fmt: skip
        assert profile["returnee_id"] == RETURNEE and profile["industry"]

    # Granted: the producer's own bytes, both ways out.
    later = (NOW + timedelta(minutes=1)).isoformat()
    share = received("consent.changed", purpose="share_with_partners", granted=True,
                     changed_at=later)  # fmt: skip
    db.handle(handlers.take_consent, share, settings=SETTINGS)
    wire = published("intention.expressed", message="想了解入驻条件")
    again = CATALOG.check(Event.from_json(wire))
    db.handle(handlers.announce_event, again, settings=SETTINGS)
    assert db.relayed[-1][2] == wire
    assert rows(db, event_id=again.id, recipient_id=subscription["id"])[0]["body"].encode() == wire
    # Nothing private ever leaves: no link, no revocation.
    take(db, "account.link_issued")
    assert not [e for _, e, _ in db.relayed if e.type == "account.link_issued"]


def test_erasure_leaves_nothing_of_the_person_in_other_peoples_notifications(db):
    take(db, "organization.registered")
    take(db, "staff.registered")
    take(db, "resource.published")
    registered(db)
    subscription = subscribe(db, "intention.expressed")
    expressed = received("intention.expressed", message="想了解入驻条件 0x5eed")
    db.handle(handlers.announce_event, expressed, settings=SETTINGS)
    db.handle(handlers.forward_event, expressed, settings=SETTINGS)
    told = rows(db, event_id=expressed.id, recipient_id=PROVIDER)
    assert told and all(n["context"]["returnee_name"] == "李伟" for n in told)
    assert rows(db, recipient_id=subscription["id"])[0]["body"]
    kept = len([n for n in rows(db) if n["recipient_id"] != RETURNEE])

    db.handle(handlers.erase_returnee, received("returnee.erased"), settings=SETTINGS)
    left = json.dumps(list(db.store.notifications.values()), ensure_ascii=False, default=str)
    assert "李伟" not in left and "0x5eed" not in left and RETURNEE not in left
    # The notifications stay, counted, saying nothing; what was still to go never goes.
    assert len(rows(db)) == kept and all(n["body"] == "" for n in rows(db))
    assert {n["status"] for n in rows(db, recipient_id=ICBC)} == {"suppressed"}
    assert [e.type for e in db.outbox if RETURNEE in e.to_json().decode()] == []


def test_an_account_emails_link_is_removed_once_the_email_is_settled(db):
    registered(db, email_verified=False)
    link = example("account.link_issued").data["link"]
    take(db, "account.link_issued")
    handlers.deliver_due(db, Outlets())
    [email] = rows(db, event_type="account.link_issued")
    assert email["status"] == "sent"
    assert link not in email["body"] and link not in email["html"]
    assert "link" not in email["context"] and "[link removed]" in email["body"]


def test_settled_notifications_are_purged_after_their_retention(db, clock):
    registered(db)
    take(db, "appointment.booked")
    handlers.deliver_due(db, Outlets())
    assert rows(db)
    short = dataclasses.replace(SETTINGS, notification_retention_days=1)
    with db.unit_of_work() as uow:
        assert handlers.purge_notifications(uow, short) == 0
    clock.advance(seconds=86400 + 1)
    take(db, "eligibility.assessed")  # a newer one, queued: stays
    with db.unit_of_work() as uow:
        assert handlers.purge_notifications(uow, short) > 0
    assert {n["event_type"] for n in rows(db)} == {"eligibility.assessed"}


# --- appointments -------------------------------------------------------------------------------


def test_a_booking_is_confirmed_on_every_channel_and_kept_for_its_reminder(db):
    registered(db)
    booked = received("appointment.booked")
    assert db.handle(handlers.take_booking, booked, settings=SETTINGS) == 2
    assert channels(db, event_id=booked.id) == {"email": "queued", "in_app": "sent",
                                                "sms": "queued"}  # fmt: skip
    kept = db.store.appointments[APPOINTMENT]
    assert kept["remind_at"] == datetime(2026, 12, 2, 14, 0, tzinfo=SHANGHAI)  # 24 h ahead

    late = received("appointment.booked", appointment_id=str(uuid.uuid4()),
                    starts_at="2026-11-28T15:00:00+08:00",
                    ends_at="2026-11-28T15:30:00+08:00")  # fmt: skip
    db.handle(handlers.take_booking, late, settings=SETTINGS)
    # Booked inside the window: the confirmation is the reminder.
    assert db.store.appointments[str(late.data["appointment_id"])]["remind_at"] is None


def test_a_cancellation_takes_the_reminder_away_even_once_queued(db, clock):
    registered(db)
    take(db, "appointment.booked")
    clock.at = datetime(2026, 12, 2, 14, 0, tzinfo=SHANGHAI)
    with db.unit_of_work() as uow:
        assert handlers.remind_due(uow, SETTINGS) == 1
    trigger = reminder_trigger(APPOINTMENT).id
    assert channels(db, event_id=trigger) == {"email": "queued", "in_app": "sent",
                                              "sms": "queued"}  # fmt: skip

    cancelled = received("appointment.cancelled")
    assert db.handle(handlers.take_cancellation, cancelled, settings=SETTINGS) == 2
    assert channels(db, event_id=trigger) == {"email": "suppressed", "in_app": "sent",
                                              "sms": "suppressed"}  # fmt: skip
    assert rows(db, event_id=trigger, channel="sms")[0]["reason"] == "appointment cancelled"
    kept = db.store.appointments[APPOINTMENT]
    assert kept["remind_at"] is None and kept["cancelled_at"] == cancelled.time
    assert rows(db, event_id=cancelled.id, channel="email")[0]["context"]["change"] == "cancelled"


def test_a_booking_that_arrives_after_its_cancellation_stays_cancelled(db):
    registered(db)
    take(db, "appointment.cancelled")
    take(db, "appointment.booked")
    kept = db.store.appointments[APPOINTMENT]
    assert kept["remind_at"] is None and kept["cancelled_at"] is not None


def test_reminders_are_queued_once_when_due_and_never_after_the_start(db, clock):
    registered(db)
    take(db, "appointment.booked")
    with db.unit_of_work() as uow:
        assert handlers.remind_due(uow, SETTINGS) == 0  # not due yet
    clock.at = datetime(2026, 12, 2, 14, 30, tzinfo=SHANGHAI)
    with db.unit_of_work() as uow:
        assert handlers.remind_due(uow, SETTINGS) == 1
    with db.unit_of_work() as uow:
        assert handlers.remind_due(uow, SETTINGS) == 0
    reminders = rows(db, template="appointment_reminder")
    assert len(reminders) == 3
    assert {r["event_type"] for r in reminders} == {"appointment.reminder_due"}
    assert db.store.appointments[APPOINTMENT]["reminder"] == "queued"
    assert [e.data["channel"] for e in db.published("notification.sent")][-1] == "in_app"

    missed = received("appointment.booked", appointment_id=str(uuid.uuid4()))
    db.handle(handlers.take_booking, missed, settings=SETTINGS)
    clock.at = datetime(2026, 12, 3, 14, 5, tzinfo=SHANGHAI)  # after the start
    with db.unit_of_work() as uow:
        assert handlers.remind_due(uow, SETTINGS) == 0
    assert db.store.appointments[str(missed.data["appointment_id"])]["reminder"] == "missed"
    assert len(rows(db, template="appointment_reminder")) == 3

    clock.at = datetime(2026, 12, 4, 15, 0, tzinfo=SHANGHAI)  # a day after they ended
    with db.unit_of_work() as uow:
        handlers.remind_due(uow, SETTINGS)
    assert db.store.appointments == {}


def test_a_due_reminder_for_someone_no_longer_known_is_marked_so(db, clock):
    nobody = received("appointment.booked")  # the returnee never registered
    db.handle(handlers.take_booking, nobody, settings=SETTINGS)
    clock.at = datetime(2026, 12, 2, 14, 0, tzinfo=SHANGHAI)
    with db.unit_of_work() as uow:
        assert handlers.remind_due(uow, SETTINGS) == 0
    assert db.store.appointments[APPOINTMENT]["reminder"] == "no recipient"


# --- consultations and digests -----------------------------------------------------------------


def test_an_assignment_tells_the_returnee_and_the_advisor(db):
    registered(db)
    advisor = {"staff_id": ADVISOR, "email": "zhang@example.cn", "name": "Zhang Min",
               "role": "advisor", "organization_id": None, "locale": "en"}  # fmt: skip
    take(db, "staff.registered", **advisor)
    assigned = received("consultation.assigned")
    assert db.handle(handlers.announce_event, assigned, settings=SETTINGS) == 2
    changes = {(n["recipient_id"], n["context"]["change"]) for n in rows(db, event_id=assigned.id)}
    assert changes == {(RETURNEE, "assigned"), (ADVISOR, "assigned_to_you")}
    assert rows(db, event_id=assigned.id, recipient_id=ADVISOR)[0]["locale"] == "en"


def test_matches_found_within_the_window_are_digested_into_the_first_email(db):
    digesting = dataclasses.replace(SETTINGS, digest_window=300.0)
    registered(db)
    take(db, "resource.published")
    first = received("matches.proposed")
    assert db.handle(handlers.announce_event, first, settings=digesting) == 0  # waits
    [lead] = rows(db, event_id=first.id, channel="email")
    assert lead["next_attempt_at"] == NOW + timedelta(seconds=300)

    office = str(uuid.uuid4())
    match = {**example("matches.proposed").data["matches"][1], "resource_id": office}
    second = received("matches.proposed", matches=[match], added_resource_ids=[office])
    assert db.handle(handlers.announce_event, second, settings=digesting) == 0
    [member] = rows(db, event_id=second.id, channel="email")
    assert member["digest_id"] == lead["id"] and member["status"] == "queued"
    lead = db.store.notifications[lead["id"]]
    assert [m["resource_id"] for m in lead["context"]["matches"]] == [FX_RESOURCE, office]
    assert lead["subject"] == "为您匹配到 2 项新资源"  # rewritten
    assert channels(db, event_id=second.id) == {"email": "queued", "in_app": "sent"}


# --- webhooks -----------------------------------------------------------------------------------


def subscribe(db, *event_types, url="https://crm.example.gov.cn/hooks") -> dict:
    command = {"url": url, "event_types": list(event_types), "secret": "s" * 20}
    with db.unit_of_work() as uow:
        return handlers.subscribe_webhook(command, uow)


def test_subscribed_events_are_forwarded_as_their_producer_published_them(db):
    subscription = subscribe(db, "consultation.closed", "consultation.closed")
    assert subscription["event_types"] == ["consultation.closed"] and subscription["active"]
    share = received("consent.changed", purpose="share_with_partners", granted=True)
    db.handle(handlers.take_consent, share, settings=SETTINGS)
    wire = published("consultation.closed")
    closed = CATALOG.check(Event.from_json(wire))
    assert db.handle(handlers.forward_event, closed, settings=SETTINGS) == 1
    [delivery] = rows(db, channel="webhook")
    assert delivery["body"].encode("utf-8") == wire
    assert delivery["recipient_id"] == subscription["id"]
    assert delivery["template"] == "consultation_closed" and delivery["status"] == "queued"

    assert db.handle(handlers.forward_event, received("consultation.rated"),
                     settings=SETTINGS) == 0  # fmt: skip
    assert len(rows(db, channel="webhook")) == 1


# --- account emails and the confirmation of addresses ------------------------------------------


def test_an_unconfirmed_address_is_welcomed_in_the_inbox_and_by_the_email_with_its_link(db):
    event = registered(db, email_verified=False)
    assert channels(db, event_id=event.id) == {"in_app": "sent"}  # no second welcome email
    link = example("account.link_issued")
    assert take(db, "account.link_issued") == 1
    [email] = rows(db, event_type="account.link_issued")
    assert (email["channel"], email["status"], email["template"]) == ("email", "queued", "welcome")
    assert email["address"] == "li.wei@example.com" and email["recipient_id"] == RETURNEE
    assert link.data["link"] in email["body"] and link.data["link"] in email["html"]
    assert "2026-12-05 10:00" in email["body"]  # until when, in Shanghai time


def test_until_confirmed_an_address_receives_nothing_else_by_email(db):
    registered(db, email_verified=False)
    assessed = received("eligibility.assessed")
    db.handle(handlers.announce_event, assessed, settings=SETTINGS)
    assert channels(db, event_id=assessed.id) == {"email": "suppressed", "in_app": "sent"}
    assert rows(db, event_id=assessed.id, channel="email")[0]["reason"] == (
        "email address not confirmed"
    )
    assert take(db, "account.email_verified") == 0
    assert db.store.recipient(RETURNEE).email_verified is True
    later = received("consultation.answered")
    db.handle(handlers.announce_event, later, settings=SETTINGS)
    assert channels(db, event_id=later.id) == {"email": "queued", "in_app": "sent"}


def test_a_confirmation_that_overtakes_the_registration_holds(db):
    take(db, "account.email_verified")
    registered(db, email_verified=False)
    assert db.store.recipient(RETURNEE).email_verified is True


def test_account_emails_ignore_consent_opt_outs_and_quiet_hours_and_are_never_forwarded(db):
    registered(db, consents={"matching": True, "notifications": False,
                             "share_with_partners": False})  # fmt: skip
    quiet = {"start": datetime(2026, 1, 1, 9).time(), "end": datetime(2026, 1, 1, 12).time(),
             "timezone": "Asia/Shanghai"}  # fmt: skip
    with db.unit_of_work() as uow:
        handlers.put_preferences(
            RETURNEE, {"opt_outs": [{"channel": "*", "topic": "*"}], "quiet_hours": quiet},
            LI_WEI, uow,
        )  # fmt: skip
    subscribe(db, "account.link_issued")  # as no district system can (`schemas.PRIVATE_EVENTS`)
    take(db, "account.link_issued", purpose="reset_password")
    [email] = rows(db, event_type="account.link_issued")
    assert (email["template"], email["status"]) == ("password_reset", "queued")
    outlets = Outlets()
    assert handlers.deliver_due(db, outlets) == 1  # 10:00 is within the quiet hours
    assert [row["template"] for row, _ in outlets.sent] == ["password_reset"]
    assert rows(db, channel="webhook") == []


def test_staff_are_invited_and_their_directory_entry_follows_their_role(db):
    take(db, "staff.registered", email_verified=False)
    assert db.store.recipient(PROVIDER).email_verified is False
    take(db, "account.link_issued", account_id=PROVIDER, purpose="set_password", name="陈静",
         email="chen.jing@example-icbc.com.cn")  # fmt: skip
    [invitation] = rows(db, event_type="account.link_issued")
    assert invitation["template"] == "staff_invitation"
    assert invitation["subject"] == "邀请您设置长宁区海归创业服务平台的密码"
    take(db, "staff.updated", staff_id=PROVIDER, role="advisor", organization_id=None,
         email_verified=True)  # fmt: skip
    staff = db.store.recipient(PROVIDER)
    assert (staff.role, staff.email_verified) == ("advisor", True)


def test_revoked_credentials_are_left_to_the_chassis(db):
    subscribe(db, "credentials.revoked")
    assert take(db, "credentials.revoked") == 0
    assert rows(db) == [] and db.published() == []


# --- the delivery loop --------------------------------------------------------------------------


class Outlets:
    """The channels' seam: scripted outcomes per channel, and what was sent."""

    def __init__(self, settings=SETTINGS, receipts=(), **outcomes):
        self.settings = settings
        self.outcomes = outcomes
        self.sent: list[tuple[dict, dict | None]] = []
        self.receipts = list(receipts)  # answered in turn, the last one over and over
        self.asked: list[str] = []

    def receipt(self, row):
        self.asked.append(row["id"])
        return self.receipts.pop(0) if len(self.receipts) > 1 else self.receipts[0]

    def send(self, row, subscription=None):
        self.sent.append((row, subscription))
        outcome = self.outcomes.get(row["channel"], DeliveryOutcome(True))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_due_notifications_are_sent_and_reported(db):
    registered(db)
    take(db, "appointment.booked")
    outlets = Outlets()
    assert handlers.deliver_due(db, outlets) == 3
    assert sorted(row["channel"] for row, _ in outlets.sent) == ["email", "email", "sms"]
    assert {n["status"] for n in rows(db)} == {"sent"}
    reported = [e.data["channel"] for e in db.published("notification.sent")]
    assert sorted(reported) == ["email", "email", "in_app", "in_app", "sms"]
    assert handlers.deliver_due(db, outlets) == 0  # nothing is sent twice


def test_the_outcomes_of_several_sends_are_recorded_in_one_batched_unit(db):
    registered(db)
    take(db, "account.link_issued")
    units = []
    unit_of_work = db.unit_of_work

    def watched(*args, **kwargs):
        units.append(kwargs.get("batched", False))
        return unit_of_work(*args, **kwargs)

    db.unit_of_work = watched
    queued = [n for n in rows(db, status="queued") if n["channel"] == "email"]
    handlers.record_all(db, SETTINGS, [(n, DeliveryOutcome(True)) for n in queued])
    assert units == [True] and len(queued) == 2
    sent = {e.data["notification_id"] for e in db.published("notification.sent")}
    assert {n["id"] for n in queued} <= sent
    [link] = [n for n in queued if "link" in n["context"]]
    settled = db.store.notifications[link["id"]]
    assert "link" not in settled["context"] and "[link removed]" in settled["body"]


def test_a_backlog_drains_in_one_run_batch_after_batch(db):
    for _ in range(5):
        registered(db, returnee_id=str(uuid.uuid4()), email=f"{uuid.uuid4().hex}@example.com")
    outlets = Outlets(dataclasses.replace(SETTINGS, batch_size=2))
    assert handlers.deliver_due(db, outlets) == 5
    assert len(rows(db, channel="email", status="sent")) == 5


def test_quiet_hours_hold_email_until_they_end(db):
    registered(db)
    quiet = {"start": datetime(2026, 1, 1, 9).time(), "end": datetime(2026, 1, 1, 12).time(),
             "timezone": "Asia/Shanghai"}  # fmt: skip
    with db.unit_of_work() as uow:
        handlers.put_preferences(RETURNEE, {"opt_outs": [], "quiet_hours": quiet}, LI_WEI, uow)
    outlets = Outlets()
    assert handlers.deliver_due(db, outlets) == 0
    [email] = rows(db, channel="email")
    assert email["status"] == "queued" and email["held_for_quiet_hours"]
    assert email["next_attempt_at"] == datetime(2026, 11, 28, 12, 0, tzinfo=SHANGHAI)

    with db.unit_of_work() as uow:  # lifted: the held message is looked at again, and sent
        handlers.put_preferences(RETURNEE, {"opt_outs": [], "quiet_hours": None}, LI_WEI, uow)
    assert not rows(db, channel="email")[0]["held_for_quiet_hours"]
    assert handlers.deliver_due(db, outlets) == 1
    assert rows(db, channel="email")[0]["status"] == "sent"


def test_a_transient_failure_is_retried_with_backoff_then_fails_for_good(db, clock):
    registered(db)
    outage = DeliveryOutcome(False, transient=True, error="SMTP 451: try later")
    outlets = Outlets(dataclasses.replace(SETTINGS, retry=dataclasses.replace(
        SETTINGS.retry, max_attempts=2)), email=outage)  # fmt: skip
    assert handlers.deliver_due(db, outlets) == 1
    [email] = rows(db, channel="email")
    assert email["status"] == "queued" and email["attempts"] == 1
    assert email["next_attempt_at"] == NOW + timedelta(seconds=5)
    assert handlers.deliver_due(db, outlets) == 0  # not due again yet

    clock.advance(seconds=5)
    assert handlers.deliver_due(db, outlets) == 1
    [email] = rows(db, channel="email")
    assert email["status"] == "failed" and email["attempts"] == 2
    assert email["reason"] == "SMTP 451: try later after 2 attempts"
    [failed] = db.published("notification.failed")
    assert failed.data["reason"] == email["reason"] and failed.subject == email["id"]


def test_a_permanent_failure_or_a_broken_channel_fails_or_retries_the_digest_too(db):
    digesting = dataclasses.replace(SETTINGS, digest_window=300.0)
    registered(db)
    take(db, "resource.published")
    take(db, "matches.proposed", settings=digesting)
    office = str(uuid.uuid4())
    match = {**example("matches.proposed").data["matches"][1], "resource_id": office}
    take(db, "matches.proposed", settings=digesting, matches=[match], added_resource_ids=[office])
    db.clock.advance(seconds=300)

    refused = DeliveryOutcome(False, transient=False, error="recipient refused")
    assert handlers.deliver_due(db, Outlets(email=refused)) == 2  # the welcome and the digest
    digest = rows(db, template="matches_found", channel="email")
    assert {(n["status"], n["reason"]) for n in digest} == {("failed", "recipient refused")}
    assert len(db.published("notification.failed")) == 3  # welcome, lead and member

    registered(db, returnee_id=str(uuid.uuid4()), email="bug@example.com")
    assert handlers.deliver_due(db, Outlets(email=RuntimeError("bug"))) == 1
    [email] = rows(db, channel="email", status="queued")
    assert email["attempts"] == 1 and email["last_error"] == "RuntimeError: bug"


def test_a_failing_webhook_disables_its_subscription_after_too_many_failures(db, clock):
    subscription = subscribe(db, "consultation.closed")
    strict = dataclasses.replace(SETTINGS, webhook_max_failures=2)
    down = DeliveryOutcome(False, transient=True, error="HTTP 503")
    first, second = received("consultation.closed"), received("consultation.closed")
    for closed in (first, second):
        db.handle(handlers.forward_event, closed, settings=SETTINGS)
    outlets = Outlets(strict, webhook=down)
    assert handlers.deliver_due(db, outlets) == 2
    assert [s for _, s in outlets.sent][0]["secret"] == "s" * 20

    [disabled] = db.published("subscription.disabled")
    assert disabled.data["subscription_id"] == subscription["id"]
    assert disabled.data["failures"] == 2 and disabled.data["reason"].endswith("last: http_error")
    held = db.store.subscription(subscription["id"])
    assert held["active"] is False and held["disabled_reason"] == disabled.data["reason"]
    assert {n["status"] for n in rows(db, channel="webhook")} == {"failed"}
    assert {e.data["reason"] for e in db.published("notification.failed")} == {
        "subscription disabled: HTTP 503"
    }
    third = received("consultation.closed")
    assert db.handle(handlers.forward_event, third, settings=SETTINGS) == 0  # nothing more


def test_a_delivered_webhook_resets_the_failure_count_and_a_gone_one_fails(db, clock):
    subscription = subscribe(db, "consultation.closed")
    db.handle(handlers.forward_event, received("consultation.closed"), settings=SETTINGS)
    down = DeliveryOutcome(False, transient=True, error="HTTP 503")
    handlers.deliver_due(db, Outlets(webhook=down))
    assert db.store.subscription(subscription["id"])["consecutive_failures"] == 1
    clock.advance(seconds=5)
    assert handlers.deliver_due(db, Outlets()) == 1
    assert db.store.subscription(subscription["id"])["consecutive_failures"] == 0

    db.handle(handlers.forward_event, received("consultation.closed"), settings=SETTINGS)
    with db.unit_of_work() as uow:
        handlers.delete_subscription(subscription["id"], uow)
    outlets = Outlets()
    assert handlers.deliver_due(db, outlets) == 1
    assert outlets.sent == []
    assert rows(db, channel="webhook", status="failed")[0]["reason"] == (
        "subscription disabled or gone"
    )


# --- HTTP commands -----------------------------------------------------------------------------


def test_a_person_reads_their_own_inbox_newest_first_and_admins_any(db, clock):
    registered(db)
    clock.advance(minutes=1)
    take(db, "eligibility.assessed")
    subscribe(db, "returnee.registered")
    query = {"recipient_id": uuid.UUID(RETURNEE), "channel": None, "limit": 50, "cursor": None}
    with db.unit_of_work() as uow:
        mine = handlers.list_notifications(query, LI_WEI, uow)
        assert [n["template"] for n in mine] == ["policies_eligible"] * 2 + ["welcome"] * 2
        assert handlers.list_notifications(query, ADMIN, uow) == mine
        in_app = handlers.list_notifications({**query, "channel": "in_app", "limit": 1},
                                             LI_WEI, uow)  # fmt: skip
        assert [(n["channel"], n["template"]) for n in in_app] == [("in_app", "policies_eligible")]
        with pytest.raises(Forbidden) as refused:
            handlers.list_notifications(query, Caller(str(uuid.uuid4()), "returnee"), uow)
        assert refused.value.message_in("zh-CN") == "您只能查看自己的通知。"
        with pytest.raises(Forbidden):
            handlers.list_notifications(query, Caller(ADVISOR, "advisor"), uow)


def test_staff_read_their_own_inbox(db):
    take(db, "staff.registered", staff_id=ADVISOR, role="advisor", organization_id=None)
    take(db, "consultation.sla_breached")
    query = {"recipient_id": uuid.UUID(ADVISOR), "channel": "in_app", "limit": 50, "cursor": None}
    with db.unit_of_work() as uow:
        [entry] = handlers.list_notifications(query, Caller(ADVISOR, "advisor"), uow)
    assert entry["context"]["change"] == "sla_breached"


def test_topics_are_listed_in_the_callers_language(db):
    with db.unit_of_work() as uow:
        assert uow.store.keep_topics(TOPICS) == 14
        uow.store.keep_topics(TOPICS)  # idempotent
    with db.unit_of_work() as uow:
        en, zh = handlers.list_topics("en", uow), handlers.list_topics("zh-CN", uow)
    assert [t["name"] for t in en] == [t["name"] for t in zh] == [t[0] for t in TOPICS]
    assert en[1]["label"] == "New matches" and zh[1]["label"] == "新匹配资源"
    assert en[-1]["channels"] == ["email"]  # the organizers' digest of registrations


def test_preferences_are_read_and_replaced_by_their_owner_or_an_admin(db):
    body = {"opt_outs": [{"channel": "email", "topic": "welcome"}] * 2, "quiet_hours": None}
    with db.unit_of_work() as uow:
        assert handlers.get_preferences(RETURNEE, LI_WEI, uow) == {
            "recipient_id": RETURNEE, "opt_outs": [], "quiet_hours": None,
        }  # fmt: skip
        saved = handlers.put_preferences(RETURNEE, body, ADMIN, uow)
    assert saved["opt_outs"] == [{"channel": "email", "topic": "welcome"}]
    with db.unit_of_work() as uow:
        assert handlers.get_preferences(RETURNEE, LI_WEI, uow) == saved
        with pytest.raises(Forbidden) as denied:
            handlers.get_preferences(RETURNEE, Caller(PROVIDER, "provider"), uow)
        assert denied.value.message_in("zh-CN") == "您只能管理自己的通知偏好。"
        with pytest.raises(Forbidden):
            handlers.put_preferences(RETURNEE, body, Caller(str(uuid.uuid4()), "returnee"), uow)

    welcome = registered(db)
    assert channels(db, event_id=welcome.id) == {"email": "suppressed", "in_app": "sent"}


def test_subscriptions_are_listed_and_deleted_once(db, clock):
    first = subscribe(db, "matches.proposed")
    clock.advance(seconds=1)
    second = subscribe(db, "returnee.registered", "consultation.closed")
    assert second["event_types"] == ["consultation.closed", "returnee.registered"]
    with db.unit_of_work() as uow:
        assert [s["id"] for s in handlers.list_subscriptions(PageQuery().load({}), uow)] == [
            first["id"],
            second["id"],
        ]
        assert handlers.delete_subscription(first["id"], uow) is None
    with db.unit_of_work() as uow:
        assert [s["id"] for s in handlers.list_subscriptions(PageQuery().load({}), uow)] == [
            second["id"]
        ]
        with pytest.raises(NotFound) as missing:
            handlers.delete_subscription(first["id"], uow)
    assert missing.value.message_in("zh-CN") == "订阅不存在。"


# --- SMS through a gateway, work messengers, provider quotas -----------------------------------


def counted(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, {"service": "notify", **labels}) or 0.0


def test_without_an_sms_gateway_an_sms_is_suppressed_and_counted_never_sent(db):
    before = counted("notify_unconfigured_suppressed_total", channel="sms")
    registered(db, settings=NO_GATEWAY)
    booked = received("appointment.booked")
    assert db.handle(handlers.take_booking, booked, settings=NO_GATEWAY) == 1  # the email
    [sms] = rows(db, event_id=booked.id, channel="sms")
    assert (sms["status"], sms["reason"]) == ("suppressed", "no SMS gateway configured")
    assert counted("notify_unconfigured_suppressed_total", channel="sms") == before + 1
    outlets = Outlets(NO_GATEWAY)
    handlers.deliver_due(db, outlets)
    assert [row["channel"] for row, _ in outlets.sent] == ["email", "email"]
    assert "sms" not in [e.data["channel"] for e in db.published("notification.sent")]

    query = {"recipient_id": uuid.UUID(RETURNEE), "channel": "sms", "limit": 50, "cursor": None}
    with db.unit_of_work() as uow:  # what the person (and an admin) see in the API
        [seen] = handlers.list_notifications(query, LI_WEI, uow)
    assert (seen["status"], seen["reason"]) == ("suppressed", "no SMS gateway configured")


def test_an_sms_with_no_text_registered_for_it_is_suppressed_saying_which(db):
    registered(db, locale="en", name="Li Wei")
    cancelled = received("appointment.cancelled")
    db.handle(handlers.take_cancellation, cancelled, settings=SETTINGS)
    [sms] = rows(db, event_id=cancelled.id, channel="sms")
    # No English text is registered, but a Chinese one is: better read in Chinese than not.
    assert sms["status"] == "queued" and sms["body"].startswith("您在长宁区海归创业服务站")
    bare = dataclasses.replace(SETTINGS, aliyun_sms=dataclasses.replace(
        SETTINGS.aliyun_sms, templates={}))  # fmt: skip
    booked = received("appointment.booked")
    db.handle(handlers.take_booking, booked, settings=bare)
    [sms] = rows(db, event_id=booked.id, channel="sms")
    assert (sms["status"], sms["reason"]) == (
        "suppressed", "no SMS template registered for appointment_booked"
    )  # fmt: skip


def test_an_sms_body_is_the_registered_text_filled_in(db):
    registered(db)
    booked = received("appointment.booked")
    db.handle(handlers.take_booking, booked, settings=SETTINGS)
    [sms] = rows(db, event_id=booked.id, channel="sms")
    assert sms["body"] == (
        "您在长宁区海归创业服务站的预约已确认：2026-12-03 14:00-14:30，地点："
        "Changning Returnee Entrepreneur Se…。如不能到场，请登录平台取消。"  # 35 at most
    )


def test_an_accepted_sms_waits_for_its_receipt_which_reports_it_sent_or_failed(db, clock):
    registered(db)
    take(db, "appointment.booked")
    accepted = DeliveryOutcome(False, accepted="900619746336^0")
    pending = DeliveryOutcome(False, transient=True, error="no delivery receipt yet")
    outlets = Outlets(sms=accepted, receipts=[pending])
    handlers.deliver_due(db, outlets)
    [sms] = rows(db, channel="sms")
    assert (sms["status"], sms["provider_ref"], sms["attempts"]) == (
        "accepted",
        "900619746336^0",
        1,
    )
    assert sms["accepted_at"] == NOW and sms["next_attempt_at"] == NOW + timedelta(seconds=10)
    assert "sms" not in [e.data["channel"] for e in db.published("notification.sent")]

    clock.advance(seconds=10)
    handlers.deliver_due(db, outlets)  # asked: no receipt yet, asked again later
    assert outlets.asked == [sms["id"]]
    [sms] = rows(db, channel="sms")
    assert sms["status"] == "accepted" and sms["next_attempt_at"] == clock.at + timedelta(
        seconds=10
    )
    assert handlers.deliver_due(db, outlets) == 0 and len(outlets.asked) == 1  # not due yet

    clock.advance(seconds=10)
    outlets.receipts = [DeliveryOutcome(True)]
    handlers.deliver_due(db, outlets)
    [sms] = rows(db, channel="sms")
    assert sms["status"] == "sent" and sms["attempts"] == 1 and sms["sent_at"] == clock.at
    [report] = [e for e in db.published("notification.sent") if e.data["channel"] == "sms"]
    assert report.subject == sms["id"]
    handlers.deliver_due(db, outlets)
    assert len(outlets.asked) == 2  # never asked again, never sent again
    assert [row["channel"] for row, _ in outlets.sent].count("sms") == 1


def test_an_sms_the_carrier_did_not_deliver_or_that_never_got_a_receipt_fails(db, clock):
    before = counted("notify_provider_refusals_total", channel="sms", code="MOBILE_NOT_ON_SERVICE")
    registered(db)
    take(db, "appointment.booked")
    undelivered = DeliveryOutcome(False, error="SMS not delivered: MOBILE_NOT_ON_SERVICE",
                                  details={"code": "MOBILE_NOT_ON_SERVICE"})  # fmt: skip
    outlets = Outlets(sms=DeliveryOutcome(False, accepted="1^0"), receipts=[undelivered])
    handlers.deliver_due(db, outlets)
    clock.advance(seconds=10)
    handlers.deliver_due(db, outlets)
    [sms] = rows(db, channel="sms")
    assert (sms["status"], sms["reason"]) == ("failed", "SMS not delivered: MOBILE_NOT_ON_SERVICE")
    [failed] = db.published("notification.failed")
    assert failed.data["channel"] == "sms" and failed.data["reason"] == sms["reason"]
    assert counted("notify_provider_refusals_total", channel="sms",
                   code="MOBILE_NOT_ON_SERVICE") == before + 1  # fmt: skip

    patient = dataclasses.replace(SETTINGS, sms_receipt_timeout=60.0)
    take(db, "appointment.booked", appointment_id=str(uuid.uuid4()))
    clock.advance(seconds=61)  # past the quota of one a minute per number
    silent = DeliveryOutcome(False, transient=True, error="no delivery receipt yet")
    outlets = Outlets(patient, sms=DeliveryOutcome(False, accepted="2^0"), receipts=[silent])
    for _ in range(12):
        handlers.deliver_due(db, outlets)
        clock.advance(seconds=10)
    [late] = rows(db, channel="sms", provider_ref="2^0")
    assert late["status"] == "failed"
    assert late["reason"] == "no delivery receipt within 60 s (no delivery receipt yet)"


def test_an_sms_found_unconfigured_when_sent_is_suppressed_not_failed(db):
    registered(db)
    take(db, "appointment.booked")
    unconfigured = DeliveryOutcome(False, suppressed="no SMS gateway configured")
    handlers.deliver_due(db, Outlets(sms=unconfigured))
    [sms] = rows(db, channel="sms")
    assert (sms["status"], sms["reason"]) == ("suppressed", "no SMS gateway configured")
    assert db.published("notification.failed") == []


def test_a_numbers_quota_puts_further_sms_off_until_it_allows(db, clock):
    before = counted("notify_rate_deferred_total", channel="sms")
    registered(db)
    take(db, "appointment.booked")
    take(db, "appointment.cancelled")  # a second SMS to the same number within the minute
    outlets = Outlets()
    handlers.deliver_due(db, outlets)
    assert [row["channel"] for row, _ in outlets.sent].count("sms") == 1
    [waiting] = rows(db, channel="sms", status="queued")
    assert waiting["next_attempt_at"] == NOW + timedelta(seconds=60)
    assert counted("notify_rate_deferred_total", channel="sms") == before + 1
    clock.advance(seconds=60)
    handlers.deliver_due(db, outlets)
    assert {n["status"] for n in rows(db, channel="sms")} == {"sent"}


def staff_with_robots(db, *destinations) -> None:
    take(db, "organization.registered")
    take(db, "staff.registered")
    take(db, "resource.published")
    registered(db)
    with db.unit_of_work() as uow:
        handlers.put_channels(ICBC, {"destinations": list(destinations)}, ADMIN, uow)


WECOM = {"channel": "wecom", "token": "693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa", "secret": None}
DINGTALK = {"channel": "dingtalk", "token": "a1b2c3d4e5f6a7b8", "secret": "SEC" + "x" * 20}


def test_an_organizations_robots_are_named_replaced_and_never_shown(db):
    staff_with_robots(db, WECOM, DINGTALK)
    with db.unit_of_work() as uow:
        shown = handlers.get_channels(ICBC, ADMIN, uow)
    assert shown["recipient_id"] == ICBC
    assert [(d["channel"], d["signed"]) for d in shown["destinations"]] == [
        ("dingtalk", True), ("wecom", False)
    ]  # fmt: skip
    assert "token" not in str(shown) and "SEC" not in str(shown)
    assert db.store.recipient(ICBC).messengers == ("dingtalk", "wecom")

    with db.unit_of_work() as uow:
        handlers.put_channels(ICBC, {"destinations": [WECOM]}, ADMIN, uow)
    assert db.store.recipient(ICBC).messengers == ("wecom",)
    assert db.store.destination(ICBC, "wecom")["token"] == WECOM["token"]


def test_only_the_recipient_or_an_admin_names_robots_and_returnees_have_none(db):
    staff_with_robots(db)
    body = {"destinations": [WECOM]}
    with db.unit_of_work() as uow:
        with pytest.raises(Forbidden) as denied:
            handlers.put_channels(ICBC, body, Caller(PROVIDER, "provider"), uow)
        assert denied.value.message_in("zh-CN") == "您只能管理自己的消息渠道。"
        with pytest.raises(Forbidden):
            handlers.get_channels(ICBC, Caller(PROVIDER, "provider"), uow)
        mine = handlers.put_channels(PROVIDER, body, Caller(PROVIDER, "provider"), uow)
        assert [d["channel"] for d in mine["destinations"]] == ["wecom"]
        with pytest.raises(NotFound):
            handlers.put_channels(str(uuid.uuid4()), body, ADMIN, uow)
        with pytest.raises(Conflict) as returnee:
            handlers.put_channels(RETURNEE, body, ADMIN, uow)
        assert returnee.value.message_in("zh-CN") == "工作消息渠道仅适用于工作人员和机构。"


def test_an_intention_reaches_the_organizations_robots_which_get_their_destination(db):
    staff_with_robots(db, WECOM, DINGTALK)
    expressed = received("intention.expressed")
    assert db.handle(handlers.announce_event, expressed, settings=SETTINGS) == 4
    assert channels(db, event_id=expressed.id, recipient_id=ICBC) == {
        "email": "queued", "wecom": "queued", "dingtalk": "queued"
    }  # fmt: skip
    [wecom] = rows(db, event_id=expressed.id, channel="wecom")
    assert wecom["address"] == "wecom" and WECOM["token"] not in str(wecom)

    outlets = Outlets()
    handlers.deliver_due(db, outlets)
    targets = {row["channel"]: target for row, target in outlets.sent}
    assert targets["wecom"]["token"] == WECOM["token"]
    assert targets["dingtalk"]["secret"] == DINGTALK["secret"]
    reported = [e.data["channel"] for e in db.published("notification.sent")]
    # notification.sent v1 names the channels of its published enum only (docs/notify.md).
    assert "wecom" not in reported and "dingtalk" not in reported
    assert {n["status"] for n in rows(db, event_id=expressed.id)} == {"sent"}


def test_a_robot_removed_before_its_turn_suppresses_what_was_queued_for_it(db):
    before = counted("notify_unconfigured_suppressed_total", channel="wecom")
    staff_with_robots(db, WECOM)
    take(db, "intention.expressed")
    with db.unit_of_work() as uow:
        handlers.put_channels(ICBC, {"destinations": []}, ADMIN, uow)
    outlets = Outlets()
    handlers.deliver_due(db, outlets)
    assert "wecom" not in [row["channel"] for row, _ in outlets.sent]
    [wecom] = rows(db, channel="wecom")
    assert (wecom["status"], wecom["reason"]) == ("suppressed", "no wecom destination configured")
    assert counted("notify_unconfigured_suppressed_total", channel="wecom") == before + 1


def test_robots_honour_opt_outs_and_quiet_hours_per_channel(db, clock):
    staff_with_robots(db, WECOM, DINGTALK)
    quiet = {"start": datetime(2026, 1, 1, 9).time(), "end": datetime(2026, 1, 1, 12).time(),
             "timezone": "Asia/Shanghai"}  # fmt: skip
    body = {"opt_outs": [{"channel": "dingtalk", "topic": "intention_update"}],
            "quiet_hours": quiet}  # fmt: skip
    with db.unit_of_work() as uow:
        handlers.put_preferences(ICBC, body, ADMIN, uow)
    expressed = received("intention.expressed")
    db.handle(handlers.announce_event, expressed, settings=SETTINGS)
    [dingtalk] = rows(db, event_id=expressed.id, channel="dingtalk")
    assert (dingtalk["status"], dingtalk["reason"]) == (
        "suppressed", "opted out of intention_update by dingtalk"
    )  # fmt: skip
    outlets = Outlets()
    handlers.deliver_due(db, outlets)
    assert ICBC not in {row["recipient_id"] for row, _ in outlets.sent}  # ICBC's wait
    [wecom] = rows(db, event_id=expressed.id, channel="wecom")
    assert wecom["held_for_quiet_hours"]
    assert wecom["next_attempt_at"] == datetime(2026, 11, 28, 12, 0, tzinfo=SHANGHAI)
    clock.at = datetime(2026, 11, 28, 12, 0, tzinfo=SHANGHAI)
    handlers.deliver_due(db, outlets)
    assert rows(db, event_id=expressed.id, channel="wecom")[0]["status"] == "sent"


def test_a_robots_quota_spreads_a_burst_over_the_minutes_it_allows(db, clock):
    staff_with_robots(db, WECOM)
    for _ in range(25):
        take(db, "intention.expressed", intention_id=str(uuid.uuid4()))
    outlets = Outlets()
    handlers.deliver_due(db, outlets)
    assert [row["channel"] for row, _ in outlets.sent].count("wecom") == 20  # 20 a minute
    waiting = rows(db, channel="wecom", status="queued")
    assert len(waiting) == 5 and {n["next_attempt_at"] for n in waiting} == {
        NOW + timedelta(seconds=60)
    }
    clock.advance(seconds=60)
    handlers.deliver_due(db, outlets)
    assert len(rows(db, channel="wecom", status="sent")) == 25


# The relay's quota at five emails a second, no digests.
PACED = NotifySettings.load({**DECLARED, "DIGEST_WINDOW_SECONDS": "0",
                             "SMTP_RATE_LIMITS": "5/1"})  # fmt: skip


def emails_for_the_relay(db, invitations: int) -> None:
    """A returnee welcomed and invited `invitations` times: one email each, and one in-app."""
    registered(db, settings=PACED)
    for _ in range(invitations):
        take(db, "invitation.issued", settings=PACED, activity_id=str(uuid.uuid4()))


def test_the_relays_quota_paces_a_storm_of_emails_and_never_holds_the_inbox(db, clock):
    paced = PACED
    emails_for_the_relay(db, 11)
    assert len(rows(db, channel="in_app", status="sent")) == 12  # in the inbox at intake
    outlets = Outlets(settings=paced)
    handlers.deliver_due(db, outlets)
    assert len(outlets.sent) == 5
    waiting = sorted(n["next_attempt_at"] for n in rows(db, channel="email", status="queued"))
    second = timedelta(seconds=1)
    assert waiting == [NOW + second] * 5 + [NOW + 2 * second] * 2  # spread at the relay's pace
    handlers.deliver_due(db, outlets)  # nothing due yet, and the quota is spent
    assert len(outlets.sent) == 5
    clock.advance(seconds=1)
    handlers.deliver_due(db, outlets)
    assert len(outlets.sent) == 10
    clock.advance(seconds=1)
    handlers.deliver_due(db, outlets)
    assert len(outlets.sent) == 12 and not rows(db, channel="email", status="queued")


def test_a_claimed_email_counts_against_the_relays_quota_until_its_send_is_recorded(db, clock):
    """However long its attempt takes: counted from when the relay answered, not from the
    claim (a slow relay would otherwise receive two claims' emails within one window)."""
    paced = PACED
    emails_for_the_relay(db, 9)
    with db.unit_of_work() as uow:
        first = handlers.claim(uow, paced)
    assert [r["channel"] for r in first] == ["email"] * 5
    clock.advance(seconds=3)  # the relay still working on them
    with db.unit_of_work() as uow:
        assert handlers.claim(uow, paced) == []  # due since NOW + 1 s, and held back
    sent = DeliveryOutcome(True)
    with db.unit_of_work() as uow:
        handlers.record(uow, paced, [(row, sent) for row in first])
    clock.advance(seconds=0.5)
    with db.unit_of_work() as uow:
        assert handlers.claim(uow, paced) == []  # the relay took them half a second ago
    clock.advance(seconds=0.6)
    with db.unit_of_work() as uow:
        assert len(handlers.claim(uow, paced)) == 5


def test_a_claimed_email_given_up_no_longer_counts_against_the_quota(db, clock):
    paced = PACED
    emails_for_the_relay(db, 4)
    with db.unit_of_work() as uow:
        first = handlers.claim(uow, paced)
    assert len(first) == 5
    with db.unit_of_work() as uow:
        uow.store.release([row["id"] for row in first])  # its lease ran out before its turn
    with db.unit_of_work() as uow:
        assert len(handlers.claim(uow, paced)) == 5
    # A claim whose replica died counts no longer than the lease.
    clock.advance(seconds=paced.lease_seconds + 1)
    with db.unit_of_work() as uow:
        assert len(handlers.claim(uow, paced)) == 5


def test_without_a_relay_quota_emails_are_not_paced(db):
    registered(db)
    for _ in range(11):
        take(db, "invitation.issued", activity_id=str(uuid.uuid4()))
    outlets = Outlets()
    handlers.deliver_due(db, outlets)
    assert len(outlets.sent) == 12


def test_an_admins_read_of_a_returnees_notifications_is_recorded_their_own_is_not(db):
    registered(db)
    take(db, "staff.registered", staff_id=ADVISOR, role="advisor", organization_id=None)
    admin = {"reader_id": ADMIN.id, "reader_role": "admin", "case_ref": None,
             "reason": "The returnee asked why no reminder came"}  # fmt: skip
    own = {"reader_id": RETURNEE, "reader_role": "returnee", "case_ref": None, "reason": None}
    query = {"recipient_id": uuid.UUID(RETURNEE), "channel": None, "limit": 50, "cursor": None}
    staff_query = {**query, "recipient_id": uuid.UUID(ADVISOR)}
    db.outbox.clear()
    with db.unit_of_work() as uow:
        handlers.list_notifications(query, ADMIN, uow, admin)
        handlers.get_preferences(RETURNEE, ADMIN, uow, admin)
        handlers.list_notifications(query, LI_WEI, uow, own)
        handlers.list_notifications(staff_query, ADMIN, uow, admin)  # no returnee's data
    reads = [(str(e.data["returnee_id"]), e.data["what"], e.data["reason"])
             for e in db.published("notify.personal_data_read")]  # fmt: skip
    assert reads == [(RETURNEE, "notifications", admin["reason"]),
                     (RETURNEE, "notification preferences", admin["reason"])]  # fmt: skip
