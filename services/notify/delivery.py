"""The delivery loop: claim due notifications, send them, record what happened.

Safe with several replicas: due rows are claimed `FOR UPDATE SKIP LOCKED` and leased (pushed
`LEASE_SECONDS` into the future) in one short transaction, then sent outside any transaction, then
each outcome is recorded with its `notification.sent` / `notification.failed` event in its own
transaction. A replica that dies mid-send leaves its rows to come due again after the lease.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import eventlet
from nameko.extensions import DependencyProvider

from chassis.settings import service_settings
from services.notify import store
from services.notify.channels import (
    SmtpMailer,
    SmtpSettings,
    WebhookPoster,
    sms_adapter,
)
from services.notify.domain import PUSH_CHANNELS, DeliveryOutcome, RetryPolicy
from services.notify.settings import DECLARED

log = logging.getLogger(__name__)

# Every variable notify reads besides the chassis' own, with its default.


@dataclass(frozen=True)
class NotifySettings:
    smtp: SmtpSettings
    retry: RetryPolicy
    batch_size: int
    concurrency: int
    lease_seconds: float
    digest_window: float
    webhook_timeout: float
    webhook_max_failures: int
    sms_adapter: str
    reminder_lead: timedelta

    @classmethod
    def load(cls, config: dict | None = None) -> "NotifySettings":
        """From the container config when it names a setting (tests do), else the environment:
        `NOTIFY_<NAME>`, then `<NAME>`, then the default."""
        values = service_settings("notify", DECLARED, config)

        def value(name: str) -> str:
            return values[name]

        return cls(
            smtp=SmtpSettings(
                host=value("SMTP_HOST"),
                port=int(value("SMTP_PORT")),
                sender=value("SMTP_FROM"),
                starttls=value("SMTP_STARTTLS").lower() in ("1", "true", "yes", "on"),
                ca_file=value("SMTP_CA_FILE") or None,
                username=value("SMTP_USERNAME") or None,
                password=value("SMTP_PASSWORD") or None,
                timeout=float(value("SMTP_TIMEOUT_SECONDS")),
            ),
            retry=RetryPolicy(
                max_attempts=int(value("DELIVERY_MAX_ATTEMPTS")),
                base_delay=float(value("DELIVERY_BASE_DELAY_SECONDS")),
                max_delay=float(value("DELIVERY_MAX_DELAY_SECONDS")),
            ),
            batch_size=int(value("DELIVERY_BATCH_SIZE")),
            concurrency=int(value("DELIVERY_CONCURRENCY")),
            lease_seconds=float(value("DELIVERY_LEASE_SECONDS")),
            digest_window=float(value("DIGEST_WINDOW_SECONDS")),
            webhook_timeout=float(value("WEBHOOK_TIMEOUT_SECONDS")),
            webhook_max_failures=int(value("WEBHOOK_MAX_FAILURES")),
            sms_adapter=value("SMS_ADAPTER"),
            reminder_lead=timedelta(hours=float(value("APPOINTMENT_REMINDER_HOURS"))),
        )


class Outlets:
    """The channels and the settings they were built from."""

    def __init__(self, settings: NotifySettings):
        self.settings = settings
        self.mailer = SmtpMailer(settings.smtp, keep=settings.concurrency)
        self.webhooks = WebhookPoster(settings.webhook_timeout)
        self.sms = sms_adapter(settings.sms_adapter)

    def close(self) -> None:
        self.mailer.close()
        self.webhooks.session.close()


class Channels(DependencyProvider):
    """`self.channels`: the service's `Outlets`, built once per container."""

    def setup(self):
        self.outlets = Outlets(NotifySettings.load(self.container.config))

    def stop(self):
        self.outlets.close()

    def kill(self):
        self.outlets.close()

    def get_dependency(self, worker_ctx):
        return self.outlets


def deliver_due(db, outlets: Outlets) -> int:
    """One pass of the loop; returns how many notifications were attempted.

    Sends run concurrently (a slow SMTP server must not hold up the inbox); a row whose lease
    is about to run out before its turn comes is released rather than sent, so no other
    replica can be sending it at the same time."""
    settings = outlets.settings
    claimed = claim(db, settings)
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
        record(db, settings, row, outcome)

    pool = eventlet.GreenPool(settings.concurrency)
    for row in claimed:
        pool.spawn_n(deliver_one, row)
    pool.waitall()
    if released:
        with db.transaction() as tx:
            store.release(tx, released)
    return len(claimed) - len(released)


