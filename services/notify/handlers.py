"""notify's use cases: what it does with each event, each HTTP command and each loop pass.

Events: `EVENT_HANDLERS` routes each type notify consumes to its handler
`(event, uow, settings) -> int` (how many notifications it queued for sending now); the
subscribers run them through `take_event`, a batch of events in one transaction. Nothing
leaves the platform while an event is handled: its unit of work keeps the directory current
and writes notification rows, and the delivery loop (`deliver_due`) sends them. A redelivered
event is stopped by the inbox, and should anything get past it, by the unique (event,
recipient, channel) constraint.
"""

import logging
import time
import uuid
from datetime import datetime, timedelta
from uuid import UUID

import eventlet
from prometheus_client import Counter

from chassis import access as staff_access
from chassis.auth import Caller
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.paging import Keyset, Page
from contracts import CATALOG, Event
from services.notify import (
    messages,  # noqa: F401  (the catalog of the texts raised here)
    partners,
    payloads,
)
from services.notify.access import may_act_for
from services.notify.channels import FAILURE_CATEGORIES, failure_category
from services.notify.destinations import refusal_of_url
from services.notify.domain import (
    ACCOUNT_LINK_EVENT,
    MESSENGERS,
    PUSH_CHANNELS,
    RETURNEE_CHANNELS,
    DeliveryOutcome,
    Intent,
    RecipientUnknown,
    Trigger,
    activity_reminder,
    activity_reminder_trigger,
    decide,
    merge_matches,
    merge_registrations,
    next_slot,
    plan,
    rate_key,
    receipt_delay,
    relay_slots,
    reminder,
    reminder_at,
    reminder_timely,
    reminder_trigger,
)
from services.notify.rendering import render
from services.notify.settings import NotifySettings
from services.notify.sms import compose

log = logging.getLogger(__name__)

# Templates whose email and SMS wait for the digest window, gathering what comes after them,
# each with how two of its contexts merge.
DIGESTED = {"matches_found": merge_matches, "activity_registrations": merge_registrations}
# Of those, the ones an event plans for the returnee it concerns (`domain.PLANS`).
RETURNEE_DIGESTS = {"matches.proposed": "matches_found"}
# Passes one run of the delivery loop may make while each comes back full, so a backlog drains
# without waiting a tick per batch, and the loop still yields to the others now and then.
MAX_PASSES_PER_TICK = 20
# Past appointments are kept this long after they end, then forgotten.
KEEP_PAST_HOURS = 24.0
# Notifications purged at most this many per unit of work (the purge loop runs again).
PURGE_BATCH = 1000
CATEGORIES = {category for _, category in FAILURE_CATEGORIES} | {"failed"}

UNCONFIGURED = Counter(
    "notify_unconfigured_suppressed_total",
    "Notifications suppressed because their channel is not configured (no SMS gateway, no "
    "template registered with it, no messenger destination)",
    ["service", "channel"],
)
REFUSED = Counter(
    "notify_provider_refusals_total",
    "Messages an SMS gateway or a messenger refused, by the provider's code",
    ["service", "channel", "code"],
)
RATE_DEFERRED = Counter(
    "notify_rate_deferred_total",
    "Sends put off because the destination's provider quota was spent",
    ["service", "channel"],
)


# --- events in --------------------------------------------------------------------------------


# The events that take a returnee in: their batch holds the returnee's lock (`take_returnee`).
TAKING_IN = ("returnee.registered", "returnee.updated")


def take_event(event: Event, uow, settings: NotifySettings, wake_delivery) -> int:
    """Apply the event in its unit of work (one of a batch's transaction, `chassis.events`);
    once that commits, wake the delivery loop if it queued something to send now."""
    if uow.batch is not None:
        prepare_batch(uow)
    due = EVENT_HANDLERS[event.type](event, uow, settings)
    if due:
        uow.after_commit(wake_delivery)
    return due


