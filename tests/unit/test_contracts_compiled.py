"""The compiled check (`contracts.compiled`) never lets through what marshmallow would refuse or
publish differently: over each compiled event type's example and hundreds of mutations of it,
whatever the compiled check accepts, the strict marshmallow schema accepts and dumps unchanged."""

import copy
import json

import pytest
from marshmallow import ValidationError

from contracts import CATALOG, InvalidEvent
from contracts.examples import EXAMPLES

COMPILED = [t for t in CATALOG if t.compiled]
ODD_VALUES = [
    None, True, 0, -1, 1.5, 2, 10**12, "", "x", "X" * 300, "not_a_code", "Serves Needs",
    "DF698735-2817-5ADA-8803-036514809CAB", "df6987352817-5ada-8803-036514809cab",
    "df698735-2817-5ada-8803-036514809cab\n", "{df698735-2817-5ada-8803-036514809cab}",
    "df698735-2817-5ada-8803-036514809cab", [], [1], ["x"], {}, {"x": 1},
]  # fmt: skip


def wire(event_type) -> dict:
    """The example's data as its producer publishes it (JSON)."""
    found = EXAMPLES[(event_type.type, event_type.version)]
    return json.loads(json.dumps(CATALOG.create(event_type.producer, event_type.type,
                                                found.data).data))  # fmt: skip


def mutations(node, path=()):
    """(path of a container, change to it) for every place in the document: each field removed, set
    to each odd value, an unknown field added to each object, lists emptied and doubled."""
    if isinstance(node, dict):
        yield path, lambda d: d.update(unexpected=1)
        for key, value in node.items():
            yield path, lambda d, k=key: d.pop(k)
            for odd in ODD_VALUES:
                yield path, lambda d, k=key, o=odd: d.__setitem__(k, copy.deepcopy(o))
            yield from mutations(value, (*path, key))
    elif isinstance(node, list) and node:
        yield path, lambda d: d.clear()
        yield path, lambda d: d.extend(copy.deepcopy(d))
        yield from mutations(node[0], (*path, 0))


def mutated(document: dict, path, change) -> dict:
    result = copy.deepcopy(document)
    target = result
    for step in path:
        target = target[step]
    change(target)
    return result


def marshmallow_dump(event_type, data):
    schema = event_type.strict_schema
    return schema.dump(schema.load(data))


def test_the_compiled_types_are_the_ones_published_by_the_thousand():
    assert [(t.type, t.version) for t in COMPILED] == [("matches.proposed", 1)]


@pytest.mark.parametrize("event_type", COMPILED, ids=lambda t: f"{t.type}.v{t.version}")
def test_what_the_compiled_check_accepts_marshmallow_accepts_and_dumps_unchanged(event_type):
    document = wire(event_type)
    assert event_type.wire_data(document) == document  # the example takes the compiled path
    accepted = refused = 0
    for path, change in mutations(document):
        data = mutated(document, path, change)
        published = event_type.wire_data(data)
        if published is None:
            refused += 1
            continue
        accepted += 1
        try:
            dumped = marshmallow_dump(event_type, data)
        except ValidationError as error:
            pytest.fail(f"compiled check accepted at {path}: {data}; marshmallow: {error}")
        assert json.loads(json.dumps(dumped)) == published, path
    assert accepted > 50 and refused > 200  # both sides of the check were exercised


def test_data_the_compiled_check_refuses_is_refused_with_marshmallows_messages():
    data = wire(CATALOG.get("matches.proposed"))
    data["matches"][0]["score"] = 2
    data["returnee_id"] = "nobody"
    with pytest.raises(InvalidEvent) as refused:
        CATALOG.create("matching", "matches.proposed", data)
    assert set(refused.value.errors) == {"matches", "returnee_id"}


def test_data_not_in_wire_form_is_still_published_through_marshmallow():
    import uuid

    data = wire(CATALOG.get("matches.proposed"))
    data["returnee_id"] = uuid.UUID(data["returnee_id"])  # an object, not its text
    assert CATALOG.get("matches.proposed").wire_data(data) is None
    event = CATALOG.create("matching", "matches.proposed", data)
    assert event.data["returnee_id"] == str(data["returnee_id"])
