"""The ways out by SMTP and webhooks (SMS: `aliyun_sms`; work messengers: `messengers`). Each
turns one attempt into a `DeliveryOutcome` saying whether it was delivered and, if not, whether
trying again later can help."""

import contextlib
import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr

import eventlet
import requests
from prometheus_client import Counter

from services.notify.destinations import DestinationRefused, GuardedAdapter
from services.notify.domain import (
    DELIVERY_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryOutcome,
    sign,
)

log = logging.getLogger(__name__)


# On the wire every line ends in CRLF (RFC 5321 2.3.8): strict servers refuse a bare LF, and a
# message with no CRLF at all reads as one line far over the 998 octets allowed. compat32's own
# line separator is a bare LF; `policy.SMTPUTF8`'s is CRLF already.
WIRE = policy.compat32.clone(linesep="\r\n")
# Replies to a command or message the server could not parse (RFC 5321 4.2.2, 4.5.3.1.6).
SYNTAX_REPLIES = frozenset({500, 501, 503, 504, 555})
MALFORMED = Counter(
    "notify_email_malformed_total",
    "Emails an SMTP server refused for their form (a syntax, protocol or content reply)",
    ["service", "code"],
)


@dataclass(frozen=True)
class Mail:
    """A message ready for the wire, the address it goes to and the notification it is."""

    recipient: str
    data: bytes
    notification_id: str = ""


def _mailbox(name: str, address: str, header: str) -> str | Header:
    """`Name <address>` for a compat32 header. A name that is not ASCII goes as encoded words of
    at most 75 characters each (RFC 2047), which fold anywhere: one word for the whole name, as
    `formataddr` makes, can pass the line limit (a name in Chinese has no space to fold at)."""
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))  # quoted where RFC 5322 asks
    mailbox = Header(name, "utf-8", header_name=header)
    mailbox.append(f"<{address}>", "us-ascii")
    return mailbox


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    starttls: bool = False
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0