def prepare_batch(uow) -> None:
    """Once per batch, before its first event: what its events will look up of the returnees
    they concern read in one statement (`store.read_ahead`), and the returnees' locks the batch
    may need taken in one more, in the one order every batch takes them in, so two batches
    never wait on each other in a cycle: those its events take in, and those not in the
    directory yet (an event about them may have to wait, `announce`)."""
    shared = uow.batch.shared
    if shared.get("notify.prepared"):
        return
    shared["notify.prepared"] = True
    # What the batch's events hold to write together, written once they are all applied.
    uow.batch.at_end(uow.store.write_held)
    events = uow.batch.events
    concerned = [r for r in dict.fromkeys(map(partners.concerns_returnee, events)) if r]
    uow.store.read_ahead(concerned)
    taken_in = {str(e.data["returnee_id"]) for e in events if e.type in TAKING_IN}
    unknown = {
        r for r in concerned if uow.store.recipient(r) is None and not uow.store.is_erased(r)
    }
    uow.store.lock_digests_with_returnees(d for e in events for d in returnee_digests(e))
    uow.store.lock_returnees(taken_in | unknown)
    # Read again, now that the locks are held, those the batch does not take in itself: taken
    # in meanwhile, or their events wait (`announce`).
    uow.store.read_ahead([r for r in concerned if r in unknown and r not in taken_in])
    uow.store.release_waiting_for(taken_in)  # for `take_returnee`, in one statement


def returnee_digests(event: Event) -> list[tuple[str, str, str]]:
    """The digests `(recipient, channel, template)` the event may open for the returnee it
    concerns (`queue`), or, taking them in, the events waiting for them may: a batch takes
    their locks with the returnees'."""
    returnee_id = partners.concerns_returnee(event)
    if event.type in TAKING_IN:
        templates = sorted(set(RETURNEE_DIGESTS.values()))
    else:
        templates = [RETURNEE_DIGESTS[event.type]] if event.type in RETURNEE_DIGESTS else []
    if returnee_id is None:
        return []
    return [(returnee_id, channel, template) for template in templates
            for channel in RETURNEE_CHANNELS if channel in PUSH_CHANNELS]  # fmt: skip


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
    # notification.sent/failed naming them, kept for retention.
    uow.forget_published(event.data["returnee_id"])
    return due


def purge_notifications(uow, settings: NotifySettings) -> int:
    """Settled notifications older than `NOTIFICATION_RETENTION_DAYS` go; returns how many."""
    return uow.store.purge_notifications(settings.notification_retention_days, PURGE_BATCH)


def take_consent(event: Event, uow, settings: NotifySettings) -> int:
    data = event.data
    if data["purpose"] == "notifications":
        uow.store.keep_consent(data["returnee_id"], data["granted"], data["changed_at"])
    return forward(event, uow)


def take_staff(event: Event, uow, settings: NotifySettings) -> int:
    """staff.registered / staff.updated: the directory entry."""
    uow.store.keep_staff(event.data)
    return forward(event, uow)


def take_verification(event: Event, uow, settings: NotifySettings) -> int:
    """account.email_verified: the address receives every email from now on."""
    uow.store.keep_verified(event.data["account_id"], event.data["verified_at"])
    return forward(event, uow)


def send_account_email(event: Event, uow, settings: NotifySettings) -> int:
    """account.link_issued: the email with the link. Never forwarded: the link is a credential."""
    return announce(event, uow, settings)


def ignore_event(event: Event, uow, settings: NotifySettings) -> int:
    """credentials.revoked: every service's chassis keeps it (`chassis.revocation`), and no
    district system needs it."""
    return 0


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


def take_activity(event: Event, uow, settings: NotifySettings) -> int:
    """activity.published: kept for the reminders of its registrants and for messages that name
    it (invitations come one per returnee, as `invitation.issued`)."""
    _keep_activity(event, event.data, uow, settings)
    return forward(event, uow)


