"""notify against the real RabbitMQ and PostgreSQL, a real SMTP server and a real webhook receiver.

Events are published as accounts, consulting and matching publish them (`contracts/`); what a
person would notice is checked where they would notice it: the mailbox, the inbox endpoint, the
district system's receiver and the events notify publishes.
"""

import contextlib
import hashlib
import hmac
import http.server
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg2
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY

from contracts import CATALOG
from contracts.examples import ADVISOR, FX_RESOURCE, ICBC, PROVIDER, RETURNEE, example
from deploy.mail_sink import SmtpSink
from services.notify.channels import Mail, SmtpMailer, SmtpSettings
from services.notify.domain import TEMPLATES, DeliveryOutcome
from services.notify.service import NotifyService
from tests.integration.providers import gateway_settings, platform_gateway
from tests.support import (
    publish_events,
    query,
    refuses_bad_pages,
    service_url,
    wait_until,
    walk_pages,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


class WebhookReceiver:
    """A district system's endpoint: records each POST and answers `status`."""

    def __init__(self):
        receiver = self
        self.received: list[tuple[dict, bytes]] = []
        self.status = 200
        self.answers: list[int] = []  # answered first, one per request, before `status`

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/platform"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class StallingHop:
    """A TCP hop in front of a real server that holds its first `stall` connections open without
    passing a byte either way, as a server hanging mid-session does; later ones are relayed."""

    def __init__(self, target: tuple[str, int], stall: int):
        self.target, self.stall = target, stall
        self.stalled: list[socket.socket] = []
        self.relayed: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        try:
            while True:
                conn, _ = self.listener.accept()
                if len(self.stalled) < self.stall:
                    self.stalled.append(conn)
                    continue
                upstream = socket.create_connection(self.target)
                self.relayed += [conn, upstream]
                thread = threading.Thread(target=self._relay, args=(conn, upstream), daemon=True)
                self.threads.append(thread)
                thread.start()
        except OSError:
            pass
        finally:
            self.listener.close()

    @staticmethod
    def _relay(client, server):
        def pipe(source, sink):
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(server, client), daemon=True)
        back.start()
        pipe(client, server)
        back.join()
        client.close()
        server.close()

    def close(self):
        # Sockets are shut down, which wakes whoever reads them, and closed by their readers:
        # none is closed under a reader, so nothing of this hop outlives it.
        for sock in (self.listener, *self.relayed):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(10)
        for conn in self.stalled:
            conn.close()


