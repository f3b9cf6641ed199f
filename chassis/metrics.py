"""Prometheus metrics every service exposes on `/metrics`.

Counters and histograms are process-wide (one service per process in production); every series
carries the `service` label so several services in one process (tests) stay apart.
"""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events the broker confirmed from the outbox", ["service", "type"]
)
EVENTS_UNDELIVERED = Counter(
    "events_undelivered_total",
    "Outbox publishes the broker returned or refused (kept for retry)",
    ["service", "type"],
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events taken from a handler's queue, by outcome: handled, duplicate (skipped by the inbox),"
    " retried, dead_lettered, invalid (dead-lettered"
    " without a try), returned (to the queue)",
    ["service", "handler", "type", "outcome"],
)
ERASED_MESSAGES_DROPPED = Counter(
    "erased_messages_dropped_total",
    "Dead-lettered, parked or retried messages dropped because they named an erased person",
    ["service", "queue"],
)
OUTBOX_PENDING = Gauge("outbox_pending", "Committed events not yet published", ["service"])
OUTBOX_OLDEST = Gauge(
    "outbox_oldest_pending_seconds", "Age of the oldest unpublished event", ["service"]
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