def take_invitation(event: Event, uow, settings: NotifySettings) -> int:
    """invitation.issued: the returnee is invited, in their language, by their channels."""
    _keep_activity(event, event.data["activity"], uow, settings)
    return announce(event, uow, settings) + forward(event, uow)


def take_registration(event: Event, uow, settings: NotifySettings) -> int:
    """registration.*: who is registered (for a cancellation, for the reminders); a confirmation
    with the check-in code and its QR code; the organizers' providers told in a digest. A
    cancelled registration is reminded of nothing (one held by quiet hours is suppressed)."""
    data = event.data
    _keep_activity(event, data["activity"], uow, settings)
    person = data["returnee_id"] or data["staff_id"]
    status = data["status"]
    uow.store.keep_registration(
        data["registration_id"], data["activity_id"], person, status, event.time
    )
    if status == "cancelled":
        reminder_id = activity_reminder_trigger(data["registration_id"]).id
        uow.store.suppress_queued([reminder_id], "registration cancelled")
    return announce(event, uow, settings) + forward(event, uow)


def take_activity_cancellation(event: Event, uow, settings: NotifySettings) -> int:
    """activity.cancelled: no reminders for it; everyone registered is told."""
    data = event.data
    uow.store.cancel_activity(data["activity_id"], event.time)
    held = uow.store.activity(data["activity_id"])
    if held is not None:
        seats = uow.store.confirmed_before(data["activity_id"], held["starts_at"])
        reminders = [activity_reminder_trigger(r["id"]).id for r in seats]
        uow.store.suppress_queued(reminders, "activity cancelled")
    return announce(event, uow, settings) + forward(event, uow)


def _keep_activity(event: Event, summary: dict, uow, settings: NotifySettings) -> None:
    remind_at = reminder_at(summary["starts_at"], event.time, settings.activity_reminder_lead)
    uow.store.keep_activity({**summary, "activity_id": event.data["activity_id"]}, remind_at)


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
    "staff.updated": take_staff,
    "account.email_verified": take_verification,
    "account.link_issued": send_account_email,
    "credentials.revoked": ignore_event,
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
    "activity.published": take_activity,
    "activity.cancelled": take_activity_cancellation,
    "activity.closed": forward_event,
    "invitation.issued": take_invitation,
    "registration.confirmed": take_registration,
    "registration.waitlisted": take_registration,
    "registration.cancelled": take_registration,
    "attendance.recorded": forward_event,
    "agreement.signed": forward_event,
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
    return sum(queue(event, intent, uow, settings) for intent in intents)


def queue(event: Event | Trigger, intent: Intent, uow, settings: NotifySettings,
          digest_window: float | None = None) -> int:  # fmt: skip
    """The intent's notifications, one per channel, queued, suppressed or (in-app) delivered;
    `event` is what they react to: an incoming event, or a reminder's trigger. A channel the
    platform has no configuration for is suppressed, saying so. Returns how many were queued
    for sending now."""
    recipient = intent.recipient
    digest_window = settings.digest_window if digest_window is None else digest_window
    preferences = uow.store.preferences(recipient.id)
    rendered = render(intent.template, recipient.locale, intent.context)
    unavailable = settings.unavailable(intent.template, recipient.locale, intent.context)
    sms = None
    sms_locale = settings.sms_locale(intent.template, recipient.locale, intent.context)
    if "sms" in intent.channels and sms_locale:
        sms = compose(intent.template, sms_locale, intent.context,
                      settings.aliyun_sms.sign_name, settings.sms_max_parts)  # fmt: skip
    planned = []
    for decision in decide(intent, preferences, unavailable):
        row = payloads.notification(event, intent, decision, rendered, sms)
        digested = (
            row["status"] == "queued"
            and intent.template in DIGESTED
            and decision.channel in PUSH_CHANNELS
            and digest_window > 0
        )
        if digested:
            lead = uow.store.open_digest(recipient.id, decision.channel, intent.template)
            if lead is not None:
                merged = DIGESTED[intent.template](lead["context"], intent.context)
                text = render(intent.template, lead["locale"], merged)
                uow.store.rewrite(lead["id"], text.subject, text.text,
                                  text.html if decision.channel == "email" else None,
                                  {**merged, "recipient_name": recipient.name})  # fmt: skip
                row["digest_id"] = str(lead["id"])
            else:
                row["next_attempt_at"] = uow.now() + timedelta(seconds=digest_window)
        planned.append((decision, row))
    # The channels' rows in one statement (the welcome's inbox entry and email together).
    added_ids = uow.store.add_notifications([row for _, row in planned])
    due = 0
    for (decision, row), added in zip(planned, added_ids, strict=True):
        if added is None:
            continue
        if row["status"] == "suppressed" and row["reason"] == unavailable.get(decision.channel):
            UNCONFIGURED.labels("notify", decision.channel).inc()
        if row["status"] == "sent" and payloads.reported([row]):
            uow.publish("notification.sent", payloads.report(row), subject=added)
        elif row["status"] == "queued" and "digest_id" not in row and "next_attempt_at" not in row:
            due += 1
    return due


