"""A real SMTP server that keeps what it receives: the local mail sink of `make run` (as Mailpit
is in compose) and the mail server of the tests.

The SMTP side is aiosmtpd's, which holds a sender to RFC 5321 as a strict relay does: a line of
more than 1,000 octets fails the message with `500 Line too long`, and a message counts only once
its `<CRLF>.<CRLF>` arrived. On top of it the sink refuses, with `500 5.5.2`, a message holding a
bare LF or CR (as Postfix 3.9 and others do since the SMTP smuggling fixes) or a line of more
than 998 octets before its CRLF (RFC 5321 4.5.3.1.6; aiosmtpd lets one octet more through).
It keeps every accepted message parsed as an `email.message.EmailMessage` and counts sessions.
`outage(n)` makes it answer `451` to the next `n` MAIL commands, as a mail server in trouble
does, so senders must retry; `hang_up()` closes every open session, as a server does with idle
ones.

Like a real relay, and only when asked: `tls=(certfile, keyfile)` offers STARTTLS (RFC 3207);
`credentials={"user": "password"}` offers AUTH PLAIN and LOGIN (RFC 4954), over TLS only when
TLS is offered, and refuses mail from a session that has not authenticated;
`refuse_recipients` answers `550` to RCPT for those addresses. `security[i]` says how
`messages[i]` arrived: over TLS or not, and as which user, and `arrivals[i]` when
(`time.monotonic()` as the message was accepted: when a relay counts it against a quota).
`slow(seconds)` makes it take that long over each message before accepting it, the i-th
message `seconds[i % len(seconds)]`, as a busy relay does.

    python -m deploy.mail_sink [--smtp-port 1025] [--http-port 8025]

serves the caught messages as JSON on `GET /api/messages` for `make demo` and for people.
"""

import asyncio
import re
import ssl
import sys
import threading
import time
from collections.abc import Iterable
from email import policy
from email.parser import BytesParser
from typing import NamedTuple

from aiosmtpd.smtp import SMTP, AuthResult

# A CR or LF that is not part of a CRLF (RFC 5321 2.3.8).
BARE_NEWLINE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# Octets of a line of text before its CRLF (RFC 5321 4.5.3.1.6, RFC 5322 2.1.1).
MAX_LINE = 998


def _os_threading():
    """Under eventlet's monkey-patching (the tests) the server's asyncio loop runs in an OS thread
    of its own (where eventlet's select waits on that thread's hub): in a green thread it would
    share its OS thread's "running loop" with any other sink's, which asyncio refuses."""
    if "eventlet" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched("thread"):
            return patcher.original("threading")
    return threading


_threading = _os_threading()


