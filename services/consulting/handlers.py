"""consulting's use cases: one function per command and per event, each in one unit of work.

Commands take what the entrypoint loaded (path ids, the body or query as `command`, the verified
`caller`) and answer what the entrypoint sends back; events take the event. Both reach the
tables through `uow.store` and publish with `uow.publish`. Refusals are the chassis' HTTP
errors, their texts in `messages.py`. Rules live in the domain modules: `eligibility` and
`screening` (the engine), `assessing`, `missing` (what is still missing), `preview` (a draft's
impact), `consultations` (the ticket state machine) and `workdays` (its working-time clock),
`applications` (their state machine), `documents`, `access` (who may see what), `catalog`,
`paging` and `appointments`.
"""

import uuid

from chassis.auth import Caller
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.settings import service_settings
from contracts import Event
from services.consulting import access, appointments, assessing, documents, missing, paging
from services.consulting import applications as apps
from services.consulting import consultations as tickets
from services.consulting.catalog import policy_id as catalog_id
from services.consulting.catalog import published_event
from services.consulting.eligibility import (
    STATUS_INELIGIBLE,
    InvalidPolicy,
    assess,
    derive,
    explain,
    validate_policy,
)
from services.consulting.messages import MESSAGES  # noqa: F401  (registers the catalog)
from services.consulting.preview import DIMENSION_FIELDS, Impact
from services.consulting.settings import DECLARED
from services.consulting.workdays import WorkingCalendar

SLA_CHECK_BATCH = 200  # overdue tickets claimed per check, so one check stays a short transaction
# Consultation deadlines run in the station's working hours on mainland-China working days.
STATION = WorkingCalendar.from_setting(service_settings("consulting", DECLARED)["WORKING_HOURS"])

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
    policy = _valid_policy({**command, "id": catalog_id(command["code"]), "version": 1})
    if not uow.store.insert_policy(policy):
        raise Conflict("A policy with this code exists already.")
    uow.store.keep_version(policy["id"], uow.today())
    uow.publish("policy.published", published_event(policy), subject=policy["id"])
    return uow.store.policy(policy["id"])


def publish_version(policy_id: str, command: dict, uow) -> dict:
    """A new version of a policy's rules, in force from today; the older versions are kept,
    so what was decided under them can still be explained."""
    _id_or_404(policy_id, "No such policy.")
    current = uow.store.policy(policy_id, lock=True)
    if current is None:
        raise NotFound("No such policy.")
    if command["code"] != current["code"]:
        raise Unprocessable(fields={"code": ["A new version keeps the policy's code."]})
    policy = _valid_policy({**command, "id": current["id"], "version": current["version"] + 1})
    uow.store.upsert_policy(policy)
    uow.store.keep_version(policy["id"], uow.today())
    uow.publish("policy.published", published_event(policy), subject=policy["id"])
    return uow.store.policy(policy["id"])


def list_policy_versions(policy_id: str, uow) -> list[dict]:
    _id_or_404(policy_id, "No such policy.")
    found = uow.store.policy_versions(policy_id)
    if not found:
        raise NotFound("No such policy.")
    return found


def seed_catalog(policies: list[dict], uow) -> list[str]:
    """Write the catalog's policies whose version is newer than the stored one (keeping the
    older versions), each with its `policy.published`; returns the codes written."""
    changed = []
    for policy in policies:
        if uow.store.upsert_policy(policy):
            uow.store.keep_version(policy["id"], uow.today())
            changed.append(policy["code"])
            uow.publish("policy.published", published_event(policy), subject=policy["id"])
    return changed


def preview_policy(command: dict, uow, batch_size: int = assessing.BATCH_SIZE) -> dict:
    """What publishing a draft (a new policy, or a new version of the one with its code) would
    change over the consenting caseload, as of today: counts and budget. Nothing is stored or
    published."""
    current = uow.store.policy_by_code(command["code"])
    version = current["version"] + 1 if current else 1
    draft = _valid_policy({**command, "id": catalog_id(command["code"]), "version": version})
    impact, after = Impact(draft, current, uow.today()), None
    keys = assessing.fact_keys([draft, *([current] if current else [])], DIMENSION_FIELDS)
    while rows := uow.store.caseload(after, batch_size, keys):
        after = rows[-1]["id"]
        impact.add([r["facts"] for r in rows])
    return impact.result()


