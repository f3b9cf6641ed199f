"""notify: tells returnees, staff, organizations and district systems what happened.

Email (SMTP), the in-app inbox, signed webhooks and SMS; one notification per event, recipient
and channel, whatever the redeliveries.
"""

import uuid

from prometheus_client import Gauge

from chassis.auth import Authenticator
from chassis.db import Database
from chassis.events import subscribe
from chassis.i18n import add_translations
from chassis.loops import Alarm, loop
from chassis.settings import setting
from chassis.web import Forbidden, NotFound, Operable, http
from contracts import CATALOG
from services.notify import store
from services.notify.delivery import SETTINGS, Channels, deliver_due
from services.notify.domain import Preferences
from services.notify.intake import take
from services.notify.reminders import remind_due
from services.notify.schemas import (
    NotificationOut,
    NotificationsQuery,
    PreferencesBody,
    PreferencesOut,
    SubscriptionBody,
    SubscriptionOut,
    TopicOut,
)

add_translations(
    {
        "you may see only your own notifications": "您只能查看自己的通知",
        "you may manage only your own preferences": "您只能管理自己的通知偏好",
        "no such subscription": "订阅不存在",
        "Unknown time zone.": "未知的时区。",
    }
)

# The delivery loop is woken after each commit that queued something to send; the interval
# picks up what comes due by itself (retries, digests, the end of quiet hours).
DELIVERY_INTERVAL = float(setting("notify", "DELIVERY_INTERVAL_SECONDS", "1"))
# Passes one run may make while each comes back full, so a backlog drains without waiting a
# tick per batch, and the loop still yields to the others now and then.
MAX_PASSES_PER_TICK = 20
REMINDER_INTERVAL = float(
    setting(
        "notify",
        "APPOINTMENT_REMINDER_INTERVAL_SECONDS",
        SETTINGS["APPOINTMENT_REMINDER_INTERVAL_SECONDS"],
    )
)


# Events about a returnee whose registration notify has not taken in yet (`intake.announce`).
WAITING_EVENTS = Gauge(
    "notify_waiting_events", "Events waiting for their returnee's registration", ["service"]
)
WAITING_OLDEST = Gauge(
    "notify_waiting_oldest_seconds", "How long the oldest waiting event has waited", ["service"]
)


def _types(producer: str) -> list[str]:
    return [t.type for t in CATALOG.produced_by(producer)]


