"""Consultations as a state machine with SLA clocks (helpdesk anchors: Zammad, Frappe Helpdesk).

    new ─assign─▶ assigned ─answer─▶ answered ⇄ waiting_on_returnee
                     ▲                     │ returnee replies │
                     └─────────────────────┴──────────────────┘
    any open state ─close─▶ closed ─reopen─▶ reopened (─answer─▶ answered ...)

Pure: a `Consultation` value and `now` in, a new value and the event to publish out. Time is always
passed in, so tests freeze it. Deadlines run in working time (`workdays.WorkingCalendar`: the
station's hours on mainland-China working days): outside them the clock stands still. It pauses
too while the ticket waits on the returnee: on leaving that state the resolution deadline is set
again from the working time that was left when the pause began.
"""

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from services.consulting.workdays import WorkingCalendar

NEW, ASSIGNED, ANSWERED, WAITING, CLOSED, REOPENED = (
    "new",
    "assigned",
    "answered",
    "waiting_on_returnee",
    "closed",
    "reopened",
)
OPEN = (NEW, ASSIGNED, ANSWERED, WAITING, REOPENED)


@dataclass(frozen=True)
class Sla:
    """A topic's service level in working time: hours to the first response, working days to
    the resolution (a working day is the station's day, 8 h 30 min for 09:00–17:30)."""

    first_response_hours: int
    resolution_days: int

    def first_response(self, calendar: WorkingCalendar) -> timedelta:
        return timedelta(hours=self.first_response_hours)

    def resolution(self, calendar: WorkingCalendar) -> timedelta:
        return self.resolution_days * calendar.day


# Topics people ask about at the station, with their service levels and names in both languages.
TOPICS = {
    "funding": (Sla(8, 3), "资金与补贴", "Funding and grants"),
    "policy": (Sla(8, 5), "政策咨询", "Policy questions"),
    "hukou": (Sla(24, 10), "落户", "Residence and hukou"),
    "company_registration": (Sla(8, 3), "企业注册", "Company registration"),
    "cross_border_finance": (Sla(24, 5), "跨境金融", "Cross-border finance"),
    "office_space": (Sla(24, 5), "办公场地", "Office space"),
    "general": (Sla(24, 7), "其他", "Other questions"),
}
REOPEN_WINDOW = timedelta(days=30)  # calendar days: how long a closed ticket may be reopened
STATION = WorkingCalendar()  # 09:00–17:30 Asia/Shanghai; the service passes its configured one


class TransitionRefused(Exception):
    """The action is not allowed in the consultation's current state."""

    def __init__(self, action: str, status: str):
        self.action, self.status = action, status
        super().__init__(f"cannot {action} a consultation that is {status}")


@dataclass(frozen=True)
class Consultation:
    id: str
    returnee_id: str
    topic: str
    status: str
    created_at: datetime
    first_response_due: datetime
    resolution_due: datetime
    advisor_id: str | None = None
    first_responded_at: datetime | None = None
    paused_at: datetime | None = None
    closed_at: datetime | None = None
    first_response_breached_at: datetime | None = None
    resolution_breached_at: datetime | None = None
    rating: int | None = None


FIELDS = tuple(f.name for f in fields(Consultation))
IDS = ("id", "returnee_id", "advisor_id")


def from_row(row: dict) -> Consultation:
    """The state machine's value of a stored consultation row."""
    values = {k: row[k] for k in FIELDS}
    for k in IDS:
        values[k] = None if values[k] is None else str(values[k])
    return Consultation(**values)


def open_consultation(id: str, returnee_id: str, topic: str, now: datetime,
                      calendar: WorkingCalendar = STATION) -> Consultation:  # fmt: skip
    sla = TOPICS[topic][0]
    return Consultation(
        id=id,
        returnee_id=returnee_id,
        topic=topic,
        status=NEW,
        created_at=now,
        first_response_due=calendar.add(now, sla.first_response(calendar)),
        resolution_due=calendar.add(now, sla.resolution(calendar)),
    )


def _resume(c: Consultation, now: datetime, calendar: WorkingCalendar) -> Consultation:
    """Leave the paused state: the time waited on the returnee does not count. The deadline is
    the working time left when the pause began, counted again from now (a deadline already
    passed when the pause began stays where it was)."""
    if c.paused_at is None:
        return c
    due = c.resolution_due
    if due > c.paused_at:
        due = calendar.add(now, calendar.between(c.paused_at, due))
    return replace(c, resolution_due=due, paused_at=None)


def _require(c: Consultation, action: str, *allowed: str) -> None:
    if c.status not in allowed:
        raise TransitionRefused(action, c.status)


def assign(c: Consultation, advisor_id: str, now: datetime) -> Consultation:
    """First assignment or reassignment of an open ticket."""
    _require(c, "assign", NEW, ASSIGNED, ANSWERED, WAITING, REOPENED)
    status = ASSIGNED if c.status in (NEW, ASSIGNED) else c.status
    return replace(c, advisor_id=advisor_id, status=status)


