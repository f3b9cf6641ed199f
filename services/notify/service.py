"""notify: tells returnees, staff, organizations and district systems what happened.

Email (SMTP), the in-app inbox, signed webhooks, SMS through a mainland gateway and work
messengers (WeCom, DingTalk, Feishu); one notification per event, recipient and channel,
whatever the redeliveries. Each entrypoint calls one use case in `handlers`.
"""

from prometheus_client import Gauge

from chassis.db import Database
from chassis.events import on_event
from chassis.loops import Alarm, loop
from chassis.operable import Operable
from chassis.settings import service_settings
from chassis.web import http
from contracts import CATALOG
from contracts.schemas.access import ACCESS_PRODUCERS, read_type
from services.notify import handlers
from services.notify.destinations import SUBSCRIPTION_RULES
from services.notify.providers import Channels, Settings
from services.notify.schemas import (
    CHANNELS_RULES,
    ChannelsBody,
    ChannelsOut,
    NotificationOut,
    NotificationsQuery,
    PreferencesBody,
    PreferencesOut,
    SubscriptionBody,
    SubscriptionOut,
    TopicOut,
)
from services.notify.settings import DECLARED
from services.notify.store import NotifyStore

# The delivery loop is woken after each commit that queued something to send; the interval
# picks up what comes due by itself (retries, digests, the end of quiet hours). Read at start.
SETTINGS = service_settings("notify", DECLARED)
DELIVERY_INTERVAL = float(SETTINGS["DELIVERY_INTERVAL_SECONDS"])
REMINDER_INTERVAL = float(SETTINGS["APPOINTMENT_REMINDER_INTERVAL_SECONDS"])
PURGE_INTERVAL = 3600.0  # the retention purge, hourly

# Events about a returnee whose registration notify has not taken in yet (`handlers.announce`).
WAITING_EVENTS = Gauge(
    "notify_waiting_events", "Events waiting for their returnee's registration", ["service"]
)
WAITING_OLDEST = Gauge(
    "notify_waiting_oldest_seconds", "How long the oldest waiting event has waited", ["service"]
)


STAFF_READS = {read_type(producer) for producer in ACCESS_PRODUCERS}


def _types(producer: str) -> list[str]:
    """What notify takes of `producer`: every event but the staff reads, kept by accounts alone
    (`contracts.schemas.access`)."""
    return [t.type for t in CATALOG.produced_by(producer) if t.type not in STAFF_READS]


def _takes(producer: str, background: bool = False):
    """The subscriber of every event of `producer`; `handlers.EVENT_HANDLERS` routes each type.
    Events come in batches (`EVENT_BATCH_SIZE`), each batch one transaction. `background`: its
    batches linger (`on_event`): that producer's events carry notices nobody is waiting for at
    their inbox that very moment."""
    return on_event(producer, *_types(producer), use=handlers.take_event,
                    needs=("settings", "wake_delivery"), background=background)  # fmt: skip


