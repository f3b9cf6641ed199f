"""Operate a service's dead-letter queue: list, show, replay and discard dead letters.

    python -m chassis.dead_letters list    <service>
    python -m chassis.dead_letters show    <service> <event id>
    python -m chassis.dead_letters replay  <service> (<event id> ... | --all)
    python -m chassis.dead_letters discard <service> (<event id> ... | --all)

Browsing takes the messages without acking them; whatever is not replayed or discarded goes back
to the queue, in its place, when the channel closes. A replayed event goes to the queue of the
handler that failed (not to every subscriber again) with its attempt count reset.
"""

import argparse
import json
import sys
from dataclasses import dataclass

from kombu import Connection

from chassis.broker import BrokerPublisher, Outgoing
from chassis.settings import queue_type, setting
from chassis.topology import CLASSIC, dead_letter_queue, declare_queue


@dataclass
class DeadLetter:
    event_id: str
    event_type: str
    queue: str
    attempts: int
    error: str
    traceback: str
    dead_lettered_at: str
    origin: str
    body: bytes
    message: object

    def summary(self) -> dict:
        return {
            "event_id": self.event_id,
            "type": self.event_type,
            "queue": self.queue,
            "attempts": self.attempts,
            "error": self.error,
            "dead_lettered_at": self.dead_lettered_at,
            "origin": self.origin,
        }


class DeadLetterQueue:
    def __init__(self, amqp_uri: str, service: str, queue_type: str = CLASSIC):
        self.amqp_uri = amqp_uri
        self.service = service
        self.queue = dead_letter_queue(service, queue_type)
        self.queue_name = self.queue.name

    def browse(self, channel) -> list[DeadLetter]:
        """Every dead letter, taken without ack (they return to the queue on channel close)."""
        declare_queue(channel, self.queue)
        queue = self.queue(channel)
        letters = []
        while True:
            message = queue.get(no_ack=False)
            if message is None:
                return letters
            headers = message.headers or {}
            letters.append(
                DeadLetter(
                    event_id=message.properties.get("message_id", ""),
                    event_type=message.properties.get("type", ""),
                    queue=str(headers.get("queue", "")),
                    attempts=int(headers.get("attempts", 0)),
                    error=str(headers.get("error", "")),
                    traceback=str(headers.get("traceback", "")),
                    dead_lettered_at=str(headers.get("dead-lettered-at", "")),
                    origin=f"{headers.get('original-exchange', '')}"
                    f" {headers.get('original-routing-key', '')}".strip(),
                    body=message.body,
                    message=message,
                )
            )

    def summaries(self) -> list[dict]:
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            try:
                return [letter.summary() for letter in self.browse(channel)]
            finally:
                channel.close()

    def show(self, event_id: str) -> dict | None:
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            try:
                for letter in self.browse(channel):
                    if letter.event_id == event_id:
                        return {
                            **letter.summary(),
                            "traceback": letter.traceback,
                            "body": letter.body.decode("utf-8", "replace"),
                        }
            finally:
                channel.close()
        return None

    def replay(self, event_ids: set[str] | None) -> list[str]:
        """Send the chosen dead letters (all when `event_ids` is None) back to their handlers."""
        publisher = BrokerPublisher(self.amqp_uri)
        done = []
        try:
            with Connection(self.amqp_uri) as connection:
                channel = connection.channel()
                try:
                    for letter in self.browse(channel):
                        if event_ids is not None and letter.event_id not in event_ids:
                            continue
                        outcome = publisher.publish(
                            [
                                Outgoing(
                                    message_id=letter.event_id,
                                    exchange="",
                                    routing_key=letter.queue,
                                    body=letter.body,
                                    content_type=letter.message.content_type,
                                    headers=_origin_headers(letter.message.headers or {}),
                                    properties={"type": letter.event_type},
                                )
                            ]
                        )
                        if outcome.confirmed:  # ack only once the handler's queue has it
                            letter.message.ack()
                            done.append(letter.event_id)
                finally:
                    channel.close()
        finally:
            publisher.close()
        return done

    def discard(self, event_ids: set[str] | None) -> list[str]:
        done = []
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            try:
                for letter in self.browse(channel):
                    if event_ids is None or letter.event_id in event_ids:
                        letter.message.ack()
                        done.append(letter.event_id)
            finally:
                channel.close()
        return done


def _origin_headers(headers: dict) -> dict:
    return {k: headers[k] for k in ("original-exchange", "original-routing-key") if k in headers}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chassis.dead_letters", description=__doc__)
    parser.add_argument("command", choices=["list", "show", "replay", "discard"])
    parser.add_argument("service")
    parser.add_argument("event_ids", nargs="*")
    parser.add_argument("--all", action="store_true", help="replay or discard every dead letter")
    args = parser.parse_args(argv)
    queue = DeadLetterQueue(
        setting(args.service, "AMQP_URI"), args.service, queue_type(args.service)
    )
    if args.command == "list":
        letters = queue.summaries()
        for letter in letters:
            print(json.dumps(letter, ensure_ascii=False))
        print(f"{len(letters)} dead letter(s) in {queue.queue_name}", file=sys.stderr)
        return 0
    if args.command == "show":
        if len(args.event_ids) != 1:
            parser.error("show takes one event id")
        letter = queue.show(args.event_ids[0])
        if letter is None:
            print(f"no dead letter {args.event_ids[0]} in {queue.queue_name}", file=sys.stderr)
            return 1
        print(json.dumps(letter, ensure_ascii=False, indent=2))
        return 0
    if not args.event_ids and not args.all:
        parser.error(f"{args.command} needs event ids or --all")
    chosen = None if args.all else set(args.event_ids)
    done = queue.replay(chosen) if args.command == "replay" else queue.discard(chosen)
    print(f"{args.command}ed {len(done)} dead letter(s)")
    return 0 if args.all or len(done) == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
