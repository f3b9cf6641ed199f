"""`MemoryStore`: notify's store over dicts, for the handlers' unit tests.

The same public methods as `store.NotifyStore`, with the SQL's semantics: the unique
(event, recipient, channel) constraint, upserts that keep the newer data, `ORDER BY`s, row
dicts with the columns' keys (uuids as text, as psycopg2 returns them). The database's `now()`
is the store's clock: give it the test's `FrozenClock`, the one the `MemoryDatabase` has.
Locks are no-ops: a unit test has one unit of work at a time.
"""

import copy
import json
from datetime import UTC, datetime, timedelta

from chassis.clock import Clock
from chassis.paging import Page
from services.notify.domain import Appointment, Preferences, Recipient
from services.notify.store import (
    NOTIFICATIONS,
    REDACTED_LINK,
    preferences_from_row,
    recipient_from_row,
)

NEVER = datetime.min.replace(tzinfo=UTC)  # the SQL's '-infinity'
NOTIFICATION_KEYS = (
    "id", "recipient_id", "channel", "template", "locale", "address", "subject", "body", "html",
    "context", "status", "reason", "event_id", "event_type", "digest_id", "attempts",
    "next_attempt_at", "held_for_quiet_hours", "last_error", "created_at", "sent_at",
    "provider_ref", "accepted_at",
)  # fmt: skip


class UniqueViolation(Exception):
    """What PostgreSQL refuses as a duplicate key."""


