"""notify's part in activities, in memory: invitations in the returnee's language and by their
preferences, confirmations carrying the check-in code and a QR code that a real reader decodes
back to it, the waitlist promotion, the organizers' digest of registrations, the reminder the
day before (once, and not after a cancellation), the cancellation told to everyone registered,
intentions met at an activity (intention.* v2), and erasure."""

import base64
import dataclasses
import re
import struct
import uuid
import zlib
from datetime import datetime, timedelta

import numpy as np
import pytest
import zxingcpp

from chassis.auth import Caller
from chassis.clock import SHANGHAI, FrozenClock
from chassis.uow import MemoryDatabase
from contracts import CATALOG, Event
from contracts.examples import (
    ACTIVITY_INTENTION,
    EXCHANGE_SESSION,
    REGISTRATION,
    RETURNEE,
    WRSA_CHANGNING,
    example,
)
from services.notify import handlers, qr
from services.notify.domain import activity_reminder_trigger
from services.notify.memory import MemoryStore
from services.notify.settings import DECLARED, NotifySettings

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)  # the exchange session: 5 Dec, 14:00
SETTINGS = NotifySettings.load({**DECLARED, "DIGEST_WINDOW_SECONDS": "0"})
WRSA_PROVIDER = str(uuid.uuid4())
LI_WEI = Caller(RETURNEE, "returnee")


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def db(clock):
    return MemoryDatabase("notify", MemoryStore(clock), clock=clock)


def received(type_: str, version: int = 1, at: datetime = NOW, **changes) -> Event:
    found = example(type_, version)
    producer = CATALOG.get(type_, version).producer
    data = {**found.data, **changes}
    event = CATALOG.create(producer, type_, data, subject=found.subject, version=version, time=at)
    return CATALOG.check(Event.from_json(event.to_json()))


def take(db, type_: str, settings=SETTINGS, version: int = 1, at: datetime = NOW, **changes):
    event = received(type_, version, at, **changes)
    db.handle(handlers.EVENT_HANDLERS[event.type], event, settings=settings)
    return event


def rows(db, **where) -> list[dict]:
    return [n for n in db.store.notifications.values() if all(n[k] == v for k, v in where.items())]


def channels(db, **where) -> dict[str, str]:
    return {n["channel"]: n["status"] for n in rows(db, **where)}


def people(db, locale="zh-CN"):
    """Li Wei (the examples' returnee) and a provider of the WRSA, an organizer."""
    take(db, "returnee.registered", locale=locale)
    staff = {"staff_id": WRSA_PROVIDER, "email": "desk@wrsa.example.cn", "name": "欧美同学会",
             "role": "provider", "organization_id": WRSA_CHANGNING, "locale": "en"}  # fmt: skip
    take(db, "staff.registered", **staff)


def decoded(image: np.ndarray) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image)]


def from_text(art: str) -> np.ndarray:
    """The block drawing as a picture: each character two modules high, 8 pixels a module."""
    halves = {"█": (0, 0), "▀": (0, 255), "▄": (255, 0), " ": (255, 255)}
    rows = []
    for line in art.split("\n"):
        cells = [halves[c] for c in line]
        rows += [[top for top, _ in cells], [bottom for _, bottom in cells]]
    return np.kron(np.array(rows, dtype=np.uint8), np.ones((8, 8), dtype=np.uint8))