def verify_signature(secret: str, headers: dict, body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does, as docs/notify.md tells it, written independently of notify."""
    timestamp = headers["X-Platform-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers["X-Platform-Signature"])


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture
def gateway():
    """An SMS gateway speaking Alibaba Cloud SMS's protocol (tests/integration/providers.py)."""
    server = platform_gateway()
    yield server
    server.stop()


@pytest.fixture
def start_notify(container_factory, config_for, sink, gateway):
    """Start notify delivering to the sink and the gateway; returns (base url, database url)."""

    def start(**overrides):
        settings = {
            "SMTP_HOST": sink.host,
            "SMTP_PORT": sink.port,
            "DELIVERY_BASE_DELAY_SECONDS": 0.2,
            "DIGEST_WINDOW_SECONDS": 0,
            # A confirmation and its reminder within seconds: no quota of ours between them.
            **gateway_settings(gateway, SMS_RATE_LIMITS=""),
            **overrides,
        }
        config = config_for("notify", **settings)
        container = container_factory(NotifyService, config)
        container.start()
        return service_url(container), config["DATABASE_URL"]

    return start


def registered(locale="zh-CN", notifications=True, **changes):
    data = {
        **example("returnee.registered").data,
        "returnee_id": str(uuid.uuid4()),
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "locale": locale,
        "consents": {
            "matching": True,
            "notifications": notifications,
            "share_with_partners": False,
        },
        **changes,
    }
    if locale == "en":
        data["name"] = data.get("name") if "name" in changes else "Li Wei"
    return CATALOG.create("accounts", "returnee.registered", data, subject=data["returnee_id"])


def event(producer, type_, subject, **data):
    return CATALOG.create(producer, type_, data, subject=subject)


def inbox(base_url, returnee_id, token_for, **params):
    response = requests.get(
        f"{base_url}/notifications",
        params={"recipient_id": returnee_id, **params},
        headers=token_for("returnee", returnee_id),
    )
    assert response.status_code == 200, response.text
    return response.json()


def handled(database_url, *events, timeout: float = 15.0) -> None:
    """Wait until notify has taken every event in (its inbox record commits with the effect):
    only then does the absence of an effect mean something, and only then is the next event
    sure to come after it."""
    for item in events:
        wait_until(
            lambda e=item: query(database_url, "SELECT 1 FROM inbox WHERE event_id = %s", (e.id,)),
            timeout,
            message=f"notify took in {item.type} {item.id}",
        )


def rows(database_url, event_id):
    return query(
        database_url,
        "SELECT id, channel, status, attempts, reason, held_for_quiet_hours, next_attempt_at"
        " FROM notifications WHERE event_id = %s ORDER BY channel",
        (event_id,),
    )


def test_three_deliveries_of_a_registration_give_one_email_and_one_inbox_entry(
    start_notify, sink, amqp_uri, spy, token_for
):
    base_url, database_url = start_notify()
    sent = spy("notify", "notification.sent")
    welcome = registered()
    returnee_id = welcome.data["returnee_id"]

    publish_events(amqp_uri, [welcome, welcome, welcome])

    sent.wait_for("notification.sent", lambda e: e.data["channel"] == "email")
    sent.wait_for("notification.sent", lambda e: e.data["channel"] == "in_app")
    time.sleep(2)  # room for a second message, would there be one
    assert len(sink.to(welcome.data["email"])) == 1
    assert [e.data["channel"] for e in sent.events("notification.sent")].count("email") == 1
    entries = inbox(base_url, returnee_id, token_for)
    assert sorted(e["channel"] for e in entries) == ["email", "in_app"]
    assert {e["status"] for e in entries} == {"sent"}
    in_app = next(e for e in entries if e["channel"] == "in_app")
    assert in_app["template"] == "welcome" and in_app["event_id"] == welcome.id
    assert in_app["event_type"] == "returnee.registered" and in_app["locale"] == "zh-CN"
    assert set(in_app) >= {"id", "recipient_id", "subject", "body", "created_at"}
    assert len(rows(database_url, welcome.id)) == 2


def test_welcome_is_rendered_in_chinese_and_english_with_text_and_html_parts(
    start_notify, sink, amqp_uri, token_for
):
    base_url, _ = start_notify()
    zh, en = registered("zh-CN"), registered("en", name="Li <b>Wei</b>")
    publish_events(amqp_uri, [zh, en])
    sink.wait_for(2)

    zh_mail = sink.to(zh.data["email"])[0]
    en_mail = sink.to(en.data["email"])[0]
    assert zh_mail["Subject"] == "欢迎加入长宁区海归创业服务平台"
    assert en_mail["Subject"] == "Welcome to the Changning returnee service platform"
    for mail in (zh_mail, en_mail):
        assert mail.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert "欢迎回国" in zh_mail.get_body(("plain",)).get_content()
    assert '<html lang="zh-CN">' in zh_mail.get_body(("html",)).get_content()
    en_html = en_mail.get_body(("html",)).get_content()
    assert "Dear Li &lt;b&gt;Wei&lt;/b&gt;," in en_html  # autoescaped
    assert "Dear Li <b>Wei</b>," in en_mail.get_body(("plain",)).get_content()

    en_inbox = wait_until(
        lambda: [
            e
            for e in inbox(base_url, en.data["returnee_id"], token_for)
            if e["channel"] == "in_app" and e["status"] == "sent"
        ]  # fmt: skip
    )
    assert en_inbox[0]["subject"].startswith("Welcome") and en_inbox[0]["locale"] == "en"


# Which events make each template (the reminder is the timer's, from `booking` below).
TEMPLATE_EVENTS = [
    "returnee.registered",
    "matches.proposed",
    "eligibility.assessed",
    "consultation.requested",
    "consultation.assigned",
    "consultation.answered",
    "consultation.waiting_on_returnee",
    "consultation.sla_breached",
    "intention.expressed",
    "intention.accepted",
    "intention.declined",
    "application.submitted",
    "application.awarded",
    "appointment.booked",
    "appointment.cancelled",
    "application.submitted",
    "application.approved",
    "application.rejected",
    "application.awarded",
    "application.withdrawn",
]


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_template_reaches_a_strict_smtp_server_whole(start_notify, sink, amqp_uri, locale):
    # aiosmtpd refuses bare LF and lines over 998 octets, as Postfix 3.9 does: every email of
    # every template, to names as long as the contract allows, must pass and read back as sent.
    _, database_url = start_notify(APPOINTMENT_REMINDER_HOURS=1, ACTIVITY_REMINDER_HOURS=1)
    filler = ("长宁区海归创业服务站" if locale == "zh-CN" else "Changning-Returnee-Station-") * 30
    people = [
        ("returnee.registered", RETURNEE, {"locale": locale, "name": filler[:100]}),
        ("staff.registered", PROVIDER, {"locale": locale, "name": filler[:100]}),
        ("staff.registered", ADVISOR, {"staff_id": ADVISOR, "role": "advisor", "locale": locale,
                                       "name": filler[:100], "organization_id": None,
                                       "email": "zhang@station.example"}),
        ("organization.registered", ICBC, {"name": filler[:200]}),
        ("resource.published", FX_RESOURCE, {}),
    ]  # fmt: skip
    publish_events(
        amqp_uri,
        [
            event(CATALOG.get(type_).producer, type_, subject, **{**example(type_).data, **data})
            for type_, subject, data in people
        ],
    )
    wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM recipients")[0]["n"] == 4)
    wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM resources")[0]["n"] == 1)
    publish_events(
        amqp_uri,
        [
            event(CATALOG.get(t).producer, t, example(t).subject, **example(t).data)
            for t in TEMPLATE_EVENTS[1:]
        ]
        + [booking(RETURNEE, lead_seconds=1)],
    )
    *registrations, cancellation = activity_events(lead_seconds=1)
    publish_events(amqp_uri, registrations)
    handled(database_url, *registrations)  # so the cancellation finds who registered
    publish_events(amqp_uri, [cancellation])

    def emails():
        found = query(
            database_url,
            "SELECT id, template, status, reason, subject, body, html FROM notifications"
            " WHERE channel = 'email'",
        )
        return found if {r["template"] for r in found} == set(TEMPLATES) else None

    settled = wait_until(lambda: all_settled(emails()), timeout=60)
    assert [(r["template"], r["reason"]) for r in settled if r["status"] != "sent"] == []
    arrived = {m["X-Platform-Notification-Id"]: m for m in sink.wait_for(len(settled))}
    assert set(arrived) == {str(r["id"]) for r in settled}
    for row in settled:
        mail = arrived[str(row["id"])]
        assert mail["Subject"] == row["subject"]
        assert mail.get_body(("plain",)).get_content() == row["body"]
        assert mail.get_body(("html",)).get_content().strip() == row["html"].strip()
        # (email's parser reads a space between the encoded words a long name is folded into)
        assert mail["To"].addresses[0].display_name.replace(" ", "") in filler


def test_webhook_deliveries_carry_a_signature_the_receiver_can_verify(
    start_notify, receiver, amqp_uri, token_for, spy
):
    base_url, _ = start_notify()
    sent = spy("notify", "notification.sent")
    secret = "changning-crm-shared-secret"
    created = requests.post(
        f"{base_url}/subscriptions",
        json={"url": receiver.url, "event_types": ["returnee.registered"], "secret": secret},
        headers=token_for("admin"),
    )
    assert created.status_code == 201, created.text
    assert "secret" not in created.json() and created.json()["active"] is True
    subscription_id = created.json()["id"]

    shares = {"matching": True, "notifications": True, "share_with_partners": True}
    welcome = registered(consents=shares)  # whole, as it shares with partners
    other = event("accounts", "returnee.erased", str(uuid.uuid4()), returnee_id=str(uuid.uuid4()))
    publish_events(amqp_uri, [welcome, other])
    report = sent.wait_for("notification.sent", lambda e: e.data["channel"] == "webhook")

    assert len(receiver.received) == 1  # not subscribed to returnee.erased
    headers, body = receiver.received[0]
    assert verify_signature(secret, headers, body)
    assert not verify_signature("another-secret-of-16+", headers, body)
    assert not verify_signature(secret, headers, body.replace(b"zh-CN", b"en"))
    assert headers["X-Platform-Event-Id"] == welcome.id
    assert headers["X-Platform-Event-Type"] == "returnee.registered"
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    cloud_event = json.loads(body)
    assert cloud_event["id"] == welcome.id and cloud_event["data"] == welcome.data
    assert report.data["recipient_id"] == subscription_id
    assert report.data["template"] == "returnee_registered"


def test_district_systems_get_personal_data_only_with_consent_to_share(
    start_notify, receiver, amqp_uri, token_for
):
    from kombu import Connection, Exchange, Queue, binding

    base_url, _ = start_notify()
    created = requests.post(
        f"{base_url}/subscriptions",
        json={"url": receiver.url, "event_types": ["returnee.registered"],
              "secret": "changning-crm-shared-secret"},
        headers=token_for("admin"),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    with Connection(amqp_uri) as connection:  # a district system's queue on the partner exchange
        partners = Exchange("partners.events", type="topic", passive=True)
        queue = Queue(f"district.test-{uuid.uuid4().hex[:8]}", auto_delete=True,
                      bindings=[binding(partners, routing_key="returnee.registered")])  # fmt: skip
        queue(connection.default_channel).declare()
        shares = {"matching": True, "notifications": True, "share_with_partners": True}
        whole = registered(consents=shares, name="王分享")
        hidden = registered(name="赵保密")
        publish_events(amqp_uri, [whole, hidden])
        wait_until(lambda: len(receiver.received) == 2, 30, 0.1, "both webhook deliveries")
        relayed = []
        wait_until(
            lambda: relayed.append(queue(connection.default_channel).get(no_ack=True))
            or len([m for m in relayed if m]) == 2, 30, 0.1, "both on the partner exchange",
        )  # fmt: skip
        broker = [json.loads(m.body) for m in relayed if m]
    delivered = [json.loads(body) for _, body in receiver.received]
    for seen in (delivered, broker):
        by_id = {e["id"]: e for e in seen}
        assert by_id[whole.id]["data"] == json.loads(whole.to_json())["data"]
        assert by_id[whole.id]["dataschema"] == "urn:returnee-platform:event:returnee.registered:v1"
        pseudonymous = by_id[hidden.id]
        assert pseudonymous["dataschema"].endswith(":v1:pseudonymous")
        assert pseudonymous["data"]["returnee_id"] == hidden.data["returnee_id"]
        text = json.dumps(pseudonymous, ensure_ascii=False)
        assert "赵保密" not in text and hidden.data["email"] not in text
        assert str(hidden.data["birth_date"]) not in text


def test_an_smtp_outage_is_retried_with_backoff_then_delivered(
    start_notify, sink, amqp_uri, spy, token_for
):
    _, database_url = start_notify()
    sent = spy("notify", "notification.sent")
    sink.outage(3)
    welcome = registered()
    publish_events(amqp_uri, [welcome])

    sent.wait_for("notification.sent", lambda e: e.data["channel"] == "email", timeout=20)
    assert sink.refused == 3
    [mail] = sink.to(welcome.data["email"])
    email = next(r for r in rows(database_url, welcome.id) if r["channel"] == "email")
    assert email["status"] == "sent" and email["attempts"] == 4
    # Every send of a notification is the same mail, so a resend can be recognised.
    assert mail["Message-ID"].strip() == f"<{email['id']}@returnee-platform.example.cn>"


def test_the_relay_never_receives_more_than_its_quota_in_any_second(start_notify, sink, amqp_uri):
    """Counted where the relay counts, as each message is accepted: a slow relay makes the
    sends of one claim arrive up to a second after it, and the next claim must not add to them
    (a ledger counting a send when it was claimed let both into one second)."""
    start_notify(SMTP_RATE_LIMITS="5/1")
    # Each claim of five: the first five messages take 1.5 s, the next five 0.05 s, and so on.
    sink.slow([1.5] * 5 + [0.05] * 5)
    welcomes = [registered() for _ in range(20)]
    publish_events(amqp_uri, welcomes)
    sink.wait_for(20, timeout=60)
    arrivals = sorted(sink.arrivals)
    busiest = max(sum(1 for b in arrivals if a - 1 < b <= a) for a in arrivals)
    assert busiest <= 5, f"{busiest} emails reached the relay within one second"
    assert arrivals[-1] - arrivals[0] >= 3  # twenty at five a second at most


def test_the_relays_quota_holds_emails_back_but_never_the_inbox(start_notify, sink, amqp_uri):
    _, database_url = start_notify(SMTP_RATE_LIMITS="2/60")
    welcomes = [registered() for _ in range(6)]
    publish_events(amqp_uri, welcomes)

    def settled():
        found = [r for w in welcomes for r in rows(database_url, w.id)]
        in_app = [r for r in found if r["channel"] == "in_app" and r["status"] == "sent"]
        waiting = [r for r in found if r["channel"] == "email" and r["status"] == "queued"]
        return (
            len(in_app) == 6
            and len(waiting) == 4
            and all(r["next_attempt_at"] is not None for r in waiting)
        )

    wait_until(settled, timeout=30, message="six in the inbox, four emails put off")
    time.sleep(2)  # room for a third email, would the quota let one through
    received = sum(len(sink.to(w.data["email"])) for w in welcomes)
    assert received == 2
    emails = [r for w in welcomes for r in rows(database_url, w.id) if r["channel"] == "email"]
    assert sorted(r["status"] for r in emails) == ["queued"] * 4 + ["sent"] * 2


def test_a_lasting_smtp_outage_fails_the_notification_and_says_so(
    start_notify, sink, amqp_uri, spy
):
    _, database_url = start_notify(DELIVERY_MAX_ATTEMPTS=3)
    failed = spy("notify", "notification.failed")
    sink.outage(1000)
    welcome = registered()
    publish_events(amqp_uri, [welcome])

    report = failed.wait_for("notification.failed", timeout=20)
    assert report.data["channel"] == "email" and report.data["event_id"] == welcome.id
    assert "451" in report.data["reason"] and "after 3 attempts" in report.data["reason"]
    email = next(r for r in rows(database_url, welcome.id) if r["channel"] == "email")
    assert email["status"] == "failed" and email["attempts"] == 3
    assert sink.messages == []


def test_opting_out_or_withholding_consent_suppresses_email(
    start_notify, sink, amqp_uri, spy, token_for
):
    base_url, database_url = start_notify()
    sent = spy("notify", "notification.sent")
    opted_out = registered()
    returnee_id = opted_out.data["returnee_id"]
    put = requests.put(
        f"{base_url}/recipients/{returnee_id}/preferences",
        json={"opt_outs": [{"channel": "email", "topic": "welcome"}]},
        headers=token_for("returnee", returnee_id),
    )
    assert put.status_code == 200, put.text
    no_consent = registered(notifications=False)
    publish_events(amqp_uri, [opted_out, no_consent])

    for welcome in (opted_out, no_consent):
        sent.wait_for(
            "notification.sent",
            lambda e, w=welcome: e.data["channel"] == "in_app" and e.data["event_id"] == w.id,
        )
    time.sleep(1.5)
    assert sink.messages == []
    by_channel = {r["channel"]: r for r in rows(database_url, opted_out.id)}
    assert by_channel["email"]["status"] == "suppressed"
    assert by_channel["email"]["reason"] == "opted out of welcome by email"
    assert by_channel["in_app"]["status"] == "sent"
    assert {r["channel"]: r["status"] for r in rows(database_url, no_consent.id)} == {
        "email": "suppressed",
        "in_app": "sent",
    }
    shown = inbox(base_url, returnee_id, token_for, channel="email")
    assert [(e["status"], e["reason"]) for e in shown] == [
        ("suppressed", "opted out of welcome by email")
    ]


def test_quiet_hours_defer_email_until_they_end(start_notify, sink, amqp_uri, spy, token_for):
    base_url, database_url = start_notify()
    sent = spy("notify", "notification.sent")
    welcome = registered()
    returnee_id = welcome.data["returnee_id"]
    now = datetime.now(SHANGHAI)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "Asia/Shanghai",
    }
    prefs_url = f"{base_url}/recipients/{returnee_id}/preferences"
    headers = token_for("returnee", returnee_id)
    assert requests.put(prefs_url, json={"quiet_hours": quiet}, headers=headers).status_code == 200
    assert (
        requests.get(prefs_url, headers=headers)
        .json()["quiet_hours"]["end"]
        .startswith(quiet["end"])
    )
    publish_events(amqp_uri, [welcome])

    sent.wait_for("notification.sent", lambda e: e.data["channel"] == "in_app")  # not deferred
    held = wait_until(
        lambda: [r for r in rows(database_url, welcome.id) if r["held_for_quiet_hours"]]
    )
    assert held[0]["channel"] == "email" and held[0]["status"] == "queued"
    assert held[0]["next_attempt_at"] > datetime.now(SHANGHAI) + timedelta(minutes=55)
    time.sleep(1.5)
    assert sink.messages == []

    # Quiet hours lifted: the held message goes out, it was never dropped.
    assert requests.put(prefs_url, json={"quiet_hours": None}, headers=headers).status_code == 200
    sink.wait_for(1)
    assert sink.to(welcome.data["email"])


def test_a_failing_webhook_is_retried_then_its_subscription_disabled(
    start_notify, receiver, amqp_uri, spy, token_for
):
    base_url, database_url = start_notify(WEBHOOK_MAX_FAILURES=3, DELIVERY_MAX_ATTEMPTS=10)
    disabled = spy("notify", "subscription.disabled", "notification.failed")
    receiver.status = 503
    created = requests.post(
        f"{base_url}/subscriptions",
        json={"url": receiver.url, "event_types": ["returnee.registered"], "secret": "s" * 20},
        headers=token_for("admin"),
    ).json()
    welcome = registered()
    publish_events(amqp_uri, [welcome])

    report = disabled.wait_for("subscription.disabled", timeout=20)
    assert report.data["subscription_id"] == created["id"] and report.data["failures"] == 3
    # The subscriber reads the kind of failure; the operator its text, in the row.
    assert report.data["reason"] == "3 consecutive failed deliveries; last: http_error"
    failed = disabled.wait_for("notification.failed", lambda e: e.data["channel"] == "webhook")
    assert failed.data["event_id"] == welcome.id
    assert len(receiver.received) == 3
    listed = requests.get(f"{base_url}/subscriptions", headers=token_for("admin")).json()
    assert [(s["id"], s["active"], s["failure_category"]) for s in listed] == [
        (created["id"], False, "http_error")]  # fmt: skip
    assert query(database_url, "SELECT last_error FROM notifications WHERE channel = 'webhook'"
                 )[0]["last_error"] == "HTTP 503"  # fmt: skip

    # A disabled subscription gets nothing more.
    later = registered()
    publish_events(amqp_uri, [later])
    handled(database_url, later)
    assert len(receiver.received) == 3
    assert (
        query(database_url, "SELECT count(*) AS n FROM notifications WHERE channel='webhook'")[0][
            "n"
        ]
        == 1
    )


def test_matches_found_within_the_window_become_one_digest_email(
    start_notify, sink, amqp_uri, token_for
):
    _, database_url = start_notify(DIGEST_WINDOW_SECONDS=3)
    welcome = registered("en")
    returnee_id = welcome.data["returnee_id"]
    organization = example("organization.registered").data
    fx = example("resource.published").data
    office = {**fx, "resource_id": str(uuid.uuid4()), "title": "Free office space at Linkong",
              "kind": "office_space", "needs_served": ["office_space"]}  # fmt: skip
    proposals = []
    for resource in (fx, office):
        match = {**example("matches.proposed").data["matches"][0],
                 "match_id": str(uuid.uuid4()), "resource_id": resource["resource_id"]}  # fmt: skip
        proposals.append(
            event(
                "matching",
                "matches.proposed",
                returnee_id,
                returnee_id=returnee_id,
                matches=[match],
                added_resource_ids=[resource["resource_id"]],
                removed_resource_ids=[],
            )  # fmt: skip
        )
    publish_events(
        amqp_uri,
        [
            welcome,
            event(
                "accounts",
                "organization.registered",
                organization["organization_id"],
                **organization,
            ),  # fmt: skip
        ],
    )
    sink.wait_for(1)
    resources = [
        event("matching", "resource.published", fx["resource_id"], **fx),
        event("matching", "resource.published", office["resource_id"], **office),
    ]
    publish_events(amqp_uri, resources)
    handled(database_url, *resources)  # the titles are known before the proposals name them
    publish_events(amqp_uri, proposals)

    messages = sink.wait_for(2, timeout=20)
    time.sleep(1.5)
    digest = [m for m in sink.messages if "match" in m["Subject"]]
    assert len(digest) == 1 and digest[0]["Subject"] == "2 new resources match your needs"
    text = digest[0].get_body(("plain",)).get_content()
    assert "Cross-border settlement" in text and "Free office space at Linkong" in text
    assert "ICBC Shanghai Changning Sub-branch" in text
    assert len(messages) == 2
    statuses = query(
        database_url,
        "SELECT channel, status FROM notifications WHERE template = 'matches_found'"
        " ORDER BY channel, status",
    )
    assert [(r["channel"], r["status"]) for r in statuses] == [
        ("email", "sent"),
        ("email", "sent"),
        ("in_app", "sent"),
        ("in_app", "sent"),
    ]


def test_an_assessment_that_overtakes_the_registration_waits_for_it(
    start_notify, amqp_uri, token_for
):
    # consulting's event can reach notify before accounts' registration does: it waits, stored,
    # and is announced as soon as the registration is taken in; nothing is dropped or retried.
    base_url, database_url = start_notify()
    welcome = registered()
    returnee_id = welcome.data["returnee_id"]
    data = {**example("eligibility.assessed").data, "returnee_id": returnee_id}
    assessed = event("consulting", "eligibility.assessed", returnee_id, **data)
    publish_events(amqp_uri, [assessed])
    waiting = "SELECT event_id, returnee_id FROM waiting_events"
    wait_until(lambda: query(database_url, waiting), 15, message="the assessment waiting")
    assert [(str(r["event_id"]), str(r["returnee_id"])) for r in query(database_url, waiting)] == [
        (assessed.id, returnee_id)
    ]
    assert inbox(base_url, returnee_id, token_for) == []

    publish_events(amqp_uri, [welcome])
    wait_until(
        lambda: (
            {n["template"] for n in inbox(base_url, returnee_id, token_for)}
            == {"welcome", "policies_eligible"}
        ),
        20,
    )
    assert query(database_url, waiting) == []
    announced = query(
        database_url,
        "SELECT template, channel FROM notifications WHERE recipient_id = %s"
        " AND event_id = %s ORDER BY channel",
        (returnee_id, assessed.id),
    )
    assert [(r["template"], r["channel"]) for r in announced] == [
        ("policies_eligible", "email"),
        ("policies_eligible", "in_app"),
    ]


def test_an_event_waiting_for_an_erased_returnee_is_forgotten(start_notify, amqp_uri):
    _, database_url = start_notify()
    returnee_id = str(uuid.uuid4())
    data = {**example("eligibility.assessed").data, "returnee_id": returnee_id}
    publish_events(amqp_uri, [event("consulting", "eligibility.assessed", returnee_id, **data)])
    waiting = "SELECT 1 FROM waiting_events WHERE returnee_id = %s"
    wait_until(lambda: query(database_url, waiting, (returnee_id,)), 15)
    erased = event("accounts", "returnee.erased", returnee_id, returnee_id=returnee_id)
    publish_events(amqp_uri, [erased])
    wait_until(lambda: not query(database_url, waiting, (returnee_id,)), 15)
    # A later copy of the registration (redelivered, or late) brings nothing back.
    late = registered(returnee_id=returnee_id)
    publish_events(amqp_uri, [late])
    handled = "SELECT 1 FROM inbox WHERE event_id = %s"
    wait_until(lambda: query(database_url, handled, (late.id,)), 15)
    assert query(database_url, "SELECT 1 FROM notifications WHERE recipient_id = %s",
                 (returnee_id,)) == []  # fmt: skip


def test_sla_breach_reaches_the_advisor_in_their_language(start_notify, sink, amqp_uri):
    _, database_url = start_notify()
    advisor_id = str(uuid.uuid4())
    staff = event("accounts", "staff.registered", advisor_id, staff_id=advisor_id,
                  email="zhang.min@station.example.cn", name="Zhang Min", role="advisor",
                  organization_id=None, locale="en")  # fmt: skip
    breach = example("consultation.sla_breached").data
    publish_events(amqp_uri, [staff])
    handled(database_url, staff)  # the advisor is in the directory before the breach
    publish_events(
        amqp_uri,
        [
            event(
                "consulting",
                "consultation.sla_breached",
                breach["consultation_id"],
                **{**breach, "advisor_id": advisor_id},
            )
        ],  # fmt: skip
    )
    mail = sink.wait_for(1)[0]
    assert "zhang.min@station.example.cn" in mail["To"]
    assert mail["Subject"] == "Consultation overdue: please act now (funding)"
    assert "2026-11-28 09:30" in mail.get_body(("plain",)).get_content()


def test_erasure_deletes_the_inbox_and_the_directory_entry(
    start_notify, sink, amqp_uri, spy, token_for
):
    base_url, database_url = start_notify()
    sent = spy("notify", "notification.sent")
    welcome = registered()
    returnee_id = welcome.data["returnee_id"]
    publish_events(amqp_uri, [welcome])
    sent.wait_for("notification.sent", lambda e: e.data["channel"] == "email")
    assert len(inbox(base_url, returnee_id, token_for)) == 2

    erased = event("accounts", "returnee.erased", returnee_id, returnee_id=returnee_id)
    publish_events(amqp_uri, [erased])
    wait_until(lambda: not inbox(base_url, returnee_id, token_for))
    assert query(database_url, "SELECT 1 FROM recipients WHERE id = %s", (returnee_id,)) == []

    # A late profile update cannot bring the person back.
    late = event(
        "accounts", "returnee.updated", returnee_id, **dict(welcome.data, changed_fields=["name"])
    )
    publish_events(amqp_uri, [late])
    handled(database_url, late)
    assert query(database_url, "SELECT 1 FROM recipients WHERE id = %s", (returnee_id,)) == []


def test_who_may_read_and_change_what(start_notify, token_for):
    base_url, _ = start_notify()
    me = str(uuid.uuid4())
    mine = {"recipient_id": me}
    assert requests.get(f"{base_url}/notifications", params=mine).status_code == 401
    other = requests.get(
        f"{base_url}/notifications", params=mine, headers=token_for("returnee", str(uuid.uuid4()))
    )
    assert other.status_code == 403
    advisor = requests.get(f"{base_url}/notifications", params=mine, headers=token_for("advisor"))
    assert advisor.status_code == 403
    assert (
        requests.get(
            f"{base_url}/notifications", params=mine, headers=token_for("admin")
        ).status_code
        == 200
    )
    prefs = f"{base_url}/recipients/{me}/preferences"
    assert requests.get(prefs).status_code == 401
    assert requests.get(prefs, headers=token_for("returnee", str(uuid.uuid4()))).status_code == 403
    assert requests.put(prefs, json={}, headers=token_for("provider")).status_code == 403
    assert requests.get(prefs, headers=token_for("admin")).json() == {
        "recipient_id": me,
        "opt_outs": [],
        "quiet_hours": None,
    }
    subscription = {"url": "http://127.0.0.1:9/hook", "event_types": ["matches.proposed"],
                    "secret": "x" * 16}  # fmt: skip
    assert requests.post(f"{base_url}/subscriptions", json=subscription).status_code == 401
    assert (
        requests.post(
            f"{base_url}/subscriptions", json=subscription, headers=token_for("returnee", me)
        ).status_code
        == 403
    )
    assert (
        requests.get(f"{base_url}/subscriptions", headers=token_for("advisor")).status_code == 403
    )
    assert (
        requests.delete(
            f"{base_url}/subscriptions/{uuid.uuid4()}", headers=token_for("admin")
        ).status_code
        == 404
    )


def test_bad_input_gets_field_errors_in_the_callers_language(start_notify, token_for):
    base_url, _ = start_notify()
    me = str(uuid.uuid4())
    headers = {**token_for("returnee", me), "Accept-Language": "zh-CN"}
    bad = requests.put(
        f"{base_url}/recipients/{me}/preferences",
        json={
            "opt_outs": [{"channel": "pigeon", "topic": "welcome"}],
            "quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "Mars/Base"},
        },
        headers=headers,
    )
    assert bad.status_code == 400
    fields = bad.json()["fields"]
    assert fields["opt_outs"]["0"]["channel"][0].startswith("必须是以下之一")
    assert "start" in fields["quiet_hours"]
    zone = requests.put(
        f"{base_url}/recipients/{me}/preferences",
        json={"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}},
        headers=headers,
    )
    assert zone.status_code == 400
    assert zone.json()["fields"] == {"quiet_hours": {"timezone": ["未知的时区。"]}}
    subscription = requests.post(
        f"{base_url}/subscriptions",
        json={"url": "ftp://x", "event_types": ["notification.sent"], "secret": "short"},
        headers=token_for("admin"),
    )
    assert subscription.status_code == 400
    assert set(subscription.json()["fields"]) == {"url", "event_types", "secret"}
    query_error = requests.get(
        f"{base_url}/notifications", params={"recipient_id": "nope"}, headers=token_for("admin")
    )
    assert query_error.status_code == 400 and "recipient_id" in query_error.json()["fields"]


def test_openapi_document_is_valid(start_notify):
    from openapi_spec_validator import validate as validate_openapi

    base_url, _ = start_notify()
    document = requests.get(f"{base_url}/openapi.json").json()
    validate_openapi(document)
    assert {"/notifications", "/recipients/{recipient_id}/preferences", "/subscriptions"} <= set(
        document["paths"]
    )


def test_two_replicas_send_each_message_exactly_once(container_factory, config_for, sink, amqp_uri):
    config = config_for(
        "notify",
        SMTP_HOST=sink.host,
        SMTP_PORT=sink.port,
        DIGEST_WINDOW_SECONDS=0,
        DELIVERY_BATCH_SIZE=4,
    )
    for _ in range(2):
        container_factory(NotifyService, config).start()
    registrations = [registered() for _ in range(30)]
    publish_events(amqp_uri, registrations + registrations[:10])  # some delivered twice

    sink.wait_for(30)
    time.sleep(2)
    assert sorted(m["To"].addresses[0].addr_spec for m in sink.messages) == sorted(
        r.data["email"] for r in registrations
    )
    assert query(config["DATABASE_URL"], "SELECT count(*) AS n FROM notifications")[0]["n"] == 60


def test_topics_are_seeded_idempotently_and_listed_in_the_callers_language(start_notify):
    from chassis.pool import ConnectionPool
    from services.notify.seed import seed

    base_url, database_url = start_notify()
    pool = ConnectionPool(database_url, 1)
    try:
        assert seed(pool) == seed(pool) == 14
    finally:
        pool.clear()
    assert query(database_url, "SELECT count(*) AS n FROM topics")[0]["n"] == 14
    en = requests.get(f"{base_url}/topics").json()
    zh = requests.get(f"{base_url}/topics", headers={"Accept-Language": "zh-CN"}).json()
    assert [t["name"] for t in en] == [t["name"] for t in zh]
    assert en[1]["label"] == "New matches" and zh[1]["label"] == "新匹配资源"
    assert en[-1]["channels"] == ["email"]  # the organizers' digest of registrations


# --- appointment reminders ----------------------------------------------------------------------
# With APPOINTMENT_REMINDER_HOURS=1, an appointment starting in an hour and a few seconds is
# booked before its reminder window opens, and its reminder comes due a few seconds later.


def booking(returnee_id, lead_seconds=4.0, cancelled_by=None):
    starts = datetime.now(SHANGHAI) + timedelta(hours=1, seconds=lead_seconds)
    data = {
        **example("appointment.booked").data,
        "appointment_id": str(uuid.uuid4()),
        "slot_id": str(uuid.uuid4()),
        "returnee_id": returnee_id,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(minutes=30)).isoformat(),
    }
    return event("consulting", "appointment.booked", data["appointment_id"], **data)


def cancellation(booked):
    data = {**booked.data, "cancelled_by": "returnee"}
    return event("consulting", "appointment.cancelled", data["appointment_id"], **data)


def reminders(database_url, appointment_id=None):
    sql = (
        "SELECT context->>'appointment_id' AS appointment_id, channel, status, reason, event_id,"
        " event_type, held_for_quiet_hours FROM notifications"
        " WHERE template = 'appointment_reminder'"
    )
    params = ()
    if appointment_id:
        sql += " AND context->>'appointment_id' = %s"
        params = (appointment_id,)
    return query(database_url, sql + " ORDER BY 1, channel", params)


def activity_events(lead_seconds: float) -> list:
    """Events that make every activity template (with ACTIVITY_REMINDER_HOURS=1): an invitation
    and a confirmation for an activity whose reminder comes due in `lead_seconds` (organized by
    ICBC, whose provider hears of the registration), a promotion from the waitlist for another
    activity, and that one's cancellation (last: it needs the registration taken in)."""
    starts = datetime.now(UTC) + timedelta(hours=1, seconds=lead_seconds)
    summary = {
        **example("registration.confirmed").data["activity"],
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        "organizer_ids": [ICBC],
    }
    reminded, cancelled = str(uuid.uuid4()), str(uuid.uuid4())

    def confirmed(activity_id, **changes):
        data = {**example("registration.confirmed").data, "activity_id": activity_id,
                "registration_id": str(uuid.uuid4()), "activity": summary, **changes}  # fmt: skip
        return event("activities", "registration.confirmed", data["registration_id"], **data)

    invitation = {"activity_id": reminded, "returnee_id": RETURNEE, "activity": summary}
    return [
        event("activities", "invitation.issued", RETURNEE, **invitation),
        confirmed(reminded),
        confirmed(cancelled, promoted=True),
        event(
            "activities",
            "activity.cancelled",
            cancelled,
            activity_id=cancelled,
            cancelled_by="advisor",
        ),  # fmt: skip
    ]


def all_settled(found):
    """The rows when none is queued (or, an SMS, waiting for its receipt) any more, else None
    (to wait on)."""
    return (
        found if found and all(r["status"] not in ("queued", "accepted") for r in found) else None
    )


def reminder_mails(sink):
    return [m for m in sink.messages if m["Subject"].startswith("Reminder")]


def test_a_booked_appointment_is_reminded_once_when_due_and_erasure_forgets_it(
    start_notify, sink, amqp_uri, spy, token_for
):
    base_url, database_url = start_notify(APPOINTMENT_REMINDER_HOURS=1)
    sent = spy("notify", "notification.sent")
    welcome = registered("en")
    returnee_id = welcome.data["returnee_id"]
    publish_events(amqp_uri, [welcome])
    sink.wait_for(1)
    booked = booking(returnee_id, lead_seconds=6)
    publish_events(amqp_uri, [booked, booked])  # delivered twice

    sink.wait_for(2)  # the confirmation, at once
    assert [m["Subject"] for m in sink.messages][1].startswith("Appointment confirmed")
    assert reminders(database_url) == []  # not due yet
    reminder = sent.wait_for(
        "notification.sent",
        lambda e: e.data["template"] == "appointment_reminder" and e.data["channel"] == "email",
        timeout=30,
    )
    [mail] = reminder_mails(sink)
    starts = datetime.fromisoformat(booked.data["starts_at"]).astimezone(SHANGHAI)
    assert mail["Subject"] == f"Reminder: your appointment at {starts:%Y-%m-%d %H:%M}"
    assert "room 201" in mail.get_body(("plain",)).get_content()
    assert mail.get_body(("html",)).get_content().startswith("<!DOCTYPE html>")
    assert reminder.data["event_type"] == "appointment.reminder_due"
    # Sent well before the appointment: about when it was due, an hour ahead of it.
    assert datetime.now(SHANGHAI) < starts - timedelta(minutes=59)
    rows_ = wait_until(lambda: all_settled(reminders(database_url)))
    assert [(r["channel"], r["status"]) for r in rows_] == [
        ("email", "sent"),
        ("in_app", "sent"),
        ("sms", "sent"),
    ]
    assert {r["event_id"] for r in rows_} == {reminder.data["event_id"]}
    assert reminder.data["event_id"] not in (welcome.id, booked.id)
    [kept] = query(
        database_url, "SELECT reminder FROM appointments WHERE returnee_id = %s", (returnee_id,)
    )
    assert kept["reminder"] == "queued"
    in_app = [
        n
        for n in inbox(base_url, returnee_id, token_for, channel="in_app")
        if n["template"] == "appointment_reminder"
    ]
    assert len(in_app) == 1 and in_app[0]["subject"] == mail["Subject"]

    time.sleep(7)  # more than a timer interval: no second reminder
    assert len(reminder_mails(sink)) == 1 and len(reminders(database_url)) == 3

    erased = event("accounts", "returnee.erased", returnee_id, returnee_id=returnee_id)
    publish_events(amqp_uri, [erased])
    wait_until(lambda: not inbox(base_url, returnee_id, token_for))
    assert (
        query(database_url, "SELECT 1 FROM appointments WHERE returnee_id = %s", (returnee_id,))
        == []
    )
    assert reminders(database_url) == []


def test_cancelled_appointments_get_no_reminder_and_quiet_hours_hold_reminders(
    start_notify, sink, amqp_uri, spy, token_for
):
    base_url, database_url = start_notify(APPOINTMENT_REMINDER_HOURS=1)
    sent = spy("notify", "notification.sent")
    welcome = registered()
    returnee_id = welcome.data["returnee_id"]
    now = datetime.now(SHANGHAI)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
        "timezone": "Asia/Shanghai",
    }
    put = requests.put(
        f"{base_url}/recipients/{returnee_id}/preferences",
        json={"quiet_hours": quiet},
        headers=token_for("returnee", returnee_id),
    )
    assert put.status_code == 200, put.text
    kept, cancelled, reordered = (booking(returnee_id) for _ in range(3))
    publish_events(amqp_uri, [welcome])
    sent.wait_for("notification.sent", lambda e: e.data["template"] == "welcome")
    first = [kept, cancelled, cancellation(cancelled), cancellation(reordered)]
    publish_events(amqp_uri, first)
    # A booking that arrives after its cancellation (retries reorder events) stays cancelled:
    # the cancellation is taken in before the booking is even published.
    handled(database_url, *first)
    publish_events(amqp_uri, [reordered])

    # The inbox is not held by quiet hours; email and SMS are, as for any notification.
    sent.wait_for(
        "notification.sent",
        lambda e: e.data["template"] == "appointment_reminder" and e.data["channel"] == "in_app",
        timeout=30,
    )
    kept_id = kept.data["appointment_id"]
    held = wait_until(
        lambda: [r for r in reminders(database_url, kept_id) if r["held_for_quiet_hours"]]
    )
    assert {r["channel"] for r in held} == {"email", "sms"}
    assert all(r["status"] == "queued" for r in held)
    time.sleep(6)  # more than a timer interval past the others' due time
    assert {r["appointment_id"] for r in reminders(database_url)} == {kept_id}
    outcomes = query(
        database_url,
        "SELECT id::text, reminder, cancelled_at IS NOT NULL AS cancelled FROM appointments",
    )
    assert {r["id"]: (r["reminder"], r["cancelled"]) for r in outcomes} == {
        kept_id: ("queued", False),
        cancelled.data["appointment_id"]: (None, True),
        reordered.data["appointment_id"]: (None, True),
    }

    # Cancelled while its reminder waits for quiet hours to end: the reminder is not sent.
    publish_events(amqp_uri, [cancellation(kept)])
    settled = wait_until(lambda: all_settled(reminders(database_url, kept_id)))
    assert [(r["channel"], r["status"], r["reason"]) for r in settled] == [
        ("email", "suppressed", "appointment cancelled"),
        ("in_app", "sent", None),
        ("sms", "suppressed", "appointment cancelled"),
    ]
    requests.put(
        f"{base_url}/recipients/{returnee_id}/preferences",
        json={"quiet_hours": None},
        headers=token_for("returnee", returnee_id),
    )
    sink.wait_for(1)  # the held welcome goes out once quiet hours are lifted...
    time.sleep(1.5)
    assert reminder_mails(sink) == []  # ...and no reminder


