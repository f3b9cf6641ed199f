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
