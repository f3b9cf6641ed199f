"""What notify writes and says, built from what it knows: notification rows, the data of the
events it publishes, and the HTTP answers about preferences. Pure functions."""

import uuid

from contracts import Event
from contracts.vocabulary import CHANNELS as PUBLISHED_CHANNELS
from services.notify.domain import Decision, Intent, Preferences, Trigger, webhook_template
from services.notify.rendering import Rendered
from services.notify.sms import Sms


def notification(event: Event | Trigger, intent: Intent, decision: Decision,
                 rendered: Rendered, sms: Sms | None = None) -> dict:  # fmt: skip
    """The row of one channel of an intent. `event` is what it reacts to (its `id` and `type`
    are recorded): an incoming event, or a reminder's trigger. In-app notifications are
    stored `sent`: the inbox is this database, so storing one is delivering it. An SMS's body
    is its text as the phone shows it (`sms.compose`)."""
    recipient = intent.recipient
    status = decision.status
    if status == "queued" and decision.channel == "in_app":
        status = "sent"
    body = rendered.text
    if decision.channel == "sms" and sms is not None:
        body = sms.text
    return {
        "id": str(uuid.uuid4()),
        "recipient_id": recipient.id,
        "channel": decision.channel,
        "template": intent.template,
        "locale": recipient.locale,
        "address": decision.address,
        "subject": rendered.subject,
        "body": body,
        "html": rendered.html if decision.channel == "email" else None,
        "context": {**intent.context, "recipient_name": recipient.name},
        "status": status,
        "reason": decision.reason,
        "event_id": event.id,
        "event_type": event.type,
    }


def webhook_delivery(event: Event, subscription: dict, body: bytes | None = None) -> dict:
    """The row that forwards the event to a subscription: `body`, the view of it the returnee's
    consent allows (`partners.partner_view`), else the producer's own bytes."""
    return {
        "id": str(uuid.uuid4()),
        "recipient_id": str(subscription["id"]),
        "channel": "webhook",
        "template": webhook_template(event.type),
        "locale": "en",
        "address": subscription["url"],
        "subject": event.type,
        "body": (body or event.raw).decode("utf-8"),
        "status": "queued",
        "event_id": event.id,
        "event_type": event.type,
    }


def report(row: dict) -> dict:
    """The data of `notification.sent` / `notification.failed` about a notification row."""
    return {
        "notification_id": str(row["id"]),
        "recipient_id": str(row["recipient_id"]),
        "channel": row["channel"],
        "template": row["template"],
        "event_id": str(row["event_id"]),
        "event_type": row["event_type"],
    }


def failure(row: dict, reason: str) -> dict:
    return {**report(row), "reason": reason[:500]}


def reported(rows: list[dict]) -> list[dict]:
    """The rows `notification.sent` / `.failed` v1 can tell of: its `channel` is a published
    enum, so a work messenger's notification is not announced (its row and the API say what
    became of it) until a version of the events that names the messengers."""
    return [r for r in rows if r["channel"] in PUBLISHED_CHANNELS]


def subscription_disabled(subscription: dict, reason: str) -> dict:
    return {
        "subscription_id": subscription["id"],
        "url": subscription["url"],
        "reason": reason,
        "failures": subscription["consecutive_failures"],
    }


def channels_out(recipient_id, destinations: list[dict]) -> dict:
    """A recipient's messenger destinations as the API shows them: never a token or secret."""
    return {
        "recipient_id": recipient_id,
        "destinations": [
            {"channel": d["channel"], "signed": bool(d.get("secret")),
             "updated_at": d["updated_at"]}
            for d in destinations
        ],
    }  # fmt: skip


def preferences_from(body: dict) -> Preferences:
    """The preferences a `PreferencesBody` states (a repeated opt-out counts once)."""
    quiet = body["quiet_hours"]
    return Preferences(
        opt_outs=tuple(dict.fromkeys((o["channel"], o["topic"]) for o in body["opt_outs"])),
        quiet_start=quiet["start"] if quiet else None,
        quiet_end=quiet["end"] if quiet else None,
        timezone=quiet["timezone"] if quiet else Preferences.timezone,
    )


def preferences_out(recipient_id, prefs: Preferences) -> dict:
    quiet = None
    if prefs.quiet_start is not None and prefs.quiet_end is not None:
        quiet = {"start": prefs.quiet_start, "end": prefs.quiet_end, "timezone": prefs.timezone}
    return {
        "recipient_id": recipient_id,
        "opt_outs": [{"channel": c, "topic": t} for c, t in prefs.opt_outs],
        "quiet_hours": quiet,
    }