def test_two_replicas_queue_each_reminder_once(container_factory, config_for, sink, amqp_uri):
    config = config_for(
        "notify",
        SMTP_HOST=sink.host,
        SMTP_PORT=sink.port,
        DIGEST_WINDOW_SECONDS=0,
        DELIVERY_BATCH_SIZE=2,  # reminders are claimed in batches this size too
        APPOINTMENT_REMINDER_HOURS=1,
    )
    for _ in range(2):
        container_factory(NotifyService, config).start()
    welcome = registered("en")
    returnee_id = welcome.data["returnee_id"]
    publish_events(amqp_uri, [welcome])
    sink.wait_for(1)
    bookings = [booking(returnee_id, lead_seconds=3 + i / 10) for i in range(8)]
    publish_events(amqp_uri, bookings + bookings[:3])  # some delivered twice

    wait_until(lambda: len(reminder_mails(sink)) >= 8, timeout=30)
    time.sleep(7)  # more than a timer interval: nothing more
    assert len(reminder_mails(sink)) == 8
    rows_ = reminders(config["DATABASE_URL"])
    assert len(rows_) == 24
    assert {r["appointment_id"] for r in rows_} == {b.data["appointment_id"] for b in bookings}
    assert (
        query(
            config["DATABASE_URL"],
            "SELECT count(*) AS n FROM appointments WHERE reminder = 'queued'",
        )[0]["n"]
        == 8
    )


