"""Working time at the station: deadlines that run only in working hours on mainland-China
working days, so Spring Festival, National Day and a weekend do not eat a consultation's
service level, and the make-up working days (调休, a Saturday or Sunday worked in exchange for a
longer holiday) count as working days.

Which days are working days comes from `chinese_calendar`, which ships the State Council's
yearly arrangement of public holidays and make-up days. A year it does not know yet (the
arrangement is announced each November or December for the next year) falls back to Monday to
Friday, with a warning logged once per year: a deadline off by a holiday is better than a
question refused. Upgrading the package is the fix; a unit test fails while the coming year is
missing.

Pure apart from that warning: instants in, instants out.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache

import chinese_calendar

from chassis.clock import SHANGHAI

log = logging.getLogger(__name__)


@cache
def official_workday(day: date) -> bool:
    """Whether `day` is a working day in mainland China (make-up working days included)."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        _warn_unknown_year(day.year)
        return day.weekday() < 5


@cache
def _warn_unknown_year(year: int) -> None:
    log.warning(
        "chinese_calendar has no holiday arrangement for %s: Monday to Friday count as working"
        " days; upgrade chinese-calendar once the State Council has published it",
        year,
    )


def knows_year(year: int) -> bool:
    """Whether the calendar package has the official arrangement of `year`."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def parse_hours(text: str) -> tuple[time, time]:
    """`"09:00-17:30"` → (09:00, 17:30); ValueError for anything else or an empty day."""
    try:
        opens, closes = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"working hours must read HH:MM-HH:MM, not {text!r}") from None
    if closes <= opens:
        raise ValueError(f"working hours {text!r} close before they open")
    return opens, closes


@dataclass(frozen=True)
class WorkingCalendar:
    """The station's working hours on working days, in its time zone."""

    opens: time = time(9, 0)
    closes: time = time(17, 30)
    zone = SHANGHAI
    workday = staticmethod(official_workday)

    @classmethod
    def from_setting(cls, hours: str) -> "WorkingCalendar":
        opens, closes = parse_hours(hours)
        return cls(opens, closes)

    @property
    def day(self) -> timedelta:
        """The working time of one working day (8 h 30 min for 09:00–17:30)."""
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)

    def _open_close(self, day: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, self.opens, tzinfo=self.zone),
            datetime.combine(day, self.closes, tzinfo=self.zone),
        )

    def add(self, start: datetime, work: timedelta) -> datetime:
        """The instant `work` of working time after `start`; outside working time the clock
        waits for the next opening. With no work, `start` itself."""
        if work <= timedelta(0):
            return start
        local = start.astimezone(self.zone)
        day, moment = local.date(), local
        while True:
            opens, closes = self._open_close(day)
            if self.workday(day) and moment < closes:
                moment = max(moment, opens)
                left = closes - moment
                if work <= left:
                    return moment + work
                work -= left
            day += timedelta(days=1)
            moment = datetime.combine(day, self.opens, tzinfo=self.zone)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The working time from `start` to `end` (zero when `end` is not after `start`)."""
        if end <= start:
            return timedelta(0)
        first, last = start.astimezone(self.zone), end.astimezone(self.zone)
        total, day = timedelta(0), first.date()
        while day <= last.date():
            if self.workday(day):
                opens, closes = self._open_close(day)
                low, high = max(opens, first), min(closes, last)
                if high > low:
                    total += high - low
            day += timedelta(days=1)
        return total
