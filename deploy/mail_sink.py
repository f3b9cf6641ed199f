"""A small real SMTP server that keeps what it receives: the local mail sink of `make run`
(as Mailpit is in compose) and the mail server of the tests.

Speaks EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT; keeps every accepted message parsed as
an `email.message.EmailMessage` and counts sessions. `outage(n)` makes it answer `451` to the
next `n` MAIL commands, as a mail server in trouble does, so senders must retry; `hang_up()`
closes every open session, as a server does with idle ones. Under eventlet's monkey-patching its
threads are green threads, which is all it needs.

Like a real relay, and only when asked: `tls=(certfile, keyfile)` offers STARTTLS (RFC 3207);
`credentials={"user": "password"}` offers AUTH PLAIN and LOGIN (RFC 4954) and refuses mail from
a session that has not authenticated; `refuse_recipients` answers `550` to RCPT for those
addresses. `security[i]` says how `messages[i]` arrived: over TLS or not, and as which user.

    python -m deploy.mail_sink [--smtp-port 1025] [--http-port 8025]

serves the caught messages as JSON on `GET /api/messages` for `make demo` and for people.
"""

import base64
import contextlib
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterable
from email import policy
from email.parser import BytesParser
from typing import NamedTuple


class Security(NamedTuple):
    """How a kept message arrived."""

    tls: bool
    user: str | None


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 tls: tuple[str, str] | None = None, credentials: dict[str, str] | None = None,
                 refuse_recipients: Iterable[str] = ()):  # fmt: skip
        sink = self
        self.messages: list = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.security: list[Security] = []
        self.refused = 0
        self.sessions = 0
        self._open: set = set()
        self._outage_left = 0
        self._lock = threading.Lock()
        self._tls = None
        if tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self._credentials = credentials
        self._refuse_recipients = frozenset(refuse_recipients)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with sink._lock:
                    sink.sessions += 1
                    sink._open.add(self.connection)
                try:
                    sink._converse(self)
                except OSError:
                    pass  # the client went away (or `hang_up`): nothing was accepted mid-way
                finally:
                    with sink._lock:
                        sink._open.discard(self.connection)

            def start_tls(self, context: ssl.SSLContext) -> None:
                """Go on over TLS: the plain socket's buffered reader and writer go with it."""
                self.rfile.close()
                self.wfile.close()
                plain = self.connection
                self.connection = context.wrap_socket(plain, server_side=True)
                with sink._lock:
                    sink._open.discard(plain)
                    sink._open.add(self.connection)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")

            def finish(self):
                super().finish()
                if self.connection is not self.request:
                    self.connection.close()  # the TLS socket, which the server does not know

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((host, port), Handler)
        self.host, self.port = self.server.server_address
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "SmtpSink":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def outage(self, mail_commands: int) -> None:
        """Answer 451 to the next `mail_commands` MAIL FROM commands."""
        with self._lock:
            self._outage_left = mail_commands

    def hang_up(self) -> None:
        """Close every open session."""
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def wait_for(self, count: int, timeout: float = 20.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} messages arrived, expected {count}")
            time.sleep(0.05)
        return self.messages

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["To"]]

    def _converse(self, conn) -> None:
        def reply(line: str) -> None:
            conn.wfile.write(f"{line}\r\n".encode())
            conn.wfile.flush()

        def answer(challenge: str) -> str:
            reply(f"334 {challenge}")
            raw = conn.rfile.readline()
            if not raw:
                raise ConnectionResetError("the client went away while authenticating")
            return raw.decode("ascii", errors="replace").strip()

        reply("220 sink.test ESMTP ready")
        greeted, tls, user = False, False, None
        sender, recipients = None, []
        while True:
            raw = conn.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                greeted, sender, recipients = True, None, []
                if verb == "EHLO":
                    extensions = ["sink.test", "8BITMIME", "SMTPUTF8"]
                    if self._tls is not None and not tls:
                        extensions.append("STARTTLS")
                    if self._credentials is not None:
                        extensions.append("AUTH PLAIN LOGIN")
                    for extension in extensions[:-1]:
                        reply(f"250-{extension}")
                    reply(f"250 {extensions[-1]}")
                else:
                    reply("250 sink.test")
            elif line.upper() == "STARTTLS" and self._tls is not None and not tls:
                reply("220 2.0.0 Ready to start TLS")
                conn.start_tls(self._tls)
                # RFC 3207: what was learnt before is forgotten, and the client greets again.
                greeted, tls, user = False, True, None
                sender, recipients = None, []
            elif verb == "AUTH" and self._credentials is not None:
                if user is not None:
                    reply("503 5.5.1 Already authenticated")
                    continue
                user, answered = self._authenticate(line.split()[1:], answer)
                reply(answered)
            elif verb == "MAIL":
                if not greeted:
                    reply("503 5.5.1 EHLO first")
                    continue
                if self._credentials is not None and user is None:
                    reply("530 5.7.0 Authentication required")
                    continue
                with self._lock:
                    refuse = self._outage_left > 0
                    if refuse:
                        self._outage_left -= 1
                        self.refused += 1
                if refuse:
                    reply("451 4.3.0 Temporary failure, try again later")
                    continue
                sender, recipients = line.split(":", 1)[1].split()[0].strip("<>"), []
                reply("250 2.1.0 OK")
            elif verb == "RCPT":
                if sender is None:
                    reply("503 5.5.1 MAIL first")
                    continue
                recipient = line.split(":", 1)[1].split()[0].strip("<>")
                if recipient in self._refuse_recipients:
                    reply("550 5.1.1 Mailbox unavailable")
                    continue
                recipients.append(recipient)
                reply("250 2.1.5 OK")
            elif verb == "DATA":
                if not recipients:
                    reply("503 5.5.1 RCPT first")
                    continue
                reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    data = conn.rfile.readline()
                    if not data:
                        return  # the sender went away mid-message: nothing was accepted
                    if data in (b".\r\n", b".\n"):
                        break
                    lines.append(data[1:] if data.startswith(b"..") else data)
                message = BytesParser(policy=policy.default).parsebytes(b"".join(lines))
                with self._lock:
                    self.messages.append(message)
                    self.envelopes.append((sender, recipients))
                    self.security.append(Security(tls, user))
                reply("250 2.0.0 queued")
                sender, recipients = None, []
            elif verb == "RSET":
                sender, recipients = None, []
                reply("250 OK")
            elif verb == "NOOP":
                reply("250 OK")
            elif verb == "QUIT":
                reply("221 Bye")
                return
            else:
                reply("502 5.5.2 Command not recognized")

    def _authenticate(self, arguments: list[str], answer) -> tuple[str | None, str]:
        """AUTH PLAIN or LOGIN, with or without an initial response (RFC 4954): the user it
        proves, if any, and the reply."""
        mechanism = arguments[0].upper() if arguments else ""
        initial = arguments[1] if len(arguments) > 1 else None
        try:
            if mechanism == "PLAIN":
                _, user, password = _decoded(initial or answer("")).split("\0")
            elif mechanism == "LOGIN":
                user = _decoded(initial or answer(_encoded("Username:")))
                password = _decoded(answer(_encoded("Password:")))
            else:
                return None, "504 5.5.4 Unrecognized authentication type"
        except ValueError:  # not base64 (a "*" cancelling is not), or not three PLAIN fields
            return None, "501 5.5.2 Cannot decode the response"
        if self._credentials.get(user) != password:
            return None, "535 5.7.8 Authentication credentials invalid"
        return user, "235 2.7.0 Authentication successful"


def _encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _decoded(text: str) -> str:
    return base64.b64decode(text, validate=True).decode()


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
                body = json.dumps([as_json(m) for m in sink.messages], ensure_ascii=False)
            payload = body.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    print(f"mail sink: SMTP on 127.0.0.1:{smtp_port}, messages on "
          f"http://127.0.0.1:{http_port}/api/messages", flush=True)  # fmt: skip
    ThreadingHTTPServer(("127.0.0.1", http_port), Api).serve_forever()


if __name__ == "__main__":
    import argparse

    from chassis.lifetime import stop_with_runner

    stop_with_runner("mail")
    parser = argparse.ArgumentParser(description="The local mail sink.")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    arguments = parser.parse_args()
    serve(arguments.smtp_port, arguments.http_port)