class MemoryStore:
    def __init__(self, clock: Clock | None = None):
        self.clock = clock or Clock()
        self.recipients: dict[str, dict] = {}
        self.verified_addresses: dict[str, datetime] = {}
        self.erased: set[str] = set()
        self.partner_shares: dict[str, tuple[bool, datetime]] = {}
        self.resources: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.waiting_events: dict[str, dict] = {}
        self.topic_rows: dict[str, dict] = {}
        self.appointments: dict[str, dict] = {}
        self.activities: dict[str, dict] = {}
        self.activity_registrations: dict[str, dict] = {}
        self.preference_rows: dict[str, dict] = {}
        self.notifications: dict[str, dict] = {}  # in insertion order
        self.subscription_rows: dict[str, dict] = {}
        self.destination_rows: dict[tuple[str, str], dict] = {}
        self.sends: list[dict] = []

    def __deepcopy__(self, memo):
        # A unit of work works on a copy of the tables; the clock stays the test's own.
        twin = copy.copy(self)
        for name, value in vars(self).items():
            if name != "clock":
                setattr(twin, name, copy.deepcopy(value, memo))
        return twin

    def _now(self) -> datetime:
        return self.clock.now()

    def _recipient(self, row: dict | None) -> Recipient | None:
        if row is None:
            return None
        messengers = sorted(c for r, c in self.destination_rows if r == row["id"])
        verified = row["email_verified"] or row["id"] in self.verified_addresses
        return recipient_from_row({**row, "messengers": messengers, "email_verified": verified})

    # --- the recipient directory --------------------------------------------------------------

    def is_erased(self, person_id) -> bool:
        return str(person_id) in self.erased

    def keep_returnee(self, data: dict, at: datetime) -> None:
        if self.is_erased(data["returnee_id"]):
            return
        key = str(data["returnee_id"])
        consent = data["consents"]["notifications"]
        held = self.recipients.get(key)
        if held is None:
            self.recipients[key] = {
                "id": key, "kind": "returnee", "name": data["name"], "email": data["email"],
                "phone": data.get("phone"), "locale": data["locale"], "role": None,
                "organization_id": None, "notifications_consent": consent, "consent_at": at,
                "updated_at": at, "email_verified": data.get("email_verified", True),
            }  # fmt: skip
            return
        if held["updated_at"] > at:
            return
        if held["consent_at"] <= at:
            held["notifications_consent"] = consent
        held.update(
            name=data["name"],
            email=data["email"],
            phone=data.get("phone"),
            locale=data["locale"],
            updated_at=at,
            consent_at=max(held["consent_at"], at),
        )

    def keep_consent(self, returnee_id, granted: bool, at: datetime) -> None:
        held = self.recipients.get(str(returnee_id))
        if held is not None and held["consent_at"] <= at:
            held.update(notifications_consent=granted, consent_at=at)

    def keep_staff(self, data: dict) -> None:
        key = str(data["staff_id"])
        changes = {
            "name": data["name"],
            "email": data["email"],
            "locale": data.get("locale") or "zh-CN",
            "role": data["role"],
            "organization_id": (
                str(data["organization_id"]) if data.get("organization_id") else None
            ),
            "updated_at": self._now(),
        }
        verified = data.get("email_verified", True)
        if key in self.recipients:
            verified = verified or self.recipients[key]["email_verified"]
        self._upsert_recipient(key, "staff", {**changes, "email_verified": verified})

    def keep_organization(self, data: dict) -> None:
        key = str(data["organization_id"])
        changes = {"name": data["name"], "email": data.get("contact_email"),
                   "updated_at": self._now()}  # fmt: skip
        self._upsert_recipient(key, "organization", changes, locale="zh-CN")

    def _upsert_recipient(self, key: str, kind: str, changes: dict, **inserted) -> None:
        if key in self.recipients:
            self.recipients[key].update(changes)
            return
        self.recipients[key] = {
            "id": key, "kind": kind, "phone": None, "locale": "zh-CN", "role": None,
            "organization_id": None, "notifications_consent": True, "consent_at": NEVER,
            "email_verified": True, **inserted, **changes,
        }  # fmt: skip

    def keep_verified(self, account_id, at: datetime) -> None:
        if not self.is_erased(account_id):
            self.verified_addresses.setdefault(str(account_id), at)

    def keep_share(self, returnee_id, granted: bool, at: datetime) -> None:
        key = str(returnee_id)
        if self.is_erased(key):
            return
        held = self.partner_shares.get(key)
        if held is None or held[1] <= at:
            self.partner_shares[key] = (granted, at)

    def shares(self, returnee_id) -> bool:
        held = self.partner_shares.get(str(returnee_id))
        return bool(held and held[0])

    def erase_person(self, person_id) -> int:
        person = str(person_id)
        self.partner_shares.pop(person, None)
        held = self.recipients.get(person) or {}
        contacts = [held.get(k) for k in ("name", "email", "phone")]
        contacts = [v for v in contacts if v and len(v) >= 5]
        for n in self.notifications.values():
            if n["recipient_id"] == person:
                continue
            context = json.dumps(n["context"], ensure_ascii=False)
            if (
                n["context"].get("returnee_id") == person
                or person in context
                or person in n["body"]
                or (n["template"] == "intention_update" and held.get("name")
                    and n["context"].get("returnee_name") == held["name"])
                or any(c in n["body"] or c in (n["html"] or "") for c in contacts)
            ):  # fmt: skip
                if n["status"] in ("queued", "accepted"):
                    n.update(status="suppressed", reason="erased")
                n.update(subject="", body="", html=None, address=None, context={},
                         last_error=None)  # fmt: skip
        self.erased.add(person)
        self.recipients.pop(person, None)
        self.verified_addresses.pop(person, None)
        self.waiting_events = {
            k: w for k, w in self.waiting_events.items() if w["returnee_id"] != person
        }
        self.preference_rows.pop(person, None)
        self.destination_rows = {k: d for k, d in self.destination_rows.items() if k[0] != person}
        self.appointments = {
            k: a for k, a in self.appointments.items() if a["returnee_id"] != person
        }
        self.activity_registrations = {
            k: r for k, r in self.activity_registrations.items() if r["person_id"] != person
        }
        gone = {k for k, n in self.notifications.items() if n["recipient_id"] == person}
        # digest_id REFERENCES notifications ON DELETE CASCADE
        cascaded = {k for k, n in self.notifications.items() if n["digest_id"] in gone}
        self.notifications = {
            k: n for k, n in self.notifications.items() if k not in gone | cascaded
        }
        return len(gone)

    def keep_resource(self, data: dict) -> None:
        key = str(data["resource_id"])
        self.resources[key] = {
            "id": key,
            "organization_id": str(data["organization_id"]),
            "title": data["title"],
        }

    def keep_policy(self, data: dict) -> None:
        key = str(data["policy_id"])
        if any(p["code"] == data["code"] and k != key for k, p in self.policies.items()):
            raise UniqueViolation(f"policies_code_key: {data['code']}")
        self.policies[key] = {
            "id": key,
            "code": data["code"],
            "title_zh": data["title"]["zh-CN"],
            "title_en": data["title"]["en"],
        }

    def recipient(self, recipient_id) -> Recipient | None:
        if not recipient_id:
            return None
        return self._recipient(self.recipients.get(str(recipient_id)))

    def staff_of(self, organization_id, role: str) -> list[Recipient]:
        rows = [
            r
            for r in self.recipients.values()
            if r["kind"] == "staff"
            and r["role"] == role
            and (organization_id is None or r["organization_id"] == str(organization_id))
        ]
        return [self._recipient(r) for r in sorted(rows, key=lambda r: r["name"])]

    def resource_titles(self, resource_ids) -> dict[str, str]:
        wanted = {str(i) for i in resource_ids}
        return {k: r["title"] for k, r in self.resources.items() if k in wanted}

    def organization_names(self, organization_ids) -> dict[str, str]:
        wanted = {str(i) for i in organization_ids}
        return {
            k: r["name"]
            for k, r in self.recipients.items()
            if k in wanted and r["kind"] == "organization"
        }

    def policy_titles(self, codes) -> dict[str, dict[str, str]]:
        wanted = set(codes)
        return {
            p["code"]: {"zh-CN": p["title_zh"], "en": p["title_en"]}
            for p in self.policies.values()
            if p["code"] in wanted
        }

    # --- events waiting for their returnee ----------------------------------------------------

    def lock_returnee(self, returnee_id) -> None:
        self.lock_returnees([returnee_id])  # as the SQL store's does

    def lock_returnees(self, returnee_ids) -> None:
        pass  # one unit of work at a time: nothing to serialise

    def lock_digests_with_returnees(self, digests) -> None:
        pass  # as `lock_returnees`

    def read_ahead(self, returnee_ids) -> None:
        pass  # every lookup reads the dicts as they are: what the read-ahead keeps current

    def make_wait(self, event_id, returnee_id, body: bytes) -> None:
        key = str(event_id)
        if key in self.waiting_events:
            self.waiting_events[key]["returnee_id"] = str(returnee_id)
            return
        self.waiting_events[key] = {
            "event_id": key,
            "returnee_id": str(returnee_id),
            "body": bytes(body),
            "received_at": self._now(),
        }

    def release_waiting(self, returnee_id) -> list[bytes]:
        released = [w for w in self.waiting_events.values() if w["returnee_id"] == str(returnee_id)]
        for w in released:
            del self.waiting_events[w["event_id"]]
        return [w["body"] for w in sorted(released, key=lambda w: w["received_at"])]

    def release_waiting_for(self, returnee_ids) -> None:
        pass  # `release_waiting` takes them out of the dict as it is

    def write_held(self) -> None:
        pass  # every write is made at once

    def waiting(self) -> dict:
        if not self.waiting_events:
            return {"count": 0, "oldest_seconds": 0.0}
        oldest = min(w["received_at"] for w in self.waiting_events.values())
        return {
            "count": len(self.waiting_events),
            "oldest_seconds": (self._now() - oldest).total_seconds(),
        }

    # --- topics ---------------------------------------------------------------------------------

    def topics(self, locale: str) -> list[dict]:
        suffix = "zh" if locale == "zh-CN" else "en"
        return [
            {
                "name": t["name"],
                "label": t[f"label_{suffix}"],
                "description": t[f"description_{suffix}"],
                "channels": list(t["channels"]),
            }
            for t in sorted(self.topic_rows.values(), key=lambda t: t["position"])
        ]

    def keep_topics(self, topics: list[tuple]) -> int:
        for position, (name, label_zh, label_en, text_zh, text_en, channels) in enumerate(topics):
            self.topic_rows[name] = {
                "name": name, "position": position, "label_zh": label_zh, "label_en": label_en,
                "description_zh": text_zh, "description_en": text_en, "channels": list(channels),
            }  # fmt: skip
        return len(topics)

    # --- appointments and their reminders -------------------------------------------------------

    def keep_appointment(self, data: dict, remind_at: datetime | None) -> None:
        if self.is_erased(data["returnee_id"]):
            return
        key = str(data["appointment_id"])
        if key not in self.appointments:
            self.appointments[key] = self._appointment(data, remind_at=remind_at)

    def cancel_appointment(self, data: dict, at: datetime, reminder_event_id: str) -> None:
        if self.is_erased(data["returnee_id"]):
            return
        key = str(data["appointment_id"])
        held = self.appointments.get(key)
        if held is None:
            self.appointments[key] = self._appointment(data, cancelled_at=at)
        else:
            held.update(remind_at=None, cancelled_at=held["cancelled_at"] or at)
        for n in self.notifications.values():
            if n["event_id"] == str(reminder_event_id) and n["status"] == "queued":
                n.update(status="suppressed", reason="appointment cancelled")

    @staticmethod
    def _appointment(data: dict, remind_at=None, cancelled_at=None) -> dict:
        return {
            "id": str(data["appointment_id"]), "returnee_id": str(data["returnee_id"]),
            "starts_at": data["starts_at"], "ends_at": data["ends_at"],
            "location": data["location"], "remind_at": remind_at, "reminded_at": None,
            "reminder": None, "cancelled_at": cancelled_at,
        }  # fmt: skip

    def due_reminders(self, limit: int) -> list[Appointment]:
        now = self._now()
        due = [
            a
            for a in self.appointments.values()
            if a["reminded_at"] is None and a["remind_at"] is not None and a["remind_at"] <= now
        ]
        due.sort(key=lambda a: a["remind_at"])
        return [
            Appointment(a["id"], a["returnee_id"], a["starts_at"], a["ends_at"], a["location"])
            for a in due[:limit]
        ]

    def mark_reminded(self, appointment_id, outcome: str) -> None:
        held = self.appointments.get(str(appointment_id))
        if held is not None:
            held.update(reminded_at=self._now(), reminder=outcome)

    def forget_past_appointments(self, hours: float) -> int:
        before = self._now() - timedelta(hours=hours)
        past = [k for k, a in self.appointments.items() if a["ends_at"] < before]
        for k in past:
            del self.appointments[k]
        return len(past)

    # --- activities, their registrations and reminders -----------------------------------------

    def keep_activity(self, data: dict, remind_at: datetime | None) -> None:
        key = str(data["activity_id"])
        if key not in self.activities:
            self.activities[key] = {
                "id": key, "title": copy.deepcopy(dict(data["title"])),
                "starts_at": data["starts_at"], "ends_at": data["ends_at"],
                "venue": copy.deepcopy(dict(data["venue"])), "remind_at": remind_at,
                "reminded_at": None, "reminder": None, "cancelled_at": None,
            }  # fmt: skip

    def cancel_activity(self, activity_id, at: datetime) -> None:
        held = self.activities.get(str(activity_id))
        if held is not None and held["cancelled_at"] is None:
            held["cancelled_at"] = at

    _ACTIVITY_KEYS = ("id", "title", "starts_at", "ends_at", "venue", "remind_at", "cancelled_at")

    def activity(self, activity_id) -> dict | None:
        held = self.activities.get(str(activity_id))
        return None if held is None else copy.deepcopy({k: held[k] for k in self._ACTIVITY_KEYS})

    _STATUS_ORDER = ("waitlisted", "confirmed", "cancelled")

    def keep_registration(self, registration_id, activity_id, person_id, status: str,
                          at: datetime) -> None:  # fmt: skip
        if self.is_erased(person_id):
            return
        key = str(registration_id)
        held = self.activity_registrations.get(key)
        confirmed_at = at if status == "confirmed" else None
        if held is None:
            self.activity_registrations[key] = {
                "id": key, "activity_id": str(activity_id), "person_id": str(person_id),
                "status": status, "confirmed_at": confirmed_at,
            }  # fmt: skip
        elif self._STATUS_ORDER.index(held["status"]) < self._STATUS_ORDER.index(status):
            held.update(status=status, confirmed_at=held["confirmed_at"] or confirmed_at)

    def activity_registrants(self, activity_id) -> list[str]:
        held = [
            r
            for r in self.activity_registrations.values()
            if r["activity_id"] == str(activity_id) and r["status"] in ("confirmed", "waitlisted")
        ]
        return [r["person_id"] for r in sorted(held, key=lambda r: r["id"])]

    def confirmed_before(self, activity_id, at: datetime) -> list[dict]:
        held = [
            r
            for r in self.activity_registrations.values()
            if r["activity_id"] == str(activity_id)
            and r["status"] == "confirmed"
            and r["confirmed_at"] is not None
            and r["confirmed_at"] < at
        ]
        return [
            {"id": r["id"], "person_id": r["person_id"]}
            for r in sorted(held, key=lambda r: r["id"])
        ]

    def due_activity_reminders(self, limit: int) -> list[dict]:
        now = self._now()
        due = [
            a
            for a in self.activities.values()
            if a["reminded_at"] is None
            and a["remind_at"] is not None
            and a["remind_at"] <= now
            and a["cancelled_at"] is None
        ]
        due.sort(key=lambda a: a["remind_at"])
        return [copy.deepcopy({k: a[k] for k in self._ACTIVITY_KEYS}) for a in due[:limit]]

    def mark_activity_reminded(self, activity_id, outcome: str) -> None:
        held = self.activities.get(str(activity_id))
        if held is not None:
            held.update(reminded_at=self._now(), reminder=outcome)

    def suppress_queued(self, event_ids: list[str], reason: str) -> None:
        wanted = {str(e) for e in event_ids}
        for n in self.notifications.values():
            if n["event_id"] in wanted and n["status"] == "queued":
                n.update(status="suppressed", reason=reason)

    def forget_past_activities(self, hours: float) -> int:
        before = self._now() - timedelta(hours=hours)
        past = {k for k, a in self.activities.items() if a["ends_at"] < before}
        self.activity_registrations = {
            k: r for k, r in self.activity_registrations.items() if r["activity_id"] not in past
        }
        for k in past:
            del self.activities[k]
        return len(past)

    # --- preferences ----------------------------------------------------------------------------

    def preferences(self, recipient_id) -> Preferences:
        return preferences_from_row(copy.deepcopy(self.preference_rows.get(str(recipient_id))))

    def save_preferences(self, recipient_id, prefs: Preferences) -> None:
        key = str(recipient_id)
        self.preference_rows[key] = {
            "recipient_id": key,
            "opt_outs": [{"channel": c, "topic": t} for c, t in prefs.opt_outs],
            "quiet_start": prefs.quiet_start,
            "quiet_end": prefs.quiet_end,
            "timezone": prefs.timezone,
            "updated_at": self._now(),
        }
        for n in self.notifications.values():
            if n["recipient_id"] == key and n["status"] == "queued" and n["held_for_quiet_hours"]:
                n.update(next_attempt_at=self._now(), held_for_quiet_hours=False)

    # --- notifications --------------------------------------------------------------------------

    def add_notifications(self, rows: list[dict]) -> list[str | None]:
        return [self.add_notification(row) for row in rows]

    def add_notification(self, row: dict) -> str | None:
        key = (str(row["event_id"]), str(row["recipient_id"]), row["channel"])
        if any((n["event_id"], n["recipient_id"], n["channel"]) == key
               for n in self.notifications.values()):  # fmt: skip
            return None
        now = self._now()
        sent = row["status"] == "sent"
        stored = {
            "digest_id": None, "html": None, "reason": None, "address": None, "context": {},
            **copy.deepcopy(row),
            "id": str(row["id"]), "recipient_id": key[1], "event_id": key[0],
            "next_attempt_at": row.get("next_attempt_at") or now,
            "attempts": 1 if sent else 0, "held_for_quiet_hours": False, "last_error": None,
            "created_at": now, "sent_at": now if sent else None, "provider_ref": None,
            "accepted_at": None,
        }  # fmt: skip
        if stored["digest_id"] is not None:
            stored["digest_id"] = str(stored["digest_id"])
        self.notifications[stored["id"]] = {k: stored[k] for k in NOTIFICATION_KEYS}
        return stored["id"]

    def open_digest(self, recipient_id, channel: str, template: str) -> dict | None:
        now = self._now()
        leads = [
            n
            for n in self.notifications.values()
            if n["recipient_id"] == str(recipient_id)
            and n["channel"] == channel
            and n["template"] == template
            and n["status"] == "queued"
            and n["digest_id"] is None
            and n["attempts"] == 0
            and n["next_attempt_at"] > now
        ]
        leads.sort(key=lambda n: n["created_at"])
        return copy.deepcopy(leads[0]) if leads else None

    def rewrite(self, notification_id, subject: str, body: str, html: str | None,
                context: dict) -> None:  # fmt: skip
        held = self.notifications.get(str(notification_id))
        if held is not None:
            held.update(subject=subject, body=body, html=html, context=copy.deepcopy(context))

    def notifications_of(self, recipient_id, channel: str | None, limit: int,
                         cursor=None) -> Page:  # fmt: skip
        found = [
            n
            for n in self.notifications.values()
            if n["recipient_id"] == str(recipient_id)
            and n["channel"] != "webhook"
            and (not channel or n["channel"] == channel)
        ]
        return NOTIFICATIONS.slice(copy.deepcopy(found), {"cursor": cursor, "limit": limit})

    def claim_due(self, limit: int, lease_seconds: float) -> tuple[list[dict], dict]:
        now = self._now()
        found = [
            n
            for n in self.notifications.values()
            if n["status"] == "queued" and n["digest_id"] is None and n["next_attempt_at"] <= now
        ]
        found.sort(key=lambda n: n["next_attempt_at"])
        rows = copy.deepcopy(found[:limit])
        self.lease([r["id"] for r in rows], lease_seconds)
        wanted = {str(r["recipient_id"]) for r in rows}
        prefs = {
            k: preferences_from_row(copy.deepcopy(row))
            for k, row in self.preference_rows.items()
            if k in wanted
        }
        return rows, prefs

    def lease(self, ids, seconds: float) -> None:
        until = self._now() + timedelta(seconds=seconds)
        for key in ids:
            if str(key) in self.notifications:
                self.notifications[str(key)]["next_attempt_at"] = until

    def release(self, ids) -> None:
        released = {str(i) for i in ids}
        self.sends = [
            s for s in self.sends if not (s["pending"] and s["notification_id"] in released)
        ]
        for key in ids:
            if str(key) in self.notifications:
                self.notifications[str(key)]["next_attempt_at"] = self._now()

    def hold(self, notification_id, until: datetime) -> None:
        held = self.notifications.get(str(notification_id))
        if held is not None:
            held.update(next_attempt_at=until, held_for_quiet_hours=True)

    def digest_members(self, lead_id) -> list[dict]:
        return copy.deepcopy(
            [n for n in self.notifications.values() if n["digest_id"] == str(lead_id)]
        )

    def _redact_links(self, notification_id) -> None:
        key = str(notification_id)
        for n in self.notifications.values():
            link = n["context"].get("link")
            if (n["id"] == key or n["digest_id"] == key) and link and n["status"] not in (
                "queued", "accepted"):  # fmt: skip
                n["body"] = n["body"].replace(link, REDACTED_LINK)
                if n["html"] is not None:
                    n["html"] = n["html"].replace(link, REDACTED_LINK).replace(
                        link.replace("&", "&amp;"), REDACTED_LINK)  # fmt: skip
                n["context"] = {k: v for k, v in n["context"].items() if k != "link"}

    def purge_notifications(self, older_than_days: float, limit: int) -> int:
        before = self._now() - timedelta(days=older_than_days)
        gone = [
            k
            for k, n in self.notifications.items()
            if n["status"] in ("sent", "failed", "suppressed") and n["created_at"] < before
        ]
        gone = set(gone[:limit])
        cascaded = {k for k, n in self.notifications.items() if n["digest_id"] in gone}
        self.notifications = {k: n for k, n in self.notifications.items()
                              if k not in gone | cascaded}  # fmt: skip
        return len(gone)

    def mark_sent(self, notification_id) -> list[dict]:
        return self.mark_all_sent([notification_id])

    def mark_all_sent(self, notification_ids) -> list[dict]:
        keys = {str(i) for i in notification_ids}
        sent = []
        for n in self.notifications.values():
            if (n["id"] in keys or n["digest_id"] in keys) and n["status"] in (
                "queued", "accepted"):  # fmt: skip
                attempts = n["attempts"] + (1 if n["status"] == "queued" else 0)
                n.update(status="sent", sent_at=self._now(), attempts=attempts,
                         last_error=None, held_for_quiet_hours=False)  # fmt: skip
                sent.append(n)
        for key in keys:
            self._redact_links(key)
        return copy.deepcopy(sent)

    def mark_accepted(self, notification_id, reference: str, check_in_seconds: float) -> None:
        held = self.notifications.get(str(notification_id))
        if held is not None and held["status"] == "queued":
            held.update(
                status="accepted",
                provider_ref=reference,
                accepted_at=self._now(),
                attempts=held["attempts"] + 1,
                last_error=None,
                held_for_quiet_hours=False,
                next_attempt_at=self._now() + timedelta(seconds=check_in_seconds),
            )

    def mark_suppressed(self, notification_id, reason: str) -> None:
        key = str(notification_id)
        for n in self.notifications.values():
            if (n["id"] == key or n["digest_id"] == key) and n["status"] == "queued":
                n.update(status="suppressed", reason=reason[:500])
        self._redact_links(notification_id)

    def due_receipts(self, limit: int) -> list[dict]:
        now = self._now()
        found = [
            n
            for n in self.notifications.values()
            if n["status"] == "accepted" and n["next_attempt_at"] <= now
        ]
        found.sort(key=lambda n: n["next_attempt_at"])
        return copy.deepcopy(found[:limit])

    def await_receipt(self, notification_id, delay_seconds: float, note: str) -> None:
        held = self.notifications.get(str(notification_id))
        if held is not None and held["status"] == "accepted":
            held.update(last_error=note[:2000],
                        next_attempt_at=self._now() + timedelta(seconds=delay_seconds))  # fmt: skip

    def defer(self, notification_id, until: datetime) -> None:
        held = self.notifications.get(str(notification_id))
        if held is not None:
            held["next_attempt_at"] = until

    def mark_failed(self, notification_id, reason: str) -> None:
        key = str(notification_id)
        held = self.notifications.get(key)
        if held is not None:
            held.update(status="failed", reason=reason[:500], last_error=reason[:2000],
                        attempts=held["attempts"] + 1)  # fmt: skip
        for n in self.notifications.values():
            if n["digest_id"] == key:
                n.update(status="failed", reason=reason[:500])
        self._redact_links(notification_id)

    def retry_later(self, notification_id, delay_seconds: float, error: str) -> None:
        held = self.notifications.get(str(notification_id))
        if held is not None:
            held.update(attempts=held["attempts"] + 1, last_error=error[:2000],
                        next_attempt_at=self._now() + timedelta(seconds=delay_seconds))  # fmt: skip

    def notification(self, notification_id) -> dict | None:
        return copy.deepcopy(self.notifications.get(str(notification_id)))

    # --- messenger destinations and provider quotas ---------------------------------------------

    def save_destination(self, recipient_id, channel: str, token: str,
                         secret: str | None) -> dict:  # fmt: skip
        self.destination_rows[(str(recipient_id), channel)] = {
            "recipient_id": str(recipient_id), "channel": channel, "token": token,
            "secret": secret, "updated_at": self._now(),
        }  # fmt: skip
        return copy.deepcopy(self.destination_rows[(str(recipient_id), channel)])

    def destination(self, recipient_id, channel: str) -> dict | None:
        return copy.deepcopy(self.destination_rows.get((str(recipient_id), channel)))

    def destinations_of(self, recipient_id) -> list[dict]:
        found = [d for (r, _), d in self.destination_rows.items() if r == str(recipient_id)]
        return copy.deepcopy(sorted(found, key=lambda d: d["channel"]))

    def delete_destination(self, recipient_id, channel: str) -> bool:
        return self.destination_rows.pop((str(recipient_id), channel), None) is not None

    def recent_sends(self, key: str, seconds: float, pending_for: float) -> list[datetime]:
        now = self._now()

        def kept(send):
            window = pending_for if send["pending"] else seconds
            return send["key"] != key or send["sent_at"] > now - timedelta(seconds=window)

        self.sends = [s for s in self.sends if kept(s)]
        return sorted(
            max(s["sent_at"], now) if s["pending"] else s["sent_at"]
            for s in self.sends
            if s["key"] == key
        )

    def record_send(self, key: str, notification_id) -> None:
        self.sends.append({"key": key, "sent_at": self._now(),
                           "notification_id": str(notification_id), "pending": True})  # fmt: skip

    def settle_sends(self, notification_ids) -> None:
        settled = {str(i) for i in notification_ids}
        for send in self.sends:
            if send["pending"] and send["notification_id"] in settled:
                send.update(sent_at=self._now(), pending=False)

    # --- webhook subscriptions ------------------------------------------------------------------

    def add_subscription(self, subscription_id, url: str, event_types: list[str],
                         secret: str) -> dict:  # fmt: skip
        key = str(subscription_id)
        if key in self.subscription_rows:
            raise UniqueViolation(f"subscriptions_pkey: {key}")
        self.subscription_rows[key] = {
            "id": key, "url": url, "event_types": list(event_types), "secret": secret,
            "active": True, "consecutive_failures": 0, "disabled_reason": None,
            "created_at": self._now(),
        }  # fmt: skip
        return copy.deepcopy(self.subscription_rows[key])

    def subscriptions(self) -> list[dict]:
        rows = sorted(self.subscription_rows.values(), key=lambda s: (s["created_at"], s["id"]))
        return copy.deepcopy(rows)

    def subscription(self, subscription_id) -> dict | None:
        return copy.deepcopy(self.subscription_rows.get(str(subscription_id)))

    def delete_subscription(self, subscription_id) -> bool:
        return self.subscription_rows.pop(str(subscription_id), None) is not None

    def subscribers_to(self, event_type: str) -> list[dict]:
        rows = [
            {"id": s["id"], "url": s["url"]}
            for s in self.subscription_rows.values()
            if s["active"] and event_type in s["event_types"]
        ]
        return sorted(rows, key=lambda s: s["id"])

    def webhook_succeeded(self, subscription_id) -> None:
        held = self.subscription_rows.get(str(subscription_id))
        if held is not None:
            held["consecutive_failures"] = 0

    def webhook_failed(self, subscription_id) -> dict | None:
        held = self.subscription_rows.get(str(subscription_id))
        if held is None:
            return None
        held["consecutive_failures"] += 1
        return copy.deepcopy(held)

    def disable_subscription(self, subscription_id, reason: str) -> list[dict]:
        key = str(subscription_id)
        held = self.subscription_rows.get(key)
        if held is not None:
            held.update(active=False, disabled_reason=reason)
        failed = []
        for n in self.notifications.values():
            if n["recipient_id"] == key and n["channel"] == "webhook" and n["status"] == "queued":
                n.update(status="failed", reason=reason[:500])
                failed.append(copy.deepcopy(n))
        return failed
