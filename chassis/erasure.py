"""What an erasure asks of the broker: no message kept about the person.

Events wait in three kinds of queue that nobody drains by handling them: a service's dead
letters (`<s>.dead-letters`, kept until an operator acts), its parked events (`<s>.unrouted`,
kept `UNROUTED_RETENTION_HOURS`) and its retry queues (`<s>.retry.<delay>ms`, a few seconds to a
minute). When `returnee.erased` arrives, every service (`chassis.operable.Operable`) takes out of
its own such queues (notify: also `partners.unrouted`, the partner views no district system was
bound for) each message that names the person (their id in the body or in a header:
an error text may quote the event) and drops it; the others go back in their place when the
channel closes, as `chassis.dead_letters` browses. What was dropped is counted, per service and
queue, in the log and in `erased_messages_dropped_total`: the fact that something was lost,
never what.

Handler queues are left alone: what waits there is handled soon, and each service's tombstone of
the erasure makes it a no-op.
"""

import logging

from amqp.exceptions import NotFound as QueueNotFound
from nameko.extensions import DependencyProvider

from chassis.broker import connect
from chassis.metrics import ERASED_MESSAGES_DROPPED
from chassis.topology import PARTNER_UNROUTED, retry_delays

log = logging.getLogger(__name__)


def kept_queues(service: str, config: dict, partner_views: bool = False) -> list[str]:
    """The queues of `service` whose messages wait for no handler (with the partner views'
    parking queue for the service that publishes them)."""
    delays = retry_delays(
        config["RETRY_ATTEMPTS"], config["RETRY_BASE_DELAY_MS"], config["RETRY_MAX_DELAY_MS"]
    )
    return [
        f"{service}.dead-letters",
        f"{service}.unrouted",
        *(f"{service}.retry.{delay}ms" for delay in delays),
        *([PARTNER_UNROUTED] if partner_views else []),
    ]


def _names(message, needles: list[bytes]) -> bool:
    if any(n in message.body for n in needles):
        return True
    headers = repr(message.headers or {}).encode("utf-8", "replace")
    return any(n in headers for n in needles)


def scrub_queues(amqp_uri: str, queues: list[str], needles: list[str]) -> dict[str, int]:
    """Drop every message of `queues` that holds one of `needles`; {queue: dropped}. A queue
    that does not exist (a service without handlers has no retry queue) is skipped."""
    wanted = [n.encode("utf-8") for n in needles if n]
    dropped = {}
    # Each node once: the caller decides what a broker away means.
    with connect(amqp_uri) as connection:
        for queue in queues:
            channel = connection.channel()
            try:
                try:
                    _, waiting, _ = channel.queue_declare(queue=queue, passive=True)
                except QueueNotFound:
                    continue  # the broker closed this channel
                count = 0
                for _ in range(waiting):  # each message once: the unacked ones stay out
                    message = channel.basic_get(queue=queue, no_ack=False)
                    if message is None:
                        break
                    if _names(message, wanted):
                        channel.basic_ack(message.delivery_tag)
                        count += 1
                if count:
                    dropped[queue] = count
            finally:
                if channel.is_open:
                    channel.close()  # the messages not dropped go back, in their place
    return dropped


class ErasedMessages(DependencyProvider):
    """`scrub(needles)` over the service's kept queues, with its broker and settings."""

    def setup(self):
        self.service = self.container.service_name
        self.amqp_uri = self.container.config["AMQP_URI"]
        self.queues = kept_queues(
            self.service,
            self.container.config,
            getattr(self.container.service_cls, "publishes_partner_views", False),
        )

    def get_dependency(self, worker_ctx):
        return self

    def scrub(self, needles: list[str]) -> int:
        dropped = scrub_queues(self.amqp_uri, self.queues, needles)
        for queue, count in dropped.items():
            ERASED_MESSAGES_DROPPED.labels(self.service, queue).inc(count)
            log.warning("dropped %d message(s) about an erased person from %s", count, queue)
        return sum(dropped.values())