def forward(event: Event, uow) -> int:
    """The event for district systems, in the view the returnee's consent allows
    (`partners.partner_view`): queued for each webhook subscription to its type, and relayed
    to the partner exchange."""
    if event.type in partners.PRIVATE_EVENTS:
        return 0
    returnee_id = partners.concerns_returnee(event)
    stated = partners.consent_in(event)
    if event.type == "consent.changed" and event.data["purpose"] == "share_with_partners":
        uow.store.keep_share(returnee_id, event.data["granted"], event.data["changed_at"])
    elif stated is not None:
        uow.store.keep_share(returnee_id, stated, event.time)
    if returnee_id is None:
        shares = True
    elif stated is not None:
        shares = stated  # the event says it as of itself
    else:
        shares = uow.store.shares(returnee_id)
    body = partners.partner_view(event, shares)
    uow.relay(partners.PARTNER_EXCHANGE, event, body)
    due = 0
    for subscription in uow.store.subscribers_to(event.type):
        if uow.store.add_notification(payloads.webhook_delivery(event, subscription, body)):
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
    follow_receipts(db, outlets)
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
    outcomes: list[tuple[dict, DeliveryOutcome]] = []  # attempted, not recorded yet
    recorder = []

    def record_outcomes():
        # What came of the sends finished meanwhile, recorded together: one transaction for
        # all the outcomes that arrived while the previous one committed.
        while outcomes:
            taken = outcomes[:]
            del outcomes[:]
            record_all(db, settings, taken)

    def deliver_one(row):
        if time.monotonic() > deadline:
            released.append(row["id"])
            return
        try:
            outcome = attempt(db, outlets, row)
        except Exception as exc:  # a bug in one channel must not stall the others
            log.exception("delivering notification %s failed", row["id"])
            outcome = DeliveryOutcome(False, transient=True, error=f"{type(exc).__name__}: {exc}")
        outcomes.append((row, outcome))
        if not recorder or recorder[-1].dead:
            recorder.append(eventlet.spawn(record_outcomes))

    pool = eventlet.GreenPool(settings.concurrency)
    for row in claimed:
        pool.spawn_n(deliver_one, row)
    pool.waitall()
    for thread in recorder:
        thread.wait()
    record_outcomes()  # none left, unless the last recorder ended as the last send finished
    if released:
        with db.unit_of_work() as uow:
            uow.store.release(released)
    return len(claimed) - len(released)


