"""A service's dead-letter queue: list, show, replay and discard dead letters, as the operator's
`station dead-letters` does (station/operate.py).

Browsing takes the messages without acking them; whatever is not replayed or discarded goes back
to the queue, in its place, when the channel closes. A replayed event goes to the queue of the
handler that failed (not to every subscriber again) with its attempt count reset.
"""

from dataclasses import dataclass

from chassis.broker import BrokerPublisher, Outgoing, connect
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

    def count(self) -> int:
        """How many dead letters wait, without taking any."""
        with connect(self.amqp_uri) as connection:
            channel = connection.channel()
            try:
                declare_queue(channel, self.queue)
                return channel.queue_declare(self.queue_name, passive=True).message_count
            finally:
                channel.close()

    def summaries(self) -> list[dict]:
        with connect(self.amqp_uri) as connection:
            channel = connection.channel()
            try:
                return [letter.summary() for letter in self.browse(channel)]
            finally:
                channel.close()

    def show(self, event_id: str) -> dict | None:
        with connect(self.amqp_uri) as connection:
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
            with connect(self.amqp_uri) as connection:
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
        with connect(self.amqp_uri) as connection:
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
