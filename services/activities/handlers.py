"""activities' use cases: one function per command and per event, each in one unit of work.

Commands take what the entrypoint loaded (path ids, the body or query as `command`, the verified
`caller`) and answer what the entrypoint sends back; events take the event. Both reach the
tables through `uow.store` and publish with `uow.publish`. Refusals are the chassis' HTTP
errors, their texts in `messages.py`. Rules live in the domain modules: `activity` (the
calendar: publication, cancellation, closing, answers), `seats` (registration, the waitlist,
check-in codes), `audience`, `report` and `access` (who may see what).
"""

import uuid

from chassis import access as staff_access
from chassis.auth import Caller
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable, invalid
from chassis.settings import service_settings
from contracts import Event
from services.activities import access, seats
from services.activities import activity as activities
from services.activities.audience import invited
from services.activities.messages import MESSAGES  # noqa: F401  (registers the catalog)
from services.activities.report import closed_data, report
from services.activities.seats import Refusal
from services.activities.settings import DECLARED

INVITATION_BATCH = int(service_settings("activities", DECLARED)["INVITATION_BATCH_SIZE"])
CODE_ATTEMPTS = 5  # a new check-in code colliding with one of the activity's is rare; 5 is ample

# ---------------------------------------------------------------- activities


def publish_activity(command: dict, caller: Caller, uow) -> dict:
    """A new activity, published at once; its audience is invited by `invite_audience`."""
    now = uow.now()
    known = set(uow.store.organization_names(command["organizer_ids"]))
    errors = activities.publication_errors(command, now, known)
    if errors:
        raise invalid(errors)
    activity = activities.new_activity(str(uuid.uuid4()), command, caller.id, now)
    uow.store.insert_activity(activity)
    stored = uow.store.activity(activity["id"])
    uow.publish("activity.published", activities.published_data(stored), subject=stored["id"])
    return _view(uow, stored)


def seed_reference(organizations: list[dict], planned: list[dict], uow) -> list[str]:
    """The reference organizations (so organizers resolve before accounts' events arrive) and
    the reference activities not stored yet, each published; returns the ids published."""
    for o in organizations:
        uow.store.save_organization(o["id"], o["name"], o["kind"])
    published = []
    for activity in planned:
        if uow.store.activity(activity["id"]) is not None:
            continue
        uow.store.insert_activity({**activity, "published_by": None, "published_at": uow.now()})
        stored = uow.store.activity(activity["id"])
        uow.publish("activity.published", activities.published_data(stored), subject=stored["id"])
        published.append(stored["id"])
    return published


def list_activities(query: dict, uow) -> dict:
    """Activities on or to come (from `query["from"]`, default now), soonest first, a page of
    `limit` with the cursor of the next."""
    ending_after = query["from"] or uow.now()
    rows = uow.store.activities(
        ending_after, query["to"], query["kind"], query["next"], query["limit"] + 1
    )
    page, more = rows[: query["limit"]], len(rows) > query["limit"]
    names = uow.store.organization_names({o for a in page for o in a["organizer_ids"]})
    items = [activities.view(a, names, waitlisted=0) for a in page]
    for item in items:
        del item["waitlisted"]  # counted on the activity's own page
    last = page[-1] if more else None
    return {
        "items": items,
        "next": activities.cursor(last["starts_at"], last["id"]) if last else None,
    }


def get_activity(activity_id: str, caller: Caller | None, uow) -> dict:
    found = _activity_or_404(uow, activity_id)
    shown = _view(uow, found)
    agreements = uow.store.agreements(activity_id)
    organizations = uow.store.organization_names(
        {p["organization_id"] for a in agreements for p in a["parties"] if p["organization_id"]}
    )
    staff = access.is_staff(caller)
    shown["agreements"] = [activities.agreement_view(a, organizations, staff) for a in agreements]
    return shown


def cancel_activity(activity_id: str, caller: Caller, uow) -> dict:
    now = uow.now()
    found = _activity_or_404(uow, activity_id, lock=True)
    _refuse(activities.cancel_refusal(found, now))
    uow.store.cancel_activity(activity_id, now)
    uow.publish(
        "activity.cancelled",
        {"activity_id": found["id"], "cancelled_by": caller.role},
        subject=found["id"],
    )
    return _view(uow, uow.store.activity(activity_id))


def close_activity(activity_id: str, command: dict, uow) -> dict:
    """The activity took place: closed with its report, which is final from now on."""
    now = uow.now()
    found = _activity_or_404(uow, activity_id, lock=True)
    _refuse(activities.close_refusal(found, now))
    uow.store.close_activity(activity_id, now, command["summary"])
    made = _report(uow, uow.store.activity(activity_id))
    uow.publish("activity.closed", closed_data(made), subject=found["id"])
    return made


