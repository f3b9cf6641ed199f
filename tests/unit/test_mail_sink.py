"""The mail sink is the SMTP server of the tests and of `make run`: it must accept a message
only when the sender finished it, in CRLF lines of at most 998 octets, and, when it asks for a
login, only from a sender that logged in, as a strict mail server does."""

import re
import smtplib
import socket
import subprocess
import sys

import pytest
import requests

from deploy.mail_sink import SmtpSink


def _converse(sink: SmtpSink, lines: list[bytes]) -> None:
    with socket.create_connection((sink.host, sink.port), timeout=5) as conn:
        reader = conn.makefile("rb")
        reader.readline()  # greeting
        for line in lines:
            conn.sendall(line)
            if not line.startswith(b"Subject") and not line.startswith(b"To:"):
                reader.readline()


def test_a_finished_message_is_kept():
    sink = SmtpSink().start()
    try:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.sendmail(
                "a@x.example", ["b@y.example"], "Subject: hello\r\nTo: b@y.example\r\n\r\nbody\r\n"
            )
        assert [m["Subject"] for m in sink.wait_for(1, timeout=5)] == ["hello"]
        assert sink.envelopes == [("a@x.example", ["b@y.example"])]
    finally:
        sink.stop()


@pytest.mark.parametrize(
    "message, reply",
    [
        (b"Subject: hello\n\nbody\n", b"bare <CR> or <LF>"),
        (b"Subject: hello\r\n\r\nbody\rmore\r\n", b"bare <CR> or <LF>"),
        (b"Subject: hello\r\n\r\n" + b"x" * 999 + b"\r\n", b"Line too long"),
    ],
)
def test_bare_line_ends_and_overlong_lines_are_refused(message, reply):
    sink = SmtpSink().start()
    try:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("a@x.example", ["b@y.example"], message)
            assert refused.value.smtp_code == 500 and reply in refused.value.smtp_error
            at_the_limit = b"Subject: hello\r\n\r\n" + b"x" * 998 + b"\r\n"
            client.sendmail("a@x.example", ["b@y.example"], at_the_limit)  # the same session
        assert len(sink.wait_for(1, timeout=5)) == 1
    finally:
        sink.stop()


def test_the_sink_of_make_run_lists_what_it_caught_over_http():
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.mail_sink", "--smtp-port", "0", "--http-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = process.stdout.readline()
        smtp_port, http_url = re.search(r"127.0.0.1:(\d+), messages on (\S+)", ready).groups()
        with smtplib.SMTP("127.0.0.1", int(smtp_port), timeout=5) as client:
            client.sendmail("a@x.example", ["b@y.example"],
                            "Subject: hello\r\nTo: b@y.example\r\n\r\nbody\r\n")  # fmt: skip
        [caught] = requests.get(http_url, timeout=5).json()
        assert caught["subject"] == "hello" and caught["to"] == "b@y.example"
        assert caught["text"] == "body\r\n"
    finally:
        process.terminate()
        process.wait(10)


def test_a_sender_that_dies_mid_message_leaves_nothing_behind():
    sink = SmtpSink().start()
    try:
        _converse(sink, [b"HELO me\r\n", b"MAIL FROM:<a@x.example>\r\n",
                         b"RCPT TO:<b@y.example>\r\n", b"DATA\r\n"])  # fmt: skip
        # The connection closes after the DATA command, before the final dot.
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.noop()  # the server is still serving
        assert sink.messages == [] and sink.envelopes == []
    finally:
        sink.stop()


def test_sessions_are_counted_and_can_be_hung_up():
    sink = SmtpSink().start()
    try:
        client = smtplib.SMTP(sink.host, sink.port, timeout=5)
        client.noop()
        assert sink.sessions == 1
        sink.hang_up()
        with pytest.raises(OSError):  # smtplib's SMTPServerDisconnected is one
            client.noop()
    finally:
        sink.stop()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("initial_response", [True, False])
def test_mail_is_taken_only_after_auth_with_or_without_an_initial_response(
    mechanism, initial_response
):
    sink = SmtpSink(credentials={"notify": "mail-password"}).start()
    try:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert client.docmd("MAIL", "FROM:<a@x.example>")[0] == 530
            client.user, client.password = "notify", "mail-password"
            authenticate = getattr(client, f"auth_{mechanism.lower()}")
            code, _ = client.auth(mechanism, authenticate, initial_response_ok=initial_response)
            assert code == 235
            client.sendmail("a@x.example", ["b@y.example"], "Subject: hello\r\n\r\nbody\r\n")
        assert sink.security == [(False, "notify")]
    finally:
        sink.stop()


def test_auth_that_is_cancelled_or_of_an_unknown_mechanism_is_refused():
    sink = SmtpSink(credentials={"notify": "mail-password"}).start()
    try:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert client.docmd("AUTH", "LOGIN")[0] == 334
            assert client.docmd("*")[0] == 501  # the client gave up
            assert client.docmd("AUTH", "CRAM-MD5")[0] == 504
    finally:
        sink.stop()
