"""What to tell whom, through which channel, and when: the notify service's rules, without I/O.

An incoming event becomes *intents* (a recipient, a template, its context, the channels it goes
out on); each intent and channel becomes a notification that is either queued or suppressed by
the recipient's preferences and consent. Timing rules (quiet hours, retry backoff, digest
windows) and the webhook signature live here too, so they are tested without a database.
"""

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from contracts.reasons import describe
from services.notify import qr

TEMPLATES = (
    "welcome",
    "matches_found",
    "policies_eligible",
    "consultation_update",
    "intention_update",
    "application_update",
    "appointment_confirmation",
    "appointment_reminder",
    "activity_invitation",
    "registration_confirmed",
    "waitlist_promoted",
    "activity_reminder",
    "activity_cancelled",
    "activity_registrations",
)
# Emails accounts asks for, each with a single-use link (`account.link_issued`), by the link's
# purpose: the only ones an address not confirmed yet receives, and never held, suppressed or
# opted out of (they are what a person waits for). Not topics: nobody opts out of them.
ACCOUNT_TEMPLATES = {
    "verify_email": "welcome",  # the welcome email, asking to confirm the address
    "reset_password": "password_reset",
    "set_password": "staff_invitation",
}
ACCOUNT_LINK_EVENT = "account.link_issued"
# The templates of account emails only (the welcome email is also sent without a link).
ACCOUNT_ONLY_TEMPLATES = tuple(t for t in ACCOUNT_TEMPLATES.values() if t not in TEMPLATES)
# Work messengers: group robots and bots an organization or a staff member names as a
# destination of their notifications (`PUT /recipients/{id}/channels/{channel}`).
MESSENGERS = ("wecom", "dingtalk", "feishu")
CHANNELS = ("email", "in_app", "webhook", "sms", *MESSENGERS)
# Channels that interrupt a person: these wait for the end of quiet hours and are digested.
PUSH_CHANNELS = ("email", "sms", *MESSENGERS)
ANY = "*"
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_LOCALE = "zh-CN"


@dataclass(frozen=True)
class Recipient:
    id: str
    kind: str  # returnee | staff | organization
    name: str
    email: str | None = None
    phone: str | None = None
    locale: str = DEFAULT_LOCALE
    role: str | None = None
    organization_id: str | None = None
    notifications_consent: bool = True
    email_verified: bool = True
    # The messengers this recipient has a destination on (the destination itself, a robot's
    # key and secret, is looked up when sending, never copied into a notification).
    messengers: tuple[str, ...] = ()

    def address(self, channel: str) -> str | None:
        if channel == "email":
            return self.email
        if channel == "sms":
            return self.phone
        if channel in MESSENGERS:
            return channel if channel in self.messengers else None
        if channel == "in_app":
            # Organizations have no one logged in as them: their inbox is the contact mailbox.
            return None if self.kind == "organization" else self.id
        return None


@dataclass(frozen=True)
class Preferences:
    """A recipient's choices. An opt-out is (channel, topic) where either may be `*`."""

    opt_outs: tuple[tuple[str, str], ...] = ()
    quiet_start: time | None = None
    quiet_end: time | None = None
    timezone: str = DEFAULT_TIMEZONE

    def opted_out(self, channel: str, topic: str) -> bool:
        return any(
            c in (channel, ANY) and t in (topic, ANY) for c, t in self.opt_outs
        )  # fmt: skip

    def quiet_until(self, now: datetime) -> datetime | None:
        """When quiet hours that hold at `now` end, or None outside quiet hours.

        Hours are wall-clock times in the recipient's zone; a window may span midnight
        (22:00–07:00). Equal start and end means no quiet hours."""
        if self.quiet_start is None or self.quiet_end is None:
            return None
        if self.quiet_start == self.quiet_end:
            return None
        zone = zone_of(self.timezone)
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        start, end = self.quiet_start, self.quiet_end
        inside = start <= clock < end if start < end else clock >= start or clock < end
        if not inside:
            return None
        end_day = local.date() if clock < end else local.date() + timedelta(days=1)
        return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