def claim(uow, settings: NotifySettings) -> list[dict]:
    """The due rows to send now, leased; those of recipients in quiet hours are held (deferred,
    not dropped: they come due again when quiet hours end)."""
    now = uow.now()
    rows, prefs = uow.store.claim_due(settings.batch_size, settings.lease_seconds)
    claimed = []
    for row in rows:
        quiet_until = None
        if row["event_type"] == ACCOUNT_LINK_EVENT:
            pass  # waited for now: quiet hours do not hold it
        elif row["channel"] in PUSH_CHANNELS and str(row["recipient_id"]) in prefs:
            quiet_until = prefs[str(row["recipient_id"])].quiet_until(now)
        if quiet_until is not None:
            uow.store.hold(row["id"], quiet_until)
        elif within_quota(uow, settings, row, now):
            claimed.append(row)
    return paced_to_relay(uow, settings, claimed, now)


RELAY_KEY = "email:relay"  # the ledger of sends to the mail relay, all emails together


def paced_to_relay(uow, settings: NotifySettings, rows: list[dict], now) -> list[dict]:
    """The rows to send now, the emails among them within the relay's quota
    (`SMTP_RATE_LIMITS`, every replica counting in one ledger); the emails past it are put off
    to the successive moments the quota allows, so a storm leaves at the relay's pace."""
    emails = [r for r in rows if r["channel"] == "email"]
    if not settings.relay_limits or not emails:
        return rows
    limits = settings.relay_limits
    sends = uow.store.recent_sends(
        RELAY_KEY, max(limit.seconds for limit in limits), settings.lease_seconds
    )
    slots = relay_slots(limits, sends, now, len(emails))
    later = set()
    for row, slot in zip(emails, slots, strict=True):
        if slot is None:
            uow.store.record_send(RELAY_KEY, row["id"])
        else:
            uow.store.defer(row["id"], slot)
            later.add(row["id"])
    if later:
        RATE_DEFERRED.labels("notify", "email").inc(len(later))
    return [r for r in rows if r["id"] not in later]


def within_quota(uow, settings: NotifySettings, row: dict, now) -> bool:
    """Whether the row may be sent now within its provider's quota (`RATE_LIMITS` of its
    channel), counting it as sent if so; otherwise it is put off until the quota allows."""
    limits = settings.rate_limits.get(row["channel"])
    if not limits:
        return True
    key = rate_key(row["channel"], str(row["recipient_id"]), row["address"])
    sends = uow.store.recent_sends(
        key, max(limit.seconds for limit in limits), settings.lease_seconds
    )
    later = next_slot(limits, sends, now)
    if later is not None:
        uow.store.defer(row["id"], later)
        RATE_DEFERRED.labels("notify", row["channel"]).inc()
        return False
    uow.store.record_send(key, row["id"])
    return True


def paced(settings: NotifySettings, row: dict) -> bool:
    """Whether a send of the row was counted in a quota's ledger when it was claimed."""
    if row["channel"] == "email":
        return bool(settings.relay_limits)
    return bool(settings.rate_limits.get(row["channel"]))


def attempt(db, outlets, row: dict) -> DeliveryOutcome:
    """One attempt at a claimed row; a webhook goes to its subscription as it is now, a
    messenger's to the recipient's destination as it is now."""
    target = None
    if row["channel"] == "webhook":
        with db.unit_of_work() as uow:
            target = uow.store.subscription(row["recipient_id"])
        if target is None or not target["active"]:
            return DeliveryOutcome(False, transient=False, error="subscription disabled or gone")
    elif row["channel"] in MESSENGERS:
        with db.unit_of_work() as uow:
            target = uow.store.destination(row["recipient_id"], row["channel"])
        if target is None:
            return DeliveryOutcome(False, suppressed=f"no {row['channel']} destination configured")
    return outlets.send(row, target)


def record_all(db, settings: NotifySettings, attempted: list) -> None:
    """The outcomes of several attempts in one unit of work; if that fails, each in its own,
    so one that cannot be recorded does not keep the others unrecorded (and sent again)."""
    try:
        with db.unit_of_work(batched=len(attempted) > 1) as uow:  # their events in one INSERT
            record(uow, settings, attempted)
        return
    except Exception:
        if len(attempted) == 1:
            log.exception("recording notification %s failed", attempted[0][0]["id"])
            return
    for row, outcome in attempted:
        try:
            with db.unit_of_work() as uow:
                record(uow, settings, [(row, outcome)])
        except Exception:
            log.exception("recording notification %s failed", row["id"])