def test_the_mailer_keeps_its_smtp_session_and_replaces_a_dropped_one(sink):
    mailer = SmtpMailer(SmtpSettings(sink.host, sink.port, "Station <noreply@station.example>"))

    def mail(n):
        return mailer.message(f"r{n}@example.com", "", f"message {n}", "text", None, str(n))

    try:
        assert all(mailer.send(mail(n)).delivered for n in range(5))
        assert sink.sessions == 1
        sink.hang_up()  # as a server does with a session idle for too long
        assert mailer.send(mail(5)).delivered  # at once, not after a failed attempt
        assert sink.sessions == 2
        assert [m["Subject"] for m in sink.messages] == [f"message {n}" for n in range(6)]
    finally:
        mailer.close()


def test_the_mailer_sends_chinese_headers_and_internationalised_addresses(sink):
    mailer = SmtpMailer(
        SmtpSettings(sink.host, sink.port, "长宁区海归创业服务站 <noreply@station.example>")
    )
    subject = "欢迎来到长宁区海归创业服务平台：您的注册已经完成，以下是为您匹配的资源与政策"
    try:
        for n, to in enumerate(("liwei@example.com", "李伟@例子.中国")):
            mail = mailer.message(to, "李伟", subject, "您好", "<p>您好</p>", f"id-{n}")
            assert mailer.send(mail).delivered
    finally:
        mailer.close()
    assert [recipients for _, recipients in sink.envelopes] == [
        ["liwei@example.com"],
        ["李伟@例子.中国"],
    ]
    for n, message in enumerate(sink.messages):
        assert message["From"] == "长宁区海归创业服务站 <noreply@station.example>"
        assert message["Subject"] == subject
        assert message["To"].startswith("李伟 <")
        assert message["Message-ID"] == f"<id-{n}@station.example>"
        assert message.get_body(("plain",)).get_content().strip() == "您好"
        assert message.get_body(("html",)).get_content().strip() == "<p>您好</p>"