def advisor_message(c: Consultation, advisor_id: str, asks_returnee: bool, now: datetime,
                    calendar: WorkingCalendar = STATION):  # fmt: skip
    """An advisor writes: an answer (→ answered) or a request for information (→ waiting, the
    clock pauses). The first one meets the first-response deadline."""
    _require(c, "answer", ASSIGNED, ANSWERED, WAITING, REOPENED, NEW)
    c = _resume(c, now, calendar)
    c = replace(
        c,
        advisor_id=c.advisor_id or advisor_id,
        first_responded_at=c.first_responded_at or now,
        status=WAITING if asks_returnee else ANSWERED,
        paused_at=now if asks_returnee else None,
    )
    return c


def returnee_message(c: Consultation, now: datetime,
                     calendar: WorkingCalendar = STATION) -> Consultation:  # fmt: skip
    """The returnee writes: the ball is in the advisor's court again."""
    _require(c, "reply to", NEW, ASSIGNED, ANSWERED, WAITING, REOPENED)
    if c.status in (NEW, ASSIGNED, REOPENED):
        return c
    return replace(_resume(c, now, calendar), status=ASSIGNED)


def close(c: Consultation, now: datetime, calendar: WorkingCalendar = STATION) -> Consultation:
    _require(c, "close", *OPEN)
    return replace(_resume(c, now, calendar), status=CLOSED, closed_at=now)


def reopen(c: Consultation, now: datetime, calendar: WorkingCalendar = STATION) -> Consultation:
    """Reopen a recently closed ticket; it gets a fresh resolution deadline."""
    _require(c, "reopen", CLOSED)
    if c.closed_at is not None and now - c.closed_at > REOPEN_WINDOW:
        raise TransitionRefused("reopen", "closed too long ago")
    sla = TOPICS[c.topic][0]
    return replace(
        c,
        status=REOPENED,
        closed_at=None,
        rating=None,
        resolution_due=calendar.add(now, sla.resolution(calendar)),
        resolution_breached_at=None,
    )


def rate(c: Consultation, rating: int) -> Consultation:
    _require(c, "rate", CLOSED)
    if c.rating is not None:
        raise TransitionRefused("rate again", c.status)
    return replace(c, rating=rating)


def breaches(c: Consultation, now: datetime) -> list[tuple[str, datetime]]:
    """Deadlines missed and not reported yet: [(first_response|resolution, due_at)]. A ticket
    waiting on the returnee or closed is not on the clock. The deadlines are working-time
    instants already, so a deadline passed is a breach whatever the day."""
    if c.status not in (NEW, ASSIGNED, ANSWERED, REOPENED):
        return []
    found = []
    if (
        c.first_responded_at is None
        and c.first_response_breached_at is None
        and now > c.first_response_due
    ):
        found.append(("first_response", c.first_response_due))
    if c.resolution_breached_at is None and now > c.resolution_due:
        found.append(("resolution", c.resolution_due))
    return found


def mark_breached(c: Consultation, deadline: str, now: datetime) -> Consultation:
    if deadline == "first_response":
        return replace(c, first_response_breached_at=now)
    return replace(c, resolution_breached_at=now)


def next_advisor(advisors: list[tuple[str, datetime | None]]) -> str | None:
    """Round-robin: the advisor whose last assignment is oldest (never assigned first)."""
    if not advisors:
        return None
    never = [a for a, last in advisors if last is None]
    if never:
        return sorted(never)[0]
    return min(advisors, key=lambda item: (item[1], item[0]))[0]


# ---------------------------------------------------------------- what is published and answered


def event_data(c: Consultation, **extra) -> dict:
    """The data every `consultation.*` event carries: the ticket's state, never its text."""
    return {
        "consultation_id": c.id,
        "returnee_id": c.returnee_id,
        "topic": c.topic,
        "status": c.status,
        "advisor_id": c.advisor_id,
        **extra,
    }


def breach_data(c: Consultation, deadline: str, due_at: datetime) -> dict:
    return {
        "consultation_id": c.id,
        "returnee_id": c.returnee_id,
        "advisor_id": c.advisor_id,
        "topic": c.topic,
        "deadline": deadline,
        "due_at": due_at,
    }


def message_event(before: str, c: Consultation, role: str) -> tuple[str, bool] | None:
    """The event a message's transition from status `before` makes, as `(type, carries the
    message id)`; None when it made none. Every advisor answer is published, even on a ticket
    answered already: the returnee is told of each one."""
    if c.status == before and c.status != ANSWERED:
        return None
    if c.status == ANSWERED and role != "returnee":
        return "consultation.answered", True
    if c.status == WAITING and before != WAITING:
        return "consultation.waiting_on_returnee", True
    if c.status == ASSIGNED and before != ASSIGNED:
        # The returnee replied: the ticket is back with its advisor, and its clock runs.
        return "consultation.assigned", False
    return None


VIEW_FIELDS = (
    "id",
    "returnee_id",
    "topic",
    "question",
    "policy_id",
    "status",
    "advisor_id",
    "created_at",
    "first_response_due",
    "resolution_due",
    "first_responded_at",
    "closed_at",
    "escalated",
    "rating",
    "rating_comment",
)


def view(row: dict, thread: list[dict] | None = None) -> dict:
    """A stored consultation as the HTTP API answers it (with its thread when given)."""
    out = {k: row[k] for k in VIEW_FIELDS}
    out["sla_paused"] = row["paused_at"] is not None
    if thread is not None:
        out["messages"] = thread
    return out