class NotifyService(Operable):
    """Notifications of the returnee platform: inbox, preferences and webhook subscriptions."""

    name = "notify"
    db = Database()
    auth = Authenticator()
    channels = Channels()
    wake_delivery = Alarm("deliver")

    # --- events in: directory and queued notifications, one transaction each ------------------

    @subscribe("accounts", *_types("accounts"))
    def on_accounts_event(self, event):
        self._take(event)

    @subscribe("consulting", *_types("consulting"))
    def on_consulting_event(self, event):
        self._take(event)

    @subscribe("matching", *_types("matching"))
    def on_matching_event(self, event):
        self._take(event)

    def _take(self, event):
        settings = self.channels.settings
        with self.db.transaction() as tx:
            due = take(tx, event, settings.digest_window, settings.reminder_lead)
        if due:
            self.wake_delivery()  # committed: send now rather than at the next tick

    # --- delivery -------------------------------------------------------------------------------

    @loop(interval=DELIVERY_INTERVAL)
    def deliver(self):
        for _ in range(MAX_PASSES_PER_TICK):
            if deliver_due(self.db, self.channels) < self.channels.settings.batch_size:
                return

    @loop(interval=REMINDER_INTERVAL)
    def remind(self):
        """Queue the appointment reminders that have come due; the loop above sends them. And
        report the events waiting for their returnee (an alert when they wait long)."""
        if remind_due(self.db, self.channels.settings):
            self.wake_delivery()
        with self.db.transaction() as tx:
            waiting = store.waiting(tx)
        WAITING_EVENTS.labels(self.name).set(waiting["count"])
        WAITING_OLDEST.labels(self.name).set(waiting["oldest_seconds"])

    # --- HTTP -----------------------------------------------------------------------------------

    @http("GET", "/notifications", query=NotificationsQuery, response=NotificationOut(many=True),
          auth=True, summary="A person's notifications, newest first (self or admin)")  # fmt: skip
    def list_notifications(self, request, query):
        caller = self.auth.caller(request)
        if caller.id != str(query["recipient_id"]) and caller.role != "admin":
            raise Forbidden("you may see only your own notifications")
        with self.db.transaction() as tx:
            return store.notifications_of(tx, query["recipient_id"], query["channel"],
                                          query["limit"])  # fmt: skip

    @http("GET", "/topics", response=TopicOut(many=True),
          summary="What a person can opt out of, in the caller's language")  # fmt: skip
    def list_topics(self, request):
        with self.db.transaction() as tx:
            return store.topics(tx, request.locale)

    @http("GET", "/recipients/<uuid:recipient_id>/preferences", response=PreferencesOut(),
          auth=True, summary="A person's notification preferences (self or admin)")  # fmt: skip
    def get_preferences(self, request, recipient_id):
        self._guard_preferences(request, recipient_id)
        with self.db.transaction() as tx:
            return _preferences_out(recipient_id, store.preferences(tx, recipient_id))

    @http("PUT", "/recipients/<uuid:recipient_id>/preferences", body=PreferencesBody,
          response=PreferencesOut(), auth=True,
          summary="Replace a person's opt-outs and quiet hours (self or admin)")  # fmt: skip
    def put_preferences(self, request, recipient_id, body):
        self._guard_preferences(request, recipient_id)
        quiet = body["quiet_hours"]
        prefs = Preferences(
            opt_outs=tuple(dict.fromkeys((o["channel"], o["topic"]) for o in body["opt_outs"])),
            quiet_start=quiet["start"] if quiet else None,
            quiet_end=quiet["end"] if quiet else None,
            timezone=quiet["timezone"] if quiet else Preferences.timezone,
        )
        with self.db.transaction() as tx:
            store.save_preferences(tx, recipient_id, prefs)
        return _preferences_out(recipient_id, prefs)

    def _guard_preferences(self, request, recipient_id):
        caller = self.auth.caller(request)
        if caller.id != str(recipient_id) and caller.role != "admin":
            raise Forbidden("you may manage only your own preferences")

    @http("POST", "/subscriptions", body=SubscriptionBody, response=SubscriptionOut(),
          status=201, roles=["admin"],
          summary="Subscribe a district system's URL to events (admin)")  # fmt: skip
    def subscribe_webhook(self, request, body):
        with self.db.transaction() as tx:
            return store.add_subscription(
                tx, uuid.uuid4(), body["url"], sorted(set(body["event_types"])), body["secret"]
            )

    @http("GET", "/subscriptions", response=SubscriptionOut(many=True), roles=["admin"],
          summary="Webhook subscriptions (admin)")  # fmt: skip
    def list_subscriptions(self, request):
        with self.db.transaction() as tx:
            return store.subscriptions(tx)

    @http("DELETE", "/subscriptions/<uuid:subscription_id>", status=204, roles=["admin"],
          summary="Remove a webhook subscription (admin)")  # fmt: skip
    def delete_subscription(self, request, subscription_id):
        with self.db.transaction() as tx:
            if not store.delete_subscription(tx, subscription_id):
                raise NotFound("no such subscription")
        return 204, None


def _preferences_out(recipient_id, prefs: Preferences) -> dict:
    quiet = None
    if prefs.quiet_start is not None and prefs.quiet_end is not None:
        quiet = {"start": prefs.quiet_start, "end": prefs.quiet_end, "timezone": prefs.timezone}
    return {
        "recipient_id": recipient_id,
        "opt_outs": [{"channel": c, "topic": t} for c, t in prefs.opt_outs],
        "quiet_hours": quiet,
    }
