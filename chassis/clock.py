"""The one clock of the platform. Every "now" a rule, a deadline or a record reads comes from a
`Clock`; every "today" is a day in Asia/Shanghai, where the station is, whatever the server's
own time zone (a returnee who registers at 07:30 on 1 October in Shanghai registered on
1 October, although it is still 30 September in UTC).

Tests freeze it: `FrozenClock(datetime(2026, 10, 1, 9, tzinfo=SHANGHAI))`, or a service's
config `CLOCK` (any callable answering an aware datetime).
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, now=None):
        self._now = now or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        return self._now()

    def today(self) -> date:
        """The current day in Asia/Shanghai."""
        return self.now().astimezone(SHANGHAI).date()

    def __call__(self) -> datetime:
        return self.now()


class FrozenClock(Clock):
    """A clock that stands still until moved: `clock.advance(hours=2)`."""

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            raise ValueError("a frozen clock needs an aware datetime")
        self.at = at
        super().__init__(lambda: self.at)

    def advance(self, **delta) -> datetime:
        self.at = self.at + timedelta(**delta)
        return self.at


def clock_from_config(config: dict) -> Clock:
    """The service's clock: config `CLOCK` (tests) or the system's."""
    configured = config.get("CLOCK")
    if configured is None:
        return Clock()
    return configured if isinstance(configured, Clock) else Clock(configured)