def activity_report(activity_id: str, uow) -> dict:
    return _report(uow, _activity_or_404(uow, activity_id))


def invite_audience(event: Event, uow, batch_size: int = INVITATION_BATCH) -> int:
    """activity.published: every returnee in the audience who consented to notifications is
    invited, batch by batch, in this one unit of work (the inbox makes it happen once); those
    who join later are invited by `take_returnee`. Returns how many were invited."""
    found = uow.store.activity(event.data["activity_id"])
    if found is None:
        raise LookupError(f"activity {event.data['activity_id']} is not stored")
    if found["status"] != "published":
        return 0
    now, invited_count, after = uow.now(), 0, None
    while batch := uow.store.audience_batch(found["audience"], after, batch_size):
        after = batch[-1]
        new = uow.store.invite(found["id"], batch, now)
        summary = seats.summary(found)
        uow.publish_many(
            "invitation.issued",
            [({"activity_id": found["id"], "returnee_id": r, "activity": summary}, r) for r in new],
        )
        invited_count += len(new)
    return invited_count


# ---------------------------------------------------------------- registrations


def register(activity_id: str, caller: Caller, uow) -> dict:
    """The caller registers (a provider for their organization): a seat while there is one,
    else the waitlist. The activity's row is locked first, so concurrent sign-ups for the last
    seat are served one after the other and the capacity is never exceeded."""
    now = uow.now()
    found = _activity_or_404(uow, activity_id, lock=True)
    _refuse(seats.registration_refusal(found, now))
    if caller.role == "provider" and not caller.organization_id:
        raise Forbidden("Your account has no organization to represent.")
    if caller.role == "returnee" and uow.store.is_erased(caller.id):
        # a token outliving its erasure by the seconds its revocation takes
        raise Forbidden("This account was erased.", code="erased")
    if uow.store.open_registration(activity_id, caller.id) is not None:
        raise Conflict("You are registered for this activity already.")
    status = seats.seat_for(found)
    registration_id = str(uuid.uuid4())
    for _ in range(CODE_ATTEMPTS):
        row = {
            **seats.registrant(caller),
            "id": registration_id,
            "activity_id": found["id"],
            "status": status,
            "check_in_code": seats.new_check_in_code(),
            "registered_at": now,
            "confirmed_at": now if status == "confirmed" else None,
        }
        if uow.store.insert_registration(row):
            break
    else:
        raise RuntimeError("no free check-in code after several attempts")
    if status == "confirmed":
        uow.store.take_seat(found["id"])
    stored = uow.store.registration(registration_id)
    position = None
    if status == "confirmed":
        data = seats.confirmed_data(stored, found, promoted=False)
        uow.publish("registration.confirmed", data, subject=registration_id)
    else:
        position = uow.store.waitlist_position(stored)
        data = seats.registration_data(stored, found, position=position)
        uow.publish("registration.waitlisted", data, subject=registration_id)
    return seats.view(stored, caller, position, name=None)


def get_registration(activity_id: str, registration_id: str, caller: Caller, uow,
                     seen: dict | None = None) -> dict:  # fmt: skip
    """A registration; staff read it (and the registrant's name) through the registration."""
    found = _registration_or_404(uow, caller, activity_id, registration_id)
    if access.is_staff(caller) and found["registrant_role"] == "returnee":
        staff_access.record(uow, found["person_id"],
                            staff_access.through(seen, "registration", found["id"]),
                            "registration")  # fmt: skip
    position = uow.store.waitlist_position(found) if found["status"] == "waitlisted" else None
    name = uow.store.registrant_name(registration_id) if access.is_staff(caller) else None
    return seats.view(found, caller, position, name)


def list_registrations(activity_id: str, query: dict, caller: Caller, uow,
                       seen: dict | None = None) -> dict:  # fmt: skip
    """The activity's registrations with the registrants' names: each a staff read through
    that registration, recorded."""
    _activity_or_404(uow, activity_id)
    rows = uow.store.registrations(activity_id, query["next"], query["limit"] + 1)
    page, more = rows[: query["limit"]], len(rows) > query["limit"]
    returnees = [{"id": r["id"], "returnee_id": r["person_id"]}
                 for r in page if r["registrant_role"] == "returnee"]  # fmt: skip
    staff_access.record_each(uow, returnees, seen, "registrations", kind="registration")
    positions, ahead = {}, 0
    if page:
        first = next((r for r in page if r["status"] == "waitlisted"), None)
        ahead = uow.store.waitlist_position(first) - 1 if first else 0
    for r in page:
        if r["status"] == "waitlisted":
            ahead += 1
            positions[r["id"]] = ahead
    items = [seats.view(r, caller, positions.get(r["id"]), r["name"]) for r in page]
    return {"items": items, "next": str(page[-1]["position"]) if more else None}


