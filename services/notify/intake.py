"""From an incoming event to queued (or suppressed) notifications, inside the event's transaction.

Nothing leaves the platform here: the handler's transaction keeps the directory current and
writes notification rows; the delivery loop sends them. In-app notifications are the exception
that proves it: the inbox is this database, so storing one is delivering it, and it is recorded
as sent (with its `notification.sent`) in the same transaction. A redelivered event is stopped by
the inbox, and should anything get past it, by the unique (event, recipient, channel) constraint.
"""

import dataclasses
import uuid
from datetime import timedelta

from contracts import CATALOG, Event
from services.notify import store
from services.notify.delivery import report
from services.notify.domain import (
    PUSH_CHANNELS,
    Intent,
    RecipientUnknown,
    Trigger,
    decide,
    merge_matches,
    plan,
    reminder_at,
    reminder_trigger,
    webhook_template,
)
from services.notify.rendering import render

DIGESTED = ("matches_found",)


def take(tx, event: Event, digest_window: float, reminder_lead: timedelta) -> int:
    """Apply the event; returns how many notifications it queued for sending now."""
    keep_directory(tx, event)
    keep_appointments(tx, event, reminder_lead)
    due = announce(tx, event, digest_window)
    for subscription in store.subscribers_to(tx, event.type):
        due += queue_webhook(tx, event, subscription)
    if event.type == "returnee.erased":
        store.erase_person(tx, event.data["returnee_id"])
    elif event.type in ("returnee.registered", "returnee.updated"):
        due += announce_waiting(tx, event.data["returnee_id"], digest_window)
    return due


def announce(tx, event: Event, digest_window: float) -> int:
    """Queue the notifications the event calls for; returns how many are due now.

    Events of consulting and matching can overtake the returnee's registration: such an event
    waits, stored, and is announced by the transaction that takes the registration in."""
    try:
        intents = plan(event.type, event.data, store.StoredDirectory(tx))
    except RecipientUnknown as unknown:
        returnee_id = str(unknown)
        if store.is_erased(tx, returnee_id):
            return 0  # erased: nobody to tell
        store.lock_returnee(tx, returnee_id)
        if store.StoredDirectory(tx).recipient(returnee_id) is not None:
            return announce(tx, event, digest_window)  # taken in while this waited for the lock
        store.make_wait(tx, event.id, returnee_id, wire_form(event))
        return 0
    return sum(queue(tx, event, intent, digest_window) for intent in intents)


def announce_waiting(tx, returnee_id, digest_window: float) -> int:
    store.lock_returnee(tx, returnee_id)
    return sum(
        announce(tx, CATALOG.check(Event.from_json(body)), digest_window)
        for body in store.release_waiting(tx, returnee_id)
    )


def keep_directory(tx, event: Event) -> None:
    data = event.data
    if event.type in ("returnee.registered", "returnee.updated"):
        store.keep_returnee(tx, data, event.time)
    elif event.type == "consent.changed" and data["purpose"] == "notifications":
        store.keep_consent(tx, data["returnee_id"], data["granted"], data["changed_at"])
    elif event.type == "staff.registered":
        store.keep_staff(tx, data)
    elif event.type == "organization.registered":
        store.keep_organization(tx, data)
    elif event.type == "resource.published":
        store.keep_resource(tx, data)
    elif event.type == "policy.published":
        store.keep_policy(tx, data)


def keep_appointments(tx, event: Event, reminder_lead: timedelta) -> None:
    """Upcoming appointments, for their reminders (queued later by `reminders.remind_due`).

    A booking for a returnee not in the directory yet is stored anyway: planning its
    confirmation postpones the event, which rolls this back with everything else."""
    data = event.data
    if event.type == "appointment.booked":
        remind_at = reminder_at(data["starts_at"], event.time, reminder_lead)
        store.keep_appointment(tx, data, remind_at)
    elif event.type == "appointment.cancelled":
        trigger = reminder_trigger(data["appointment_id"])
        store.cancel_appointment(tx, data, event.time, trigger.id)


def queue(tx, event: Event | Trigger, intent: Intent, digest_window: float) -> int:
    """The intent's notifications, one per channel, queued, suppressed or (in-app) delivered;
    `event` is what they react to (its `id` and `type` are recorded): an incoming event, or a
    reminder's trigger. Returns how many were queued for sending now."""
    recipient = intent.recipient
    preferences = store.preferences(tx, recipient.id)
    rendered = render(intent.template, recipient.locale, intent.context)
    due = 0
    for decision in decide(intent, preferences):
        status = decision.status
        if status == "queued" and decision.channel == "in_app":
            status = "sent"
        row = {
            "id": str(uuid.uuid4()),
            "recipient_id": recipient.id,
            "channel": decision.channel,
            "template": intent.template,
            "locale": recipient.locale,
            "address": decision.address,
            "subject": rendered.subject,
            "body": rendered.text,
            "html": rendered.html if decision.channel == "email" else None,
            "context": {**intent.context, "recipient_name": recipient.name},
            "status": status,
            "reason": decision.reason,
            "event_id": event.id,
            "event_type": event.type,
        }
        digested = (
            status == "queued"
            and intent.template in DIGESTED
            and decision.channel in PUSH_CHANNELS
            and digest_window > 0
        )
        if digested:
            lead = store.open_digest(tx, recipient.id, decision.channel, intent.template)
            if lead is not None:
                merged = merge_matches(lead["context"], intent.context)
                text = render(intent.template, lead["locale"], merged)
                store.rewrite(tx, lead["id"], text.subject, text.text,
                              text.html if decision.channel == "email" else None,
                              {**merged, "recipient_name": recipient.name})  # fmt: skip
                row["digest_id"] = str(lead["id"])
            else:
                # The first of a digest waits for the window, gathering what comes after it.
                row["next_attempt_at"] = event_time_now(tx) + timedelta(seconds=digest_window)
        added = store.add_notification(tx, row)
        if added is None:
            continue
        if status == "sent":
            tx.publish("notification.sent", report(row), subject=added)
        elif status == "queued" and "digest_id" not in row and "next_attempt_at" not in row:
            due += 1
    return due


def event_time_now(tx):
    return tx.one("SELECT now() AS now")["now"]


def queue_webhook(tx, event: Event, subscription: dict) -> int:
    added = store.add_notification(
        tx,
        {
            "id": str(uuid.uuid4()),
            "recipient_id": str(subscription["id"]),
            "channel": "webhook",
            "template": webhook_template(event.type),
            "locale": "en",
            "address": subscription["url"],
            "subject": event.type,
            "body": wire_form(event).decode("utf-8"),
            "status": "queued",
            "event_id": event.id,
            "event_type": event.type,
        },
    )
    return 0 if added is None else 1


def wire_form(event: Event) -> bytes:
    """The event as its producer published it (CloudEvents JSON), from the loaded data."""
    event_type = CATALOG.get(event.type, event.version)
    data = event_type.tolerant_schema.dump(event.data)
    return dataclasses.replace(event, data=data).to_json()
