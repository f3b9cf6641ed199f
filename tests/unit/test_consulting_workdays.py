"""Consultation deadlines in working time: station hours (09:00–17:30 Shanghai) on mainland-China
working days, across the National Day holiday, a make-up Saturday, Spring Festival and a year
the calendar package does not know yet; and breaches reported only when the working-time
deadline has passed."""

import logging
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from chassis.auth import Caller
from chassis.clock import SHANGHAI, Clock, FrozenClock
from chassis.uow import MemoryDatabase
from services.consulting import consultations, handlers, workdays
from services.consulting.memory import MemoryStore
from services.consulting.schemas import ConsultationIn
from services.consulting.workdays import WorkingCalendar

H = timedelta(hours=1)
STATION = WorkingCalendar()


def at(day: str, clock: str = "09:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2026-09-20", True),  # Sunday, made up for National Day
        ("2026-09-25", False),  # Friday, Mid-autumn Festival
        ("2026-09-30", True),
        ("2026-10-01", False),  # National Day, Thursday
        ("2026-10-07", False),  # still the holiday, a Wednesday
        ("2026-10-08", True),
        ("2026-10-10", True),  # Saturday, made up for National Day
        ("2026-10-11", False),  # an ordinary Sunday
        ("2026-02-14", True),  # Saturday, made up for Spring Festival
        ("2026-02-16", False),  # Spring Festival, Monday
        ("2026-02-28", True),  # Saturday, made up for Spring Festival
        ("2026-11-28", False),  # an ordinary Saturday
    ],
)
def test_the_official_calendar_of_2026(day, working):
    assert workdays.official_workday(date.fromisoformat(day)) is working


def test_the_calendar_package_knows_2026_and_the_year_we_are_in():
    # On purpose by the real clock: fails once the package is older than the year, so CI says
    # to upgrade chinese-calendar (the service itself falls back to Monday to Friday).
    assert workdays.knows_year(2026) and workdays.knows_year(Clock().today().year)


def test_a_year_the_package_does_not_know_falls_back_to_monday_to_friday(caplog):
    with caplog.at_level(logging.WARNING, logger="services.consulting.workdays"):
        assert workdays.official_workday(date(2031, 5, 1)) is True  # a Thursday, a holiday later
        assert workdays.official_workday(date(2031, 5, 3)) is False  # Saturday
    assert "no holiday arrangement for 2031" in caplog.text
    assert not workdays.knows_year(2031)


@pytest.mark.parametrize(
    ("start", "work", "due"),
    [
        (at("2026-11-30"), 8 * H, at("2026-11-30", "17:00")),  # a plain Monday
        (at("2026-11-30", "07:12"), H, at("2026-11-30", "10:00")),  # before opening
        (at("2026-11-30", "20:00"), H, at("2026-12-01", "10:00")),  # after closing
        (at("2026-11-27", "17:00"), H, at("2026-11-30", "09:30")),  # over a weekend
        (at("2026-11-30", "12:00"), 5.5 * H, at("2026-11-30", "17:30")),  # exactly at closing
        # National Day: 30 September 16:00 + 8 h = 1.5 h that day and 6.5 h on 8 October.
        (at("2026-09-30", "16:00"), 8 * H, at("2026-10-08", "15:30")),
        # Three working days from then: 1.5 h, 8 October, 9 October, and the make-up Saturday.
        (at("2026-09-30", "16:00"), 3 * STATION.day, at("2026-10-10", "16:00")),
        # A Saturday question before the make-up day: the clock starts on that Saturday.
        (at("2026-10-10", "08:00"), 8 * H, at("2026-10-10", "17:00")),
        # Over Spring Festival 2026: 13 February (Friday) to the make-up Saturday 14 February.
        (at("2026-02-13", "17:00"), 2 * H, at("2026-02-14", "10:30")),
        # and from that Saturday over the nine-day holiday to Tuesday 24 February.
        (at("2026-02-14", "17:00"), 2 * H, at("2026-02-24", "10:30")),
        (at("2026-11-30"), timedelta(0), at("2026-11-30")),
    ],
)
def test_working_time_is_added_across_holidays_and_make_up_days(start, work, due):
    assert STATION.add(start, work) == due
    assert STATION.add(start.astimezone(UTC), work) == due  # any zone in, the same instant
    if work:
        assert STATION.between(start, due) == work


def test_working_time_between_two_instants():
    assert STATION.between(at("2026-09-30", "16:00"), at("2026-10-08", "10:00")) == 2.5 * H
    assert STATION.between(at("2026-10-01"), at("2026-10-07", "23:00")) == timedelta(0)
    assert STATION.between(at("2026-10-08", "12:00"), at("2026-10-08", "11:00")) == timedelta(0)


def test_working_hours_are_a_setting():
    short = WorkingCalendar.from_setting("08:30-12:00")
    assert short.day == 3.5 * H
    assert short.add(at("2026-11-30", "11:00"), 2 * H) == at("2026-12-01", "09:30")
    for bad in ("9-17", "17:30-09:00", "09:00", "nine to five"):
        with pytest.raises(ValueError):
            WorkingCalendar.from_setting(bad)


def test_a_consultation_asked_before_national_day_is_not_breached_during_it():
    clock = FrozenClock(at("2026-09-30", "16:00"))
    db = MemoryDatabase("consulting", MemoryStore(clock), clock=clock)
    me = Caller(str(uuid.uuid4()), "returnee")
    with db.unit_of_work() as uow:
        asked = handlers.request_consultation(
            ConsultationIn().load({"topic": "funding", "question": "Grants?"}), me, uow
        )
    assert asked["first_response_due"] == at("2026-10-08", "15:30")
    assert asked["resolution_due"] == at("2026-10-10", "16:00")  # the make-up Saturday counts
    db.outbox.clear()
    # Twenty calendar hours later (and three days into the holiday): no breach.
    for moment in (at("2026-10-01", "12:00"), at("2026-10-03", "12:00"), at("2026-10-08", "15:29")):
        clock.at = moment
        with db.unit_of_work() as uow:
            assert handlers.check_sla(uow) == 0
    clock.at = at("2026-10-08", "15:31")
    with db.unit_of_work() as uow:
        assert handlers.check_sla(uow) == 1
    [breach] = db.published("consultation.sla_breached")
    assert breach.data["deadline"] == "first_response"
    assert breach.data["due_at"] == at("2026-10-08", "15:30").isoformat()
    clock.at = at("2026-10-10", "15:59")  # the Saturday worked: the resolution clock still runs
    with db.unit_of_work() as uow:
        assert handlers.check_sla(uow) == 0
    clock.at = at("2026-10-10", "16:01")
    with db.unit_of_work() as uow:
        assert handlers.check_sla(uow) == 1


def test_a_pause_waiting_on_the_returnee_gives_back_the_working_time_left():
    ticket = consultations.open_consultation("c1", "r1", "funding", at("2026-09-29"))
    ticket = consultations.assign(ticket, "a1", at("2026-09-29"))
    assert ticket.resolution_due == at("2026-10-08", "17:30")  # 29, 30 September, 8 October
    # Asked for information on 30 September at 12:00: 5.5 h that day and 8 October were left.
    asked = consultations.advisor_message(ticket, "a1", True, at("2026-09-30", "12:00"))
    # The returnee answers on 9 October at 09:00: the same 14 h of working time from then,
    # 8.5 h that Friday and 5.5 h on the make-up Saturday.
    back = consultations.returnee_message(asked, at("2026-10-09"))
    assert back.resolution_due == at("2026-10-10", "14:30")
    assert STATION.between(at("2026-10-09"), back.resolution_due) == 14 * H