class SmtpMailer:
    """Email over SMTP with a text and an HTML part.

    Connections are kept open between messages, up to `keep` of them (one SMTP session carries
    any number of messages): otherwise every message pays a TCP handshake, the greeting, EHLO and
    often TLS and a login. One idle for `IDLE_SECONDS` is closed rather than reused, as servers
    drop idle sessions; should a kept one turn out dropped anyway, the message goes on a new one.
    """

    IDLE_SECONDS = 30.0

    def __init__(self, settings: SmtpSettings, keep: int = 8):
        self.settings = settings
        self.keep = keep
        self._idle: list[tuple[float, smtplib.SMTP]] = []
        # Without a CA file, smtplib's default TLS context encrypts but checks no certificate.
        self._tls = (
            ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else None
        )
        name, self._envelope_sender = parseaddr(settings.sender)
        self._sender = _mailbox(name, self._envelope_sender, "From")
        self._domain = self._envelope_sender.rpartition("@")[2] or "returnee-platform"

    def message(self, to: str, name: str, subject: str, text: str, html: str | None,
                notification_id: str) -> Mail:  # fmt: skip
        if not to.isascii():
            return self._international(to, name, subject, text, html, notification_id)
        # The compat32 MIME classes: about a quarter of the CPU of `EmailMessage`, whose header
        # registry parses every header it is given (measured in docs/performance.md).
        message = MIMEText(text, "plain", "utf-8")
        if html:
            alternative = MIMEMultipart("alternative")
            alternative.attach(message)
            alternative.attach(MIMEText(html, "html", "utf-8"))
            message = alternative
        message["From"] = self._sender
        message["To"] = _mailbox(name, to, "To")
        message["Subject"] = (
            subject if subject.isascii() else Header(subject, "utf-8", header_name="Subject")
        )
        for header, value in self._identity(notification_id).items():
            message[header] = value
        return Mail(to, message.as_bytes(policy=WIRE), notification_id)

    def _international(self, to, name, subject, text, html, notification_id) -> Mail:
        """For an address that is not ASCII (RFC 6531): UTF-8 headers, sent with SMTPUTF8."""
        message = EmailMessage(policy=policy.SMTPUTF8)
        message["From"] = self.settings.sender
        message["To"] = f"{name} <{to}>" if name else to
        message["Subject"] = subject
        for header, value in self._identity(notification_id).items():
            message[header] = value
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        return Mail(to, message.as_bytes(), notification_id)

    def _identity(self, notification_id: str) -> dict[str, str]:
        # The same Message-ID for every send of the notification: a resend after a lost reply
        # (or a crash between the server's acceptance and our record of it) is recognisably
        # the same mail.
        return {
            "Date": formatdate(usegmt=True),
            "Message-ID": f"<{notification_id}@{self._domain}>",
            "X-Platform-Notification-Id": notification_id,
        }

    def send(self, mail: Mail) -> DeliveryOutcome:
        client = self._kept()
        try:
            if client is not None:
                try:
                    refused = self._transfer(client, mail)
                except (smtplib.SMTPServerDisconnected, ConnectionError):
                    # Dropped while idle: the server never took the message; a new session.
                    _close(client)
                    client = None
            if client is None:
                client = self._connect()
                refused = self._transfer(client, mail)
        except smtplib.SMTPRecipientsRefused as exc:
            self._put_back(client)  # smtplib reset the session: it can carry the next one
            for code, text in exc.recipients.values():
                _report_malformed(mail, code, text)
            codes = [code for code, _ in exc.recipients.values()]
            return _smtp_outcome(min(codes), f"recipient refused: {exc.recipients}")
        except smtplib.SMTPNotSupportedError as exc:
            self._put_back(client)
            return DeliveryOutcome(False, transient=False, error=f"SMTP server: {exc}")
        except smtplib.SMTPResponseException as exc:
            _close(client)
            _report_malformed(mail, exc.smtp_code, exc.smtp_error)
            return _smtp_outcome(exc.smtp_code, f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}")
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused, timeouts, dropped connections: the server may come back.
            _close(client)
            return DeliveryOutcome(False, transient=True, error=f"SMTP unreachable: {exc}")
        self._put_back(client)
        if refused:
            return DeliveryOutcome(False, transient=False, error=f"recipient refused: {refused}")
        return DeliveryOutcome(True)

    def _transfer(self, client: smtplib.SMTP, mail: Mail) -> dict:
        options = []
        if not (mail.recipient.isascii() and self._envelope_sender.isascii()):
            options = ["SMTPUTF8", "BODY=8BITMIME"]  # an internationalised address (RFC 6531)
        return client.sendmail(self._envelope_sender, [mail.recipient], mail.data, options)

    def close(self) -> None:
        while self._idle:
            _, client = self._idle.pop()
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            _close(client)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.starttls:
                client.starttls(context=self._tls)
            if s.username:
                client.login(s.username, s.password or "")
        except BaseException:
            _close(client)
            raise
        return client

    def _kept(self) -> smtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            since, client = self._idle.pop()
            if now - since < self.IDLE_SECONDS:
                return client
            _close(client)
        return None

    def _put_back(self, client: smtplib.SMTP | None) -> None:
        if client is None:
            return
        if len(self._idle) < self.keep:
            self._idle.append((time.monotonic(), client))
        else:
            _close(client)


def _close(client: smtplib.SMTP | None) -> None:
    if client is not None:
        with contextlib.suppress(OSError):
            client.close()


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _report_malformed(mail: Mail, code: int, text) -> None:
    """A refusal of the form of what we sent (a syntax reply of RFC 5321 4.2.2, or a protocol or
    content status of RFC 3463) is a defect of ours that fails every email alike, not a bad
    address: said at once in the log and the metric rather than only in the notification's row."""
    text = _text(text)
    if code in SYNTAX_REPLIES or (code >= 500 and text.startswith(("5.5.", "5.6."))):
        MALFORMED.labels("notify", str(code)).inc()
        # The server's words may quote the address: the log names the notification, not whom.
        said = text.replace(mail.recipient, "<recipient>") if mail.recipient else text
        log.error("notification %s: the SMTP server refused the email as malformed: %d %s",
                  mail.notification_id, code, said)  # fmt: skip