# ---------------------------------------------------------------- eligibility


def assess_returnee(event: Event, uow) -> None:
    """A profile registered or updated: keep the facts the rules read, assess the returnee
    against every policy in effect, and publish the result. Published after every assessment
    (even without changes): subscribers learn the current list, and `newly_eligible` /
    `no_longer_eligible` say what moved. An older profile than the one stored is ignored."""
    data = event.data
    returnee_id = data["returnee_id"]
    facts = assessing.facts_of(data)
    if not uow.store.save_facts(returnee_id, facts, event.time, assessing.matching_consent(data)):
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
    """returnee.erased: everything held about the person goes, and the published events kept
    for retention that name them; a tombstone refuses what comes about them afterwards."""
    returnee_id = str(event.data["returnee_id"])
    for subject in (returnee_id, *uow.store.erase_returnee(returnee_id)):
        uow.forget_published(subject)


def _refuse_erased(uow, caller: Caller) -> None:
    """A returnee's token may outlive their erasure by the seconds the revocation takes to
    arrive: what they would write about themselves is refused."""
    if caller.role == "returnee" and uow.store.is_erased(caller.id):
        raise Forbidden("This account was erased.", code="erased")


def reassess_for_policy(event: Event, db, wake_reassessment) -> None:
    """A policy published (new or changed): the re-assessment of every returnee against it is
    recorded, in the unit of work that records the inbox; the re-assessment loop does it
    (`reassess_batch`), woken once this commits."""
    with db.unit_of_work() as uow:
        if uow.store.policy(event.data["policy_id"]) is None:
            raise LookupError(f"policy {event.data['policy_id']} is not in the catalog")
        uow.store.queue_reassessment(event.data["policy_id"])
    wake_reassessment()


def reassess_batch(uow, batch_size: int = assessing.REASSESS_BATCH) -> bool:
    """One batch of the oldest re-assessment under way, in this unit of work: the next returnees
    screened against the policy (vectorised), their changes written, `eligibility.assessed` for
    those whose eligibility or tier for it changed, the place kept. False: none under way."""
    job = uow.store.claim_reassessment()
    if job is None:
        return False
    policy = uow.store.policy(job["policy_id"])
    rows = uow.store.returnee_batch(job["after"], batch_size)
    if not rows:
        uow.store.stamp_version(policy["id"], policy["version"])
        uow.store.advance_reassessment(policy["id"], None)
        return True
    before = uow.store.eligible_for_policy(policy["id"], [str(r["id"]) for r in rows])
    now_eligible, no_longer = assessing.screen_batch(policy, rows, before, uow.today())
    uow.store.apply_policy_changes(
        policy["id"], policy["code"], policy["version"], now_eligible, no_longer
    )
    if now_eligible or no_longer:
        lists = uow.store.eligibility_lists([*now_eligible, *no_longer])
        events = assessing.policy_changes(policy, uow.now(), before, now_eligible, no_longer, lists)
        for start in range(0, len(events), assessing.PUBLISH_EVERY):
            # A round trip per few events: the process serves requests in between.
            uow.publish_many(
                "eligibility.assessed", events[start : start + assessing.PUBLISH_EVERY]
            )
    uow.store.advance_reassessment(policy["id"], str(rows[-1]["id"]))
    return True


def eligibility(returnee_id: str, query: dict, locale: str, uow) -> list[dict]:
    """Every policy of the catalog, each criterion explained in `locale`, evaluated from the
    stored facts as of `query["as_of"]` (default: today) under the rules in force that day:
    each policy in the version published by then."""
    _id_or_404(returnee_id, "No eligibility facts for this returnee yet.")
    as_of = query["as_of"] or uow.today()
    facts = uow.store.facts(returnee_id)
    if facts is None:
        raise NotFound("No eligibility facts for this returnee yet.")
    derived = derive(facts, as_of)
    policies = uow.store.policies_in_force(as_of)
    titles = {p["code"]: p["title"] for p in policies}  # prior awards read as programme names
    return [explain(assess(p, facts, as_of, derived), p, locale, titles) for p in policies]