STATION = "Station <noreply@station.example>"


def certificate(directory, name: str) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    issued = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    certificate_file.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certificate_file), str(key_file)


@pytest.fixture
def relay():
    """Starts mail sinks that ask for what a real relay asks for: TLS, a login, known mailboxes."""
    started = []

    def start(**options) -> SmtpSink:
        started.append(SmtpSink(**options).start())
        return started[-1]

    yield start
    for sink in started:
        sink.stop()


@pytest.fixture
def mailer_for():
    made = []

    def make(sink: SmtpSink, **settings) -> SmtpMailer:
        made.append(SmtpMailer(SmtpSettings(sink.host, sink.port, STATION, **settings)))
        return made[-1]

    yield make
    for mailer in made:
        mailer.close()


def mail(mailer: SmtpMailer, n: int, to: str = "liwei@example.com"):
    return mailer.message(to, "", f"message {n}", "text", None, f"id-{n}")


def test_the_mailer_upgrades_to_tls_and_logs_in_before_sending(relay, mailer_for, tmp_path):
    certificate_file, key_file = certificate(tmp_path, "relay")
    sink = relay(tls=(certificate_file, key_file), credentials={"notify": "mail-password"})
    login = {"starttls": True, "username": "notify", "password": "mail-password"}
    unchecked = mailer_for(sink, **login)  # smtplib's default: encrypted, certificate unchecked
    checked = mailer_for(sink, ca_file=certificate_file, **login)  # SMTP_CA_FILE: checked

    for n, mailer in enumerate((unchecked, checked, checked)):
        assert mailer.send(mail(mailer, n)) == DeliveryOutcome(True)
    assert sink.security == [(True, "notify")] * 3
    assert sink.sessions == 2  # the second message of `checked` went on its kept session


