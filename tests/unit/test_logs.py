"""Log lines carry the service and, inside a worker, its correlation and event ids."""

import json
import logging

import pytest

from chassis.logs import CORRELATION_ID, EVENT_ID, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_service_correlation_and_event(monkeypatch, capsys):
    monkeypatch.setenv("LOG_FORMAT", "json")
    configure_logging("matching")
    CORRELATION_ID.set("corr-7")
    EVENT_ID.set("evt-9")
    try:
        logging.getLogger("services.matching").warning("matched %d resources", 3)
    finally:
        CORRELATION_ID.set(None)
        EVENT_ID.set(None)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["service"] == "matching"
    assert line["message"] == "matched 3 resources"
    assert (line["correlation_id"], line["event_id"]) == ("corr-7", "evt-9")
    assert line["level"] == "WARNING"


def test_text_lines_name_the_service_and_only_the_context_there_is(monkeypatch, capsys):
    monkeypatch.setenv("LOG_FORMAT", "text")
    configure_logging("notify")
    logging.getLogger("x").warning("no context")
    CORRELATION_ID.set("corr-1")
    try:
        logging.getLogger("x").warning("with context")
    finally:
        CORRELATION_ID.set(None)
    first, second = capsys.readouterr().out.strip().splitlines()[-2:]
    assert " notify WARNING x: no context" in first and "[" not in first
    assert second.endswith("with context [correlation=corr-1]")


def test_access_lines_keep_the_path_and_leave_out_the_query(monkeypatch, capsys):
    from eventlet.wsgi import DEFAULT_LOG_FORMAT

    monkeypatch.setenv("LOG_FORMAT", "text")
    configure_logging("accounts")
    line = DEFAULT_LOG_FORMAT % {
        "client_ip": "127.0.0.1", "client_port": 5000, "date_time": "01/Dec/2026 10:00:00",
        "request_line": "GET /search/returnees?q=%E9%92%B1%E5%A4%9A%E5%A4%9A&limit=5 HTTP/1.1",
        "status_code": 200, "body_length": 10, "wall_seconds": 0.01,
    }  # fmt: skip
    logging.getLogger("nameko.web.server").info(line)
    logging.getLogger("nameko.web.server").info("GET /health/live HTTP/1.1 200")
    out = capsys.readouterr().out
    assert '"GET /search/returnees HTTP/1.1" 200' in out
    assert "%E9%92%B1" not in out and "limit=5" not in out
    assert "GET /health/live HTTP/1.1 200" in out