def zone_of(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Slim images may ship without tzdata; Shanghai has had no DST since 1991.
        if name == DEFAULT_TIMEZONE:
            return timezone(timedelta(hours=8), DEFAULT_TIMEZONE)
        raise


# The zones quiet hours may name: the IANA names this machine knows (not "localtime" or
# "posixrules", which ZoneInfo also opens), and Shanghai even without tzdata.
ZONES = tuple(sorted(available_timezones() | {DEFAULT_TIMEZONE}))


@dataclass(frozen=True)
class Intent:
    """Tell `recipient` about something with `template`, on each of `channels`."""

    recipient: Recipient
    template: str
    context: dict
    channels: tuple[str, ...]
    account_email: bool = False  # an email accounts asked for: `ACCOUNT_TEMPLATES`


@dataclass(frozen=True)
class Decision:
    channel: str
    address: str | None
    status: str  # queued | suppressed
    reason: str | None = None


def decide(intent: Intent, preferences: Preferences,
           unavailable: dict[str, str] | None = None) -> list[Decision]:  # fmt: skip
    """Each channel of the intent, queued or suppressed with the reason. `unavailable` names the
    channels the platform cannot send this intent on (no SMS gateway configured, say), each with
    its reason: a message there is suppressed, never pretended sent."""
    unavailable = unavailable or {}
    decisions = []
    for channel in intent.channels:
        address = intent.recipient.address(channel)
        reason = None
        if address is None:
            continue  # the channel does not reach this recipient: nothing to record
        if channel in unavailable:
            reason = unavailable[channel]
        elif intent.account_email:
            pass  # what the person asked for, or must read to use their account
        elif channel == "email" and not intent.recipient.email_verified:
            reason = "email address not confirmed"
        elif (
            intent.recipient.kind == "returnee"
            and not intent.recipient.notifications_consent
            and channel in PUSH_CHANNELS
        ):
            reason = "no consent to notifications"
        elif preferences.opted_out(channel, intent.template):
            reason = f"opted out of {intent.template} by {channel}"
        status = "suppressed" if reason else "queued"
        decisions.append(Decision(channel, address, status, reason))
    return decisions


class Directory(Protocol):
    """What planning looks up; the store answers from the copies kept from events."""

    def recipient(self, recipient_id) -> Recipient | None: ...

    def staff_of(self, organization_id, role: str) -> list[Recipient]: ...

    def resource_titles(self, resource_ids: Iterable) -> dict[str, str]: ...

    def organization_names(self, organization_ids: Iterable) -> dict[str, str]: ...

    def policy_titles(self, codes: Iterable[str]) -> dict[str, dict[str, str]]: ...

    def activity(self, activity_id) -> dict | None: ...

    def activity_registrants(self, activity_id) -> list[str]: ...


class RecipientUnknown(LookupError):
    """The event is for a returnee the directory does not hold (yet, or any more)."""


def _returnee(directory: Directory, returnee_id) -> Recipient:
    returnee = directory.recipient(returnee_id)
    if returnee is None:
        raise RecipientUnknown(str(returnee_id))
    return returnee


RETURNEE_CHANNELS = ("email", "in_app")
APPOINTMENT_CHANNELS = ("email", "in_app", "sms")
# Staff and organizations are reached on their work messengers too, where they named one.
STAFF_CHANNELS = ("email", "in_app", *MESSENGERS)


def plan(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """The intents an event causes (none for events nobody is told about): `PLANS` below."""
    planner = PLANS.get(event_type)
    return planner(event_type, data, directory) if planner else []


def _welcome(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """In the inbox; by email too unless the address is still to be confirmed, when the welcome
    email is the one that carries the confirmation link (`_account_email`)."""
    returnee = directory.recipient(data["returnee_id"])
    if returnee is None:
        return []
    channels = RETURNEE_CHANNELS if data.get("email_verified", True) else ("in_app",)
    return [Intent(returnee, "welcome", {"name": returnee.name}, channels)]


def _account_email(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """An email accounts asks for, to the address the event names, with its link."""
    recipient = Recipient(
        id=str(data["account_id"]),
        kind="account",
        name=data["name"],
        email=data["email"],
        locale=data["locale"],
    )
    context = {
        "name": data["name"],
        "link": data["link"],
        "expires_at": local_time(data["expires_at"]),
    }
    template = ACCOUNT_TEMPLATES[data["purpose"]]
    return [Intent(recipient, template, context, ("email",), account_email=True)]


def _matches_found(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    added = {str(r) for r in data["added_resource_ids"]}
    if not added:
        return []
    returnee = _returnee(directory, data["returnee_id"])
    shown = [m for m in data["matches"] if str(m["resource_id"]) in added]
    if not shown:
        return []
    titles = directory.resource_titles(m["resource_id"] for m in shown)
    organizations = directory.organization_names(m["organization_id"] for m in shown)
    matches = [
        {
            "resource_id": str(m["resource_id"]),
            "title": titles.get(str(m["resource_id"]), ""),
            "organization": organizations.get(str(m["organization_id"]), ""),
            "score": round(float(m["score"]) * 100),
            # In the returnee's language from the reason's code; an older producer's English
            # detail when there is none.
            "reasons": [describe(r, returnee.locale) for r in m["reasons"]],
        }
        for m in shown
    ]
    context = {"name": returnee.name, "matches": matches}
    return [Intent(returnee, "matches_found", context, RETURNEE_CHANNELS)]


def merge_matches(lead: dict, later: dict) -> dict:
    """A digest of two matches_found contexts: every resource once, the later version winning."""
    by_resource = {m["resource_id"]: m for m in lead["matches"]}
    by_resource.update({m["resource_id"]: m for m in later["matches"]})
    merged = sorted(by_resource.values(), key=lambda m: -m["score"])
    return {**lead, "name": later["name"], "matches": merged}


def _policies_eligible(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    codes = list(data["newly_eligible"])
    if not codes:
        return []
    returnee = _returnee(directory, data["returnee_id"])
    titles = directory.policy_titles(codes)
    tiers = {p["code"]: p.get("tier") for p in data["eligible"]}
    policies = [
        {
            "code": code,
            "title": titles.get(code, {}).get(returnee.locale) or code,
            "tier": tiers.get(code),
        }
        for code in codes
    ]
    context = {"name": returnee.name, "policies": policies}
    return [Intent(returnee, "policies_eligible", context, RETURNEE_CHANNELS)]


# How a consultation_update names the change the event reports.
CONSULTATION_CHANGES = {
    "consultation.requested": "requested",
    "consultation.assigned": "assigned",
    "consultation.answered": "answered",
    "consultation.waiting_on_returnee": "waiting_on_returnee",
}


def _consultation_change(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    returnee = _returnee(directory, data["returnee_id"])
    context = {
        "consultation_id": str(data["consultation_id"]),
        "topic": data["topic"],
        "change": CONSULTATION_CHANGES[event_type],
        "name": returnee.name,
    }
    return [Intent(returnee, "consultation_update", context, RETURNEE_CHANNELS)]


def _consultation_assigned(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """The returnee hears who took it; the advisor that it is theirs now."""
    intents = _consultation_change(event_type, data, directory)
    advisor = directory.recipient(data["advisor_id"])
    if advisor is not None:
        context = {
            "consultation_id": str(data["consultation_id"]),
            "topic": data["topic"],
            "change": "assigned_to_you",
            "name": advisor.name,
        }
        intents.append(Intent(advisor, "consultation_update", context, STAFF_CHANNELS))
    return intents


def _sla_breached(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """Escalation goes to the advisor who holds it, or to every advisor when nobody does."""
    advisor = data.get("advisor_id") and directory.recipient(data["advisor_id"])
    advisors = [advisor] if advisor else directory.staff_of(None, "advisor")
    context = {
        "consultation_id": str(data["consultation_id"]),
        "topic": data["topic"],
        "change": "sla_breached",
        "deadline": data["deadline"],
        "due_at": local_time(data["due_at"]),
    }
    return [
        Intent(person, "consultation_update", {**context, "name": person.name}, STAFF_CHANNELS)
        for person in advisors
    ]


def _intention_context(data: dict, directory: Directory) -> dict:
    """What an intention_update says of the intention: the resource it is on or, for one met at
    an activity (intention.* v2, no resource), the activity (`at_activity`)."""
    organization_id = str(data["organization_id"])
    resource_id = None if data.get("resource_id") is None else str(data["resource_id"])
    activity = None if resource_id else directory.activity(data["activity_id"])
    return {
        "intention_id": str(data["intention_id"]),
        "resource_title": directory.resource_titles([resource_id]).get(resource_id, "")
        if resource_id
        else "",
        "at_activity": resource_id is None,
        "activity_title": activity["title"] if activity else None,
        "organization": directory.organization_names([organization_id]).get(organization_id, ""),
        "message": data.get("message"),
    }


def _for(context: dict, person: Recipient) -> dict:
    """The context as `person` reads it: an activity's title in their language."""
    titles = context["activity_title"]
    if titles:
        return {**context, "resource_title": titles.get(person.locale) or titles["zh-CN"]}
    return context


def _intention_expressed(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """The providing organization hears of it: its providers and its contact mailbox."""
    returnee = directory.recipient(data["returnee_id"])
    context = {
        **_intention_context(data, directory),
        "returnee_name": returnee.name if returnee else "",
        "returnee_id": str(data["returnee_id"]),  # whom it quotes, for their erasure
        "change": "expressed",
    }
    people = directory.staff_of(data["organization_id"], "provider")
    organization = directory.recipient(data["organization_id"])
    if organization is not None:
        people.append(organization)
    return [
        Intent(p, "intention_update", {**_for(context, p), "name": p.name}, STAFF_CHANNELS)
        for p in people
    ]


INTENTION_ANSWERS = {"intention.accepted": "accepted", "intention.declined": "declined"}


def _intention_answered(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    returnee = _returnee(directory, data["returnee_id"])
    context = {
        **_intention_context(data, directory),
        "change": INTENTION_ANSWERS[event_type],
        "name": returnee.name,
    }
    return [Intent(returnee, "intention_update", _for(context, returnee), RETURNEE_CHANNELS)]


APPOINTMENT_CHANGES = {"appointment.booked": "booked", "appointment.cancelled": "cancelled"}


def _appointment(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    returnee = _returnee(directory, data["returnee_id"])
    context = {
        "name": returnee.name,
        "change": APPOINTMENT_CHANGES[event_type],
        "appointment_id": str(data["appointment_id"]),
        "starts_at": local_time(data["starts_at"]),
        "ends_at": local_time(data["ends_at"], "%H:%M"),
        "location": data["location"],
        "cancelled_by": data.get("cancelled_by"),
    }
    return [Intent(returnee, "appointment_confirmation", context, APPOINTMENT_CHANNELS)]


# --- activities (the activities service): invitations, confirmations, reminders -------------


def activity_context(activity: dict, locale: str) -> dict:
    """An activity as its messages name it: title in the recipient's language, Shanghai times,
    the venue. `activity`: an event's `ActivitySummary`, or the one notify keeps."""
    return {
        "title": activity["title"].get(locale) or activity["title"]["zh-CN"],
        "starts_at": local_time(activity["starts_at"]),
        "ends_at": local_time(activity["ends_at"], "%H:%M"),
        "venue": activity["venue"]["name"],
        "address": activity["venue"]["address"],
    }


def _activity_invitation(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """A returnee of the audience who consented (activities chose them) is invited."""
    returnee = _returnee(directory, data["returnee_id"])
    context = {
        "name": returnee.name,
        "activity_id": str(data["activity_id"]),
        **activity_context(data["activity"], returnee.locale),
    }
    return [Intent(returnee, "activity_invitation", context, RETURNEE_CHANNELS)]


def _registrant(data: dict, directory: Directory) -> Recipient | None:
    """A returnee (their event waits until notify knows them) or a provider."""
    if data["registrant_role"] == "returnee":
        return _returnee(directory, data["returnee_id"])
    return directory.recipient(data["staff_id"])


def _registration_confirmed(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """The registrant gets the check-in code and its QR code (a promotion from the waitlist
    says so); the organizers' providers hear of a new registration."""
    intents = []
    person = _registrant(data, directory)
    if person is not None:
        code = data["check_in_code"]
        context = {
            "name": person.name,
            "registration_id": str(data["registration_id"]),
            "activity_id": str(data["activity_id"]),
            **activity_context(data["activity"], person.locale),
            "check_in_code": code,
            "qr_png": qr.png_data_uri(code),
            "qr_text": qr.text_art(code),
        }
        template = "waitlist_promoted" if data["promoted"] else "registration_confirmed"
        intents.append(Intent(person, template, context, RETURNEE_CHANNELS))
    if not data["promoted"]:
        intents += _registrations_digest(data, directory)
    return intents


def _registration_waitlisted(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    return _registrations_digest(data, directory)


# By email only, and digested (`handlers.DIGESTED`): a busy activity is one message per window.
DIGEST_CHANNELS = ("email",)


def _registrations_digest(data: dict, directory: Directory) -> list[Intent]:
    """The providers of the organizer organizations: how many registered (no names: the
    registrants' data stays with the station)."""
    people: dict[str, Recipient] = {}
    for organization_id in data["activity"]["organizer_ids"]:
        for person in directory.staff_of(str(organization_id), "provider"):
            people.setdefault(person.id, person)
    confirmed = data["status"] == "confirmed"
    return [
        Intent(
            person,
            "activity_registrations",
            {
                "name": person.name,
                "activities": [
                    {
                        "activity_id": str(data["activity_id"]),
                        **activity_context(data["activity"], person.locale),
                        "confirmed": 1 if confirmed else 0,
                        "waitlisted": 0 if confirmed else 1,
                    }
                ],
            },
            DIGEST_CHANNELS,
        )
        for person in people.values()
    ]


def merge_registrations(lead: dict, later: dict) -> dict:
    """A digest of two activity_registrations contexts: the counts of each activity added."""
    by_activity = {a["activity_id"]: dict(a) for a in lead["activities"]}
    for a in later["activities"]:
        held = by_activity.setdefault(a["activity_id"], {**a, "confirmed": 0, "waitlisted": 0})
        held["confirmed"] += a["confirmed"]
        held["waitlisted"] += a["waitlisted"]
    merged = sorted(by_activity.values(), key=lambda a: (a["starts_at"], a["activity_id"]))
    return {**lead, "name": later["name"], "activities": merged}


def _activity_cancelled(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    """Everyone registered (seated or waiting) hears that it will not take place."""
    activity = directory.activity(data["activity_id"])
    if activity is None:
        return []
    intents = []
    for person_id in directory.activity_registrants(data["activity_id"]):
        person = directory.recipient(person_id)
        if person is None:
            continue
        context = {
            "name": person.name,
            "activity_id": str(data["activity_id"]),
            **activity_context(activity, person.locale),
        }
        intents.append(Intent(person, "activity_cancelled", context, RETURNEE_CHANNELS))
    return intents


# Activity reminders, like appointment reminders, are not caused by an event: one per
# registration (the id derived from it), queued by the timer `handlers.remind_activities_due`.
ACTIVITY_REMINDER_TRIGGER = "activity.reminder_due"
_ACTIVITY_REMINDER_NAMESPACE = uuid.UUID("9d2b6e41-7c3a-4f58-8e16-3b5a0c4d7f92")


def activity_reminder_trigger(registration_id) -> "Trigger":
    registration = str(registration_id)
    trigger_id = str(uuid.uuid5(_ACTIVITY_REMINDER_NAMESPACE, registration))
    return Trigger(trigger_id, ACTIVITY_REMINDER_TRIGGER)


def activity_reminder(activity: dict, person: Recipient) -> Intent:
    context = {
        "name": person.name,
        "activity_id": str(activity["id"]),
        **activity_context(activity, person.locale),
    }
    return Intent(person, "activity_reminder", context, RETURNEE_CHANNELS)


APPLICATION_CHANGES = {
    "application.submitted": "submitted",
    "application.approved": "approved",
    "application.rejected": "rejected",
    "application.awarded": "awarded",
    "application.withdrawn": "withdrawn",
}


def _application_update(event_type: str, data: dict, directory: Directory) -> list[Intent]:
    returnee = _returnee(directory, data["returnee_id"])
    title = directory.policy_titles([data["code"]]).get(data["code"], {}).get(returnee.locale)
    context = {
        "name": returnee.name,
        "change": APPLICATION_CHANGES[event_type],
        "application_id": str(data["application_id"]),
        "policy": title or data["code"],
        "tier": data.get("tier"),
        "amount_cny": data.get("amount_cny"),
        "awarded_on": data["awarded_on"].isoformat() if data.get("awarded_on") else None,
    }
    return [Intent(returnee, "application_update", context, RETURNEE_CHANNELS)]


# Who hears of what (docs/notify.md has this table): the event types that cause messages, each
# with the function that plans them from the event's data and the directory.
PLANS = {
    "returnee.registered": _welcome,
    ACCOUNT_LINK_EVENT: _account_email,
    "matches.proposed": _matches_found,
    "eligibility.assessed": _policies_eligible,
    "consultation.requested": _consultation_change,
    "consultation.assigned": _consultation_assigned,
    "consultation.answered": _consultation_change,
    "consultation.waiting_on_returnee": _consultation_change,
    "consultation.sla_breached": _sla_breached,
    "intention.expressed": _intention_expressed,
    "intention.accepted": _intention_answered,
    "intention.declined": _intention_answered,
    "appointment.booked": _appointment,
    "appointment.cancelled": _appointment,
    "invitation.issued": _activity_invitation,
    "registration.confirmed": _registration_confirmed,
    "registration.waitlisted": _registration_waitlisted,
    "activity.cancelled": _activity_cancelled,
    "application.submitted": _application_update,
    "application.approved": _application_update,
    "application.rejected": _application_update,
    "application.awarded": _application_update,
    "application.withdrawn": _application_update,
}


# Reminders are not caused by an event: their notifications carry an id derived from the
# appointment (so the unique (event, recipient, channel) constraint allows one reminder per
# appointment however often the timer runs) and this type in place of an event's.
REMINDER_TRIGGER = "appointment.reminder_due"
_REMINDER_NAMESPACE = uuid.UUID("4f7a3c52-2d0e-4b7e-9a53-6e0d3b1f8c21")


@dataclass(frozen=True)
class Appointment:
    """An upcoming appointment as notify keeps it from `appointment.booked`."""

    id: str
    returnee_id: str
    starts_at: datetime
    ends_at: datetime
    location: str


@dataclass(frozen=True)
class Trigger:
    """What a notification reacts to when it is not an incoming event: an id and a type."""

    id: str
    type: str


def reminder_trigger(appointment_id) -> Trigger:
    return Trigger(str(uuid.uuid5(_REMINDER_NAMESPACE, str(appointment_id))), REMINDER_TRIGGER)


def reminder_at(starts_at: datetime, booked_at: datetime, lead: timedelta) -> datetime | None:
    """When to remind of an appointment booked at `booked_at`: `lead` before it starts.

    None when it was booked inside that window: the confirmation just sent is the reminder, and
    a second message minutes after it would only be noise."""
    remind_at = starts_at - lead
    return remind_at if booked_at < remind_at else None


def reminder_timely(appointment: Appointment, now: datetime) -> bool:
    """A due reminder is still worth sending only before the appointment starts (the timer may
    reach it late, after notify was down)."""
    return now < appointment.starts_at


def reminder(appointment: Appointment, returnee: Recipient) -> Intent:
    context = {
        "name": returnee.name,
        "appointment_id": appointment.id,
        "starts_at": local_time(appointment.starts_at),
        "ends_at": local_time(appointment.ends_at, "%H:%M"),
        "location": appointment.location,
    }
    return Intent(returnee, "appointment_reminder", context, APPOINTMENT_CHANNELS)


def local_time(instant: datetime, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """An instant as the platform's users read it: Shanghai wall-clock time."""
    return instant.astimezone(zone_of(DEFAULT_TIMEZONE)).strftime(pattern)


def webhook_template(event_type: str) -> str:
    """The template slug a webhook delivery is reported under: the event type, as a slug."""
    return event_type.replace(".", "_")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 600.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt: 2, 4, 8, ... capped."""
        return min(self.base_delay * 2 ** max(attempts - 1, 0), self.max_delay)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


@dataclass
class DeliveryOutcome:
    """What one attempt to send came to. `accepted`: the provider took the message and gave this
    reference; whether it reached the person is told by its delivery receipt, later.
    `suppressed`: the platform cannot send it on this channel (nothing configured there), why."""

    delivered: bool
    transient: bool = False
    error: str | None = None
    details: dict = field(default_factory=dict)
    accepted: str | None = None
    suppressed: str | None = None


def receipt_delay(age_seconds: float, first: float, longest: float = 900.0) -> float:
    """When to ask again for the receipt of an SMS accepted `age_seconds` ago: soon at first,
    then about as long as it has waited already (carriers answer within seconds or hours)."""
    return max(first, min(age_seconds, longest))


def rate_key(channel: str, recipient_id: str, address: str | None) -> str:
    """The destination a provider's quota counts: a phone number (hashed: the ledger of sends
    need not hold it) or the recipient's robot on a messenger."""
    if channel == "sms":
        return "sms:" + hashlib.sha256((address or "").encode()).hexdigest()[:32]
    return f"{channel}:{recipient_id}"


@dataclass(frozen=True)
class RateLimit:
    """At most `count` sends in any `seconds`: a provider's quota, e.g. 20 a minute per robot."""

    count: int
    seconds: float

    @classmethod
    def parse_all(cls, text: str) -> tuple["RateLimit", ...]:
        """`20/60,100/3600` (count/seconds, comma-separated); empty for none."""
        limits = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            count, _, seconds = part.partition("/")
            limits.append(cls(int(count), float(seconds)))
        return tuple(limits)


def next_slot(limits: Iterable[RateLimit], sends: list[datetime],
              now: datetime) -> datetime | None:  # fmt: skip
    """None when one more send now stays within every limit, given the earlier `sends`; else
    the first moment it would (the oldest send counting against a full window leaves it)."""
    later = None
    for limit in limits:
        since = now - timedelta(seconds=limit.seconds)
        window = sorted(t for t in sends if t > since)
        if len(window) >= limit.count:
            frees = window[len(window) - limit.count] + timedelta(seconds=limit.seconds)
            later = frees if later is None else max(later, frees)
    return later


def relay_slots(limits: Iterable[RateLimit], sends: list[datetime], now: datetime,
                count: int) -> list[datetime | None]:  # fmt: skip
    """For `count` messages in order, given the earlier `sends`: None for each that may go now,
    else the moment it may go, each message taking its slot before the next is placed (so put
    off ones are spread at the quota's pace instead of all coming due at once)."""
    limits, taken, slots = tuple(limits), list(sends), []
    for _ in range(count):
        at = next_slot(limits, taken, now)
        slots.append(at)
        taken.append(now if at is None else at)
    return slots


SIGNATURE_HEADER = "X-Platform-Signature"
TIMESTAMP_HEADER = "X-Platform-Timestamp"
EVENT_ID_HEADER = "X-Platform-Event-Id"
EVENT_TYPE_HEADER = "X-Platform-Event-Type"
DELIVERY_HEADER = "X-Platform-Delivery"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>." + body): binding the timestamp into
    the signature lets receivers refuse replays older than their tolerance."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signature_valid(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