def record(uow, settings: NotifySettings, attempted: list) -> None:
    """What came of each `(row, outcome)` attempt: sent, retried later, or failed (and a
    webhook's subscription disabled after too many failures in a row). An SMS the gateway
    accepted waits for its receipt (`follow_receipts`); a channel found unconfigured
    suppresses the row. The sends that went out are recorded together, in one statement."""
    # The quotas count these sends from now, after the provider answered, not from the claim.
    counted = [row["id"] for row, _ in attempted if paced(settings, row)]
    if counted:
        uow.store.settle_sends(counted)
    delivered = []
    for row, outcome in attempted:
        if outcome.suppressed:
            uow.store.mark_suppressed(row["id"], outcome.suppressed)
            UNCONFIGURED.labels("notify", row["channel"]).inc()
        elif outcome.accepted:
            uow.store.mark_accepted(row["id"], outcome.accepted, settings.sms_receipt_first_check)
        else:
            if outcome.details.get("code"):
                REFUSED.labels("notify", row["channel"], outcome.details["code"]).inc()
            if outcome.delivered:
                delivered.append(row)
            else:
                record_failure(uow, settings, row, outcome)
    if not delivered:
        return
    # The notifications and the digest members they carried; none for one no longer queued
    # (erased meanwhile, or its subscription was disabled): nothing to record.
    sent = uow.store.mark_all_sent([row["id"] for row in delivered])
    uow.publish_many(
        "notification.sent", [(payloads.report(n), n["id"]) for n in payloads.reported(sent)]
    )
    succeeded = {str(n["id"]) for n in sent}
    for row in delivered:
        if row["channel"] == "webhook" and str(row["id"]) in succeeded:
            uow.store.webhook_succeeded(row["recipient_id"])


def record_failure(uow, settings: NotifySettings, row: dict, outcome: DeliveryOutcome) -> None:
    """An attempt that did not deliver: retried later, or failed with its digest members."""
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
            [
                (payloads.failure(n, reason), n["id"])
                for n in payloads.reported([current, *members])
            ],
        )
    if row["channel"] == "webhook":
        subscription = uow.store.webhook_failed(row["recipient_id"])
        if (
            subscription is not None
            and subscription["active"]
            and subscription["consecutive_failures"] >= settings.webhook_max_failures
        ):
            disable(uow, subscription, outcome.error or "failed")


def follow_receipts(db, outlets) -> int:
    """Ask the SMS gateway for the receipts that are due; each says sent (`notification.sent`)
    or failed (`notification.failed`), or is asked for again later, until
    `SMS_RECEIPT_TIMEOUT_SECONDS` after acceptance. Returns how many were asked for."""
    settings = outlets.settings
    with db.unit_of_work() as uow:
        rows = uow.store.due_receipts(settings.batch_size)
        if rows:
            uow.store.lease([r["id"] for r in rows], settings.lease_seconds)
    for row in rows:
        try:
            outcome = outlets.receipt(row)
        except Exception as exc:  # one bad answer must not stop the others
            log.exception("asking for the receipt of notification %s failed", row["id"])
            outcome = DeliveryOutcome(False, transient=True, error=f"{type(exc).__name__}: {exc}")
        with db.unit_of_work() as uow:
            take_receipt(uow, settings, row, outcome)
    return len(rows)


