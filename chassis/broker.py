"""Publishing to RabbitMQ with pipelined publisher confirms and mandatory routing.

One `BrokerPublisher` owns one AMQP connection. `publish` sends a batch without waiting between
messages, then waits for the broker's confirms, so a batch of N costs about one round trip. A
message counts as delivered only when the broker confirmed it and did not return it as unroutable.
The frames of a batch go to the socket in one write (py-amqp's `basic_publish` writes each
message on its own and first polls the socket for a `connection.blocked`, twice the system calls).

`AMQP_URI` names one broker, or the nodes of a cluster as URLs separated by `;`
(`amqp://u:p@rabbit-1:5672/v;amqp://u:p@rabbit-2:5672/v;...`). Every user of it connects through
`connect` (the nameko consumer through kombu, which reads the same list): the nodes are tried in
turn, so a node that is down is passed over, at connecting and at every reconnection.
"""

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import amqp
from amqp import spec
from amqp.method_framing import frame_writer
from amqp.serialization import dumps
from kombu import Connection

from chassis.topology import QueueMismatch

log = logging.getLogger(__name__)


def broker_urls(amqp_uri: str) -> list[str]:
    """The nodes `amqp_uri` names: one URL, or several separated by `;`."""
    return [url.strip() for url in amqp_uri.split(";") if url.strip()]


def redacted(amqp_uri: str) -> str:
    """`amqp_uri` with every node's password replaced, for logs and messages."""
    shown = []
    for url in broker_urls(amqp_uri):
        parts = urlsplit(url)
        if parts.password:
            host = parts.netloc.rpartition("@")[2]
            parts = parts._replace(netloc=f"{parts.username}:***@{host}")
        shown.append(urlunsplit(parts))
    return ";".join(shown)


class StrictConnection(Connection):
    """A kombu connection that reports its loss instead of replacing itself unseen.

    kombu's `Connection.connection`, which `drain_events` and `heartbeat_check` read, opens a
    new connection when it finds the one it had broken (celery/kombu#220). A consumer's
    channels and consumers stay on the connection lost: when another green thread saw the loss
    first (a worker's ack failing on the reset socket), the consumer went on draining a fresh
    connection that consumes nothing, with no error to reconnect on, for good. Here the loss
    raises `ConnectionResetError`, a connection error every user reconnects on in full
    (nameko's consumer re-declares its consumers)."""

    @property
    def connection(self):
        if self._connection is not None and not self._closed and not self.connected:
            raise ConnectionResetError(f"connection to {self.as_uri()} lost")
        return super().connection


def connect(amqp_uri: str, **options) -> Connection:
    """A connection to the first node of `amqp_uri` that answers, each node tried once (a
    single broker twice, 2 s apart). Raises kombu's `OperationalError` when none answers."""
    connection = StrictConnection(amqp_uri, **{"connect_timeout": 5, **options})
    try:
        connection.ensure_connection(max_retries=max(1, len(connection.alt) - 1))
    except BaseException:
        connection.release()
        raise
    return connection


@dataclass(frozen=True)
class Outgoing:
    message_id: str
    exchange: str
    routing_key: str
    body: bytes
    content_type: str = "application/cloudevents+json"
    headers: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)


@dataclass
class PublishOutcome:
    confirmed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # message id -> reason


class BrokerUnavailable(ConnectionError):
    pass


# basic.publish's arguments: reserved, exchange, routing key, mandatory (returned if
# unroutable), immediate.
PUBLISH_ARGUMENTS = "Bssbb"


class _Frames:
    """A transport for py-amqp's frame writer that keeps the frames until the batch is written."""

    def __init__(self):
        self.written = bytearray()

    def write(self, frame) -> None:
        self.written += frame