def cancel_registration(activity_id: str, registration_id: str, caller: Caller, uow) -> None:
    """Cancelled by the registrant or staff; a freed seat goes to the first on the waitlist."""
    now = uow.now()
    found = _activity_or_404(uow, activity_id, lock=True)
    registration = _registration_or_404(uow, caller, activity_id, registration_id, lock=True)
    if registration["status"] == "cancelled":
        raise Conflict("This registration is cancelled already.")
    _refuse(seats.cancellation_refusal(found, now))
    by = "registrant" if access.is_registrant(caller, registration) else caller.role
    _cancel(uow, found, registration, by, now)


def check_in(activity_id: str, command: dict, uow, seen: dict | None = None) -> dict:
    """At the door: the code's registrant is checked in once, however often it is scanned. The
    registrant's name shown is a staff read through the registration, recorded."""
    now = uow.now()
    found = _activity_or_404(uow, activity_id)
    _refuse(activities.on_site_refusal(found))
    code = seats.normalized_code(command["code"])
    checked = uow.store.check_in(activity_id, code, now)
    if checked is not None:
        uow.publish("attendance.recorded", seats.attendance_data(checked), subject=checked["id"])
        registration, again = checked, False
    else:
        registration = uow.store.registration_by_code(activity_id, code)
        if registration is None:
            raise Unprocessable(fields={"code": ["No check-in code like this for this activity."]})
        if registration["status"] == "waitlisted":
            raise Conflict("This registration is on the waitlist, not confirmed.")
        if registration["status"] == "cancelled":
            raise Conflict("This registration is cancelled.")
        again = True
    if registration["registrant_role"] == "returnee":
        staff_access.record(uow, registration["person_id"],
                            staff_access.through(seen, "registration", registration["id"]),
                            "check-in")  # fmt: skip
    return {
        "registration_id": registration["id"],
        "name": uow.store.registrant_name(registration["id"]),
        "registrant_role": registration["registrant_role"],
        "organization_id": registration["organization_id"],
        "already_checked_in": again,
        "checked_in_at": registration["checked_in_at"],
    }


# ---------------------------------------------------------------- agreements


def record_agreement(activity_id: str, command: dict, caller: Caller, uow) -> dict:
    found = _activity_or_404(uow, activity_id)
    _refuse(activities.on_site_refusal(found))
    parties = command["parties"]
    organizations = {str(p["organization_id"]) for p in parties if p["organization_id"]}
    returnees = {str(p["returnee_id"]) for p in parties if p["returnee_id"]}
    errors = activities.party_errors(
        parties,
        set(uow.store.organization_names(organizations)),
        uow.store.known_returnees(returnees),
    )
    if errors:
        raise invalid({"parties": errors})
    agreement = {
        "id": str(uuid.uuid4()),
        "activity_id": found["id"],
        "title": command["title"],
        "signed_on": command["signed_on"],
        "summary": command["summary"],
        "recorded_by": caller.id,
        "recorded_at": uow.now(),
        "parties": [
            {
                "organization_id": _str(p["organization_id"]),
                "returnee_id": _str(p["returnee_id"]),
            }
            for p in parties
        ],
    }
    uow.store.insert_agreement(agreement)
    uow.publish("agreement.signed", activities.agreement_data(agreement), subject=agreement["id"])
    names = uow.store.organization_names(organizations)
    return activities.agreement_view(agreement, names, staff=True)


# ---------------------------------------------------------------- events of others


def remember_organization(event: Event, uow) -> None:
    data = event.data
    uow.store.save_organization(data["organization_id"], data["name"], data["kind"])


def remember_provider(event: Event, uow) -> None:
    """staff.registered: providers register for activities; the door sees their names."""
    data = event.data
    if data["role"] == "provider":
        uow.store.save_provider(data["staff_id"], data["name"], data["organization_id"])


def take_returnee(event: Event, uow) -> int:
    """returnee.registered / updated: the minimum kept (name, what audiences select on,
    consent); a returnee who now fits an open activity's audience is invited to it. Returns
    how many invitations were issued."""
    data = event.data
    returnee_id = str(data["returnee_id"])
    profile = {
        "name": data["name"],
        "industry": data["industry"],
        "startup_stage": data["startup_stage"],
        "needs": sorted(set(data["needs"])),
        "notifications_consent": data["consents"]["notifications"],
    }
    stored = uow.store.save_returnee(returnee_id, profile, event.time)  # None: erased, or older
    if stored is None:
        return 0
    return _invite_to_open(uow, returnee_id, stored)


def follow_consent(event: Event, uow) -> int:
    data = event.data
    if data["purpose"] != "notifications":
        return 0
    uow.store.save_consent(data["returnee_id"], data["granted"], data["changed_at"])
    return _invite_to_open(uow, str(data["returnee_id"])) if data["granted"] else 0