def take_receipt(uow, settings: NotifySettings, row: dict, outcome: DeliveryOutcome) -> None:
    """What a receipt (or its absence) says of an accepted SMS."""
    if outcome.delivered:
        sent = uow.store.mark_sent(row["id"])
        uow.publish_many("notification.sent", [(payloads.report(n), n["id"]) for n in sent])
        return
    current = uow.store.notification(row["id"])
    if current is None or current["status"] != "accepted":
        return  # erased meanwhile
    age = (uow.now() - current["accepted_at"]).total_seconds()
    if outcome.transient and age < settings.sms_receipt_timeout:
        delay = receipt_delay(age, settings.sms_receipt_first_check)
        uow.store.await_receipt(row["id"], delay, outcome.error or "")
        return
    reason = outcome.error or "failed"
    if outcome.transient:
        reason = f"no delivery receipt within {settings.sms_receipt_timeout:g} s ({reason})"
    if outcome.details.get("code"):
        REFUSED.labels("notify", row["channel"], outcome.details["code"]).inc()
    members = uow.store.digest_members(row["id"])
    uow.store.mark_failed(row["id"], reason)
    uow.publish_many(
        "notification.failed",
        [(payloads.failure(n, reason), n["id"]) for n in [current, *members]],
    )


def disable(uow, subscription: dict, last_error: str) -> None:
    """The subscriber reads the kind of the last failure (`channels.failure_category`), the
    operator its text (the notification rows' last_error, and the log)."""
    failures = subscription["consecutive_failures"]
    reason = f"{failures} consecutive failed deliveries; last: {failure_category(last_error)}"
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
    log.warning("webhook subscription %s disabled: %s (%s)", subscription["id"], reason,
                last_error)  # fmt: skip


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
        queue(reminder_trigger(appointment.id), reminder(appointment, returnee), uow, settings, 0)
        uow.store.mark_reminded(appointment.id, "queued")
        queued += 1
    uow.store.forget_past_appointments(KEEP_PAST_HOURS)
    return queued


def remind_activities_due(uow, settings: NotifySettings) -> int:
    """Queue the reminders of the activities whose reminder time has come, one per seat
    confirmed before it (a later confirmation was the reminder); returns how many activities
    were reminded. Claimed like the appointments' (SKIP LOCKED, marked in the same unit)."""
    now = uow.now()
    reminded = 0
    for activity in uow.store.due_activity_reminders(settings.batch_size):
        if now >= activity["starts_at"]:
            uow.store.mark_activity_reminded(activity["id"], "missed")
            log.info("activity %s started before its reminders were sent", activity["id"])
            continue
        for seat in uow.store.confirmed_before(activity["id"], activity["remind_at"]):
            person = uow.store.recipient(seat["person_id"])
            if person is not None:
                intent = activity_reminder(activity, person)
                queue(activity_reminder_trigger(seat["id"]), intent, uow, settings, 0)
        uow.store.mark_activity_reminded(activity["id"], "queued")
        reminded += 1
    uow.store.forget_past_activities(KEEP_PAST_HOURS)
    return reminded


def waiting_events(uow) -> dict:
    """How many events wait for their returnee's registration, and the oldest's wait (s)."""
    return uow.store.waiting()


# --- HTTP commands ------------------------------------------------------------------------------


def list_notifications(query: dict, caller: Caller, uow, access: dict | None = None) -> Page:
    """A person's notifications (self or admin); an admin's read of a returnee's recorded."""
    if not may_act_for(caller, query["recipient_id"]):
        raise Forbidden("You may see only your own notifications.")
    _record_returnee_read(uow, query["recipient_id"], access, "notifications")
    return uow.store.notifications_of(
        query["recipient_id"], query["channel"], query["limit"], query["cursor"]
    )


def _record_returnee_read(uow, person_id, access: dict | None, what: str) -> None:
    """Another's read of a returnee's notifications or preferences (`chassis.access`); staff
    members' and organizations' are no returnee's personal data."""
    if staff_access.is_own(access, person_id):
        return
    recipient = uow.store.recipient(person_id)
    if recipient is not None and recipient.kind == "returnee":
        staff_access.record(uow, person_id, access, what)


