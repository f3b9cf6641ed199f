"""A district system subscribing to the platform's events: plain kombu, nothing from the platform.

    python subscriber.py --amqp-uri amqp://district-subscriber:...@broker:5672/returnee-platform \\
        --queue district.changning-crm --bind accounts:returnee.registered \\
        --bind accounts:returnee.updated --database changning.sqlite3

What it does, and why (see README.md):
- binds a durable queue of its own to the partner exchange `partners.events` for the event
  types it wants (the producers' own `<producer>.events` are the platform's inside, not readable
  by district systems); the exchange is declared passively, so the subscriber needs no right to
  create or change it (and fails clearly if the platform's topology step has not run);
- reads each event in the view the returnee's consent allows: whole when they share their data
  with partners, else pseudonymous (`dataschema` ending in `:pseudonymous`: ids, industry,
  stage, needs, district and dates; no name, email, phone or free text);
- checks each body is a CloudEvents 1.0 envelope from the expected producer, with the attributes
  the platform always sets and a `dataschema` naming the payload's version;
- processes each event id once: the effect and the record of the id commit in one SQLite
  transaction, and the message is acked only after that commit (delivery is at least once);
- moves what it cannot parse, or cannot process after a few tries, to its own dead-letter queue
  `<queue>.dead-letters` with the reason in the headers, then acks it: a bad message never blocks
  or loops, and stays there for a person to look at.
"""

import argparse
import json
import logging
import os
import re
import signal
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta

from kombu import Connection, Exchange, Producer, Queue, binding
from kombu.mixins import ConsumerMixin

log = logging.getLogger("district-subscriber")

SPECVERSION = "1.0"
DATASCHEMA = re.compile(
    r"^urn:returnee-platform:event:(?P<type>[a-z_.0-9]+):v(?P<version>\d+)(?P<view>:pseudonymous)?$"
)
PARTNER_EXCHANGE = "partners.events"
REQUIRED = ("specversion", "id", "source", "type", "time", "datacontenttype", "dataschema")

# Payload versions this subscriber understands, per type. During a deprecation period the
# platform publishes two versions of a type on the same routing key: the other one is skipped.
KNOWN_VERSIONS = {"returnee.registered": {1}, "returnee.updated": {1}, "returnee.erased": {1}}
DEFAULT_VERSIONS = {1}

PROCESSING_ATTEMPTS = 3
DEDUPE_RETENTION = timedelta(days=30)  # far longer than any redelivery can take


class Malformed(ValueError):
    """A message that is not an event this subscriber can read; it is dead-lettered."""


# --- the envelope ---------------------------------------------------------------------------


