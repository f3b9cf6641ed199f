"""notify's use cases: what it does with each event, each HTTP command and each loop pass.

Events: `EVENT_HANDLERS` routes each type notify consumes to its handler
`(event, uow, settings) -> int` (how many notifications it queued for sending now); the
subscribers run them through `take_event`. Nothing leaves the platform while an event is
handled: its unit of work keeps the directory current and writes notification rows, and the
delivery loop (`deliver_due`) sends them. A redelivered event is stopped by the inbox, and
should anything get past it, by the unique (event, recipient, channel) constraint.
"""

import logging
import time
import uuid
from datetime import timedelta

import eventlet

from chassis.auth import Caller
from chassis.web import Forbidden, NotFound
from contracts import CATALOG, Event
from services.notify import (
    messages,  # noqa: F401  (the catalog of the texts raised here)
    payloads,
)
from services.notify.access import may_act_for
from services.notify.domain import (
    PUSH_CHANNELS,
    DeliveryOutcome,
    Intent,
    RecipientUnknown,
    Trigger,
    decide,
    merge_matches,
    plan,
    reminder,
    reminder_at,
    reminder_timely,
    reminder_trigger,
)
from services.notify.rendering import render
from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)

# Templates whose email and SMS wait for the digest window, gathering what comes after them.
DIGESTED = ("matches_found",)
# Passes one run of the delivery loop may make while each comes back full, so a backlog drains
# without waiting a tick per batch, and the loop still yields to the others now and then.
MAX_PASSES_PER_TICK = 20
# Past appointments are kept this long after they end, then forgotten.
KEEP_PAST_HOURS = 24.0


# --- events in --------------------------------------------------------------------------------


def take_event(event: Event, db, settings: NotifySettings, wake_delivery) -> int:
    """Apply the event in one unit of work (the first of the worker: it records the inbox);
    after the commit, wake the delivery loop if it queued something to send now."""
    with db.unit_of_work() as uow:
        due = EVENT_HANDLERS[event.type](event, uow, settings)
    if due:
        wake_delivery()
    return due


def take_returnee(event: Event, uow, settings: NotifySettings) -> int:
    """returnee.registered / returnee.updated: the directory entry, the welcome (on
    registration), and the events that were waiting for this returnee."""
    returnee_id = event.data["returnee_id"]
    uow.store.keep_returnee(event.data, event.time)
    due = announce(event, uow, settings) + forward(event, uow)
    uow.store.lock_returnee(returnee_id)
    for body in uow.store.release_waiting(returnee_id):
        due += announce(CATALOG.check(Event.from_json(body)), uow, settings)
    return due


def erase_returnee(event: Event, uow, settings: NotifySettings) -> int:
    """returnee.erased: everything notify holds about the person goes; a tombstone keeps late
    events from bringing them back."""
    due = forward(event, uow)
    uow.store.erase_person(event.data["returnee_id"])
    return due


def take_consent(event: Event, uow, settings: NotifySettings) -> int:
    data = event.data
    if data["purpose"] == "notifications":
        uow.store.keep_consent(data["returnee_id"], data["granted"], data["changed_at"])
    return forward(event, uow)


def take_staff(event: Event, uow, settings: NotifySettings) -> int:
    uow.store.keep_staff(event.data)
    return forward(event, uow)


def take_organization(event: Event, uow, settings: NotifySettings) -> int:
    uow.store.keep_organization(event.data)
    return forward(event, uow)


def take_resource(event: Event, uow, settings: NotifySettings) -> int:
    """resource.published: its title, so messages name it."""
    uow.store.keep_resource(event.data)
    return forward(event, uow)


def take_policy(event: Event, uow, settings: NotifySettings) -> int:
    """policy.published: its titles, so messages name it."""
    uow.store.keep_policy(event.data)
    return forward(event, uow)


def take_booking(event: Event, uow, settings: NotifySettings) -> int:
    """appointment.booked: kept for its reminder (`remind_due`), and confirmed. A booking for a
    returnee not in the directory yet is kept anyway; its confirmation waits for them."""
    data = event.data
    remind_at = reminder_at(data["starts_at"], event.time, settings.reminder_lead)
    uow.store.keep_appointment(data, remind_at)
    return announce(event, uow, settings) + forward(event, uow)