def list_topics(locale: str, uow) -> list[dict]:
    return uow.store.topics(locale)


def get_preferences(recipient_id, caller: Caller, uow, access: dict | None = None) -> dict:
    """A person's opt-outs and quiet hours (self or admin); an admin's read of a returnee's
    recorded."""
    if not may_act_for(caller, recipient_id):
        raise Forbidden("You may manage only your own preferences.")
    _record_returnee_read(uow, recipient_id, access, "notification preferences")
    return payloads.preferences_out(recipient_id, uow.store.preferences(recipient_id))


def put_preferences(recipient_id, command: dict, caller: Caller, uow) -> dict:
    """Replace the opt-outs and quiet hours; messages held for quiet hours are looked at again."""
    if not may_act_for(caller, recipient_id):
        raise Forbidden("You may manage only your own preferences.")
    prefs = payloads.preferences_from(command)
    uow.store.save_preferences(recipient_id, prefs)
    return payloads.preferences_out(recipient_id, prefs)


def get_channels(recipient_id, caller: Caller, uow) -> dict:
    if not may_act_for(caller, recipient_id):
        raise Forbidden("You may manage only your own channels.")
    return payloads.channels_out(recipient_id, uow.store.destinations_of(recipient_id))


def put_channels(recipient_id, command: dict, caller: Caller, uow) -> dict:
    """Replace the recipient's messenger destinations (a staff member's or an organization's
    robots). What is queued from now on goes to them; a message still queued for one removed
    is suppressed when its turn comes."""
    if not may_act_for(caller, recipient_id):
        raise Forbidden("You may manage only your own channels.")
    recipient = uow.store.recipient(recipient_id)
    if recipient is None:
        raise NotFound("No such recipient.")
    if recipient.kind == "returnee":
        raise Conflict("Messenger channels are for staff and organizations.")
    wanted = {d["channel"]: d for d in command["destinations"]}
    for held in uow.store.destinations_of(recipient_id):
        if held["channel"] not in wanted:
            uow.store.delete_destination(recipient_id, held["channel"])
    for channel, destination in wanted.items():
        uow.store.save_destination(recipient_id, channel, destination["token"],
                                   destination.get("secret"))  # fmt: skip
    return payloads.channels_out(recipient_id, uow.store.destinations_of(recipient_id))


def subscribe_webhook(command: dict, uow, settings: NotifySettings | None = None) -> dict:
    """A district system's URL, checked first (`destinations.refusal_of_url`): https outside
    development mode, and no destination inside the platform's network → 422 naming `url`."""
    if settings is not None:
        refused = refusal_of_url(
            command["url"], settings.webhook_allowed_networks, settings.development
        )
        if refused is not None:  # a stated rule (SUBSCRIPTION_RULES): 422 naming url
            raise Unprocessable(fields={"url": [refused]})
    event_types = sorted(set(command["event_types"]))
    return uow.store.add_subscription(uuid.uuid4(), command["url"], event_types,
                                      command["secret"])  # fmt: skip


# Webhook subscriptions, read whole (a district's systems: a handful) and paged in order made.
SUBSCRIPTIONS = Keyset("created_at", "id", types=(datetime, UUID))


def list_subscriptions(query: dict, uow) -> Page:
    return SUBSCRIPTIONS.slice(uow.store.subscriptions(), query).map(_subscription_view)


def _subscription_view(row: dict) -> dict:
    """What the subscriber reads of a disabling: how many failures and the last one's kind."""
    reason = row.get("disabled_reason")
    if not reason:
        return {**row, "failure_category": None}
    count, _, last = reason.partition("; last: ")
    category = last if last in CATEGORIES else failure_category(last)
    return {**row, "failure_category": category, "disabled_reason": f"{count}; last: {category}"}


def delete_subscription(subscription_id, uow) -> None:
    if not uow.store.delete_subscription(subscription_id):
        raise NotFound("No such subscription.")