def parse_event(body: bytes, producer: str, wanted_types: set[str]) -> dict:
    """The event in `body` as a dict, or `Malformed` saying why not."""
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Malformed(f"body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise Malformed("body is not a JSON object")
    missing = [name for name in REQUIRED if not isinstance(event.get(name), str)]
    if missing:
        raise Malformed(f"missing or non-string CloudEvents attributes: {', '.join(missing)}")
    if event["specversion"] != SPECVERSION:
        raise Malformed(f"specversion {event['specversion']!r}, expected {SPECVERSION}")
    try:
        uuid.UUID(event["id"])
    except ValueError:
        raise Malformed(f"id {event['id']!r} is not a UUID") from None
    if event["source"] != f"/{producer}":
        raise Malformed(f"source {event['source']!r} for a {producer} event")
    if event["type"] not in wanted_types:
        raise Malformed(f"type {event['type']!r} is not one this queue is bound for")
    try:
        time_ = datetime.fromisoformat(event["time"])
    except ValueError:
        raise Malformed(f"time {event['time']!r} is not ISO 8601") from None
    if time_.tzinfo is None:
        raise Malformed("time has no UTC offset")
    if event["datacontenttype"] != "application/json":
        raise Malformed(f"datacontenttype {event['datacontenttype']!r}")
    schema = DATASCHEMA.match(event["dataschema"])
    if not schema or schema["type"] != event["type"]:
        raise Malformed(f"dataschema {event['dataschema']!r} does not name a version of the type")
    if not isinstance(event.get("data"), dict):
        raise Malformed("data is not a JSON object")
    event["version"] = int(schema["version"])
    event["pseudonymous"] = bool(schema["view"])
    return event


# --- the district's own database ------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_events (
    event_id     TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    processed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS returnees (
    returnee_id  TEXT PRIMARY KEY,
    name         TEXT,
    email        TEXT,
    industry     TEXT,
    updated_at   TEXT NOT NULL
);
-- The district's activity feed: one row per event processed. It has no unique key on purpose,
-- as most real effects (a counter, a sent letter) cannot absorb a duplicate by themselves.
CREATE TABLE IF NOT EXISTS activity (
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    subject      TEXT,
    occurred_at  TEXT NOT NULL
);
"""


def open_database(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)  # transactions by hand
    db.execute("PRAGMA journal_mode=WAL")  # readers (reports, tests) do not block the consumer
    db.executescript(SCHEMA)
    cutoff = (datetime.now(UTC) - DEDUPE_RETENTION).isoformat()
    db.execute("DELETE FROM processed_events WHERE processed_at < ?", (cutoff,))
    return db


def apply(db: sqlite3.Connection, event: dict) -> None:
    """The district's effect of one event; runs inside the transaction that records its id."""
    data = event["data"]
    if event["type"] in ("returnee.registered", "returnee.updated"):
        db.execute(
            "INSERT INTO returnees (returnee_id, name, email, industry, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (returnee_id) DO UPDATE SET"
            " name = excluded.name, email = excluded.email, industry = excluded.industry,"
            " updated_at = excluded.updated_at",
            # The pseudonymous view (no consent to share) has no name or email.
            (
                data["returnee_id"],
                data.get("name"),
                data.get("email"),
                data["industry"],
                event["time"],
            ),
        )
    elif event["type"] == "returnee.erased":
        db.execute("DELETE FROM returnees WHERE returnee_id = ?", (data["returnee_id"],))
    db.execute(
        "INSERT INTO activity (event_id, type, subject, occurred_at) VALUES (?, ?, ?, ?)",
        (event["id"], event["type"], event.get("subject"), event["time"]),
    )


def process_once(db: sqlite3.Connection, event: dict) -> bool:
    """Apply the event unless its id was processed before; False for a duplicate."""
    db.execute("BEGIN IMMEDIATE")
    try:
        inserted = db.execute(
            "INSERT INTO processed_events (event_id, type, processed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            (event["id"], event["type"], datetime.now(UTC).isoformat()),
        ).rowcount
        if inserted:
            apply(db, event)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return bool(inserted)


# --- the broker -----------------------------------------------------------------------------


def events_exchange(name: str = PARTNER_EXCHANGE) -> Exchange:
    # The platform's exchange, never declared by us: kombu declares a binding's exchange unless
    # told not to, and declaring (even unchanged) needs a right the subscriber does not have.
    return Exchange(name, type="topic", durable=True, no_declare=True)


class Subscriber(ConsumerMixin):
    def __init__(self, amqp_uri: str, queue: str, bindings: list[tuple[str, str]], db_path: str,
                 exchange: str = PARTNER_EXCHANGE):  # fmt: skip
        if not queue.startswith("district."):
            # The broker definitions let the subscriber user create only `district.*` queues.
            log.warning("queue %s is outside district.*: the broker may refuse it", queue)
        self.connection = Connection(
            amqp_uri, heartbeat=30, transport_options={"confirm_publish": True}
        )
        self.queue_name = queue
        self.bindings = bindings
        self.exchange = exchange
        self.producers = {event_type: producer for producer, event_type in bindings}
        self.db = open_database(db_path)
        self.counts = {"processed": 0, "duplicate": 0, "skipped": 0, "dead_lettered": 0}

    def dead_letter_exchange(self) -> Exchange:
        return Exchange(f"{self.queue_name}.dead-letters", type="fanout", durable=True)

    def declare(self, channel) -> Queue:
        try:  # passive: only asks whether it exists, which needs no permission
            channel.exchange_declare(self.exchange, "topic", passive=True)
        except Exception as exc:
            raise SystemExit(
                f"{self.exchange} does not exist or is not readable ({exc}): run the "
                "platform's topology step (python -m deploy.topology) first"
            ) from None
        dead_letters = self.dead_letter_exchange()
        Queue(f"{self.queue_name}.dead-letters", exchange=dead_letters, durable=True)(
            channel
        ).declare()
        queue = Queue(
            self.queue_name,
            bindings=[
                binding(events_exchange(self.exchange), routing_key=t) for _, t in self.bindings
            ],  # fmt: skip
            durable=True,
        )(channel)
        queue.declare()
        return queue

    def get_consumers(self, consumer_cls, channel):
        queue = self.declare(channel)
        channel.basic_qos(0, 20, False)
        # on_message: the raw message, undecoded, whatever content type it claims.
        return [consumer_cls(queues=[queue], on_message=self.on_message, accept=[])]

    def on_message(self, message) -> None:
        routing_key = message.delivery_info.get("routing_key", "")
        producer = self.producers.get(routing_key, "")
        try:
            event = parse_event(message.body, producer, set(self.producers))
        except Malformed as exc:
            self.dead_letter(message, f"malformed: {exc}")
            return
        if event["version"] not in KNOWN_VERSIONS.get(event["type"], DEFAULT_VERSIONS):
            log.info("skipped %s v%d %s: version unknown here", *self._ids(event))
            self.counts["skipped"] += 1
            message.ack()
            return
        for attempt in range(1, PROCESSING_ATTEMPTS + 1):
            try:
                fresh = process_once(self.db, event)
                break
            except (KeyError, TypeError) as exc:  # a payload field we need is missing or odd
                self.dead_letter(message, f"payload not as documented: {exc!r}")
                return
            except sqlite3.OperationalError as exc:  # locked or full: may pass, but not forever
                if attempt == PROCESSING_ATTEMPTS:
                    self.dead_letter(message, f"processing failed {attempt} times: {exc!r}")
                    return
                time.sleep(0.2 * 2**attempt)
        outcome = "processed" if fresh else "duplicate"
        self.counts[outcome] += 1
        log.info("%s %s v%d %s", outcome, *self._ids(event))
        message.ack()  # only now: a crash before this line redelivers, and dedupe absorbs it

    @staticmethod
    def _ids(event: dict) -> tuple:
        return event["type"], event["version"], event["id"]

    def dead_letter(self, message, reason: str) -> None:
        """Park the message on our own dead-letter queue with the reason, then ack it."""
        headers = {
            "x-reason": reason[:1000],
            "x-original-exchange": message.delivery_info.get("exchange", ""),
            "x-original-routing-key": message.delivery_info.get("routing_key", ""),
            "x-dead-lettered-at": datetime.now(UTC).isoformat(),
        }
        Producer(message.channel).publish(
            message.body,
            exchange=self.dead_letter_exchange(),
            routing_key="",
            headers=headers,
            content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary",
            message_id=message.properties.get("message_id"),
            delivery_mode=2,
            serializer=None,
        )  # confirm_publish: returns once the broker has it
        self.counts["dead_lettered"] += 1
        log.warning("dead-lettered a message from %s: %s", headers["x-original-exchange"], reason)
        message.ack()


def parse_binding(text: str) -> tuple[str, str]:
    producer, sep, event_type = text.partition(":")
    if not sep or not producer or not event_type:
        raise argparse.ArgumentTypeError(f"{text!r}: expected <producer>:<event type>")
    return producer, event_type


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--amqp-uri", default=os.environ.get("SUBSCRIBER_AMQP_URI", "amqp://localhost:5672/")
    )
    parser.add_argument("--queue", default=os.environ.get("SUBSCRIBER_QUEUE", "district.example"))
    parser.add_argument(
        "--bind",
        action="append",
        type=parse_binding,
        metavar="PRODUCER:TYPE",
        help="an event type to receive, e.g. accounts:returnee.registered (repeatable)",
    )
    parser.add_argument(
        "--database", default=os.environ.get("SUBSCRIBER_DATABASE", "subscriber.sqlite3")
    )
    parser.add_argument(
        "--exchange",
        default=os.environ.get("SUBSCRIBER_EXCHANGE", PARTNER_EXCHANGE),
        help="the platform's partner exchange (the default); only a test names another",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    subscriber = Subscriber(
        args.amqp_uri,
        args.queue,
        args.bind or [("accounts", "returnee.registered")],
        args.database,
        args.exchange,
    )

    def stop(*_):
        subscriber.should_stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("consuming %s for %s", args.queue, sorted(subscriber.bindings))
    subscriber.run()
    log.info("stopped: %s", subscriber.counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