def _smtp_outcome(code: int, error: str) -> DeliveryOutcome:
    # 4xx replies are temporary by RFC 5321; 5xx are permanent.
    return DeliveryOutcome(False, transient=400 <= code < 500, error=error)


class WebhookPoster:
    """POSTs an event to a district system's URL, signed with the subscription's secret. Each
    connection goes only to a checked address (`destinations.GuardedAdapter`); redirects are
    not followed; the whole attempt takes at most `total_seconds` and at most
    `max_response_bytes` of the answer are read."""

    def __init__(self, timeout: float = 10.0, session: requests.Session | None = None,
                 allowed=(), allow_loopback: bool = False, total_seconds: float = 15.0,
                 max_response_bytes: int = 65536):  # fmt: skip
        self.timeout = timeout
        self.total_seconds = total_seconds
        self.max_response_bytes = max_response_bytes
        self.session = session or requests.Session()
        adapter = GuardedAdapter(allowed, allow_loopback)
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, adapter)

    def post(self, url: str, secret: str, body: bytes, event_id: str, event_type: str,
             delivery_id: str) -> DeliveryOutcome:  # fmt: skip
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "User-Agent": "returnee-platform-notify/1",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            EVENT_ID_HEADER: event_id,
            EVENT_TYPE_HEADER: event_type,
            DELIVERY_HEADER: delivery_id,
        }
        try:
            with eventlet.Timeout(self.total_seconds, TimeoutError("total time")):
                response = self.session.post(
                    url, data=body, headers=headers, timeout=self.timeout,
                    allow_redirects=False, stream=True,
                )  # fmt: skip
                with response:
                    answer = response.raw.read(self.max_response_bytes + 1, decode_content=False)
        except requests.ConnectionError as exc:
            refused = _refused(exc)
            if refused is not None:
                return DeliveryOutcome(False, transient=False, error=str(refused)[:500])
            return DeliveryOutcome(False, transient=True, error=f"unreachable: {exc}"[:500])
        except (requests.Timeout, TimeoutError) as exc:
            return DeliveryOutcome(False, transient=True, error=f"timeout: {exc}"[:500])
        except requests.RequestException as exc:
            return DeliveryOutcome(False, transient=True, error=f"unreachable: {exc}"[:500])
        if len(answer) > self.max_response_bytes:
            return DeliveryOutcome(
                False, transient=False,
                error=f"response too large: over {self.max_response_bytes} bytes",
            )  # fmt: skip
        if 200 <= response.status_code < 300:
            return DeliveryOutcome(True)
        # Throttling, timeouts and server errors may pass; other answers will not change.
        transient = response.status_code in (408, 425, 429) or response.status_code >= 500
        return DeliveryOutcome(False, transient=transient, error=f"HTTP {response.status_code}")


def _refused(exc: BaseException) -> DestinationRefused | None:
    """The destination check's refusal inside whatever requests and urllib3 wrapped it in."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DestinationRefused):
            return exc
        for nested in (getattr(exc, "reason", None), *getattr(exc, "args", ())):
            if isinstance(nested, BaseException):
                found = _refused(nested)
                if found is not None:
                    return found
        exc = exc.__cause__ or exc.__context__
    return None


# What a subscriber's API shows of a failure: its kind, never the raw text (which may describe
# the inside of a network); operators read the text in the notification row and the log.
FAILURE_CATEGORIES = (
    ("refused destination", "refused_destination"),
    ("unreachable", "unreachable"),
    ("timeout", "timeout"),
    ("response too large", "response_too_large"),
    ("HTTP ", "http_error"),
)


def failure_category(error: str | None) -> str | None:
    if not error:
        return None
    for prefix, category in FAILURE_CATEGORIES:
        if error.startswith(prefix):
            return category
    return "failed"
