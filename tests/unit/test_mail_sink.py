"""The mail sink is the SMTP server of the tests and of `make run`: it must accept a message
only when the sender finished it, as a real mail server does."""

import smtplib
import socket

import pytest

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
