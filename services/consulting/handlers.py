"""consulting's use cases: one function per command and per event, each in one unit of work.

Commands take what the entrypoint loaded (path ids, the body or query as `command`, the verified
`caller`) and answer what the entrypoint sends back; events take the event. Both reach the
tables through `uow.store` and publish with `uow.publish`. Refusals are the chassis' HTTP
errors, their texts in `messages.py`. Rules live in the domain modules: `eligibility` and
`screening` (the engine), `assessing`, `consultations` (the ticket state machine), `access`
(who may see what), `catalog` and `appointments`.
"""

import uuid

from chassis.auth import Caller
from chassis.web import Conflict, HttpError, NotFound
from contracts import Event
from services.consulting import access, appointments, assessing
from services.consulting import consultations as tickets
from services.consulting.catalog import policy_id as catalog_id
from services.consulting.catalog import published_event
from services.consulting.eligibility import InvalidPolicy, assess, derive, explain, validate_policy
from services.consulting.messages import MESSAGES  # noqa: F401  (registers the catalog)

SLA_CHECK_BATCH = 200  # overdue tickets claimed per check, so one check stays a short transaction

# ---------------------------------------------------------------- policies


def list_policies(query: dict, uow) -> list[dict]:
    return uow.store.policies(effective_on=uow.today() if query["in_effect"] else None)


def get_policy(policy_id: str, uow) -> dict:
    _id_or_404(policy_id, "No such policy.")
    found = uow.store.policy(policy_id)
    if found is None:
        raise NotFound("No such policy.")
    return found


def publish_policy(command: dict, uow) -> dict:
    policy = {**command, "id": catalog_id(command["code"]), "version": 1}
    try:
        validate_policy(policy)
    except InvalidPolicy as exc:
        raise HttpError(
            "The policy's criteria cannot be evaluated.", fields=exc.errors, code="invalid"
        ) from None
    if not uow.store.insert_policy(policy):
        raise Conflict("A policy with this code exists already.")
    uow.publish("policy.published", published_event(policy), subject=policy["id"])
    return uow.store.policy(policy["id"])


def seed_catalog(policies: list[dict], uow) -> list[str]:
    """Write the catalog's policies whose version is newer than the stored one, each with its
    `policy.published`; returns the codes written."""
    changed = []
    for policy in policies:
        if uow.store.upsert_policy(policy):
            changed.append(policy["code"])
            uow.publish("policy.published", published_event(policy), subject=policy["id"])
    return changed


# ---------------------------------------------------------------- eligibility


def assess_returnee(event: Event, uow) -> None:
    """A profile registered or updated: keep the facts the rules read, assess the returnee
    against every policy in effect, and publish the result. Published after every assessment
    (even without changes): subscribers learn the current list, and `newly_eligible` /
    `no_longer_eligible` say what moved. An older profile than the one stored is ignored."""
    data = event.data
    returnee_id = data["returnee_id"]
    facts = assessing.facts_of(data)
    if not uow.store.save_facts(returnee_id, facts, event.time):
        return
    now, today = uow.now(), uow.today()
    before = uow.store.eligible_policies(returnee_id)
    eligible = assessing.eligible_now(uow.store.policies(effective_on=today), facts, today)
    uow.store.replace_eligibilities(returnee_id, eligible, now)
    uow.publish(
        "eligibility.assessed",
        assessing.assessment(returnee_id, now, before, eligible),
        subject=returnee_id,
    )


def erase_returnee(event: Event, uow) -> None:
    uow.store.erase_returnee(event.data["returnee_id"])


def reassess_for_policy(event: Event, uow, batch_size: int = assessing.BATCH_SIZE) -> int:
    """A policy published (new or changed): re-assess every returnee against it, batch by batch
    with the vectorised screening, in this one unit of work (the inbox makes the whole
    re-assessment happen once); `eligibility.assessed` only for returnees whose eligibility or
    tier for it changed. Returns how many changed."""
    policy = uow.store.policy(event.data["policy_id"])
    if policy is None:
        raise LookupError(f"policy {event.data['policy_id']} is not in the catalog")
    now, today = uow.now(), uow.today()
    changed, after = 0, None
    while rows := uow.store.returnee_batch(after, batch_size):
        after = rows[-1]["id"]
        before = uow.store.eligible_for_policy(policy["id"], [str(r["id"]) for r in rows])
        now_eligible, no_longer = assessing.screen_batch(policy, rows, before, today)
        uow.store.apply_policy_changes(policy["id"], policy["code"], now_eligible, no_longer)
        if not now_eligible and not no_longer:
            continue
        lists = uow.store.eligibility_lists([*now_eligible, *no_longer])
        events = assessing.policy_changes(policy, now, before, now_eligible, no_longer, lists)
        uow.publish_many("eligibility.assessed", events)
        changed += len(events)
    return changed