def erase_returnee(event: Event, uow) -> None:
    """returnee.erased: registrations for what is still to come are cancelled (the seat goes
    to the waitlist); everything that names the person goes; what happened stays counted."""
    returnee_id = str(event.data["returnee_id"])
    now = uow.now()
    registrations = uow.store.registrations_of(returnee_id)
    agreements = uow.store.agreements_signed_by(returnee_id)
    for registration in registrations:
        if registration["registrant_role"] != "returnee" or registration["status"] == "cancelled":
            continue
        found = uow.store.activity(registration["activity_id"], lock=True)
        if seats.cancellation_refusal(found, now) is None:
            current = uow.store.registration(registration["id"], lock=True)
            _cancel(uow, found, current, "system", now)
    uow.store.erase_returnee(returnee_id, now)
    # Published events kept for retention name the person (and carry their codes).
    for subject in (returnee_id, *(r["id"] for r in registrations), *agreements):
        uow.forget_published(subject)


def record_intention(event: Event, uow) -> None:
    """intention.*: those met at an activity (v2, with `activity_id`) count in its report;
    intentions on a resource (v1) are none of the activity's."""
    data = event.data
    if data.get("activity_id") is None:
        return
    status = event.type.rsplit(".", 1)[1]
    uow.store.save_intention(
        data["intention_id"], data["activity_id"], data["organization_id"], status, event.time
    )


# ---------------------------------------------------------------- shared steps


def _cancel(uow, found: dict, registration: dict, by: str, now) -> None:
    uow.store.cancel_registration(registration["id"], now, by)
    freed = registration["status"] == "confirmed"
    cancelled = uow.store.registration(registration["id"])
    uow.publish(
        "registration.cancelled",
        seats.registration_data(cancelled, found, cancelled_by=by, freed_seat=freed),
        subject=registration["id"],
    )
    if not freed:
        return
    uow.store.free_seat(found["id"])
    if not seats.promotes(found, now):
        return
    promoted = uow.store.first_waitlisted(found["id"])
    if promoted is None:
        return
    uow.store.confirm(promoted["id"], now)
    uow.store.take_seat(found["id"])
    confirmed = uow.store.registration(promoted["id"])
    uow.publish(
        "registration.confirmed",
        seats.confirmed_data(confirmed, found, promoted=True),
        subject=promoted["id"],
    )


def _invite_to_open(uow, returnee_id: str, returnee: dict | None = None) -> int:
    """Invitations to the open activities whose audience the returnee (as stored: given, or
    read) now fits."""
    if returnee is None:
        returnee = uow.store.returnee(returnee_id)
    now, count = uow.now(), 0
    for found in uow.store.open_activities(now):
        if invited(found["audience"], returnee) and uow.store.invite(
            found["id"], [returnee_id], now
        ):
            data = {"activity_id": found["id"], "returnee_id": returnee_id}
            data["activity"] = seats.summary(found)
            uow.publish("invitation.issued", data, subject=returnee_id)
            count += 1
    return count


def _report(uow, found: dict) -> dict:
    agreements = uow.store.agreements(found["id"])
    return report(
        found,
        uow.store.registration_counts(found["id"]),
        uow.store.represented_organizations(found["id"]),
        agreements,
        uow.store.intentions(found["id"]),
    )


def _view(uow, found: dict) -> dict:
    names = uow.store.organization_names(found["organizer_ids"])
    waitlisted = uow.store.registration_counts(found["id"])["waitlisted"]
    return activities.view(found, names, waitlisted)


def _activity_or_404(uow, activity_id: str, lock: bool = False) -> dict:
    _id_or_404(activity_id, "No such activity.")
    found = uow.store.activity(activity_id, lock=lock)
    if found is None:
        raise NotFound("No such activity.")
    return found


def _registration_or_404(uow, caller: Caller, activity_id: str, registration_id: str,
                         lock: bool = False) -> dict:  # fmt: skip
    """The registration if it is of this activity and the caller may see it; 404 otherwise,
    so nobody can probe for other people's registrations."""
    _id_or_404(activity_id, "No such registration.")
    _id_or_404(registration_id, "No such registration.")
    found = uow.store.registration(registration_id, lock=lock)
    if (
        found is None
        or found["activity_id"] != str(uuid.UUID(activity_id))
        or not access.may_read_registration(caller, found)
    ):
        raise NotFound("No such registration.")
    return found


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise Conflict(refusal.message, **refusal.params)


def _id_or_404(value: str, message: str) -> None:
    """A path id that is no UUID names nothing stored."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise NotFound(message) from None


def _str(value) -> str | None:
    return None if value is None else str(value)