def take_cancellation(event: Event, uow, settings: NotifySettings) -> int:
    """appointment.cancelled: no reminder any more (one held by quiet hours is suppressed),
    and the returnee is told."""
    data = event.data
    uow.store.cancel_appointment(data, event.time, reminder_trigger(data["appointment_id"]).id)
    return announce(event, uow, settings) + forward(event, uow)


def announce_event(event: Event, uow, settings: NotifySettings) -> int:
    """An event that only tells people something (`domain.PLANS`), and district systems."""
    return announce(event, uow, settings) + forward(event, uow)


def forward_event(event: Event, uow, settings: NotifySettings) -> int:
    """An event only district systems subscribed to it hear of."""
    return forward(event, uow)


EVENT_HANDLERS = {
    "returnee.registered": take_returnee,
    "returnee.updated": take_returnee,
    "returnee.erased": erase_returnee,
    "consent.changed": take_consent,
    "staff.registered": take_staff,
    "organization.registered": take_organization,
    "resource.published": take_resource,
    "resource.withdrawn": forward_event,
    "policy.published": take_policy,
    "appointment.booked": take_booking,
    "appointment.cancelled": take_cancellation,
    "matches.proposed": announce_event,
    "eligibility.assessed": announce_event,
    "consultation.requested": announce_event,
    "consultation.assigned": announce_event,
    "consultation.answered": announce_event,
    "consultation.waiting_on_returnee": announce_event,
    "consultation.sla_breached": announce_event,
    "consultation.closed": forward_event,
    "consultation.rated": forward_event,
    "consultation.reopened": forward_event,
    "intention.expressed": announce_event,
    "intention.accepted": announce_event,
    "intention.declined": announce_event,
    "application.submitted": announce_event,
    "application.approved": announce_event,
    "application.rejected": announce_event,
    "application.awarded": announce_event,
    "application.withdrawn": announce_event,
}


def announce(event: Event, uow, settings: NotifySettings) -> int:
    """Queue the notifications the event calls for; returns how many are due now.

    Events of consulting and matching can overtake the returnee's registration: such an event
    waits, stored as it arrived, and is announced by the unit of work that takes the
    registration in (`take_returnee`)."""
    try:
        intents = plan(event.type, event.data, uow.store)
    except RecipientUnknown as unknown:
        returnee_id = str(unknown)
        if uow.store.is_erased(returnee_id):
            return 0  # erased: nobody to tell
        uow.store.lock_returnee(returnee_id)
        if uow.store.recipient(returnee_id) is not None:
            return announce(event, uow, settings)  # taken in while this waited for the lock
        uow.store.make_wait(event.id, returnee_id, event.raw)
        return 0
    return sum(queue(event, intent, uow, settings.digest_window) for intent in intents)


def queue(event: Event | Trigger, intent: Intent, uow, digest_window: float) -> int:
    """The intent's notifications, one per channel, queued, suppressed or (in-app) delivered;
    `event` is what they react to: an incoming event, or a reminder's trigger. Returns how
    many were queued for sending now."""
    recipient = intent.recipient
    preferences = uow.store.preferences(recipient.id)
    rendered = render(intent.template, recipient.locale, intent.context)
    due = 0
    for decision in decide(intent, preferences):
        row = payloads.notification(event, intent, decision, rendered)
        digested = (
            row["status"] == "queued"
            and intent.template in DIGESTED
            and decision.channel in PUSH_CHANNELS
            and digest_window > 0
        )
        if digested:
            lead = uow.store.open_digest(recipient.id, decision.channel, intent.template)
            if lead is not None:
                merged = merge_matches(lead["context"], intent.context)
                text = render(intent.template, lead["locale"], merged)
                uow.store.rewrite(lead["id"], text.subject, text.text,
                                  text.html if decision.channel == "email" else None,
                                  {**merged, "recipient_name": recipient.name})  # fmt: skip
                row["digest_id"] = str(lead["id"])
            else:
                row["next_attempt_at"] = uow.now() + timedelta(seconds=digest_window)
        added = uow.store.add_notification(row)
        if added is None:
            continue
        if row["status"] == "sent":
            uow.publish("notification.sent", payloads.report(row), subject=added)
        elif row["status"] == "queued" and "digest_id" not in row and "next_attempt_at" not in row:
            due += 1
    return due


def forward(event: Event, uow) -> int:
    """Queue the event, as its producer published it, for each subscription to its type."""
    due = 0
    for subscription in uow.store.subscribers_to(event.type):
        if uow.store.add_notification(payloads.webhook_delivery(event, subscription)):
            due += 1
    return due


