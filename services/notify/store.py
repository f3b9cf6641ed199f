"""SQL of the notify database: `NotifyStore`, bound to one unit of work (`uow.store`).

Times in SQL are the database's `now()`: the one clock the replicas share for leases and due
times. `memory.MemoryStore` is the same store over dicts, for the handlers' unit tests.
"""

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import psycopg2.extras

from chassis.paging import Keyset, Page
from services.notify.domain import Appointment, Preferences, Recipient

# A person's notifications, a page at a time (chassis.paging).
NOTIFICATIONS = Keyset("created_at", "id", types=(datetime, UUID), descending=True)

# What an account email keeps of its link once settled.
REDACTED_LINK = "[link removed]"
# What another person's notification keeps once the person it speaks of is erased: its kind, its
# channel, its outcome and its times, nothing said.
ERASED_NOTIFICATION = (
    "subject = '', body = '', html = NULL, address = NULL, context = '{}'::jsonb, last_error = NULL"
)
NOTIFICATION_COLUMNS = (
    "id, recipient_id, channel, template, locale, address, subject, body, html, context, status,"
    " reason, event_id, event_type, digest_id, attempts, next_attempt_at, held_for_quiet_hours,"
    " last_error, created_at, sent_at, provider_ref, accepted_at"
)
CLAIMED = [c.strip() for c in NOTIFICATION_COLUMNS.split(",")]
# A recipient as planning reads it: with the messengers it has a destination on, and its address
# confirmed when the registration said so or since (the later `email_verified` wins over r.*'s).
RECIPIENT = (
    "SELECT r.*, ARRAY(SELECT d.channel FROM messenger_destinations d"
    " WHERE d.recipient_id = r.id ORDER BY d.channel) AS messengers,"
    " (r.email_verified OR v.account_id IS NOT NULL) AS email_verified"
    " FROM recipients r LEFT JOIN verified_addresses v ON v.account_id = r.id"
)

# The same, of a row just written (`INSERT ... RETURNING`).
KEPT_RECIPIENT = (
    "id, kind, name, email, phone, locale, role, organization_id, notifications_consent,"
    " ARRAY(SELECT d.channel FROM messenger_destinations d"
    " WHERE d.recipient_id = recipients.id ORDER BY d.channel) AS messengers,"
    " (email_verified OR EXISTS (SELECT 1 FROM verified_addresses v"
    " WHERE v.account_id = recipients.id)) AS email_verified"
)