class BrokerPublisher:
    def __init__(self, amqp_uri: str, on_connect=None, confirm_timeout: float = 10.0):
        self.amqp_uri = amqp_uri
        self.confirm_timeout = confirm_timeout
        self._on_connect = on_connect  # called with a fresh channel: declare what we publish to
        self._connection: Connection | None = None
        self._channel = None
        self._lock = threading.Lock()  # green under eventlet: one batch at a time per connection
        self._unconfirmed: dict[int, None] = {}  # delivery tags of the batch awaiting confirms
        self._nacked: set[int] = set()
        self._returned: dict[str, str] = {}
        self._published = 0
        self._frames = _Frames()
        self._write_frame = None

    def _connect(self):
        if self._channel is not None:
            return self._channel
        try:
            connection = connect(self.amqp_uri, heartbeat=0)
        except Exception as exc:
            raise BrokerUnavailable(f"broker unavailable: {exc}") from exc
        try:
            channel = connection.channel()
            if self._on_connect is not None:
                self._on_connect(channel)
            channel.confirm_select()
        except QueueMismatch:  # not an outage: the broker answers, and will answer the same
            connection.release()
            raise
        except Exception as exc:
            connection.release()
            raise BrokerUnavailable(f"broker unavailable: {exc}") from exc
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._connection, self._channel, self._published = connection, channel, 0
        self._write_frame = frame_writer(channel.connection, self._frames)
        return channel

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to release cleanly
                self._connection.release()
        self._connection = self._channel = None

    def _on_ack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag, multiple):
        self._nacked.update(self._settle(delivery_tag, multiple))

    def _settle(self, delivery_tag: int, multiple: bool) -> list[int]:
        tags = [t for t in self._unconfirmed if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            self._unconfirmed.pop(tag, None)
        return tags

    def _on_return(self, exc, exchange, routing_key, message):
        message_id = message.properties.get("message_id")
        self._returned[message_id] = f"unroutable: {exchange} {routing_key} ({exc.reply_text})"

    def ping(self) -> None:
        """Raise `BrokerUnavailable` unless the broker answers, `QueueMismatch` if it refuses a
        queue declared on connecting. One retry on a fresh connection: the one kept may have
        been closed since it was last used (a broker restart or failover, an idle timeout)."""
        with self._lock:
            for attempt in (1, 2):
                kept = self._channel is not None
                try:
                    self._connect()
                    self._connection.drain_events(timeout=0)
                except TimeoutError:
                    return
                except (BrokerUnavailable, QueueMismatch):
                    raise
                except Exception as exc:
                    self._reset()
                    if attempt == 2 or not kept:
                        raise BrokerUnavailable(str(exc)) from exc

    def publish(self, messages: list[Outgoing]) -> PublishOutcome:
        outcome = PublishOutcome()
        if not messages:
            return outcome
        with self._lock:
            try:
                channel = self._connect()
                first = self._published + 1
                self._unconfirmed.clear()
                self._nacked.clear()
                self._returned.clear()
                self._frames.written.clear()
                for message in messages:
                    arguments = (0, message.exchange, message.routing_key, True, False)
                    self._write_frame(
                        1,
                        channel.channel_id,
                        spec.Basic.Publish,
                        dumps(PUBLISH_ARGUMENTS, arguments),
                        amqp.Message(
                            message.body,
                            content_type=message.content_type,
                            delivery_mode=2,
                            message_id=message.message_id,
                            application_headers=message.headers,
                            **message.properties,
                        ),
                    )
                    self._published += 1
                    self._unconfirmed[self._published] = None
                channel.connection.transport.write(self._frames.written)
                self._frames.written.clear()
                tags = range(first, self._published + 1)
                while self._unconfirmed:
                    self._connection.drain_events(timeout=self.confirm_timeout)
            except (BrokerUnavailable, QueueMismatch):
                raise
            except Exception as exc:
                self._reset()
                raise BrokerUnavailable(f"publish failed: {exc!r}") from exc
            for tag, message in zip(tags, messages, strict=True):
                if message.message_id in self._returned:
                    outcome.failed[message.message_id] = self._returned[message.message_id]
                elif tag in self._nacked:
                    outcome.failed[message.message_id] = "nacked by the broker"
                else:
                    outcome.confirmed.append(message.message_id)
        return outcome