def test_a_certificate_the_ca_file_does_not_vouch_for_stops_the_mail(relay, mailer_for, tmp_path):
    sink = relay(tls=certificate(tmp_path, "relay"))
    mailer = mailer_for(sink, starttls=True, ca_file=certificate(tmp_path, "another")[0])

    outcome = mailer.send(mail(mailer, 0))

    assert not outcome.delivered and outcome.transient  # the relay may get a proper certificate
    assert "certificate verify failed" in outcome.error
    assert sink.messages == []


def test_a_refused_login_fails_the_mail_for_good_and_says_why(relay, mailer_for):
    sink = relay(credentials={"notify": "mail-password"})
    wrong = mailer_for(sink, username="notify", password="guessed")
    anonymous = mailer_for(sink)

    assert wrong.send(mail(wrong, 0)) == DeliveryOutcome(
        False, transient=False, error="SMTP 535: 5.7.8 Authentication credentials invalid"
    )
    assert anonymous.send(mail(anonymous, 1)) == DeliveryOutcome(
        False, transient=False, error="SMTP 530: 5.7.0 Authentication required"
    )
    assert sink.messages == []


def test_a_refused_recipient_fails_for_good_and_the_session_carries_the_next_mail(
    relay, mailer_for
):
    sink = relay(refuse_recipients={"gone@example.com"})
    mailer = mailer_for(sink)

    refused = mailer.send(mail(mailer, 0, to="gone@example.com"))
    assert not refused.delivered and not refused.transient
    assert "550" in refused.error
    assert mailer.send(mail(mailer, 1)).delivered
    assert sink.envelopes == [("noreply@station.example", ["liwei@example.com"])]
    assert sink.security == [(False, None)]
    assert sink.sessions == 1