def missing_facts(returnee_id: str, locale: str, uow) -> dict:
    """For every policy the returnee is undetermined for today, the facts that would decide it:
    one list to tell or bring, each fact once."""
    _id_or_404(returnee_id, "No eligibility facts for this returnee yet.")
    found = _missing(uow, returnee_id, locale)
    if found is None:
        raise NotFound("No eligibility facts for this returnee yet.")
    return {"returnee_id": returnee_id, "as_of": uow.today(), "facts": found}


# ---------------------------------------------------------------- advisors


def register_advisor(event: Event, uow) -> None:
    data = event.data
    if data["role"] == "advisor":
        uow.store.save_advisor(data["staff_id"], data["name"], active=True)


# ---------------------------------------------------------------- consultations


def request_consultation(command: dict, caller: Caller, uow) -> dict:
    """A returnee's question: a new ticket with its deadlines, assigned round-robin when an
    advisor is active."""
    _refuse_erased(uow, caller)
    now = uow.now()
    ticket = tickets.open_consultation(str(uuid.uuid4()), caller.id, command["topic"], now, STATION)
    policy_id = str(command["policy_id"]) if command["policy_id"] else None
    if policy_id and uow.store.policy(policy_id) is None:
        raise Unprocessable(fields={"policy_id": ["No such policy."]})
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
            ticket = tickets.returnee_message(ticket, now, STATION)
        else:
            author = caller.id if caller.role == "advisor" else ticket.advisor_id
            ticket = tickets.advisor_message(ticket, author, asks, now, STATION)
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
            raise Unprocessable(fields={"advisor_id": ["No such advisor."]})
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
        ticket = tickets.close(tickets.from_row(row), now, STATION)
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
        ticket = tickets.reopen(tickets.from_row(row), now, STATION)
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


# ---------------------------------------------------------------- canned replies


def list_canned_replies(query: dict, uow) -> list[dict]:
    """The canned replies of a topic (or of every topic), by topic and English title."""
    return uow.store.canned_replies(query.get("topic"))


def create_canned_reply(command: dict, caller: Caller, uow) -> dict:
    now = uow.now()
    reply = {**command, "id": str(uuid.uuid4()), "created_by": caller.id, "created_at": now,
             "updated_at": now}  # fmt: skip
    uow.store.insert_canned_reply(reply)
    return uow.store.canned_reply(reply["id"])


def change_canned_reply(reply_id: str, command: dict, uow) -> dict:
    """The reply's topic, titles and texts replaced by the ones given."""
    _id_or_404(reply_id, "No such canned reply.")
    if not uow.store.update_canned_reply(reply_id, command, uow.now()):
        raise NotFound("No such canned reply.")
    return uow.store.canned_reply(reply_id)


def delete_canned_reply(reply_id: str, uow) -> None:
    _id_or_404(reply_id, "No such canned reply.")
    if not uow.store.delete_canned_reply(reply_id):
        raise NotFound("No such canned reply.")


# ---------------------------------------------------------------- appointments


def publish_slot(command: dict, caller: Caller, uow) -> dict:
    slot = {**command, "id": str(uuid.uuid4()), "advisor_id": caller.id}
    uow.store.insert_slot(slot)
    return uow.store.slot(slot["id"])


def list_slots(uow) -> list[dict]:
    return uow.store.slots(uow.now())


def book_appointment(command: dict, caller: Caller, locale: str, uow) -> dict:
    """A seat of the slot; the answer carries the returnee's missing facts, what to bring."""
    _refuse_erased(uow, caller)
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
    return {**booked, "missing_facts": _missing(uow, caller.id, locale) or []}


def list_appointments(returnee_id: str, locale: str, uow) -> list[dict]:
    """A returnee's appointments; the booked ones carry the returnee's missing facts, for the
    advisor to ask about."""
    _id_or_404(returnee_id, "No such appointment.")
    listed = uow.store.appointments_of(returnee_id)
    if any(a["status"] == "booked" for a in listed):
        facts = _missing(uow, returnee_id, locale) or []
        listed = [{**a, "missing_facts": facts if a["status"] == "booked" else []} for a in listed]
    return listed