# --- the delivery loop --------------------------------------------------------------------------
# Safe with several replicas: due rows are claimed `FOR UPDATE SKIP LOCKED` and leased (pushed
# `lease_seconds` into the future) in one short unit of work, then sent outside any, then each
# outcome is recorded with its `notification.sent` / `notification.failed` in its own. A replica
# that dies mid-send leaves its rows to come due again after the lease.


def deliver_due(db, outlets) -> int:
    """A run of the loop: passes while each comes back full, up to `MAX_PASSES_PER_TICK`;
    returns how many notifications were attempted."""
    attempted = 0
    for _ in range(MAX_PASSES_PER_TICK):
        count = deliver_batch(db, outlets)
        attempted += count
        if count < outlets.settings.batch_size:
            break
    return attempted


def deliver_batch(db, outlets) -> int:
    """One pass; returns how many notifications were attempted.

    Sends run concurrently (a slow SMTP server must not hold up the others); a row whose lease
    is about to run out before its turn comes is released rather than sent, so no other
    replica can be sending it at the same time."""
    settings = outlets.settings
    with db.unit_of_work() as uow:
        claimed = claim(uow, settings)
    deadline = time.monotonic() + settings.lease_seconds / 2
    released = []

    def deliver_one(row):
        if time.monotonic() > deadline:
            released.append(row["id"])
            return
        try:
            outcome = attempt(db, outlets, row)
        except Exception as exc:  # a bug in one channel must not stall the others
            log.exception("delivering notification %s failed", row["id"])
            outcome = DeliveryOutcome(False, transient=True, error=f"{type(exc).__name__}: {exc}")
        with db.unit_of_work() as uow:
            record(uow, settings, row, outcome)

    pool = eventlet.GreenPool(settings.concurrency)
    for row in claimed:
        pool.spawn_n(deliver_one, row)
    pool.waitall()
    if released:
        with db.unit_of_work() as uow:
            uow.store.release(released)
    return len(claimed) - len(released)


def claim(uow, settings: NotifySettings) -> list[dict]:
    """The due rows to send now, leased; those of recipients in quiet hours are held (deferred,
    not dropped: they come due again when quiet hours end)."""
    now = uow.now()
    rows = uow.store.due(settings.batch_size)
    push = [r for r in rows if r["channel"] in PUSH_CHANNELS]
    prefs = uow.store.preferences_of({r["recipient_id"] for r in push})
    claimed = []
    for row in rows:
        quiet_until = None
        if row["channel"] in PUSH_CHANNELS and str(row["recipient_id"]) in prefs:
            quiet_until = prefs[str(row["recipient_id"])].quiet_until(now)
        if quiet_until is not None:
            uow.store.hold(row["id"], quiet_until)
        else:
            claimed.append(row)
    if claimed:
        uow.store.lease([r["id"] for r in claimed], settings.lease_seconds)
    return claimed


def attempt(db, outlets, row: dict) -> DeliveryOutcome:
    """One attempt at a claimed row; a webhook goes to its subscription as it is now."""
    subscription = None
    if row["channel"] == "webhook":
        with db.unit_of_work() as uow:
            subscription = uow.store.subscription(row["recipient_id"])
        if subscription is None or not subscription["active"]:
            return DeliveryOutcome(False, transient=False, error="subscription disabled or gone")
    return outlets.send(row, subscription)


def record(uow, settings: NotifySettings, row: dict, outcome: DeliveryOutcome) -> None:
    """What came of an attempt: sent, retried later, or failed (and a webhook's subscription
    disabled after too many failures in a row)."""
    if outcome.delivered:
        # The notification and the digest members it carried; none if it is no longer queued
        # (erased meanwhile, or its subscription was disabled): nothing to record.
        sent = uow.store.mark_sent(row["id"])
        uow.publish_many("notification.sent", [(payloads.report(n), n["id"]) for n in sent])
        if sent and row["channel"] == "webhook":
            uow.store.webhook_succeeded(row["recipient_id"])
        return
    current = uow.store.notification(row["id"])
    if current is None or current["status"] != "queued":
        return
    members = uow.store.digest_members(row["id"])
    attempts = current["attempts"] + 1
    if outcome.transient and not settings.retry.exhausted(attempts):
        uow.store.retry_later(row["id"], settings.retry.delay(attempts), outcome.error or "")
        log.info("notification %s: attempt %d failed (%s), retrying", row["id"], attempts,
                 outcome.error)  # fmt: skip
    else:
        reason = outcome.error or "failed"
        if outcome.transient:
            reason = f"{reason} after {attempts} attempts"
        uow.store.mark_failed(row["id"], reason)
        uow.publish_many(
            "notification.failed",
            [(payloads.failure(n, reason), n["id"]) for n in [current, *members]],
        )
    if row["channel"] == "webhook":
        subscription = uow.store.webhook_failed(row["recipient_id"])
        if (
            subscription is not None
            and subscription["active"]
            and subscription["consecutive_failures"] >= settings.webhook_max_failures
        ):
            disable(uow, subscription, outcome.error or "failed")