def eligibility(returnee_id: str, query: dict, locale: str, uow) -> list[dict]:
    """Every policy of the catalog, each criterion explained in `locale`, evaluated from the
    stored facts as of `query["as_of"]` (default: today)."""
    _id_or_404(returnee_id, "No eligibility facts for this returnee yet.")
    as_of = query["as_of"] or uow.today()
    facts = uow.store.facts(returnee_id)
    if facts is None:
        raise NotFound("No eligibility facts for this returnee yet.")
    derived = derive(facts, as_of)
    policies = uow.store.policies()
    titles = {p["code"]: p["title"] for p in policies}  # prior awards read as programme names
    return [explain(assess(p, facts, as_of, derived), p, locale, titles) for p in policies]


# ---------------------------------------------------------------- advisors


def register_advisor(event: Event, uow) -> None:
    data = event.data
    if data["role"] == "advisor":
        uow.store.save_advisor(data["staff_id"], data["name"], active=True)


# ---------------------------------------------------------------- consultations


def request_consultation(command: dict, caller: Caller, uow) -> dict:
    """A returnee's question: a new ticket with its deadlines, assigned round-robin when an
    advisor is active."""
    now = uow.now()
    ticket = tickets.open_consultation(str(uuid.uuid4()), caller.id, command["topic"], now)
    policy_id = str(command["policy_id"]) if command["policy_id"] else None
    if policy_id and uow.store.policy(policy_id) is None:
        raise HttpError(fields={"policy_id": ["No such policy."]}, code="invalid")
    uow.store.insert_consultation(ticket, command["question"], policy_id)
    uow.publish(
        "consultation.requested",
        tickets.event_data(ticket, policy_id=policy_id),
        subject=ticket.id,
    )
    advisor = tickets.next_advisor(uow.store.advisors_for_round_robin())
    if advisor is not None:
        ticket = _assign(uow, ticket, advisor)
    return tickets.view(uow.store.consultation_row(ticket.id), [])


def list_consultations(query: dict, caller: Caller, uow) -> list[dict]:
    rows = uow.store.consultations(
        returnee_id=access.listed_returnee(caller, query.get("returnee_id")),
        status=query.get("status"),
        limit=query["limit"],
    )
    return [tickets.view(r) for r in rows]


def get_consultation(consultation_id: str, caller: Caller, uow) -> dict:
    row = _visible_consultation(uow, caller, consultation_id)
    return tickets.view(row, uow.store.messages(consultation_id))


def post_message(consultation_id: str, command: dict, caller: Caller, uow) -> dict:
    """A message in the thread: the returnee's reply, or an advisor's (or an admin's, for the
    assigned advisor) answer or question back; the event of the transition it makes."""
    now = uow.now()
    message_id = str(uuid.uuid4())
    row = _visible_consultation(uow, caller, consultation_id, lock=True)
    ticket = tickets.from_row(row)
    if caller.role == "admin" and ticket.advisor_id is None:
        raise Conflict("Assign the consultation to an advisor first.")
    asks = caller.role != "returnee" and command["asks_returnee"]
    try:
        if caller.role == "returnee":
            ticket = tickets.returnee_message(ticket, now)
        else:
            author = caller.id if caller.role == "advisor" else ticket.advisor_id
            ticket = tickets.advisor_message(ticket, author, asks, now)
    except tickets.TransitionRefused as exc:
        raise _refused(exc) from None
    uow.store.insert_message(
        message_id, ticket.id, caller.id, caller.role, command["body"], asks, now
    )
    uow.store.update_consultation(ticket, now)
    made = tickets.message_event(row["status"], ticket, caller.role)
    if made is not None:
        event_type, with_message = made
        extra = {"message_id": message_id} if with_message else {}
        uow.publish(event_type, tickets.event_data(ticket, **extra), subject=ticket.id)
    return tickets.view(uow.store.consultation_row(ticket.id), uow.store.messages(ticket.id))


def assign_consultation(consultation_id: str, command: dict, caller: Caller, uow) -> dict:
    """To the advisor named, or round-robin when none is."""
    row = _visible_consultation(uow, caller, consultation_id, lock=True)
    if command["advisor_id"] is not None:
        advisor = str(command["advisor_id"])
        if not uow.store.advisor_exists(advisor):
            raise HttpError(fields={"advisor_id": ["No such advisor."]}, code="invalid")
    else:
        advisor = tickets.next_advisor(uow.store.advisors_for_round_robin())
        if advisor is None:
            raise Conflict("No advisor is available.")
    try:
        _assign(uow, tickets.from_row(row), advisor)
    except tickets.TransitionRefused as exc:
        raise _refused(exc) from None
    return tickets.view(uow.store.consultation_row(consultation_id))


def close_consultation(consultation_id: str, caller: Caller, uow) -> dict:
    now = uow.now()
    row = _visible_consultation(uow, caller, consultation_id, lock=True)
    try:
        ticket = tickets.close(tickets.from_row(row), now)
    except tickets.TransitionRefused as exc:
        raise _refused(exc) from None
    uow.store.update_consultation(ticket, now)
    uow.publish(
        "consultation.closed",
        tickets.event_data(ticket, closed_by=caller.role),
        subject=ticket.id,
    )
    return tickets.view(uow.store.consultation_row(consultation_id))