def list_slot_appointments(slot_id: str, uow) -> list[dict]:
    """Who booked a slot (booked and cancelled, in order of booking), for the station's staff."""
    _id_or_404(slot_id, "No such slot.")
    if uow.store.slot(slot_id) is None:
        raise NotFound("No such slot.")
    return uow.store.appointments_in(slot_id)


def cancel_appointment(appointment_id: str, caller: Caller, uow) -> dict:
    _refuse_erased(uow, caller)
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


# ---------------------------------------------------------------- applications


def start_application(command: dict, caller: Caller, locale: str, uow) -> dict:
    """A returnee eligible or undetermined for a policy starts an application: a draft with the
    checklist of the documents their tier needs."""
    _refuse_erased(uow, caller)
    now = uow.now()
    policy = uow.store.policy(str(command["policy_id"]))
    if policy is None:
        raise Unprocessable(fields={"policy_id": ["No such policy."]})
    facts = uow.store.facts(caller.id)
    if facts is None:
        raise Conflict("Your eligibility has not been assessed yet.")
    assessment = assess(policy, facts, uow.today())
    if assessment.status == STATUS_INELIGIBLE:
        raise Conflict("Your profile does not meet this policy's criteria.")
    tier = _tier_applied_for(policy, assessment, command["tier"])
    application = {
        "id": str(uuid.uuid4()),
        "returnee_id": caller.id,
        "policy_id": policy["id"],
        "code": policy["code"],
        "policy_version": policy["version"],
        "tier": tier,
        "status": apps.DRAFT,
        "created_at": now,
    }
    if not uow.store.insert_application(application, documents.needed(policy, tier)):
        raise Conflict("You have an open application for this policy already.")
    uow.store.add_history(
        application["id"], None, apps.DRAFT, caller.id, caller.role, now, command["note"]
    )
    return _application_view(uow, application["id"], locale)


def list_applications(query: dict, caller: Caller, uow) -> dict:
    """A returnee's own applications; staff see everyone's (or one returnee's). Newest first,
    a page of `limit` and the cursor of the next."""
    returnee_id = access.listed_returnee(caller, query.get("returnee_id"))
    rows = uow.store.applications(
        returnee_id=None if returnee_id is None else str(returnee_id),
        status=query.get("status"),
        policy_id=None if query.get("policy_id") is None else str(query["policy_id"]),
        after=query["cursor"],
        limit=query["limit"] + 1,
    )
    return paging.page(rows, query["limit"], lambda row: apps.view(row, "en"))


def get_application(application_id: str, caller: Caller, locale: str, uow) -> dict:
    _visible_application(uow, caller, application_id)
    return _application_view(uow, application_id, locale)


def mark_document(application_id: str, document_id: str, command: dict, caller: Caller,
                  locale: str, uow) -> dict:  # fmt: skip
    """The returnee marks one document of a draft's checklist provided (or not), with where it
    is: a reference or a note; the document itself is brought to the counter."""
    row = _visible_application(uow, caller, application_id, lock=True)
    if row["status"] != apps.DRAFT:
        raise Conflict("Documents can be marked only while the application is a draft.")
    marked = uow.store.mark_document(
        application_id, document_id, command["provided"], command["reference"], uow.now()
    )
    if not marked:
        raise NotFound("No such document in this checklist.")
    return _application_view(uow, application_id, locale)


def submit_application(application_id: str, command: dict, caller: Caller, locale: str,
                       uow) -> dict:  # fmt: skip
    """The returnee submits a draft whose every document is marked provided."""
    return _move(uow, application_id, "submit", caller, locale, command["note"])


def withdraw_application(application_id: str, command: dict, caller: Caller, locale: str,
                         uow) -> dict:  # fmt: skip
    return _move(uow, application_id, "withdraw", caller, locale, command["note"])


def review_application(application_id: str, command: dict, caller: Caller, locale: str,
                       uow) -> dict:  # fmt: skip
    return _move(uow, application_id, "review", caller, locale, command["note"])


def approve_application(application_id: str, command: dict, caller: Caller, locale: str,
                        uow) -> dict:  # fmt: skip
    return _move(uow, application_id, "approve", caller, locale, command["note"])


def reject_application(application_id: str, command: dict, caller: Caller, locale: str,
                       uow) -> dict:  # fmt: skip
    """Rejected with a reason the returnee reads in the history (it stays out of events)."""
    reason = command["reason"]
    return _move(uow, application_id, "reject", caller, locale, reason, rejection_reason=reason)


