"""The hand-written envelope check agrees with the envelope schema it stands in for."""

import json
import uuid

import pytest
from marshmallow import ValidationError

from contracts.envelope import EnvelopeSchema, Event, InvalidEvent, check_envelope

VALID = {
    "specversion": "1.0",
    "id": "2f1f0b8e-3f7a-4c39-9a51-0d5b0b7f4c11",
    "source": "/accounts",
    "type": "organization.registered",
    "time": "2026-11-28T10:00:00+08:00",
    "subject": "4c0b1f55-41d5-4d8e-9a8e-0b7e1b7f3a20",
    "datacontenttype": "application/json",
    "dataschema": "urn:returnee-platform:event:organization.registered:v1",
    "correlationid": "c-1",
    "causationid": None,
    "data": {"name": "ICBC"},
}


def _without(key):
    return {k: v for k, v in VALID.items() if k != key}


CASES = [
    VALID,
    {**VALID, "time": "2026-11-28T02:00:00Z"},
    {**VALID, "subject": None},
    _without("subject"),
    _without("causationid"),
    {**VALID, "extension": "ignored"},
    *[_without(key) for key in VALID if key not in ("subject", "causationid")],
    {**VALID, "specversion": "0.3"},
    {**VALID, "specversion": 1.0},
    {**VALID, "id": "not-a-uuid"},
    {**VALID, "id": None},
    {**VALID, "source": "accounts"},
    {**VALID, "type": "Organization Registered"},
    {**VALID, "time": "2026-11-28T10:00:00"},
    {**VALID, "time": "yesterday"},
    {**VALID, "datacontenttype": "text/plain"},
    {**VALID, "correlationid": 7},
    {**VALID, "data": ["not", "a", "mapping"]},
    {**VALID, "data": None},
]


@pytest.mark.parametrize("raw", CASES, ids=lambda raw: json.dumps(raw)[:60])
def test_check_envelope_agrees_with_the_schema(raw):
    try:
        expected, expected_errors = EnvelopeSchema().load(raw, unknown="exclude"), {}
    except ValidationError as exc:
        expected, expected_errors = None, exc.messages
    loaded, errors = check_envelope(raw)
    assert set(errors) == set(expected_errors)
    if expected is not None:
        assert loaded == expected


def test_event_round_trips_through_its_json():
    event = Event(
        type="organization.registered",
        data={"name": "ICBC"},
        source="/accounts",
        subject="s-1",
        correlation_id="c-9",
        causation_id=str(uuid.uuid4()),
    )
    assert Event.from_json(event.to_json()) == event


def test_an_event_without_correlation_starts_its_own():
    event = Event(type="organization.registered", data={}, source="/accounts")
    assert Event.from_json(event.to_json()).correlation_id == event.id


def test_an_invalid_envelope_names_its_fields():
    with pytest.raises(InvalidEvent) as raised:
        Event.from_json(json.dumps({**VALID, "id": "x", "specversion": "2"}))
    assert set(raised.value.errors) == {"id", "specversion"}