class NotifyService(Operable):
    """Notifications of the returnee platform: inbox, preferences and webhook subscriptions."""

    name = "notify"
    # Declares `partners.events`, where it relays what district systems may read.
    publishes_partner_views = True
    db = Database(store=NotifyStore)
    settings = Settings()
    channels = Channels()
    wake_delivery = Alarm("deliver")

    # --- events in: the routing table ---------------------------------------------------------

    on_accounts_event = _takes("accounts")
    # accounts' events carry what a person waits for in their mail (the welcome, sign-in and
    # verification links). The others carry notices and confirmations; an activity's
    # confirmation with its check-in code also shows on the page that made it, so half a second
    # more before its email does no harm.
    on_consulting_event = _takes("consulting", background=True)
    on_matching_event = _takes("matching", background=True)
    on_activities_event = _takes("activities", background=True)

    # --- loops ----------------------------------------------------------------------------------

    @loop(interval=DELIVERY_INTERVAL)
    def deliver(self):
        handlers.deliver_due(self.db, self.channels)

    @loop(interval=REMINDER_INTERVAL)
    def remind(self):
        """Queue the appointment and activity reminders that have come due (the loop above sends
        them), and
        report the events waiting for their returnee (an alert when they wait long)."""
        with self.db.unit_of_work() as uow:
            reminded = handlers.remind_due(uow, self.settings)
        with self.db.unit_of_work() as uow:
            reminded += handlers.remind_activities_due(uow, self.settings)
        if reminded:
            self.wake_delivery()
        with self.db.unit_of_work() as uow:
            waiting = handlers.waiting_events(uow)
        WAITING_EVENTS.labels(self.name).set(waiting["count"])
        WAITING_OLDEST.labels(self.name).set(waiting["oldest_seconds"])

    @loop(interval=PURGE_INTERVAL)
    def purge(self):
        """Settled notifications past their retention period go, a batch at a time."""
        while True:
            with self.db.unit_of_work() as uow:
                purged = handlers.purge_notifications(uow, self.settings)
            if purged < handlers.PURGE_BATCH:
                return

    # --- HTTP -----------------------------------------------------------------------------------

    @http("GET", "/notifications", query=NotificationsQuery, response=NotificationOut(many=True),
          auth=True, paged=True, access=True,
          summary="A person's notifications, newest first (self or admin)")  # fmt: skip
    def list_notifications(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_notifications(query, request.caller, uow, request.access)

    # Not paged: the topics are the catalog in `topics.py`, a dozen, fixed by the code.
    @http("GET", "/topics", response=TopicOut(many=True),
          summary="What a person can opt out of, in the caller's language")  # fmt: skip
    def list_topics(self, request):
        with self.db.unit_of_work() as uow:
            return handlers.list_topics(request.locale, uow)

    @http("GET", "/recipients/<uuid:recipient_id>/preferences", response=PreferencesOut(),
          auth=True, access=True,
          summary="A person's notification preferences (self or admin)")  # fmt: skip
    def get_preferences(self, request, recipient_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_preferences(recipient_id, request.caller, uow, request.access)

    @http("PUT", "/recipients/<uuid:recipient_id>/preferences", body=PreferencesBody,
          response=PreferencesOut(), auth=True,
          summary="Replace a person's opt-outs and quiet hours (self or admin)")  # fmt: skip
    def put_preferences(self, request, recipient_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.put_preferences(recipient_id, body, request.caller, uow)

    @http("GET", "/recipients/<uuid:recipient_id>/channels", response=ChannelsOut(), auth=True,
          summary="A staff member's or organization's work messengers (self or admin)")  # fmt: skip
    def get_channels(self, request, recipient_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_channels(recipient_id, request.caller, uow)

    @http("PUT", "/recipients/<uuid:recipient_id>/channels", body=ChannelsBody,
          response=ChannelsOut(), auth=True, rules=CHANNELS_RULES,
          summary="Replace a staff member's or organization's WeCom, DingTalk and Feishu robots "
                  "(self or admin)")  # fmt: skip
    def put_channels(self, request, recipient_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.put_channels(recipient_id, body, request.caller, uow)

    @http("POST", "/subscriptions", body=SubscriptionBody, response=SubscriptionOut(),
          status=201, roles=["admin"], rules=SUBSCRIPTION_RULES,
          summary="Subscribe a district system's URL to events (admin)")  # fmt: skip
    def subscribe_webhook(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.subscribe_webhook(body, uow, self.settings)

    @http("GET", "/subscriptions", response=SubscriptionOut(many=True), roles=["admin"],
          paged=True, summary="Webhook subscriptions, in the order made (admin)")  # fmt: skip
    def list_subscriptions(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_subscriptions(query, uow)

    @http("DELETE", "/subscriptions/<uuid:subscription_id>", status=204, roles=["admin"],
          summary="Remove a webhook subscription (admin)")  # fmt: skip
    def delete_subscription(self, request, subscription_id):
        with self.db.unit_of_work() as uow:
            handlers.delete_subscription(subscription_id, uow)
        return 204, None