def award_application(application_id: str, command: dict, caller: Caller, locale: str,
                      uow) -> dict:  # fmt: skip
    award = {"amount_cny": command["amount_cny"], "awarded_on": command["awarded_on"]}
    return _move(uow, application_id, "award", caller, locale, command["note"], **award)


# ---------------------------------------------------------------- shared steps


def _valid_policy(policy: dict) -> dict:
    try:
        validate_policy(policy)
    except InvalidPolicy as exc:  # the shapes are the schema's: what is left is ids
        raise Unprocessable(
            "The policy's criteria cannot be evaluated.", fields=exc.errors
        ) from None
    return policy


def _missing(uow, returnee_id: str, locale: str) -> list[dict] | None:
    """The returnee's missing facts as of today; None when no facts are held."""
    facts = uow.store.facts(returnee_id)
    if facts is None:
        return None
    today = uow.today()
    policies = uow.store.policies(effective_on=today)
    derived = derive(facts, today)
    assessments = [assess(p, facts, today, derived) for p in policies]
    return missing.missing_facts(assessments, {p["id"]: p for p in policies}, locale)


def _tier_applied_for(policy: dict, assessment, asked: str | None) -> str | None:
    """The tier named (if the profile does not rule it out), or the one reached."""
    codes = [t["code"] for t in policy.get("tiers") or ()]
    if asked is not None:
        if asked not in codes:
            raise Unprocessable(fields={"tier": ["No such tier of this policy."]})
        if next(t for t in assessment.tiers if t["code"] == asked)["reached"] is False:
            raise Conflict("Your profile rules out this tier.")
        return asked
    if codes and assessment.tier is None:
        raise Unprocessable(fields={"tier": ["Choose the tier you apply for."]})
    return assessment.tier


def _visible_application(uow, caller: Caller, application_id: str, lock=False) -> dict:
    """The application if the caller may see it; 404 otherwise, so a returnee cannot probe
    other people's applications."""
    _id_or_404(application_id, "No such application.")
    if lock:  # a change: refused to an erased returnee
        _refuse_erased(uow, caller)
    row = uow.store.application(application_id, lock=lock)
    if row is None or not access.may_read_application(caller, row):
        raise NotFound("No such application.")
    return row


def _application_view(uow, application_id: str, locale: str) -> dict:
    lang = "zh-CN" if locale == "zh-CN" else "en"
    row = uow.store.application(application_id)
    return apps.view(
        row, lang, uow.store.checklist(application_id), uow.store.history(application_id)
    )


def _move(uow, application_id: str, action: str, caller: Caller, locale: str, note,
          **changes) -> dict:  # fmt: skip
    """One step of the application's state machine: the new status, the step in the history
    and the step's event."""
    now = uow.now()
    row = _visible_application(uow, caller, application_id, lock=True)
    try:
        status = apps.next_status(action, row["status"])
    except apps.TransitionRefused as exc:
        raise Conflict(
            "The application cannot be changed this way now ({reason}).",
            reason=str(exc),
            status=exc.status,
        ) from None
    if action == "submit":
        left = apps.missing(uow.store.checklist(application_id))
        if left:
            raise Conflict(
                "Mark every document provided before submitting; missing: {documents}.",
                documents=", ".join(left),
            )
    uow.store.update_application(application_id, now, status=status, **changes)
    uow.store.add_history(application_id, row["status"], status, caller.id, caller.role, now, note)
    if action in apps.EVENTS:
        extra = {"withdrawn_from": row["status"]} if action == "withdraw" else {}
        if action == "award":
            extra = changes
        moved = {**row, "status": status}
        uow.publish(apps.EVENTS[action], apps.event_data(moved, **extra), subject=application_id)
    return _application_view(uow, application_id, locale)


def _visible_consultation(uow, caller: Caller, consultation_id: str, lock=False) -> dict:
    """The consultation if the caller may see it; 404 otherwise, so a returnee cannot probe
    other people's tickets."""
    _id_or_404(consultation_id, "No such consultation.")
    if lock:  # a change: refused to an erased returnee
        _refuse_erased(uow, caller)
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