def from_png(uri: str) -> np.ndarray:
    """A greyscale PNG of bit depth 1 as segno writes it, decoded with the standard library."""
    data = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at : at + 4]), data[at + 4 : at + 8]
        chunks.setdefault(kind, b"")
        chunks[kind] += data[at + 8 : at + 8 + length]
        at += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    raw, stride = zlib.decompress(chunks[b"IDAT"]), (width * depth + 7) // 8
    assert depth == 1
    lines, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - 1] if i else 0
            up, corner = previous[i], previous[i - 1] if i else 0
            paeth = min((abs(up - corner), left), (abs(left - corner), up),
                        (abs(left + up - 2 * corner), corner))[1]  # fmt: skip
            line[i] = (line[i] + (0, left, up, (left + up) // 2, paeth)[kind]) & 0xFF
        bits = np.unpackbits(np.frombuffer(bytes(line), dtype=np.uint8))[:width]
        lines.append(bits)
        previous = line
    picture = np.array(lines, dtype=np.uint8)
    if colour == 3:  # a palette: index 0 is dark in segno's default
        picture = 1 - picture
    return (picture * 255).astype(np.uint8)


# --- invitations --------------------------------------------------------------------------------


def test_an_invitation_goes_to_the_returnee_in_their_language(db):
    people(db, locale="en")
    invitation = take(db, "invitation.issued")

    assert channels(db, event_id=invitation.id) == {"email": "queued", "in_app": "sent"}
    [email] = rows(db, event_id=invitation.id, channel="email")
    assert email["template"] == "activity_invitation" and email["locale"] == "en"
    assert email["subject"] == "You are invited: Returnee exchange session (2026-12-05 14:00)"
    assert "1 Example Road" in email["body"]
    kept = db.store.activity(EXCHANGE_SESSION)  # from the invitation's own summary
    assert kept["title"]["zh-CN"] == "海归人才交流会"
    assert kept["remind_at"] == datetime(2026, 12, 4, 14, 0, tzinfo=SHANGHAI)


def test_an_invitation_follows_preferences_and_consent(db):
    people(db)
    body = {"opt_outs": [{"channel": "email", "topic": "activity_invitation"}], "quiet_hours": None}
    with db.unit_of_work() as uow:
        handlers.put_preferences(RETURNEE, body, LI_WEI, uow)
    invitation = take(db, "invitation.issued")
    assert channels(db, event_id=invitation.id) == {"email": "suppressed", "in_app": "sent"}
    take(db, "consent.changed", purpose="notifications", granted=False,
         changed_at="2026-11-28T10:05:00+08:00")  # fmt: skip
    later = take(db, "invitation.issued", activity_id=str(uuid.uuid4()))
    assert (
        rows(db, event_id=later.id, channel="email")[0]["reason"] == "no consent to notifications"
    )


def test_an_invitation_for_a_returnee_not_known_yet_waits_for_them(db):
    invitation = take(db, "invitation.issued")
    assert rows(db) == [] and len(db.store.waiting_events) == 1
    people(db)
    assert channels(db, event_id=invitation.id) == {"email": "queued", "in_app": "sent"}


def test_quiet_hours_hold_an_invitation_until_they_end(db):
    people(db)
    with db.unit_of_work() as uow:
        quiet = {"start": datetime(2026, 1, 1, 9).time(), "end": datetime(2026, 1, 1, 12).time(),
                 "timezone": "Asia/Shanghai"}  # fmt: skip
        handlers.put_preferences(RETURNEE, {"opt_outs": [], "quiet_hours": quiet}, LI_WEI, uow)
    invitation = take(db, "invitation.issued")
    with db.unit_of_work() as uow:
        assert handlers.claim(uow, SETTINGS) == []
    [email] = rows(db, event_id=invitation.id, channel="email")
    assert email["held_for_quiet_hours"]
    assert email["next_attempt_at"] == datetime(2026, 11, 28, 12, 0, tzinfo=SHANGHAI)


# --- registrations ------------------------------------------------------------------------------


def test_a_confirmation_carries_the_code_and_a_qr_code_that_reads_back_to_it(db):
    people(db)
    confirmed = take(db, "registration.confirmed")

    assert channels(db, event_id=confirmed.id, recipient_id=RETURNEE) == {
        "email": "queued", "in_app": "sent"
    }  # fmt: skip
    [email] = rows(db, event_id=confirmed.id, recipient_id=RETURNEE, channel="email")
    assert email["template"] == "registration_confirmed"
    assert email["subject"] == "报名成功：海归人才交流会" and "签到码：K7M2QX9P" in email["body"]
    uri = re.search(r'src="(data:image/png;base64,[^"]+)"', email["html"]).group(1)
    assert decoded(from_png(uri)) == ["K7M2QX9P"]  # what the door's scanner reads
    [inbox] = rows(db, event_id=confirmed.id, recipient_id=RETURNEE, channel="in_app")
    assert decoded(from_text(qr.text_art("K7M2QX9P"))) == ["K7M2QX9P"]
    assert qr.text_art("K7M2QX9P") in inbox["body"]
    # The organizers' provider hears of the registration, by email only.
    assert channels(db, event_id=confirmed.id, recipient_id=WRSA_PROVIDER) == {"email": "queued"}
    [digest] = rows(db, event_id=confirmed.id, recipient_id=WRSA_PROVIDER)
    assert digest["template"] == "activity_registrations" and "1 new with a seat" in digest["body"]
    assert "李伟" not in digest["body"]  # counts, not who
    assert db.store.activity_registrations[REGISTRATION]["status"] == "confirmed"


def test_a_promotion_from_the_waitlist_says_so_and_is_no_new_registration(db):
    people(db)
    waitlisted = take(db, "registration.waitlisted")
    assert rows(db, event_id=waitlisted.id, recipient_id=RETURNEE) == []
    assert rows(db, event_id=waitlisted.id, recipient_id=WRSA_PROVIDER)[0]["body"].count("waitlist")
    promoted = take(db, "registration.confirmed", promoted=True)
    [email] = rows(db, event_id=promoted.id, recipient_id=RETURNEE, channel="email")
    assert email["template"] == "waitlist_promoted" and "K7M2QX9P" in email["body"]
    assert rows(db, event_id=promoted.id, recipient_id=WRSA_PROVIDER) == []
    assert db.store.activity_registrations[REGISTRATION]["status"] == "confirmed"
    take(db, "registration.waitlisted", at=NOW + timedelta(seconds=1))  # late: no step back
    assert db.store.activity_registrations[REGISTRATION]["status"] == "confirmed"


def test_registrations_within_the_digest_window_come_as_one_email_to_the_organizers(db):
    people(db)
    windowed = dataclasses.replace(SETTINGS, digest_window=300)
    take(db, "registration.confirmed", settings=windowed)
    take(db, "registration.confirmed", settings=windowed, registration_id=str(uuid.uuid4()))
    take(db, "registration.waitlisted", settings=windowed, registration_id=str(uuid.uuid4()))
    digests = rows(db, recipient_id=WRSA_PROVIDER, template="activity_registrations")
    [lead] = [d for d in digests if d["digest_id"] is None]
    assert len(digests) == 3 and lead["context"]["activities"][0]["confirmed"] == 2
    assert lead["context"]["activities"][0]["waitlisted"] == 1
    assert "2 new with a seat, 1 on the waitlist" in lead["body"]


# --- reminders and cancellations ----------------------------------------------------------------


def test_the_reminder_goes_the_day_before_to_the_seats_confirmed_by_then_once(db, clock):
    people(db)
    take(db, "activity.published")
    take(db, "registration.confirmed")
    with db.unit_of_work() as uow:
        assert handlers.remind_activities_due(uow, SETTINGS) == 0  # not yet

    clock.advance(days=6, hours=4)  # 4 December, 14:00: 24 hours before
    late = str(uuid.uuid4())
    take(db, "registration.confirmed", at=clock.at + timedelta(minutes=1), registration_id=late,
         registrant_role="provider", returnee_id=None, staff_id=WRSA_PROVIDER)  # fmt: skip
    assert rows(db, recipient_id=WRSA_PROVIDER, template="registration_confirmed")
    with db.unit_of_work() as uow:
        assert handlers.remind_activities_due(uow, SETTINGS) == 1
    trigger = activity_reminder_trigger(REGISTRATION)
    assert channels(db, event_id=trigger.id) == {"email": "queued", "in_app": "sent"}
    [email] = rows(db, event_id=trigger.id, channel="email")
    assert email["template"] == "activity_reminder" and "2026-12-05 14:00" in email["subject"]
    assert rows(db, event_id=activity_reminder_trigger(late).id) == []  # just confirmed: told
    with db.unit_of_work() as uow:
        assert handlers.remind_activities_due(uow, SETTINGS) == 0  # once


def test_a_cancelled_activity_is_told_to_everyone_registered_and_reminds_nobody(db, clock):
    people(db)
    take(db, "activity.published")
    take(db, "registration.confirmed")
    waiting = str(uuid.uuid4())
    staff = {"staff_id": waiting, "email": "w@example.cn", "name": "Wang", "role": "provider",
             "organization_id": WRSA_CHANGNING, "locale": "en"}  # fmt: skip
    take(db, "staff.registered", **staff)
    take(db, "registration.waitlisted", registration_id=str(uuid.uuid4()),
         registrant_role="provider", returnee_id=None, staff_id=waiting)  # fmt: skip
    cancelled = take(db, "activity.cancelled")

    told = {n["recipient_id"]: n["template"] for n in rows(db, event_id=cancelled.id)}
    assert told == {RETURNEE: "activity_cancelled", waiting: "activity_cancelled"}
    [email] = rows(db, event_id=cancelled.id, recipient_id=RETURNEE, channel="email")
    assert email["subject"] == "活动取消：海归人才交流会"
    clock.advance(days=6, hours=4)
    with db.unit_of_work() as uow:
        assert handlers.remind_activities_due(uow, SETTINGS) == 0


def test_a_reminder_held_by_quiet_hours_is_dropped_when_the_registration_is_cancelled(db, clock):
    people(db)
    take(db, "activity.published")
    take(db, "registration.confirmed")
    clock.advance(days=6, hours=4)
    with db.unit_of_work() as uow:
        handlers.remind_activities_due(uow, SETTINGS)
    trigger = activity_reminder_trigger(REGISTRATION).id
    assert rows(db, event_id=trigger, channel="email")[0]["status"] == "queued"
    take(db, "registration.cancelled", at=clock.at)
    [email] = rows(db, event_id=trigger, channel="email")
    assert (email["status"], email["reason"]) == ("suppressed", "registration cancelled")
    assert db.store.activity_registrants(EXCHANGE_SESSION) == []


def test_a_reminder_reached_after_the_start_is_not_sent(db, clock):
    people(db)
    take(db, "activity.published")
    take(db, "registration.confirmed")
    clock.advance(days=8)
    with db.unit_of_work() as uow:
        assert handlers.remind_activities_due(uow, SETTINGS) == 0
    assert db.store.activities[EXCHANGE_SESSION]["reminder"] == "missed"
    assert rows(db, event_id=activity_reminder_trigger(REGISTRATION).id) == []


# --- intentions met at an activity, erasure ---------------------------------------------------


def test_an_intention_met_at_an_activity_names_the_activity(db):
    people(db)
    take(db, "activity.published")
    expressed = take(db, "intention.expressed", version=2)
    [email] = rows(db, event_id=expressed.id, recipient_id=WRSA_PROVIDER, channel="email")
    assert 'toward your organization at "Returnee exchange session"' in email["body"]
    accepted = take(db, "intention.accepted", version=2)
    [answer] = rows(db, event_id=accepted.id, recipient_id=RETURNEE, channel="email")
    assert (
        "海归人才交流会" in answer["body"]
        and answer["context"]["intention_id"] == ACTIVITY_INTENTION
    )


def test_erasure_forgets_the_registrant(db):
    people(db)
    take(db, "registration.confirmed")
    take(db, "returnee.erased")
    assert db.store.activity_registrations == {}
    take(db, "registration.confirmed", at=NOW + timedelta(seconds=1))  # late
    assert db.store.activity_registrations == {} and rows(db, recipient_id=RETURNEE) == []