# --- promises of docs/notify.md ----------------------------------------------------------------


def test_a_consent_change_is_applied_only_if_newer_than_the_one_held(start_notify, amqp_uri):
    _, database_url = start_notify()
    welcome = registered()
    returnee_id = welcome.data["returnee_id"]

    def consent(granted: bool, after: timedelta):
        return event("accounts", "consent.changed", returnee_id, returnee_id=returnee_id,
                     purpose="notifications", granted=granted,
                     changed_at=(welcome.time + after).isoformat())  # fmt: skip

    withdrawn, stale = consent(False, timedelta(minutes=2)), consent(True, timedelta(minutes=1))
    publish_events(amqp_uri, [welcome])
    handled(database_url, welcome)
    publish_events(amqp_uri, [withdrawn])
    handled(database_url, withdrawn)
    publish_events(amqp_uri, [stale])  # given before the withdrawal, delivered after it
    handled(database_url, stale)
    data = {**example("eligibility.assessed").data, "returnee_id": returnee_id}
    assessed = event("consulting", "eligibility.assessed", returnee_id, **data)
    publish_events(amqp_uri, [assessed])
    handled(database_url, assessed)

    email = next(r for r in rows(database_url, assessed.id) if r["channel"] == "email")
    assert (email["status"], email["reason"]) == ("suppressed", "no consent to notifications")


def test_a_webhook_success_resets_the_failure_count_and_retries_keep_the_delivery_id(
    start_notify, receiver, amqp_uri, spy, token_for
):
    base_url, database_url = start_notify(WEBHOOK_MAX_FAILURES=3, DELIVERY_MAX_ATTEMPTS=10)
    sent = spy("notify", "notification.sent")
    created = requests.post(
        f"{base_url}/subscriptions",
        json={"url": receiver.url, "event_types": ["returnee.registered"], "secret": "s" * 20},
        headers=token_for("admin"),
    ).json()

    def delivered(welcome):
        return sent.wait_for(
            "notification.sent",
            lambda e: e.data["channel"] == "webhook" and e.data["event_id"] == welcome.id,
            timeout=20,
        )

    receiver.answers = [503, 503]  # two failures, then a success
    first = registered()
    publish_events(amqp_uri, [first])
    report = delivered(first)
    assert len(receiver.received) == 3
    # Every attempt of one delivery names it alike, so the receiver can tell a retry.
    assert {h["X-Platform-Delivery"] for h, _ in receiver.received} == {
        report.data["notification_id"]
    }
    assert {h["X-Platform-Event-Id"] for h, _ in receiver.received} == {first.id}
    failures = "SELECT consecutive_failures AS n FROM subscriptions WHERE id = %s"
    assert query(database_url, failures, (created["id"],)) == [{"n": 0}]

    # Two more failures: four in all, but never three in a row, so it stays enabled.
    receiver.answers = [503, 503]
    second = registered()
    publish_events(amqp_uri, [second])
    delivered(second)
    listed = requests.get(f"{base_url}/subscriptions", headers=token_for("admin")).json()
    assert [(s["id"], s["active"]) for s in listed] == [(created["id"], True)]


def leased(database_url, event_id, channel="email") -> dict | None:
    """The notification row when a replica has claimed it (its lease runs a while yet)."""
    found = query(
        database_url,
        "SELECT id, next_attempt_at FROM notifications WHERE event_id = %s AND channel = %s"
        " AND status = 'queued' AND next_attempt_at > now() + interval '1 second'",
        (event_id, channel),
    )
    return found[0] if found else None


