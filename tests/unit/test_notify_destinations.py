"""Webhook destinations that cannot reach inside (services.notify.destinations): refused when the
subscription is made and again at each connection. Only loopback addresses are ever contacted:
a refused destination is refused before any connection."""

import dataclasses
import http.server
import ipaddress
import threading
import uuid
from datetime import UTC, datetime

import pytest

from chassis.clock import FrozenClock
from chassis.errors import HttpError
from chassis.uow import MemoryDatabase
from services.notify import handlers
from services.notify.channels import WebhookPoster, failure_category
from services.notify.destinations import address_refusal, parse_networks, refusal_of_url
from services.notify.memory import MemoryStore
from services.notify.settings import DECLARED, NotifySettings

# As in production mode (the tests run in development mode).
PRODUCTION = dataclasses.replace(NotifySettings.load({**DECLARED}), development=False)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LOOPBACK_URLS = [
    "https://127.0.0.1/hooks",
    "https://localhost/hooks",  # a name resolving to loopback
    "https://[::1]/hooks",
    "https://127.1/hooks",
    "https://0x7f000001/hooks",
    "https://[::ffff:127.0.0.1]/hooks",
]


@pytest.mark.parametrize("url", LOOPBACK_URLS)
def test_loopback_destinations_are_refused_in_production(url):
    assert "loopback" in refusal_of_url(url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "a private address"),
        ("172.16.0.9", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a metadata address"),
        ("100.100.100.200", "a metadata address"),
        ("169.254.10.10", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("100.64.0.1", "not a public address"),
        ("fd00::1", "a private address"),
    ],
)
def test_inside_addresses_are_refused(address, reason):
    assert address_refusal(address) == reason


def test_public_addresses_pass_and_allowed_networks_open_inside_ones():
    assert address_refusal("8.8.8.8") is None and address_refusal("2400:3200::1") is None
    allowed = parse_networks("10.20.0.0/16, 192.168.5.0/24")
    assert address_refusal("10.20.3.4", allowed) is None
    assert address_refusal("10.21.3.4", allowed) == "a private address"
    assert address_refusal("127.0.0.1", parse_networks("127.0.0.0/8")) is None


def test_production_asks_for_https_and_development_allows_loopback():
    assert refusal_of_url("https://8Mm:76243/") == "The URL's port is not a valid port."
    assert refusal_of_url("http://crm.example.gov.cn/hooks") == "Webhooks must use https."
    assert refusal_of_url("http://127.0.0.1:8080/hooks", development=True) is None
    assert "private" in refusal_of_url("http://10.0.0.5/hooks", development=True)


def test_a_refused_destination_is_a_422_naming_url():
    db = MemoryDatabase("notify", MemoryStore(FrozenClock(NOW)), clock=FrozenClock(NOW))
    for url in LOOPBACK_URLS:
        command = {"url": url, "event_types": ["returnee.registered"], "secret": "s" * 20}
        with db.unit_of_work() as uow, pytest.raises(HttpError) as refused:
            handlers.subscribe_webhook(command, uow, PRODUCTION)
        assert refused.value.status == 422 and list(refused.value.fields) == ["url"]
    assert db.store.subscriptions() == []


class Receiver:
    def __init__(self, answer: bytes = b""):
        self.hits = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.hits += 1
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def post(poster, url):
    return poster.post(url, "s" * 20, b"{}", str(uuid.uuid4()), "returnee.registered", "d")


def test_the_connection_itself_refuses_what_the_subscription_check_would():
    # A name that resolved elsewhere when subscribed and to loopback now (DNS rebinding) meets
    # the same check when it connects: nothing reaches the server.
    receiver = Receiver()
    try:
        guarded = WebhookPoster(timeout=5)
        for host in ("127.0.0.1", "localhost", "127.1"):
            outcome = post(guarded, f"http://{host}:{receiver.port}/hooks")
            assert not outcome.delivered and not outcome.transient
            assert failure_category(outcome.error) == "refused_destination"
        assert receiver.hits == 0
        allowed = WebhookPoster(timeout=5, allow_loopback=True)
        assert post(allowed, f"http://127.0.0.1:{receiver.port}/hooks").delivered
        assert receiver.hits == 1
    finally:
        receiver.stop()


def test_a_large_answer_is_not_read_past_its_cap():
    receiver = Receiver(answer=b"x" * 5000)
    try:
        poster = WebhookPoster(timeout=5, allow_loopback=True, max_response_bytes=1000)
        outcome = post(poster, f"http://127.0.0.1:{receiver.port}/hooks")
        assert not outcome.delivered and failure_category(outcome.error) == "response_too_large"
    finally:
        receiver.stop()


def test_ipv6_loopback_is_judged_as_loopback():
    assert address_refusal(ipaddress.ip_address("::1")) == "a loopback address"