def reopen_consultation(consultation_id: str, caller: Caller, uow) -> dict:
    now = uow.now()
    row = _visible_consultation(uow, caller, consultation_id, lock=True)
    try:
        ticket = tickets.reopen(tickets.from_row(row), now)
    except tickets.TransitionRefused as exc:
        raise _refused(exc) from None
    uow.store.update_consultation(ticket, now)
    uow.publish(
        "consultation.reopened",
        tickets.event_data(ticket, reopened_by=caller.role),
        subject=ticket.id,
    )
    return tickets.view(uow.store.consultation_row(consultation_id))


def rate_consultation(consultation_id: str, command: dict, caller: Caller, uow) -> dict:
    row = _visible_consultation(uow, caller, consultation_id, lock=True)
    try:
        ticket = tickets.rate(tickets.from_row(row), command["rating"])
    except tickets.TransitionRefused:
        raise Conflict("The consultation can be rated only once, after it is closed.") from None
    uow.store.update_consultation(ticket, uow.now(), rating_comment=command["comment"])
    uow.publish(
        "consultation.rated",
        tickets.event_data(ticket, rating=ticket.rating),
        subject=ticket.id,
    )
    return tickets.view(uow.store.consultation_row(consultation_id))


def check_sla(uow, limit: int = SLA_CHECK_BATCH) -> int:
    """Report missed deadlines. Safe with several replicas: the store claims overdue tickets
    with SKIP LOCKED, and they are marked in the unit of work that publishes the breach.
    Returns how many breaches were reported."""
    now, reported = uow.now(), 0
    for row in uow.store.overdue_consultations(now, limit):
        ticket = tickets.from_row(row)
        for deadline, due_at in tickets.breaches(ticket, now):
            ticket = tickets.mark_breached(ticket, deadline, now)
            uow.publish(
                "consultation.sla_breached",
                tickets.breach_data(ticket, deadline, due_at),
                subject=ticket.id,
            )
            reported += 1
        uow.store.update_consultation(ticket, now, escalated=True)
    return reported


# ---------------------------------------------------------------- appointments


def publish_slot(command: dict, caller: Caller, uow) -> dict:
    slot = {**command, "id": str(uuid.uuid4()), "advisor_id": caller.id}
    uow.store.insert_slot(slot)
    return uow.store.slot(slot["id"])


def list_slots(uow) -> list[dict]:
    return uow.store.slots(uow.now())


def book_appointment(command: dict, caller: Caller, uow) -> dict:
    appointment_id = str(uuid.uuid4())
    if uow.store.slot(command["slot_id"]) is None:
        raise NotFound("No such slot.")
    seat = uow.store.take_seat(command["slot_id"], uow.now())
    if seat is None:
        raise Conflict("This slot is full or already past.")
    if not uow.store.insert_appointment(appointment_id, seat["id"], caller.id, command["topic"]):
        raise Conflict("You have booked this slot already.")  # the seat taken is given back
    booked = uow.store.appointment(appointment_id)
    uow.publish("appointment.booked", appointments.event_data(booked), subject=appointment_id)
    return booked


def list_appointments(returnee_id: str, uow) -> list[dict]:
    _id_or_404(returnee_id, "No such appointment.")
    return uow.store.appointments_of(returnee_id)


def cancel_appointment(appointment_id: str, caller: Caller, uow) -> dict:
    _id_or_404(appointment_id, "No such appointment.")
    found = uow.store.appointment(appointment_id, lock=True)
    if found is None or not access.may_cancel_appointment(caller, found):
        raise NotFound("No such appointment.")
    if found["status"] != "booked":
        raise Conflict("This appointment is cancelled already.")
    uow.store.cancel_appointment(appointment_id, found["slot_id"], caller.role, uow.now())
    cancelled = uow.store.appointment(appointment_id)
    uow.publish(
        "appointment.cancelled",
        appointments.event_data(cancelled, cancelled_by=caller.role),
        subject=appointment_id,
    )
    return cancelled


# ---------------------------------------------------------------- shared steps


def _visible_consultation(uow, caller: Caller, consultation_id: str, lock=False) -> dict:
    """The consultation if the caller may see it; 404 otherwise, so a returnee cannot probe
    other people's tickets."""
    _id_or_404(consultation_id, "No such consultation.")
    row = uow.store.consultation_row(consultation_id, lock=lock)
    if row is None or not access.may_read_consultation(caller, row):
        raise NotFound("No such consultation.")
    return row


def _assign(uow, ticket: tickets.Consultation, advisor_id: str) -> tickets.Consultation:
    now = uow.now()
    ticket = tickets.assign(ticket, advisor_id, now)
    uow.store.update_consultation(ticket, now)
    uow.store.touch_advisor(advisor_id, now)
    uow.publish("consultation.assigned", tickets.event_data(ticket), subject=ticket.id)
    return ticket


def _refused(exc: tickets.TransitionRefused) -> Conflict:
    return Conflict(
        "The consultation cannot be changed this way now ({reason}).",
        reason=str(exc),
        status=exc.status,
    )


def _id_or_404(value: str, message: str) -> None:
    """A path id that is no UUID names nothing stored."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise NotFound(message) from None
