"""A small real SMTP server that keeps what it receives: the local mail sink of `make run`
(as Mailpit is in compose) and the mail server of the tests.

Speaks EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT; keeps every accepted message parsed as
an `email.message.EmailMessage` and counts sessions. `outage(n)` makes it answer `451` to the
next `n` MAIL commands, as a mail server in trouble does, so senders must retry; `hang_up()`
closes every open session, as a server does with idle ones. Under eventlet's monkey-patching its
threads are green threads, which is all it needs.

    python -m deploy.mail_sink [--smtp-port 1025] [--http-port 8025]

serves the caught messages as JSON on `GET /api/messages` for `make demo` and for people.
"""

import contextlib
import socket
import socketserver
import threading
import time
from email import policy
from email.parser import BytesParser


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        sink = self
        self.messages: list = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refused = 0
        self.sessions = 0
        self._open: set = set()
        self._outage_left = 0
        self._lock = threading.Lock()

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

        reply("220 sink.test ESMTP ready")
        sender, recipients = None, []
        while True:
            raw = conn.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                if verb == "EHLO":
                    reply("250-sink.test")
                    reply("250-8BITMIME")
                    reply("250 SMTPUTF8")
                else:
                    reply("250 sink.test")
            elif verb == "MAIL":
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
                recipients.append(line.split(":", 1)[1].split()[0].strip("<>"))
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

    parser = argparse.ArgumentParser(description="The local mail sink.")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    arguments = parser.parse_args()
    serve(arguments.smtp_port, arguments.http_port)