class Security(NamedTuple):
    """How a kept message arrived."""

    tls: bool
    user: str | None


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 tls: tuple[str, str] | None = None, credentials: dict[str, str] | None = None,
                 refuse_recipients: Iterable[str] = ()):  # fmt: skip
        self.host, self.port = host, port
        self.messages: list = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.security: list[Security] = []
        self.arrivals: list[float] = []
        self.refused = 0
        self._delays: tuple[float, ...] = ()
        self._data_commands = 0
        self.sessions = 0
        self._open: dict = {}  # each session's protocol: its connection's own transport
        self._outage_left = 0
        self._lock = _threading.Lock()
        self._credentials = credentials
        self._refuse_recipients = frozenset(refuse_recipients)
        self._tls = None
        if tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self._loop = asyncio.SelectorEventLoop()
        self._server = None
        self._thread = _threading.Thread(target=self._serve, daemon=True)
        self._started = _threading.Event()
        self._failure: BaseException | None = None

    def start(self) -> "SmtpSink":
        self._thread.start()
        self._started.wait(10)
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        self._on_loop(self._close_all)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def outage(self, mail_commands: int) -> None:
        """Answer 451 to the next `mail_commands` MAIL FROM commands."""
        with self._lock:
            self._outage_left = mail_commands

    def slow(self, seconds: Iterable[float]) -> None:
        with self._lock:
            self._delays = tuple(seconds)

    def hang_up(self) -> None:
        """Close every open session."""
        self._on_loop(self._hang_up)

    def wait_for(self, count: int, timeout: float = 20.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} messages arrived, expected {count}")
            time.sleep(0.05)
        return self.messages

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["To"]]

    # --- the server's thread --------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                self._loop.create_server(self._session, self.host, self.port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        try:
            self._loop.run_forever()
            self._loop.run_until_complete(self._server.wait_closed())
            sessions = asyncio.all_tasks(self._loop)
            for session in sessions:
                session.cancel()
            self._loop.run_until_complete(asyncio.gather(*sessions, return_exceptions=True))
        finally:
            self._loop.close()

    def _session(self) -> SMTP:
        return _Session(
            self,
            hostname="sink.test",
            enable_SMTPUTF8=True,
            tls_context=self._tls,
            auth_required=self._credentials is not None,
            auth_require_tls=self._tls is not None,
            authenticator=self._authenticate if self._credentials is not None else None,
        )

    def _on_loop(self, function) -> None:
        """Run `function` in the server's thread and wait until it ran."""
        done = _threading.Event()

        def run():
            try:
                function()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    def _hang_up(self) -> None:
        for transport in self._open.values():
            transport.close()
        self._open.clear()

    def _close_all(self) -> None:
        self._server.close()
        self._hang_up()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        user = auth_data.login.decode(errors="replace")
        password = auth_data.password.decode(errors="replace")
        if self._credentials.get(user) != password:
            return AuthResult(success=False, handled=False)  # 535 5.7.8
        return AuthResult(success=True, auth_data=user)

    # aiosmtpd's handler hooks

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._lock:
            refuse = self._outage_left > 0
            if refuse:
                self._outage_left -= 1
                self.refused += 1
        if refuse:
            return "451 4.3.0 Temporary failure, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self._refuse_recipients:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content
        if BARE_NEWLINE.search(content):
            return "500 5.5.2 Error: bare <CR> or <LF> received (RFC 5321 2.3.8)"
        if any(len(line) > MAX_LINE for line in content.split(b"\r\n")):
            return "500 5.5.2 Line too long (see RFC5321 4.5.3.1.6)"
        with self._lock:
            delays, index = self._delays, self._data_commands
            self._data_commands += 1
        if delays:
            await asyncio.sleep(delays[index % len(delays)])
        message = BytesParser(policy=policy.default).parsebytes(content)
        user = session.auth_data if session.authenticated else None
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.security.append(Security(session.ssl is not None, user))
        return "250 2.0.0 queued"


class _Session(SMTP):
    """aiosmtpd's SMTP session, counted and kept by the sink so that it can hang up."""

    def __init__(self, sink: SmtpSink, **options):
        super().__init__(sink, **options)
        self._sink = sink

    def connection_made(self, transport) -> None:
        if self.transport is None:  # a new connection (not the same one going on over TLS)
            self._sink.sessions += 1
            self._sink._open[self] = transport
        super().connection_made(transport)

    def connection_lost(self, error) -> None:
        self._sink._open.pop(self, None)
        super().connection_lost(error)


def as_json(message) -> dict:
    text = message.get_body(("plain",))
    return {
        "to": message["To"],
        "from": message["From"],
        "subject": message["Subject"],
        "date": message["Date"],
        "text": text.get_content() if text is not None else "",
    }


def serve(smtp_port: int, http_port: int) -> None:
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sink = SmtpSink(port=smtp_port).start()

    class Api(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.rstrip("/") != "/api/messages":
                self.send_error(404)
                return
            with sink._lock:
                messages = list(sink.messages)
            body = json.dumps([as_json(m) for m in messages], ensure_ascii=False)
            payload = body.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    api = ThreadingHTTPServer(("127.0.0.1", http_port), Api)
    print(f"mail sink: SMTP on 127.0.0.1:{sink.port}, messages on "
          f"http://127.0.0.1:{api.server_address[1]}/api/messages", flush=True)  # fmt: skip
    api.serve_forever()


if __name__ == "__main__":
    import argparse

    from chassis.lifetime import stop_with_runner

    stop_with_runner("mail")
    parser = argparse.ArgumentParser(description="The local mail sink.")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    arguments = parser.parse_args()
    serve(arguments.smtp_port, arguments.http_port)