def claim(db, settings: NotifySettings) -> list[dict]:
    now = datetime.now(UTC)
    with db.transaction() as tx:
        rows = store.due(tx, settings.batch_size)
        push = [r for r in rows if r["channel"] in PUSH_CHANNELS]
        prefs = store.preferences_of(tx, {r["recipient_id"] for r in push})
        claimed = []
        for row in rows:
            quiet_until = None
            if row["channel"] in PUSH_CHANNELS and str(row["recipient_id"]) in prefs:
                quiet_until = prefs[str(row["recipient_id"])].quiet_until(now)
            if quiet_until is not None:
                # Deferred, not dropped: it comes due again when quiet hours end.
                store.hold(tx, row["id"], quiet_until)
            else:
                claimed.append(row)
        if claimed:
            store.lease(tx, [r["id"] for r in claimed], settings.lease_seconds)
    return claimed


def attempt(db, outlets: Outlets, row: dict) -> DeliveryOutcome:
    channel = row["channel"]
    if channel == "in_app":
        return DeliveryOutcome(True)  # the inbox is this database: stored is delivered (intake
        # records new ones as sent; rows queued before that still pass through here)
    if channel == "email":
        message = outlets.mailer.message(
            to=row["address"],
            name=row["context"].get("recipient_name", ""),
            subject=row["subject"],
            text=row["body"],
            html=row["html"],
            notification_id=str(row["id"]),
        )
        return outlets.mailer.send(message)
    if channel == "sms":
        return outlets.sms.send(row["address"], f"{row['subject']}")
    if channel == "webhook":
        with db.transaction() as tx:
            subscription = store.subscription(tx, row["recipient_id"])
        if subscription is None or not subscription["active"]:
            return DeliveryOutcome(False, transient=False, error="subscription disabled or gone")
        return outlets.webhooks.post(
            subscription["url"],
            subscription["secret"],
            row["body"].encode("utf-8"),
            event_id=str(row["event_id"]),
            event_type=row["event_type"],
            delivery_id=str(row["id"]),
        )
    return DeliveryOutcome(False, transient=False, error=f"unknown channel {channel}")


def record(db, settings: NotifySettings, row: dict, outcome: DeliveryOutcome) -> None:
    with db.transaction() as tx:
        if outcome.delivered:
            # The notification and the digest members it carried; none if it is no longer
            # queued (erased meanwhile, or its subscription was disabled): nothing to record.
            sent = store.mark_sent(tx, row["id"])
            tx.publish_many("notification.sent", [(report(item), item["id"]) for item in sent])
            if sent and row["channel"] == "webhook":
                store.webhook_succeeded(tx, row["recipient_id"])
            return
        current = store.notification(tx, row["id"])
        if current is None or current["status"] != "queued":
            return
        members = store.digest_members(tx, row["id"])
        attempts = current["attempts"] + 1
        if outcome.transient and not settings.retry.exhausted(attempts):
            store.retry_later(tx, row["id"], settings.retry.delay(attempts), outcome.error or "")
            log.info("notification %s: attempt %d failed (%s), retrying", row["id"], attempts,
                     outcome.error)  # fmt: skip
        else:
            reason = outcome.error or "failed"
            if outcome.transient:
                reason = f"{reason} after {attempts} attempts"
            store.mark_failed(tx, row["id"], reason)
            for item in [current, *members]:
                tx.publish(
                    "notification.failed", {**report(item), "reason": reason[:500]},
                    subject=item["id"],
                )  # fmt: skip
        if row["channel"] == "webhook":
            subscription = store.webhook_failed(tx, row["recipient_id"])
            if (
                subscription is not None
                and subscription["active"]
                and subscription["consecutive_failures"] >= settings.webhook_max_failures
            ):
                disable(tx, subscription, outcome.error or "failed")


def disable(tx, subscription: dict, last_error: str) -> None:
    failures = subscription["consecutive_failures"]
    reason = f"{failures} consecutive failed deliveries; last: {last_error}"[:500]
    for item in store.disable_subscription(tx, subscription["id"], reason):
        tx.publish(
            "notification.failed",
            {**report(item), "reason": f"subscription disabled: {last_error}"[:500]},
            subject=item["id"],
        )
    tx.publish(
        "subscription.disabled",
        {
            "subscription_id": subscription["id"],
            "url": subscription["url"],
            "reason": reason,
            "failures": failures,
        },
        subject=subscription["id"],
    )
    log.warning("webhook subscription %s disabled: %s", subscription["id"], reason)


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