def recipient_from_row(row: dict | None) -> Recipient | None:
    if row is None:
        return None
    return Recipient(
        id=str(row["id"]),
        kind=row["kind"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        locale=row["locale"],
        role=row["role"],
        organization_id=str(row["organization_id"]) if row["organization_id"] else None,
        notifications_consent=row["notifications_consent"],
        email_verified=row["email_verified"],
        messengers=tuple(row.get("messengers") or ()),
    )


def preferences_from_row(row: dict | None) -> Preferences:
    if row is None or row.get("opt_outs") is None:
        return Preferences()
    return Preferences(
        opt_outs=tuple((o["channel"], o["topic"]) for o in row["opt_outs"]),
        quiet_start=row["quiet_start"],
        quiet_end=row["quiet_end"],
        timezone=row["timezone"],
    )


# What the batch's read-ahead reads of each returnee its events concern, in one statement.
READ_AHEAD = """
    SELECT i.id::text AS wanted, r.id, r.kind, r.name, r.email, r.phone, r.locale, r.role,
        r.organization_id, r.notifications_consent,
        ARRAY(SELECT d.channel FROM messenger_destinations d
              WHERE d.recipient_id = r.id ORDER BY d.channel) AS messengers,
        (r.email_verified OR v.account_id IS NOT NULL) AS email_verified,
        p.recipient_id AS has_preferences, p.opt_outs, p.quiet_start, p.quiet_end, p.timezone,
        s.granted AS shares, e.id IS NOT NULL AS erased,
        (SELECT coalesce(json_agg(json_build_object('id', w.id, 'url', w.url,
                                                    'event_types', w.event_types) ORDER BY w.id),
                         '[]') FROM subscriptions w
         WHERE w.active AND w.event_types && %s::text[]) AS subscribers
    FROM unnest(%s::uuid[]) AS i(id)
    LEFT JOIN recipients r ON r.id = i.id
    LEFT JOIN verified_addresses v ON v.account_id = r.id
    LEFT JOIN preferences p ON p.recipient_id = i.id
    LEFT JOIN partner_shares s ON s.returnee_id = i.id
    LEFT JOIN erased_recipients e ON e.id = i.id
"""
NOTIFICATION_VALUES = """(%(id)s, %(recipient_id)s, %(channel)s, %(template)s, %(locale)s,
    %(address)s, %(subject)s, %(body)s, %(html)s, %(context)s, %(status)s, %(reason)s,
    %(event_id)s, %(event_type)s, %(digest_id)s, COALESCE(%(next_attempt_at)s, now()),
    CASE WHEN %(status)s = 'sent' THEN 1 ELSE 0 END,
    CASE WHEN %(status)s = 'sent' THEN now() END)"""


@dataclass
class ReadAhead:
    """What the units of work of one batch of events (`chassis.uow.BatchScope`) read once for
    all of them, and forget as soon as one of them writes it: the directory entries, the
    preferences, the partner shares and erasures of the returnees the batch concerns, the
    webhook subscribers of each event type, the titles and names messages give; and the
    activities the transaction wrote and the returnees whose locks it holds. A returnee's entry
    read before its lock was taken is read again after."""

    recipients: dict = field(default_factory=dict)  # id -> Recipient | None
    preferences: dict = field(default_factory=dict)  # id -> Preferences
    shares: dict = field(default_factory=dict)  # id -> bool
    erased: dict = field(default_factory=dict)  # id -> bool
    subscribers: dict = field(default_factory=dict)  # event type -> rows
    names: dict = field(default_factory=dict)  # (kind, key) -> a title or name | None
    locked: set = field(default_factory=set)
    digests: set = field(default_factory=set)  # digests' lock keys to take with the returnees'
    digests_locked: set = field(default_factory=set)
    activities: set = field(default_factory=set)  # kept by this transaction: a no-op again
    released: dict = field(default_factory=dict)  # returnee id -> waiting bodies taken out
    # Made to wait by this batch, written in one statement at its end: event id -> (returnee
    # id, body).
    waiting: dict = field(default_factory=dict)
    # Notification rows of this batch, written in one statement at its end or before anything
    # else writes notifications (`add_notifications`).
    notifications: list = field(default_factory=list)

    def take_waiting(self, person: str) -> list[bytes]:
        """The bodies this batch made wait for the person, in the order made, no longer held."""
        taken = [e for e, (r, _) in self.waiting.items() if r == person]
        return [self.waiting.pop(e)[1] for e in taken]

    def forget(self, person_id) -> None:
        person = str(person_id)
        for held in (self.recipients, self.preferences, self.shares, self.erased):
            held.pop(person, None)
        self.names.pop(("organization", person), None)


class HeldConflict(Exception):
    """A notification row a batch held had been written before (`add_notifications`)."""


def lock_key(returnee_id) -> str:
    return str(returnee_id)


def digest_key(recipient_id, channel: str, template: str) -> str:
    return f"digest:{recipient_id}:{channel}:{template}"


# The seeds of `hashtextextended` that keep the returnees' and the digests' locks apart.
RETURNEE_LOCK, DIGEST_LOCK = 7, 0


class NotifyStore:
    """Also the `domain.Directory` that planning looks recipients and titles up in. In a batch
    of events its reads go through the batch's `ReadAhead`; alone, each is a statement."""

    def __init__(self, uow):
        self.uow = uow
        batch = getattr(uow, "batch", None)
        self.ahead = None if batch is None else batch.shared.setdefault("notify", ReadAhead())
        self._share_kept = None  # (returnee id, granted, as of) written by `keep_returnee`

    # --- the batch's read-ahead and locks -----------------------------------------------------

    def read_ahead(self, returnee_ids) -> None:
        """Read once what the batch's events will look up of these returnees, and with them the
        webhook subscribers of the batch's event types (outside a batch: nothing to keep it in,
        nothing read)."""
        wanted = [str(r) for r in dict.fromkeys(returnee_ids) if r]
        ahead = self.ahead
        if ahead is None:
            return
        wanted = [r for r in wanted if r not in ahead.recipients]
        types = sorted({e.type for e in self.uow.batch.events} - ahead.subscribers.keys())
        if not wanted:
            return
        rows = self.uow.all(READ_AHEAD, (types, wanted))
        for event_type in types:
            ahead.subscribers[event_type] = [
                {"id": s["id"], "url": s["url"]}
                for s in rows[0]["subscribers"]
                if event_type in s["event_types"]
            ]
        for row in rows:
            person = row["wanted"]
            ahead.recipients[person] = recipient_from_row(row) if row["id"] else None
            ahead.preferences[person] = preferences_from_row(
                row if row["has_preferences"] else None
            )
            ahead.shares[person] = bool(row["shares"])
            ahead.erased[person] = row["erased"]

    def lock_returnees(self, returnee_ids) -> None:
        """`lock_returnee` for several, in one statement, in one order every batch takes them
        in (so two batches never wait on each other in a cycle); those held already skipped.
        The digests' locks the batch asked for (`lock_digests_with_returnees`) in the same."""
        keys = sorted({lock_key(r) for r in returnee_ids if r})
        digests = []
        if self.ahead is not None:
            keys = [k for k in keys if k not in self.ahead.locked]
            digests = sorted(self.ahead.digests - self.ahead.digests_locked)
        if not keys and not digests:
            return
        locks = sorted([(k, RETURNEE_LOCK) for k in keys] + [(d, DIGEST_LOCK) for d in digests])
        # Sent with the unit's next statement (`uow.write`), which PostgreSQL runs once the
        # locks are taken: what they guard is read and written by later statements.
        self.uow.write(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, s))) FROM"
            " (SELECT k, s FROM unnest(%s::text[], %s::int[]) WITH ORDINALITY AS t(k, s, n)"
            " ORDER BY n) AS keys",
            ([k for k, _ in locks], [s for _, s in locks]),
        )
        if self.ahead is not None:
            self.ahead.locked.update(keys)
            self.ahead.digests_locked.update(digests)
            for key in keys:  # read before the lock: read again
                self.ahead.recipients.pop(key, None)

    def lock_digests_with_returnees(self, digests) -> None:
        """In a batch: the locks of the digests `(recipient, channel, template)` its events may
        open, taken with the returnees' (`lock_returnees`), so `open_digest` needs no statement
        of its own for them."""
        if self.ahead is not None:
            self.ahead.digests.update(digest_key(*d) for d in digests)

    # --- the recipient directory --------------------------------------------------------------

    def is_erased(self, person_id) -> bool:
        person = str(person_id)
        if self.ahead is not None and person in self.ahead.erased:
            return self.ahead.erased[person]
        found = self.uow.one("SELECT 1 FROM erased_recipients WHERE id = %s", (person,))
        return found is not None

    def keep_returnee(self, data: dict, at: datetime) -> None:
        """The returnee's contact data and notification consent as of `at` (an event's time),
        and in the same statement the partner share it states (`keep_share`, which then has
        nothing left to write); nothing for someone erased (the tombstone looked for by the
        statement itself). The entry as written is kept for the batch's lookups."""
        returnee_id = str(data["returnee_id"])
        share = bool(data["consents"]["share_with_partners"])
        kept = self.uow.execute(
            f"""
            WITH shared AS (
                INSERT INTO partner_shares (returnee_id, granted, changed_at)
                SELECT %(id)s::uuid, %(share)s::boolean, %(at)s::timestamptz
                WHERE NOT EXISTS (SELECT 1 FROM erased_recipients WHERE id = %(id)s::uuid)
                ON CONFLICT (returnee_id) DO UPDATE SET granted = EXCLUDED.granted,
                    changed_at = EXCLUDED.changed_at
                WHERE partner_shares.changed_at <= EXCLUDED.changed_at
            )
            INSERT INTO recipients (id, kind, name, email, phone, locale, notifications_consent,
                                    consent_at, updated_at, email_verified)
            SELECT %(id)s::uuid, 'returnee', %(name)s::text, %(email)s::text, %(phone)s::text,
                %(locale)s::text, %(consent)s::boolean, %(at)s::timestamptz, %(at)s::timestamptz,
                %(verified)s::boolean
            WHERE NOT EXISTS (SELECT 1 FROM erased_recipients WHERE id = %(id)s::uuid)
            ON CONFLICT (id) DO UPDATE SET
                name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone,
                locale = EXCLUDED.locale, updated_at = EXCLUDED.updated_at,
                notifications_consent = CASE WHEN recipients.consent_at <= EXCLUDED.consent_at
                    THEN EXCLUDED.notifications_consent ELSE recipients.notifications_consent END,
                consent_at = GREATEST(recipients.consent_at, EXCLUDED.consent_at)
            WHERE recipients.updated_at <= EXCLUDED.updated_at
            RETURNING {KEPT_RECIPIENT}
            """,
            {
                "id": returnee_id,
                "share": share,
                "name": data["name"],
                "email": data["email"],
                "phone": data.get("phone"),
                "locale": data["locale"],
                "consent": data["consents"]["notifications"],
                "at": at,
                # Said at registration only (absent: a producer from before confirmation).
                "verified": data.get("email_verified", True),
            },
        ).fetchone()
        self._changed(returnee_id)
        self._share_kept = (returnee_id, share, at)
        if self.ahead is not None:
            self.ahead.shares.pop(returnee_id, None)
            if kept is not None:  # as written: no need to read it again
                self.ahead.recipients[returnee_id] = recipient_from_row(kept)

    def keep_share(self, returnee_id, granted: bool, at: datetime) -> None:
        """share_with_partners as of `at`; an older statement arriving late changes nothing."""
        if (str(returnee_id), granted, at) == self._share_kept:
            return  # written with the returnee's entry, by this unit of work
        if self.is_erased(returnee_id):
            return
        self.uow.execute(
            "INSERT INTO partner_shares (returnee_id, granted, changed_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (returnee_id) DO UPDATE SET granted = EXCLUDED.granted,"
            " changed_at = EXCLUDED.changed_at"
            " WHERE partner_shares.changed_at <= EXCLUDED.changed_at",
            (str(returnee_id), granted, at),
        )
        if self.ahead is not None:
            self.ahead.shares.pop(str(returnee_id), None)

    def shares(self, returnee_id) -> bool:
        """Whether the returnee shares with partners (unknown: no)."""
        person = str(returnee_id)
        if self.ahead is not None and person in self.ahead.shares:
            return self.ahead.shares[person]
        row = self.uow.one("SELECT granted FROM partner_shares WHERE returnee_id = %s", (person,))
        return bool(row and row["granted"])

    def keep_consent(self, returnee_id, granted: bool, at: datetime) -> None:
        self.uow.execute(
            "UPDATE recipients SET notifications_consent = %s, consent_at = %s"
            " WHERE id = %s AND consent_at <= %s",
            (granted, at, str(returnee_id), at),
        )
        self._changed(returnee_id)

    def keep_staff(self, data: dict) -> None:
        self.uow.execute(
            """
            INSERT INTO recipients (id, kind, name, email, locale, role, organization_id,
                                    updated_at, email_verified)
            VALUES (%s, 'staff', %s, %s, %s, %s, %s, now(), %s)
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
                locale = EXCLUDED.locale, role = EXCLUDED.role,
                organization_id = EXCLUDED.organization_id, updated_at = now(),
                email_verified = recipients.email_verified OR EXCLUDED.email_verified
            """,
            (
                str(data["staff_id"]),
                data["name"],
                data["email"],
                data.get("locale") or "zh-CN",
                data["role"],
                str(data["organization_id"]) if data.get("organization_id") else None,
                data.get("email_verified", True),
            ),
        )
        self._changed(data["staff_id"])

    def keep_organization(self, data: dict) -> None:
        self.uow.execute(
            """
            INSERT INTO recipients (id, kind, name, email, locale, updated_at)
            VALUES (%s, 'organization', %s, %s, 'zh-CN', now())
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
                updated_at = now()
            """,
            (str(data["organization_id"]), data["name"], data.get("contact_email")),
        )
        self._changed(data["organization_id"])
        if self.ahead is not None:
            self.ahead.names.pop(("organization", str(data["organization_id"])), None)

    def keep_verified(self, account_id, at: datetime) -> None:
        """The account's address is confirmed (kept apart from the directory entry, which may
        not be there yet)."""
        if self.is_erased(account_id):
            return
        self.uow.execute(
            "INSERT INTO verified_addresses (account_id, verified_at) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (str(account_id), at),
        )
        self._changed(account_id)

    def _changed(self, person_id) -> None:
        """The person's directory entry was written: read it again when next looked up."""
        if self.ahead is not None:
            self.ahead.recipients.pop(str(person_id), None)

    def erase_person(self, person_id) -> int:
        """Delete everything held about the person, and what other people's notifications
        (a provider told of their intention, a webhook delivery of an event about them) say of
        them; returns how many of the person's own notifications went."""
        self._write_notifications()  # the batch's, changed too
        person = str(person_id)
        if self.ahead is not None:
            self.ahead.forget(person)
            self.ahead.erased[person] = True
            if person in self.ahead.released:
                self.ahead.released[person] = []  # its waiting events go with it
            self.ahead.take_waiting(person)
        held = self.uow.one("SELECT name, email, phone FROM recipients WHERE id = %s", (person,))
        contacts = [v for v in (held or {}).values() if v and len(v) >= 5]
        self.uow.execute(
            f"""
            UPDATE notifications SET {ERASED_NOTIFICATION},
                status = CASE WHEN status IN ('queued', 'accepted') THEN 'suppressed'
                              ELSE status END,
                reason = CASE WHEN status IN ('queued', 'accepted') THEN 'erased'
                              ELSE reason END
            WHERE recipient_id <> %(person)s AND (
                context->>'returnee_id' = %(person)s
                OR strpos(context::text, %(person)s) > 0 OR strpos(body, %(person)s) > 0
                OR (template = 'intention_update' AND context->>'returnee_name' = %(name)s)
                OR EXISTS (SELECT 1 FROM unnest(%(contacts)s::text[]) c
                           WHERE strpos(body, c) > 0 OR strpos(coalesce(html, ''), c) > 0))
            """,
            {"person": person, "name": (held or {}).get("name"), "contacts": contacts},
        )
        self.uow.execute(
            "INSERT INTO erased_recipients (id) VALUES (%s) ON CONFLICT DO NOTHING", (person,)
        )
        self.uow.execute("DELETE FROM recipients WHERE id = %s", (person,))
        self.uow.execute("DELETE FROM partner_shares WHERE returnee_id = %s", (person,))
        self.uow.execute("DELETE FROM verified_addresses WHERE account_id = %s", (person,))
        self.uow.execute("DELETE FROM waiting_events WHERE returnee_id = %s", (person,))
        self.uow.execute("DELETE FROM preferences WHERE recipient_id = %s", (person,))
        self.uow.execute("DELETE FROM appointments WHERE returnee_id = %s", (person,))
        self.uow.execute("DELETE FROM activity_registrations WHERE person_id = %s", (person,))
        self.uow.execute("DELETE FROM messenger_destinations WHERE recipient_id = %s", (person,))
        deleted = self.uow.execute("DELETE FROM notifications WHERE recipient_id = %s", (person,))
        return deleted.rowcount

    def purge_notifications(self, older_than_days: float, limit: int) -> int:
        """Settled notifications older than the retention period go (at most `limit` at a
        time, with the digest members they carried); returns how many."""
        return self.uow.execute(
            """
            DELETE FROM notifications WHERE id IN (
                SELECT id FROM notifications
                WHERE status IN ('sent', 'failed', 'suppressed')
                    AND created_at < now() - make_interval(secs => %s)
                LIMIT %s)
            """,
            (older_than_days * 86400, limit),
        ).rowcount

    def keep_resource(self, data: dict) -> None:
        self.uow.execute(
            "INSERT INTO resources (id, organization_id, title) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title,"
            " organization_id = EXCLUDED.organization_id",
            (str(data["resource_id"]), str(data["organization_id"]), data["title"]),
        )
        if self.ahead is not None:
            self.ahead.names.pop(("resource", str(data["resource_id"])), None)

    def keep_policy(self, data: dict) -> None:
        self.uow.execute(
            "INSERT INTO policies (id, code, title_zh, title_en) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET code = EXCLUDED.code, title_zh = EXCLUDED.title_zh,"
            " title_en = EXCLUDED.title_en",
            (str(data["policy_id"]), data["code"], data["title"]["zh-CN"], data["title"]["en"]),
        )
        if self.ahead is not None:  # a code may have moved from another policy's row
            self.ahead.names = {k: v for k, v in self.ahead.names.items() if k[0] != "policy"}

    def recipient(self, recipient_id) -> Recipient | None:
        if not recipient_id:
            return None
        person = str(recipient_id)
        if self.ahead is not None and person in self.ahead.recipients:
            return self.ahead.recipients[person]
        found = recipient_from_row(self.uow.one(f"{RECIPIENT} WHERE r.id = %s", (person,)))
        if self.ahead is not None:
            self.ahead.recipients[person] = found
        return found

    def staff_of(self, organization_id, role: str) -> list[Recipient]:
        if organization_id is None:
            rows = self.uow.all(
                f"{RECIPIENT} WHERE r.kind = 'staff' AND r.role = %s ORDER BY r.name", (role,)
            )
        else:
            rows = self.uow.all(
                f"{RECIPIENT} WHERE r.kind = 'staff' AND r.role = %s"
                " AND r.organization_id = %s ORDER BY r.name",
                (role, str(organization_id)),
            )
        return [recipient_from_row(row) for row in rows]

    def resource_titles(self, resource_ids) -> dict[str, str]:
        return self._names("resource", resource_ids, lambda ids: {
            str(r["id"]): r["title"]
            for r in self.uow.all(
                "SELECT id, title FROM resources WHERE id = ANY(%s::uuid[])", (ids,)
            )
        })  # fmt: skip

    def organization_names(self, organization_ids) -> dict[str, str]:
        return self._names("organization", organization_ids, lambda ids: {
            str(r["id"]): r["name"]
            for r in self.uow.all(
                "SELECT id, name FROM recipients WHERE id = ANY(%s::uuid[])"
                " AND kind = 'organization'",
                (ids,),
            )
        })  # fmt: skip

    def policy_titles(self, codes) -> dict[str, dict[str, str]]:
        return self._names("policy", codes, lambda codes: {
            r["code"]: {"zh-CN": r["title_zh"], "en": r["title_en"]}
            for r in self.uow.all(
                "SELECT code, title_zh, title_en FROM policies WHERE code = ANY(%s)", (codes,)
            )
        })  # fmt: skip

    def _names(self, kind: str, keys, fetch) -> dict:
        """What `fetch(keys)` finds of `keys` (those it does not find left out); in a batch,
        each key read once until an event of the batch writes it."""
        keys = [str(k) for k in keys]
        if self.ahead is None:
            return fetch(keys)
        held = self.ahead.names
        missing = list(dict.fromkeys(k for k in keys if (kind, k) not in held))
        if missing:
            found = fetch(missing)
            held.update({(kind, k): found.get(k) for k in missing})
        return {k: copy.deepcopy(held[kind, k]) for k in keys if held[kind, k] is not None}

    # --- events waiting for their returnee ----------------------------------------------------

    def lock_returnee(self, returnee_id) -> None:
        """Serialise, until commit, the transactions that take in the returnee and those that
        make an event wait for them: an event is either seen waiting, or sees the returnee."""
        self.lock_returnees([returnee_id])

    def make_wait(self, event_id, returnee_id, body: bytes) -> None:
        """The event waits for the returnee; in a batch, written with the others its events
        made wait at its end (`write_held`), under the returnee's lock all the same."""
        if self.ahead is not None:
            self.ahead.waiting[str(event_id)] = (str(returnee_id), bytes(body))
            return
        self._write_waiting([(str(event_id), str(returnee_id), body)])

    def _write_waiting(self, rows: list[tuple]) -> None:
        """Sent with the unit's next statement or its `COMMIT` (`uow.write_values`): nothing
        is read back here."""
        self.uow.write_values(
            "INSERT INTO waiting_events (event_id, returnee_id, body) VALUES %s"
            " ON CONFLICT (event_id) DO UPDATE SET returnee_id = EXCLUDED.returnee_id",
            rows,
        )

    def write_held(self) -> None:
        """At the end of a batch, before its commit: what its events held to write together,
        the notifications in one statement and the events they made wait in another."""
        if self.ahead is None:
            return
        self._write_notifications()
        if self.ahead.waiting:
            rows = [(e, r, body) for e, (r, body) in self.ahead.waiting.items()]
            self.ahead.waiting.clear()
            self._write_waiting(rows)

    def release_waiting(self, returnee_id) -> list[bytes]:
        """The events waiting for the returnee, oldest first, no longer waiting."""
        person = str(returnee_id)
        ahead = self.ahead
        if ahead is not None and person in ahead.released:
            held, ahead.released[person] = ahead.released[person], []
            return held + ahead.take_waiting(person)
        rows = self.uow.all(
            "DELETE FROM waiting_events WHERE returnee_id = %s RETURNING body, received_at",
            (person,),
        )
        held = [] if ahead is None else ahead.take_waiting(person)
        return [bytes(r["body"]) for r in sorted(rows, key=lambda r: r["received_at"])] + held

    def release_waiting_for(self, returnee_ids) -> None:
        """In a batch, once their locks are held: the events waiting for these returnees (those
        the batch takes in) taken out in one statement, for `release_waiting` to hand over."""
        wanted = sorted({str(r) for r in returnee_ids if r})
        if self.ahead is None or not wanted:
            return
        rows = self.uow.all(
            "DELETE FROM waiting_events WHERE returnee_id = ANY(%s::uuid[])"
            " RETURNING returnee_id::text AS returnee_id, body, received_at",
            (wanted,),
        )
        released = {person: [] for person in wanted}
        for r in sorted(rows, key=lambda r: r["received_at"]):
            released[r["returnee_id"]].append(bytes(r["body"]))
        for person, bodies in released.items():
            self.ahead.released[person] = self.ahead.released.get(person, []) + bodies

    def waiting(self) -> dict:
        """How many events wait for a returnee, and for how long the oldest has (seconds)."""
        return self.uow.one(
            "SELECT count(*) AS count,"
            " coalesce(extract(epoch FROM now() - min(received_at)), 0)::float AS oldest_seconds"
            " FROM waiting_events"
        )

    # --- topics ---------------------------------------------------------------------------------

    def topics(self, locale: str) -> list[dict]:
        suffix = "zh" if locale == "zh-CN" else "en"
        return self.uow.all(
            f"SELECT name, label_{suffix} AS label, description_{suffix} AS description,"
            " channels FROM topics ORDER BY position"
        )

    def keep_topics(self, topics: list[tuple]) -> int:
        """Upsert `(name, label_zh, label_en, description_zh, description_en, channels)` in
        order; returns how many there are."""
        for position, (name, label_zh, label_en, text_zh, text_en, channels) in enumerate(topics):
            self.uow.execute(
                """
                INSERT INTO topics (name, position, label_zh, label_en, description_zh,
                                    description_en, channels)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,
                    label_zh = EXCLUDED.label_zh, label_en = EXCLUDED.label_en,
                    description_zh = EXCLUDED.description_zh,
                    description_en = EXCLUDED.description_en, channels = EXCLUDED.channels
                """,
                (name, position, label_zh, label_en, text_zh, text_en, list(channels)),
            )
        return len(topics)

    # --- appointments and their reminders -------------------------------------------------------

    def keep_appointment(self, data: dict, remind_at: datetime | None) -> None:
        """A booked appointment; a redelivery, or a booking arriving after its cancellation,
        changes nothing."""
        if self.is_erased(data["returnee_id"]):
            return
        self.uow.execute(
            "INSERT INTO appointments (id, returnee_id, starts_at, ends_at, location, remind_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (str(data["appointment_id"]), str(data["returnee_id"]), data["starts_at"],
             data["ends_at"], data["location"], remind_at),
        )  # fmt: skip

    def cancel_appointment(self, data: dict, at: datetime, reminder_event_id: str) -> None:
        """No reminder for it any more: none will be queued, and one already queued (held by
        quiet hours, say) is suppressed. The row stays as a marker until the appointment is
        past."""
        self._write_notifications()  # the batch's, changed too
        if self.is_erased(data["returnee_id"]):
            return
        self.uow.execute(
            """
            INSERT INTO appointments (id, returnee_id, starts_at, ends_at, location, cancelled_at)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (id) DO UPDATE SET remind_at = NULL,
                cancelled_at = COALESCE(appointments.cancelled_at, EXCLUDED.cancelled_at)
            """,
            (str(data["appointment_id"]), str(data["returnee_id"]), data["starts_at"],
             data["ends_at"], data["location"], at),
        )  # fmt: skip
        self.uow.execute(
            "UPDATE notifications SET status = 'suppressed', reason = 'appointment cancelled'"
            " WHERE event_id = %s AND status = 'queued'",
            (reminder_event_id,),
        )

    def due_reminders(self, limit: int) -> list[Appointment]:
        """Appointments whose reminder is due and not yet queued, locked against other replicas
        until this transaction marks them reminded."""
        rows = self.uow.all(
            """
            SELECT id, returnee_id, starts_at, ends_at, location FROM appointments
            WHERE reminded_at IS NULL AND remind_at IS NOT NULL AND remind_at <= now()
            ORDER BY remind_at
            LIMIT %s
            FOR UPDATE SKIP LOCKED
            """,
            (limit,),
        )
        return [
            Appointment(str(r["id"]), str(r["returnee_id"]), r["starts_at"], r["ends_at"],
                        r["location"])
            for r in rows
        ]  # fmt: skip

    def mark_reminded(self, appointment_id, outcome: str) -> None:
        self.uow.execute(
            "UPDATE appointments SET reminded_at = now(), reminder = %s WHERE id = %s",
            (outcome, str(appointment_id)),
        )

    def forget_past_appointments(self, hours: float) -> int:
        """Appointments that ended more than `hours` ago are of no more use to anyone."""
        return self.uow.execute(
            "DELETE FROM appointments WHERE ends_at < now() - make_interval(secs => %s)",
            (hours * 3600,),
        ).rowcount

    # --- activities, their registrations and reminders -----------------------------------------

    def keep_activity(self, data: dict, remind_at: datetime | None) -> None:
        """An activity as published (its summary in registration events says the same): a
        redelivery, or a summary arriving after the publication, changes nothing (so in a
        batch, the invitations of one activity write it once)."""
        if self.ahead is not None:
            if str(data["activity_id"]) in self.ahead.activities:
                return
            self.ahead.activities.add(str(data["activity_id"]))
        self.uow.execute(
            "INSERT INTO activities (id, title, starts_at, ends_at, venue, remind_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (str(data["activity_id"]), json.dumps(data["title"], ensure_ascii=False),
             data["starts_at"], data["ends_at"], json.dumps(data["venue"], ensure_ascii=False),
             remind_at),
        )  # fmt: skip

    def cancel_activity(self, activity_id, at: datetime) -> None:
        self.uow.execute(
            "UPDATE activities SET cancelled_at = COALESCE(cancelled_at, %s) WHERE id = %s",
            (at, str(activity_id)),
        )

    def activity(self, activity_id) -> dict | None:
        return self.uow.one(
            "SELECT id::text AS id, title, starts_at, ends_at, venue, remind_at, cancelled_at"
            " FROM activities WHERE id = %s",
            (str(activity_id),),
        )

    def keep_registration(self, registration_id, activity_id, person_id, status: str,
                          at: datetime) -> None:  # fmt: skip
        """A registration's status as events tell it; they may arrive out of order, so it only
        moves forward: waitlisted, confirmed, cancelled."""
        if self.is_erased(person_id):
            return
        self.uow.execute(
            """
            INSERT INTO activity_registrations (id, activity_id, person_id, status, confirmed_at)
            VALUES (%(id)s, %(activity)s, %(person)s, %(status)s,
                    CASE WHEN %(status)s = 'confirmed' THEN %(at)s::timestamptz END)
            ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                confirmed_at = COALESCE(activity_registrations.confirmed_at, EXCLUDED.confirmed_at)
            WHERE array_position(ARRAY['waitlisted', 'confirmed', 'cancelled'],
                                 activity_registrations.status)
                < array_position(ARRAY['waitlisted', 'confirmed', 'cancelled'], EXCLUDED.status)
            """,
            {"id": str(registration_id), "activity": str(activity_id), "person": str(person_id),
             "status": status, "at": at},
        )  # fmt: skip

    def activity_registrants(self, activity_id) -> list[str]:
        """Who holds a seat or waits for one."""
        rows = self.uow.all(
            "SELECT person_id::text AS person FROM activity_registrations"
            " WHERE activity_id = %s AND status IN ('confirmed', 'waitlisted') ORDER BY id",
            (str(activity_id),),
        )
        return [r["person"] for r in rows]

    def confirmed_before(self, activity_id, at: datetime) -> list[dict]:
        """The seats confirmed before `at` (those confirmed later were told just now)."""
        return self.uow.all(
            "SELECT id::text AS id, person_id::text AS person_id FROM activity_registrations"
            " WHERE activity_id = %s AND status = 'confirmed' AND confirmed_at < %s ORDER BY id",
            (str(activity_id), at),
        )

    def due_activity_reminders(self, limit: int) -> list[dict]:
        """Activities whose reminders are due and not yet queued, locked against other replicas
        until this transaction marks them reminded."""
        return self.uow.all(
            """
            SELECT id::text AS id, title, starts_at, ends_at, venue, remind_at, cancelled_at
            FROM activities
            WHERE reminded_at IS NULL AND remind_at IS NOT NULL AND remind_at <= now()
              AND cancelled_at IS NULL
            ORDER BY remind_at
            LIMIT %s
            FOR UPDATE SKIP LOCKED
            """,
            (limit,),
        )

    def mark_activity_reminded(self, activity_id, outcome: str) -> None:
        self.uow.execute(
            "UPDATE activities SET reminded_at = now(), reminder = %s WHERE id = %s",
            (outcome, str(activity_id)),
        )

    def suppress_queued(self, event_ids: list[str], reason: str) -> None:
        """Queued notifications of these events (or triggers) are not sent after all."""
        self._write_notifications()  # the batch's, changed too
        self.uow.execute(
            "UPDATE notifications SET status = 'suppressed', reason = %s"
            " WHERE event_id = ANY(%s::uuid[]) AND status = 'queued'",
            (reason, list(event_ids)),
        )

    def forget_past_activities(self, hours: float) -> int:
        """Activities that ended more than `hours` ago, and their registrations."""
        self.uow.execute(
            "DELETE FROM activity_registrations WHERE activity_id IN (SELECT id FROM activities"
            " WHERE ends_at < now() - make_interval(secs => %s))",
            (hours * 3600,),
        )
        return self.uow.execute(
            "DELETE FROM activities WHERE ends_at < now() - make_interval(secs => %s)",
            (hours * 3600,),
        ).rowcount

    # --- preferences ----------------------------------------------------------------------------

    def preferences(self, recipient_id) -> Preferences:
        person = str(recipient_id)
        if self.ahead is not None and person in self.ahead.preferences:
            return self.ahead.preferences[person]
        found = preferences_from_row(
            self.uow.one("SELECT * FROM preferences WHERE recipient_id = %s", (person,))
        )
        if self.ahead is not None:
            self.ahead.preferences[person] = found
        return found

    def save_preferences(self, recipient_id, prefs: Preferences) -> None:
        opt_outs = json.dumps([{"channel": c, "topic": t} for c, t in prefs.opt_outs])
        self.uow.execute(
            """
            INSERT INTO preferences (recipient_id, opt_outs, quiet_start, quiet_end, timezone)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (recipient_id) DO UPDATE SET opt_outs = EXCLUDED.opt_outs,
                quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end,
                timezone = EXCLUDED.timezone, updated_at = now()
            """,
            (str(recipient_id), opt_outs, prefs.quiet_start, prefs.quiet_end, prefs.timezone),
        )
        if self.ahead is not None:
            self.ahead.preferences.pop(str(recipient_id), None)
        # Held messages are looked at again: the delivery loop re-checks the new quiet hours.
        self.uow.execute(
            "UPDATE notifications SET next_attempt_at = now(), held_for_quiet_hours = false"
            " WHERE recipient_id = %s AND status = 'queued' AND held_for_quiet_hours",
            (str(recipient_id),),
        )

    # --- notifications --------------------------------------------------------------------------

    def add_notification(self, row: dict) -> str | None:
        """Insert unless this (event, recipient, channel) has one already; the new id or None.
        A row inserted as `sent` (an in-app notification: stored is delivered) is sent now."""
        return self.add_notifications([row])[0]

    def add_notifications(self, rows: list[dict]) -> list[str | None]:
        """`add_notification` for several rows in one statement (an intent's channels); the new
        ids in the order of `rows`, None for each that had one already.

        In a batch the rows are held and written with the batch's others in one statement, at
        its end (`write_held`) or before a statement that changes notifications; their ids are
        returned as added. Should one of them have had a row already (the inbox let a
        redelivery through, say) that statement fails the batch (`HeldConflict`), which is
        applied again one event at a time (`chassis.db.WorkerDatabase.apply_batch`), each
        finding out alone."""
        if not rows:
            return []
        rows = [
            {
                "digest_id": None,
                "html": None,
                "reason": None,
                "address": None,
                "next_attempt_at": None,
                **row,
                "context": json.dumps(row.get("context") or {}),
            }
            for row in rows
        ]
        if self.ahead is not None:
            self.ahead.notifications.extend(rows)
            return [str(row["id"]) for row in rows]
        return self._insert_notifications(rows)

    def _insert_notifications(self, rows: list[dict]) -> list[str | None]:
        found = psycopg2.extras.execute_values(
            self.uow.cursor,
            """
            INSERT INTO notifications (id, recipient_id, channel, template, locale, address,
                subject, body, html, context, status, reason, event_id, event_type, digest_id,
                next_attempt_at, attempts, sent_at)
            VALUES %s
            ON CONFLICT ON CONSTRAINT one_per_event_recipient_channel DO NOTHING
            RETURNING id
            """,
            rows,
            template=NOTIFICATION_VALUES,
            page_size=len(rows),
            fetch=True,
        )
        added = {str(r["id"]) for r in found}
        return [str(row["id"]) if str(row["id"]) in added else None for row in rows]

    def _write_notifications(self) -> None:
        """The batch's held notification rows, written (before a statement that reads or
        changes notifications, and at the batch's end)."""
        if self.ahead is None or not self.ahead.notifications:
            return
        held, self.ahead.notifications = self.ahead.notifications, []
        if None in self._insert_notifications(held):
            raise HeldConflict("a notification of the batch had been written before")

    def open_digest(self, recipient_id, channel: str, template: str) -> dict | None:
        """A queued message of the template still waiting for its digest window, locked.

        Two events for the same person handled at once would each miss the other's uncommitted
        lead and start two digests: a transaction lock per (recipient, channel, template) makes
        the second wait for the first to commit."""
        key = digest_key(recipient_id, channel, template)
        if self.ahead is None or key not in self.ahead.digests_locked:
            # With the lead's read below, which PostgreSQL runs once the lock is taken.
            self.uow.write("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
            if self.ahead is not None:
                self.ahead.digests_locked.add(key)
        found = self.uow.one(
            f"""
            SELECT {NOTIFICATION_COLUMNS} FROM notifications
            WHERE recipient_id = %s AND channel = %s AND template = %s AND status = 'queued'
              AND digest_id IS NULL AND attempts = 0 AND next_attempt_at > now()
            ORDER BY created_at LIMIT 1
            FOR UPDATE
            """,
            (str(recipient_id), channel, template),
        )
        if found is not None or self.ahead is None:
            return found
        # Not written yet: a lead an earlier event of the batch holds (one of its own, younger
        # than any written before).
        for row in self.ahead.notifications:
            if (
                row["recipient_id"] == str(recipient_id)
                and (row["channel"], row["template"]) == (channel, template)
                and row["status"] == "queued"
                and row["digest_id"] is None
                and row["next_attempt_at"] is not None
                and row["next_attempt_at"] > self.uow.now()
            ):
                return {**row, "context": json.loads(row["context"])}
        return None

    def rewrite(self, notification_id, subject: str, body: str, html: str | None,
                context: dict) -> None:  # fmt: skip
        for row in self.ahead.notifications if self.ahead is not None else ():
            if row["id"] == str(notification_id):  # a lead the batch holds
                row.update(subject=subject, body=body, html=html, context=json.dumps(context))
                return
        self.uow.execute(
            "UPDATE notifications SET subject = %s, body = %s, html = %s, context = %s"
            " WHERE id = %s",
            (subject, body, html, json.dumps(context), str(notification_id)),
        )

    def notifications_of(self, recipient_id, channel: str | None, limit: int,
                         cursor=None) -> Page:  # fmt: skip
        """A person's notifications (not webhooks), newest first, a page after `cursor`."""
        sql = (
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE recipient_id = %s"
            " AND channel <> 'webhook'"
        )
        params: list = [str(recipient_id)]
        if channel:
            sql += " AND channel = %s"
            params.append(channel)
        after, values = NOTIFICATIONS.clause(cursor)
        sql += f" AND {after} ORDER BY {NOTIFICATIONS.order_by()} LIMIT %s"
        params.extend([*values, limit + 1])
        return NOTIFICATIONS.page(self.uow.all(sql, params), limit)

    def claim_due(self, limit: int, lease_seconds: float) -> tuple[list[dict], dict]:
        """Queued messages whose time has come, locked against other replicas until commit and
        leased (`lease`) in the same statement, oldest due first; with the preferences of their
        recipients who have any. What the caller does not send now it holds or defers in the
        same transaction, which moves the lease."""
        rows = self.uow.all(
            f"""
            WITH due AS (
                SELECT id AS due_id, next_attempt_at AS due_at FROM notifications
                WHERE status = 'queued' AND digest_id IS NULL AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT %s
                FOR UPDATE SKIP LOCKED
            ), leased AS (
                UPDATE notifications SET next_attempt_at = now() + make_interval(secs => %s)
                FROM due WHERE notifications.id = due.due_id
                RETURNING {NOTIFICATION_COLUMNS}, due.due_at
            )
            SELECT leased.*, p.recipient_id AS has_preferences, p.opt_outs, p.quiet_start,
                p.quiet_end, p.timezone
            FROM leased LEFT JOIN preferences p ON p.recipient_id = leased.recipient_id
            ORDER BY leased.due_at
            """,
            (limit, lease_seconds),
        )
        prefs = {
            str(r["recipient_id"]): preferences_from_row(r) for r in rows if r["has_preferences"]
        }
        return [{k: r[k] for k in CLAIMED} for r in rows], prefs

    def lease(self, ids, seconds: float) -> None:
        """Claimed messages are not due again for `seconds`: long enough to send them; if this
        replica dies meanwhile, another one picks them up after the lease."""
        self.uow.execute(
            "UPDATE notifications SET next_attempt_at = now() + make_interval(secs => %s)"
            " WHERE id = ANY(%s::uuid[])",
            (seconds, [str(i) for i in ids]),
        )

    def release(self, ids) -> None:
        """Claimed but not attempted: due again now, for whichever replica comes first; their
        claimed sends no longer count against a quota."""
        ids = [str(i) for i in ids]
        self.uow.write(
            "DELETE FROM channel_sends WHERE pending AND notification_id = ANY(%s::uuid[])",
            (ids,),
        )
        self.uow.execute(
            "UPDATE notifications SET next_attempt_at = now() WHERE id = ANY(%s::uuid[])", (ids,)
        )

    def hold(self, notification_id, until: datetime) -> None:
        self.uow.execute(
            "UPDATE notifications SET next_attempt_at = %s, held_for_quiet_hours = true"
            " WHERE id = %s",
            (until, str(notification_id)),
        )

    def digest_members(self, lead_id) -> list[dict]:
        return self.uow.all(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE digest_id = %s",
            (str(lead_id),),
        )

    def _redact_links(self, notification_id) -> None:
        """A settled account email keeps no usable link: the link is a credential until used
        or expired, and the email has gone (or will never go)."""
        self.uow.execute(
            """
            UPDATE notifications SET
                body = replace(body, context->>'link', %(gone)s),
                html = replace(replace(html, context->>'link', %(gone)s),
                               replace(context->>'link', '&', '&amp;'), %(gone)s),
                context = context - 'link'
            WHERE (id = %(id)s OR digest_id = %(id)s) AND context ? 'link'
                AND status NOT IN ('queued', 'accepted')
            """,
            {"id": str(notification_id), "gone": REDACTED_LINK},
        )

    def mark_sent(self, notification_id) -> list[dict]:
        """Mark the queued (or accepted, on its receipt) notification and the digest members it
        carried sent; returns them. An accepted one's attempt was counted when it was."""
        return self.mark_all_sent([notification_id])

    def mark_all_sent(self, notification_ids) -> list[dict]:
        """`mark_sent` for several in one statement, which also takes a settled account email's
        link out (`_redact_links`: only these rows can hold one now)."""
        return self.uow.all(
            f"""
            UPDATE notifications SET status = 'sent', sent_at = now(),
                attempts = attempts + CASE WHEN status = 'queued' THEN 1 ELSE 0 END,
                last_error = NULL, held_for_quiet_hours = false,
                body = CASE WHEN context ? 'link'
                    THEN replace(body, context->>'link', %(gone)s) ELSE body END,
                html = CASE WHEN context ? 'link'
                    THEN replace(replace(html, context->>'link', %(gone)s),
                                 replace(context->>'link', '&', '&amp;'), %(gone)s)
                    ELSE html END,
                context = CASE WHEN context ? 'link' THEN context - 'link' ELSE context END
            WHERE (id = ANY(%(ids)s::uuid[]) OR digest_id = ANY(%(ids)s::uuid[]))
                AND status IN ('queued', 'accepted')
            RETURNING {NOTIFICATION_COLUMNS}
            """,
            {"ids": [str(i) for i in notification_ids], "gone": REDACTED_LINK},
        )

    def mark_accepted(self, notification_id, reference: str, check_in_seconds: float) -> None:
        """The gateway took it: not sent again, its receipt asked for in `check_in_seconds`."""
        self.uow.execute(
            "UPDATE notifications SET status = 'accepted', provider_ref = %s, accepted_at = now(),"
            " attempts = attempts + 1, last_error = NULL, held_for_quiet_hours = false,"
            " next_attempt_at = now() + make_interval(secs => %s)"
            " WHERE id = %s AND status = 'queued'",
            (reference, check_in_seconds, str(notification_id)),
        )

    def mark_suppressed(self, notification_id, reason: str) -> None:
        """Not sent, and never to be on this channel as it is: the row and its digest's."""
        self.uow.execute(
            "UPDATE notifications SET status = 'suppressed', reason = %s"
            " WHERE (id = %s OR digest_id = %s) AND status = 'queued'",
            (reason[:500], str(notification_id), str(notification_id)),
        )
        self._redact_links(notification_id)

    def due_receipts(self, limit: int) -> list[dict]:
        """Accepted SMS whose receipt is due to be asked for, locked until commit."""
        return self.uow.all(
            f"""
            SELECT {NOTIFICATION_COLUMNS} FROM notifications
            WHERE status = 'accepted' AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT %s
            FOR UPDATE SKIP LOCKED
            """,
            (limit,),
        )

    def await_receipt(self, notification_id, delay_seconds: float, note: str) -> None:
        self.uow.execute(
            "UPDATE notifications SET last_error = %s,"
            " next_attempt_at = now() + make_interval(secs => %s)"
            " WHERE id = %s AND status = 'accepted'",
            (note[:2000], delay_seconds, str(notification_id)),
        )

    def defer(self, notification_id, until: datetime) -> None:
        """Not yet: the destination's quota is spent until `until`."""
        self.uow.execute(
            "UPDATE notifications SET next_attempt_at = %s WHERE id = %s",
            (until, str(notification_id)),
        )

    def mark_failed(self, notification_id, reason: str) -> None:
        self.uow.execute(
            "UPDATE notifications SET status = 'failed', reason = %s, last_error = %s,"
            " attempts = attempts + 1 WHERE id = %s",
            (reason[:500], reason[:2000], str(notification_id)),
        )
        self.uow.execute(
            "UPDATE notifications SET status = 'failed', reason = %s WHERE digest_id = %s",
            (reason[:500], str(notification_id)),
        )
        self._redact_links(notification_id)

    def retry_later(self, notification_id, delay_seconds: float, error: str) -> None:
        self.uow.execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = %s,"
            " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
            (error[:2000], delay_seconds, str(notification_id)),
        )

    def notification(self, notification_id) -> dict | None:
        return self.uow.one(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = %s",
            (str(notification_id),),
        )

    # --- messenger destinations and provider quotas ---------------------------------------------

    def save_destination(self, recipient_id, channel: str, token: str,
                         secret: str | None) -> dict:  # fmt: skip
        return self.uow.one(
            """
            INSERT INTO messenger_destinations (recipient_id, channel, token, secret)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (recipient_id, channel) DO UPDATE SET token = EXCLUDED.token,
                secret = EXCLUDED.secret, updated_at = now()
            RETURNING *
            """,
            (str(recipient_id), channel, token, secret),
        )

    def destination(self, recipient_id, channel: str) -> dict | None:
        return self.uow.one(
            "SELECT * FROM messenger_destinations WHERE recipient_id = %s AND channel = %s",
            (str(recipient_id), channel),
        )

    def destinations_of(self, recipient_id) -> list[dict]:
        return self.uow.all(
            "SELECT * FROM messenger_destinations WHERE recipient_id = %s ORDER BY channel",
            (str(recipient_id),),
        )

    def delete_destination(self, recipient_id, channel: str) -> bool:
        deleted = self.uow.execute(
            "DELETE FROM messenger_destinations WHERE recipient_id = %s AND channel = %s",
            (str(recipient_id), channel),
        )
        return deleted.rowcount > 0

    def recent_sends(self, key: str, seconds: float, pending_for: float) -> list[datetime]:
        """The sends to the destination in the last `seconds`, and those claimed and not
        recorded yet (as sent now: they may go out at any moment), locked against other
        replicas' claims until commit; older ones are forgotten, and claims older than
        `pending_for` (the lease: their replica is gone, the row is claimed again)."""
        # The lock and the clean-up sent with the read (`uow.write`), which runs after them.
        self.uow.write("SELECT pg_advisory_xact_lock(hashtextextended(%s, 11))", (key,))
        self.uow.write(
            "DELETE FROM channel_sends WHERE key = %s AND sent_at <= now() - make_interval("
            "secs => CASE WHEN pending THEN %s ELSE %s END)",
            (key, pending_for, seconds),
        )
        rows = self.uow.all(
            "SELECT CASE WHEN pending THEN greatest(sent_at, now()) ELSE sent_at END AS at"
            " FROM channel_sends WHERE key = %s ORDER BY at",
            (key,),
        )
        return [r["at"] for r in rows]

    def record_send(self, key: str, notification_id) -> None:
        """A send claimed: pending until `settle_sends` records it, or `release` gives it up.
        Sent with the unit's next statement (a claim records one per row it lets through)."""
        self.uow.write(
            "INSERT INTO channel_sends (key, sent_at, notification_id, pending)"
            " VALUES (%s, now(), %s, true)",
            (key, str(notification_id)),
        )

    def settle_sends(self, notification_ids) -> None:
        """The claimed sends of these notifications went out (or were attempted): counted from
        now, when their outcomes are recorded, which is after the provider answered. Sent with
        the unit's next statement."""
        self.uow.write(
            "UPDATE channel_sends SET sent_at = now(), pending = false"
            " WHERE pending AND notification_id = ANY(%s::uuid[])",
            ([str(i) for i in notification_ids],),
        )

    # --- webhook subscriptions ------------------------------------------------------------------

    def add_subscription(self, subscription_id, url: str, event_types: list[str],
                         secret: str) -> dict:  # fmt: skip
        return self.uow.one(
            "INSERT INTO subscriptions (id, url, event_types, secret) VALUES (%s, %s, %s, %s)"
            " RETURNING *",
            (str(subscription_id), url, event_types, secret),
        )

    def subscriptions(self) -> list[dict]:
        return self.uow.all("SELECT * FROM subscriptions ORDER BY created_at, id")

    def subscription(self, subscription_id) -> dict | None:
        return self.uow.one("SELECT * FROM subscriptions WHERE id = %s", (str(subscription_id),))

    def delete_subscription(self, subscription_id) -> bool:
        deleted = self.uow.execute(
            "DELETE FROM subscriptions WHERE id = %s", (str(subscription_id),)
        )
        return deleted.rowcount > 0

    def subscribers_to(self, event_type: str) -> list[dict]:
        """The active webhook subscriptions to the type, their id and url (in a batch, read
        once per type, with the read-ahead: only HTTP requests and the delivery loop change
        them, in transactions of their own)."""
        if self.ahead is not None and event_type in self.ahead.subscribers:
            return [dict(s) for s in self.ahead.subscribers[event_type]]
        rows = self.uow.all(
            "SELECT id::text AS id, url FROM subscriptions WHERE active AND %s = ANY(event_types)"
            " ORDER BY id",
            (event_type,),
        )
        if self.ahead is not None:
            self.ahead.subscribers[event_type] = [dict(s) for s in rows]
        return rows

    def webhook_succeeded(self, subscription_id) -> None:
        self.uow.execute(
            "UPDATE subscriptions SET consecutive_failures = 0 WHERE id = %s",
            (str(subscription_id),),
        )

    def webhook_failed(self, subscription_id) -> dict | None:
        """Count a failed delivery attempt; the subscription after it, locked."""
        return self.uow.one(
            "UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1"
            " WHERE id = %s RETURNING *",
            (str(subscription_id),),
        )

    def disable_subscription(self, subscription_id, reason: str) -> list[dict]:
        """Disable it; returns its queued deliveries, now failed."""
        self.uow.execute(
            "UPDATE subscriptions SET active = false, disabled_reason = %s WHERE id = %s",
            (reason, str(subscription_id)),
        )
        return self.uow.all(
            f"""
            UPDATE notifications SET status = 'failed', reason = %s
            WHERE recipient_id = %s AND channel = 'webhook' AND status = 'queued'
            RETURNING {NOTIFICATION_COLUMNS}
            """,
            (reason[:500], str(subscription_id)),
        )
