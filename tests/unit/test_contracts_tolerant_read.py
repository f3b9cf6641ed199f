"""The compiled tolerant reader (`EventType.load`, `contracts.compiled.compile_tolerant_read`)
reads every event as marshmallow's tolerant load does: over each event type's example and
hundreds of mutations of it (unknown fields added at every depth, fields removed, odd values,
lists emptied and doubled, a newer minor version's extra fields), the two give the same data
with the same types, or both refuse."""

import datetime
import json
import uuid

import pytest
from marshmallow import ValidationError

from contracts import CATALOG, Event, InvalidEvent
from contracts.compiled import Refused
from contracts.examples import EXAMPLES
from tests.unit.test_contracts_compiled import ODD_VALUES, mutated, mutations

ODD_TOLERANT = [
    *ODD_VALUES, "2026-12-01", "2026-12-01T10:00:00+08:00", "2026-12-01T10:00:00",
    "2026-02-30", "a@example.org", "https://example.org/x", float("nan"), float("inf"), 1.0,
    0.5, "0.5", "zh-CN",
]  # fmt: skip
READ = [t for t in CATALOG if t.tolerant_read is not None]


def wire(event_type) -> dict:
    found = EXAMPLES[(event_type.type, event_type.version)]
    created = CATALOG.create(event_type.producer, event_type.type, found.data,
                             version=event_type.version)  # fmt: skip
    return json.loads(json.dumps(created.data))


def typed(value):
    """The value with the type of each part spelled out: 1 and 1.0 and True differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}, list(value)
    if isinstance(value, list):
        return [typed(v) for v in value]
    return type(value).__name__, value


def both(event_type, data):
    try:
        expected = event_type.tolerant_schema.load(data)
    except ValidationError:
        expected = None
    try:
        read = event_type.tolerant_read(data)
    except Refused:
        read = None
    return expected, read


def newer_minor(document: dict):
    """A newer producer's additions, at the top and in every nested object."""
    yield {**document, "added_in_a_minor": {"x": [1, 2]}}
    for path, change in mutations(document):
        if path and change.__code__.co_names == ("update",):
            yield mutated(document, path, change)


def test_every_type_has_a_compiled_reader():
    assert list(CATALOG) == READ


@pytest.mark.parametrize("event_type", list(CATALOG), ids=lambda t: f"{t.type}.v{t.version}")
def test_the_compiled_reader_and_marshmallow_read_every_mutation_alike(event_type, monkeypatch):
    import tests.unit.test_contracts_compiled as strict

    monkeypatch.setattr(strict, "ODD_VALUES", ODD_TOLERANT)
    document = wire(event_type)
    expected, read = both(event_type, document)
    assert read is not None and typed(read) == typed(expected)  # the example takes the fast path
    fast = refused_by_both = 0
    changed = (mutated(document, path, change) for path, change in mutations(document))
    for data in [*newer_minor(document), *changed]:
        expected, read = both(event_type, data)
        if read is None:
            refused_by_both += expected is None
            continue  # marshmallow decides, as before
        fast += 1
        assert expected is not None, f"compiled reader accepted what marshmallow refuses: {data}"
        assert typed(read) == typed(expected), data
    assert fast > 2 and refused_by_both > 2  # both sides of the reader were exercised


def test_an_event_the_compiled_reader_refuses_is_refused_with_marshmallows_messages():
    data = wire(CATALOG.get("matches.proposed"))
    data["matches"][0]["score"] = 2
    data["returnee_id"] = "nobody"
    event = Event(type="matches.proposed", data=data, source="/matching")
    with pytest.raises(InvalidEvent) as refused:
        CATALOG.check(event)
    assert set(refused.value.errors) == {"matches", "returnee_id"}


def test_data_marshmallow_accepts_and_the_reader_does_not_is_loaded_by_marshmallow():
    data = wire(CATALOG.get("matches.proposed"))
    data["returnee_id"] = data["returnee_id"].upper()  # not canonical: the reader refuses it
    data["unknown"] = 1
    event = CATALOG.check(Event(type="matches.proposed", data=data, source="/matching"))
    assert event.data["returnee_id"] == uuid.UUID(data["returnee_id"])
    assert "unknown" not in event.data


def test_the_reader_fills_defaults_without_changing_the_event_it_reads():
    from marshmallow import missing

    defaulted = 0
    for event_type in READ:
        document = wire(event_type)
        for name, field in event_type.tolerant_schema.fields.items():
            if field.load_default is not missing:
                document.pop(field.data_key or name, None)
                defaulted += 1
        before = json.dumps(document)
        expected, read = both(event_type, document)
        assert typed(read) == typed(expected)
        assert json.dumps(document) == before
    assert defaulted > 5


def test_dates_and_times_are_read_as_marshmallow_reads_them():
    dated = [t for t in READ if any(isinstance(v, datetime.date) for v in
                                    t.tolerant_schema.load(wire(t)).values())]  # fmt: skip
    assert dated
    for event_type in dated:
        expected, read = both(event_type, wire(event_type))
        assert typed(read) == typed(expected)
