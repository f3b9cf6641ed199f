"""The consultation state machine and its SLA clocks (in working time), with frozen time."""

from datetime import UTC, datetime, timedelta

import pytest

from services.consulting import consultations as c

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai: the station opens
H = timedelta(hours=1)


def fresh(topic="funding"):
    return c.open_consultation("c1", "r1", topic, T0)


def test_deadlines_come_from_the_topic():
    ticket = fresh()
    assert ticket.status == "new"
    assert ticket.first_response_due == T0 + 8 * H
    # Three working days of 8 h 30 min: Monday, Tuesday and Wednesday until 17:30.
    assert ticket.resolution_due == T0 + timedelta(days=2, hours=8, minutes=30)


def test_happy_path_through_every_state():
    ticket = c.assign(fresh(), "a1", T0 + H)
    assert (ticket.status, ticket.advisor_id) == ("assigned", "a1")
    ticket = c.advisor_message(ticket, "a1", asks_returnee=True, now=T0 + 2 * H)
    assert ticket.status == "waiting_on_returnee" and ticket.first_responded_at == T0 + 2 * H
    ticket = c.advisor_message(ticket, "a1", asks_returnee=False, now=T0 + 3 * H)
    assert ticket.status == "answered"
    ticket = c.advisor_message(ticket, "a1", asks_returnee=True, now=T0 + 4 * H)
    assert ticket.status == "waiting_on_returnee"
    ticket = c.returnee_message(ticket, T0 + 5 * H)
    assert ticket.status == "assigned"
    ticket = c.close(ticket, T0 + 6 * H)
    assert ticket.status == "closed"
    ticket = c.rate(ticket, 5)
    assert ticket.rating == 5
    ticket = c.reopen(ticket, T0 + 7 * H)
    assert ticket.status == "reopened" and ticket.rating is None


def test_waiting_on_the_returnee_pauses_the_resolution_clock():
    ticket = c.advisor_message(c.assign(fresh(), "a1", T0), "a1", True, T0 + H)
    due = ticket.resolution_due
    # Two working days of silence from the returnee: no breach while waiting, and the deadline
    # moves by them.
    assert c.breaches(ticket, due + 2 * H) == []
    ticket = c.returnee_message(ticket, T0 + H + timedelta(days=2))
    assert ticket.resolution_due == due + timedelta(days=2)
    assert c.breaches(ticket, due + H) == []
    assert c.breaches(ticket, due + timedelta(days=2, hours=1)) == [
        ("resolution", due + timedelta(days=2))
    ]


def test_missed_first_response_is_reported_once():
    ticket = c.assign(fresh(), "a1", T0)
    assert c.breaches(ticket, T0 + 8 * H) == []
    found = c.breaches(ticket, T0 + 9 * H)
    assert found == [("first_response", T0 + 8 * H)]
    ticket = c.mark_breached(ticket, "first_response", T0 + 9 * H)
    assert c.breaches(ticket, T0 + 10 * H) == []


def test_closed_tickets_are_off_the_clock():
    ticket = c.close(fresh(), T0 + H)
    assert c.breaches(ticket, T0 + timedelta(days=30)) == []


@pytest.mark.parametrize(
    ("prepare", "action"),
    [
        (lambda t: t, lambda t: c.rate(t, 4)),
        (lambda t: t, lambda t: c.reopen(t, T0)),
        (lambda t: c.close(t, T0), lambda t: c.close(t, T0)),
        (lambda t: c.close(t, T0), lambda t: c.advisor_message(t, "a1", False, T0)),
        (lambda t: c.rate(c.close(t, T0), 3), lambda t: c.rate(t, 5)),
        (lambda t: c.close(t, T0), lambda t: c.reopen(t, T0 + timedelta(days=31))),
    ],
)
def test_refused_transitions(prepare, action):
    with pytest.raises(c.TransitionRefused):
        action(prepare(fresh()))


def test_round_robin_prefers_never_assigned_then_the_longest_idle():
    assert c.next_advisor([]) is None
    assert c.next_advisor([("b", T0), ("a", None)]) == "a"
    assert c.next_advisor([("b", T0 + H), ("a", T0 + 2 * H)]) == "b"