def test_a_replica_that_dies_mid_send_leaves_its_message_to_another_after_the_lease(
    container_factory, config_for, sink, amqp_uri
):
    hang = StallingHop((sink.host, sink.port), stall=1000)
    try:
        config = config_for(
            "notify",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=hang.port,
            SMTP_TIMEOUT_SECONDS=60,
            DELIVERY_LEASE_SECONDS=3,
            DIGEST_WINDOW_SECONDS=0,
        )
        dying = container_factory(NotifyService, config)
        dying.start()
        welcome = registered()
        publish_events(amqp_uri, [welcome])
        claim = wait_until(
            lambda: hang.stalled and leased(config["DATABASE_URL"], welcome.id),
            message="the message claimed, its send hanging",
        )
        dying.kill()  # as kill -9 would: the claim stays, nothing is recorded

        survivor = {**config, "SMTP_HOST": sink.host, "SMTP_PORT": sink.port}
        container_factory(NotifyService, survivor).start()
        sink.wait_for(1, timeout=20)
        [row] = wait_until(
            lambda: query(
                config["DATABASE_URL"],
                "SELECT status, sent_at FROM notifications WHERE id = %s AND status = 'sent'",
                (claim["id"],),
            )
        )
        assert row["sent_at"] >= claim["next_attempt_at"]  # not before the lease ran out
        assert len(sink.to(welcome.data["email"])) == 1
    finally:
        hang.close()


def test_a_message_whose_lease_runs_out_in_a_slow_batch_is_released_not_sent_twice(
    container_factory, config_for, sink, amqp_uri, token_for
):
    # One replica claims two messages and sends them one at a time; the first send hangs past
    # the lease, so another replica sends both meanwhile. The slow one must then release the
    # second, not send it again.
    hop = StallingHop((sink.host, sink.port), stall=1)
    try:
        config = config_for(
            "notify",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=hop.port,
            SMTP_TIMEOUT_SECONDS=5,
            DELIVERY_LEASE_SECONDS=4,
            DELIVERY_CONCURRENCY=1,
            DIGEST_WINDOW_SECONDS=0,
        )
        database_url = config["DATABASE_URL"]
        slow = container_factory(NotifyService, config)
        slow.start()
        welcome = registered()
        returnee_id = welcome.data["returnee_id"]
        data = {**example("eligibility.assessed").data, "returnee_id": returnee_id}
        assessed = event("consulting", "eligibility.assessed", returnee_id, **data)
        # Quiet hours hold both emails, and lifting them makes both due in the same instant:
        # one pass claims the two together.
        prefs = f"{service_url(slow)}/recipients/{returnee_id}/preferences"
        headers = token_for("returnee", returnee_id)
        now = datetime.now(SHANGHAI)
        quiet = {
            "start": (now - timedelta(hours=1)).strftime("%H:%M"),
            "end": (now + timedelta(hours=1)).strftime("%H:%M"),
            "timezone": "Asia/Shanghai",
        }
        assert requests.put(prefs, json={"quiet_hours": quiet}, headers=headers).status_code == 200
        publish_events(amqp_uri, [welcome, assessed])
        held = "SELECT 1 FROM notifications WHERE channel = 'email' AND held_for_quiet_hours"
        wait_until(lambda: len(query(database_url, held)) == 2, message="both emails held")
        assert requests.put(prefs, json={"quiet_hours": None}, headers=headers).status_code == 200
        wait_until(
            lambda: hop.stalled and all(leased(database_url, e.id) for e in (welcome, assessed)),
            message="both claimed by the slow replica, the first send hanging",
        )

        other = {**config, "SMTP_HOST": sink.host, "SMTP_PORT": sink.port}
        container_factory(NotifyService, other).start()
        sent = "SELECT 1 FROM notifications WHERE channel = 'email' AND status = 'sent'"
        wait_until(lambda: len(query(database_url, sent)) == 2, timeout=30)
        # Stopping waits for the slow replica's pass: its hanging send times out a second after
        # the lease ended, and the second message's turn comes then, past its deadline.
        slow.stop()
        mails = sink.to(welcome.data["email"])
        assert len(mails) == 2, [m["Subject"] for m in mails]
        assert len({m["Message-ID"] for m in mails}) == 2
    finally:
        hop.close()


def test_health_probes_answer_while_events_hold_every_worker_they_may_take(start_notify, amqp_uri):
    max_workers, reserved = 4, 2
    # Batches of two: the ten events make more batches than events may have workers, so the
    # batch slots (one worker each) are what holds them back.
    base_url, database_url = start_notify(
        max_workers=max_workers, HTTP_RESERVED_WORKERS=reserved, EVENT_BATCH_SIZE=2
    )
    blocker = psycopg2.connect(database_url)
    try:
        with blocker.cursor() as cur:  # every handler of a registration waits on this lock
            cur.execute("LOCK TABLE recipients IN ACCESS EXCLUSIVE MODE")
        backlog = [registered() for _ in range(10)]
        publish_events(amqp_uri, backlog)
        waiting = (
            "SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE NOT l.granted AND d.datname = current_database()"
        )
        wait_until(
            lambda: query(database_url, waiting)[0]["n"] == max_workers - reserved,
            message="the handlers events may take, all stuck",
        )
        for path in ("/health/live", "/health/ready"):
            response = requests.get(f"{base_url}{path}", timeout=5)
            assert response.status_code == 200, (path, response.text)
        assert query(database_url, waiting)[0]["n"] == max_workers - reserved
    finally:
        blocker.rollback()
        blocker.close()
    handled(database_url, *backlog, timeout=30)


def test_an_email_refused_for_its_form_fails_for_good_and_is_logged_and_counted(
    relay, mailer_for, caplog
):
    sink = relay(refuse_recipients={"gone@example.com"})
    mailer = mailer_for(sink)

    def counted(code: str) -> float:
        labels = {"service": "notify", "code": code}
        return REGISTRY.get_sample_value("notify_email_malformed_total", labels) or 0.0

    before = counted("500")
    bare_lf = Mail(
        "liwei@example.com", b"Subject: bare LF\n\nas compat32 writes by default\n", "n-1"
    )
    overlong = Mail("liwei@example.com", b"Subject: long\r\n\r\n" + b"x" * 1200 + b"\r\n", "n-2")
    with caplog.at_level(logging.ERROR, logger="services.notify.channels"):
        outcomes = [mailer.send(m) for m in (bare_lf, overlong)]
        assert not mailer.send(mail(mailer, 3, to="gone@example.com")).delivered  # an address

    assert [(o.delivered, o.transient) for o in outcomes] == [(False, False)] * 2
    assert outcomes[1].error == "SMTP 500: Line too long (see RFC5321 4.5.3.1.6)"
    assert counted("500") == before + 2
    assert counted("550") == 0.0
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert errors[0].startswith("notification n-1: ") and "bare <CR> or <LF>" in errors[0]
    assert errors[1].startswith("notification n-2: ") and "Line too long" in errors[1]
    assert mailer.send(mail(mailer, 4)).delivered and len(sink.messages) == 1


def test_the_inbox_walks_page_by_page_with_notifications_arriving_between_pages(
    start_notify, token_for
):
    base_url, database_url = start_notify()
    person = str(uuid.uuid4())
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def arrive(when) -> str:
        notification_id = str(uuid.uuid4())
        query(
            database_url,
            "INSERT INTO notifications (id, recipient_id, channel, template, locale, body,"
            " status, event_id, event_type, created_at) VALUES (%s, %s, 'in_app', 'welcome',"
            " 'en', 'Welcome', 'sent', %s, 'returnee.registered', %s)",
            (notification_id, person, str(uuid.uuid4()), when),
        )
        return notification_id

    # ties on created_at: the id orders them
    first = {arrive(at) for _ in range(4)} | {arrive(at + timedelta(minutes=1)) for _ in range(3)}
    newer, older = [], []

    def between(n):  # newest first: a newer one is before the boundary, an older one past it
        newer.append(arrive(at + timedelta(hours=n)))
        older.append(arrive(at - timedelta(hours=n)))

    mine = {"recipient_id": person}
    headers = token_for("returnee", person)
    seen = walk_pages(f"{base_url}/notifications", headers, mine, limit=2, between=between)
    ids = [n["id"] for n in seen]
    assert first <= set(ids)  # none missed
    assert not set(newer) & set(ids)
    assert set(older[:-1]) <= set(ids)  # all but the one added after the last page
    assert [n["created_at"] for n in seen] == sorted((n["created_at"] for n in seen), reverse=True)
    refuses_bad_pages(f"{base_url}/notifications", headers, mine, accepted=200)