def disable(uow, subscription: dict, last_error: str) -> None:
    failures = subscription["consecutive_failures"]
    reason = f"{failures} consecutive failed deliveries; last: {last_error}"[:500]
    pending = uow.store.disable_subscription(subscription["id"], reason)
    uow.publish_many(
        "notification.failed",
        [(payloads.failure(n, f"subscription disabled: {last_error}"), n["id"]) for n in pending],
    )
    uow.publish(
        "subscription.disabled",
        payloads.subscription_disabled(subscription, reason),
        subject=subscription["id"],
    )
    log.warning("webhook subscription %s disabled: %s", subscription["id"], reason)


# --- appointment reminders ----------------------------------------------------------------------
# Safe with several replicas: due appointments are claimed `FOR UPDATE SKIP LOCKED` and marked
# reminded in the unit of work that queues their notifications. Should two ever get through, the
# unique (event, recipient, channel) constraint holds: a reminder's "event" id is derived from
# the appointment. The delivery loop sends them like any other, quiet hours included.


def remind_due(uow, settings: NotifySettings) -> int:
    """Queue the reminders that have come due; returns how many appointments were reminded."""
    now = uow.now()
    queued = 0
    for appointment in uow.store.due_reminders(settings.batch_size):
        if not reminder_timely(appointment, now):
            # Reached after it started (notify was down): a reminder now would mislead.
            uow.store.mark_reminded(appointment.id, "missed")
            log.info("appointment %s started before its reminder was sent", appointment.id)
            continue
        returnee = uow.store.recipient(appointment.returnee_id)
        if returnee is None:
            uow.store.mark_reminded(appointment.id, "no recipient")
            continue
        # Reminders are not digested: each concerns its own appointment.
        queue(reminder_trigger(appointment.id), reminder(appointment, returnee), uow, 0)
        uow.store.mark_reminded(appointment.id, "queued")
        queued += 1
    uow.store.forget_past_appointments(KEEP_PAST_HOURS)
    return queued


def waiting_events(uow) -> dict:
    """How many events wait for their returnee's registration, and the oldest's wait (s)."""
    return uow.store.waiting()


# --- HTTP commands ------------------------------------------------------------------------------


def list_notifications(query: dict, caller: Caller, uow) -> list[dict]:
    if not may_act_for(caller, query["recipient_id"]):
        raise Forbidden("You may see only your own notifications.")
    return uow.store.notifications_of(query["recipient_id"], query["channel"], query["limit"])


def list_topics(locale: str, uow) -> list[dict]:
    return uow.store.topics(locale)


def get_preferences(recipient_id, caller: Caller, uow) -> dict:
    if not may_act_for(caller, recipient_id):
        raise Forbidden("You may manage only your own preferences.")
    return payloads.preferences_out(recipient_id, uow.store.preferences(recipient_id))


def put_preferences(recipient_id, command: dict, caller: Caller, uow) -> dict:
    """Replace the opt-outs and quiet hours; messages held for quiet hours are looked at again."""
    if not may_act_for(caller, recipient_id):
        raise Forbidden("You may manage only your own preferences.")
    prefs = payloads.preferences_from(command)
    uow.store.save_preferences(recipient_id, prefs)
    return payloads.preferences_out(recipient_id, prefs)


def subscribe_webhook(command: dict, uow) -> dict:
    event_types = sorted(set(command["event_types"]))
    return uow.store.add_subscription(uuid.uuid4(), command["url"], event_types,
                                      command["secret"])  # fmt: skip


def list_subscriptions(uow) -> list[dict]:
    return uow.store.subscriptions()


def delete_subscription(subscription_id, uow) -> None:
    if not uow.store.delete_subscription(subscription_id):
        raise NotFound("No such subscription.")
