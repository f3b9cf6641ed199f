"""docs/events.md is the catalog as generated from contracts/, and says what a subscriber needs."""

import json
import re

from marshmallow import Schema, fields, validate

from contracts import CATALOG
from contracts.catalog import Catalog
from contracts.catalog_page import PAGE_PATH, REGENERATE, fields_of, render
from contracts.envelope import Event
from contracts.examples import example_event


def test_the_committed_page_is_the_generated_one():
    assert PAGE_PATH.read_text() == render(), (
        f"docs/events.md is out of date with contracts/: run `{REGENERATE}`"
    )


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    return {part.splitlines()[0]: part for part in parts}


def test_every_event_has_its_section_with_routing_and_an_example_that_parses():
    sections = _sections(render())
    assert len(sections) == len(list(CATALOG))
    for event_type in CATALOG:
        section = sections[f"{event_type.type} v{event_type.version}"]
        assert event_type.emitted_when in section
        assert f"| producer | `{event_type.producer}` |" in section
        assert f"| exchange | `{event_type.producer}.events` (topic, durable) |" in section
        assert f"| routing key | `{event_type.type}` |" in section
        example = re.search(r"```json\n(.*?)\n```", section, re.DOTALL).group(1)
        # The example is a valid envelope whose data the consumer's schema accepts.
        event = CATALOG.check(Event.from_json(example))
        assert event.id == example_event(event_type).id
        assert json.loads(example)["data"] == example_event(event_type).data


def test_every_payload_field_is_listed_with_requiredness_and_enums():
    section = _sections(render())["returnee.registered v1"]
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in section.splitlines()
        if line.startswith("| `")
    }
    assert "| `email` | string (email) | yes |" in rows["email"]
    assert "| string \\| null | no |" in rows["phone"]
    assert "`bachelor`, `master`, `phd`" in rows["education[].degree"]
    assert "`office_space`" in rows["needs"]  # enum of an array's items
    assert "| object \\| null | no |" in rows["company"]
    assert "The returnee's share of the company, in percent." in rows["company.shareholding_pct"]
    for name in CATALOG.get("returnee.registered").schema._declared_fields:
        assert name in rows, f"{name} is missing from the page"


class _Item(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=20))


class _Order(Schema):
    order_id = fields.UUID(required=True)
    state = fields.String(required=True, validate=validate.OneOf(("open", "paid")))
    note = fields.String(allow_none=True, load_default=None, metadata={"description": "Free."})
    items = fields.List(fields.Nested(_Item), required=True)
    tags = fields.List(fields.String(validate=validate.OneOf(("a", "b"))), required=True)


def test_fields_are_flattened_from_a_schema_of_our_own():
    from contracts.asyncapi import json_schema

    rows = {row["name"]: row for row in fields_of(json_schema(_Order))}
    assert list(rows) == ["order_id", "state", "note", "items", "items[].sku", "tags"]
    assert rows["order_id"] == {
        "name": "order_id",
        "type": "string (uuid)",
        "required": True,
        "description": "",
        "enum": [],
    }
    assert rows["state"]["enum"] == ["open", "paid"]
    assert (rows["note"]["type"], rows["note"]["required"]) == ("string | null", False)
    assert rows["note"]["description"] == "Free."
    assert rows["items"]["type"] == "array of object"
    assert rows["items[].sku"]["description"] == "length ≥ 1; length ≤ 20"
    assert (rows["tags"]["type"], rows["tags"]["enum"]) == ("array of string", ["a", "b"])


def test_the_page_follows_the_catalog_it_is_given():
    """So the committed-page check fails when an event is added, removed or reworded."""
    catalog = Catalog(t for t in CATALOG if t.type != "consent.changed")
    page = render(catalog)
    assert "### consent.changed v1" not in page
    assert "### returnee.registered v1" in page
    assert page != render()
