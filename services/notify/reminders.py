"""Appointment reminders: the timer's pass that queues them when they come due.

Safe with several replicas: due appointments are claimed `FOR UPDATE SKIP LOCKED` and marked
reminded in the same transaction that queues their notifications, so a replica sees each one
either still due and unclaimed, or done. Should two ever get through, the notifications' unique
(event, recipient, channel) constraint holds: a reminder's "event" id is derived from the
appointment. The queued notifications are then sent by the delivery loop like any other, with
preferences, consent and quiet hours applied the same way (`intake.queue`, `delivery.claim`).
"""

import logging
from datetime import UTC, datetime

from services.notify import store
from services.notify.domain import reminder, reminder_timely, reminder_trigger
from services.notify.intake import queue

log = logging.getLogger(__name__)

# Past appointments are kept this long after they end, then forgotten.
KEEP_PAST_HOURS = 24.0


def remind_due(db, settings) -> int:
    """One pass; returns how many reminders were queued."""
    now = datetime.now(UTC)
    queued = 0
    with db.transaction() as tx:
        directory = store.StoredDirectory(tx)
        for appointment in store.due_reminders(tx, settings.batch_size):
            if not reminder_timely(appointment, now):
                # Reached after it started (notify was down): a reminder now would mislead.
                store.mark_reminded(tx, appointment.id, "missed")
                log.info("appointment %s started before its reminder was sent", appointment.id)
                continue
            returnee = directory.recipient(appointment.returnee_id)
            if returnee is None:
                store.mark_reminded(tx, appointment.id, "no recipient")
                continue
            # Reminders are not digested: each concerns its own appointment.
            queue(tx, reminder_trigger(appointment.id), reminder(appointment, returnee), 0)
            store.mark_reminded(tx, appointment.id, "queued")
            queued += 1
        store.forget_past_appointments(tx, KEEP_PAST_HOURS)
    return queued
