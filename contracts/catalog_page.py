"""The event catalog as a page people read: `docs/events.md`, generated from `contracts/`.

    python -m contracts.catalog_page            print the page
    python -m contracts.catalog_page --write    write docs/events.md

The AsyncAPI document (`contracts/asyncapi.yaml`) is for tools; this page is for the integrator
deciding which events to subscribe to. Both come from the same catalog, payload JSON schemas and
examples, so they cannot disagree; tests/unit/test_event_catalog_page.py keeps the committed page
current.
"""

import argparse
import json
import sys
from pathlib import Path

from contracts import CATALOG
from contracts.asyncapi import DOCUMENT_VERSION, data_schema
from contracts.catalog import Catalog, EventType
from contracts.envelope import CONTENT_TYPE, dataschema
from contracts.examples import example_event

PAGE_PATH = Path(__file__).resolve().parent.parent / "docs" / "events.md"
REGENERATE = "python -m contracts.catalog_page --write"

# Constraints worth telling a reader, in the order they are told.
_CONSTRAINTS = (
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
    ("pattern", "matches `{}`"),
)


def _types(node: dict) -> tuple[list[str], bool]:
    """The JSON types of a schema node without `null`, and whether `null` is allowed."""
    declared = node.get("type", [])
    declared = [declared] if isinstance(declared, str) else list(declared)
    return [t for t in declared if t != "null"], "null" in declared


def _type_text(node: dict) -> str:
    types, nullable = _types(node)
    parts = []
    for type_ in types or ["any"]:
        if type_ == "array":
            items = node.get("items", {})
            inner = _type_text(items) if items else "any"
            parts.append(f"array of {inner}")
        elif node.get("format"):
            parts.append(f"{type_} ({node['format']})")
        else:
            parts.append(type_)
    return " | ".join(parts) + (" | null" if nullable else "")


def _enum(node: dict) -> list:
    if "enum" in node:
        return [value for value in node["enum"] if value is not None]
    if "array" in _types(node)[0] and "enum" in node.get("items", {}):
        return [value for value in node["items"]["enum"] if value is not None]
    return []


def _description(node: dict) -> str:
    told = [node["description"].rstrip(".") + "."] if node.get("description") else []
    constraints = []
    for key, template in _CONSTRAINTS:
        for source in (node, node.get("items") or {}):
            if key in source:
                constraints.append(template.format(source[key]))
                break
    if constraints:
        told.append("; ".join(constraints))
    return " ".join(told)


def fields_of(schema: dict, prefix: str = "") -> list[dict]:
    """Every field of a JSON object schema, nested objects and arrays of objects flattened to
    dotted names (`education[].country`), in the schema's order."""
    rows = []
    required = set(schema.get("required", ()))
    for name, node in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        rows.append(
            {
                "name": path,
                "type": _type_text(node),
                "required": name in required,
                "description": _description(node),
                "enum": _enum(node),
            }
        )
        types, _ = _types(node)
        if "object" in types:
            rows.extend(fields_of(node, f"{path}."))
        elif "array" in types and "object" in _types(node.get("items", {}))[0]:
            rows.extend(fields_of(node["items"], f"{path}[]."))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(event_type: EventType) -> str:
    return f"{event_type.type}-v{event_type.version}".replace(".", "")


def _section(event_type: EventType) -> list[str]:
    example = json.loads(example_event(event_type).to_json())
    lines = [
        f"### {event_type.type} v{event_type.version}",
        "",
        event_type.emitted_when,
        "",
        "| | |",
        "|---|---|",
        f"| producer | `{event_type.producer}` |",
        f"| exchange | `{event_type.exchange}` (topic, durable) |",
        f"| routing key | `{event_type.routing_key}` |",
        f"| source | `/{event_type.producer}` |",
        f"| dataschema | `{dataschema(event_type.type, event_type.version)}` |",
        f"| subject | {_subject_text(event_type, example)} |",
        "",
        "Payload (`data`):",
        "",
        "| field | type | required | description | values |",
        "|---|---|---|---|---|",
    ]
    for row in fields_of(data_schema(event_type)):
        values = ", ".join(f"`{value}`" for value in row["enum"])
        lines.append(
            f"| `{row['name']}` | {_cell(row['type'])} | {'yes' if row['required'] else 'no'} "
            f"| {_cell(row['description'])} | {values} |"
        )
    lines += [
        "",
        "Example envelope:",
        "",
        "```json",
        json.dumps(example, indent=2, ensure_ascii=False),
        "```",
        "",
    ]
    return lines


def _subject_text(event_type: EventType, example: dict) -> str:
    """Which payload field the envelope's `subject` repeats, found from the example."""
    subject = example.get("subject")
    for name, value in example["data"].items():
        if value == subject and name.endswith("_id"):
            return f"the `{name}` of the payload"
    return "the id of the aggregate the event is about"


def render(catalog: Catalog = CATALOG) -> str:
    event_types = list(catalog)  # ordered by producer, type, version
    producers = sorted({event_type.producer for event_type in event_types})
    lines = [
        "# Event catalog",
        "",
        f"<!-- Generated from contracts/ by `{REGENERATE}`; do not edit by hand. -->",
        "",
        f"Contract version {DOCUMENT_VERSION}. Every event the platform publishes, by producer. "
        "The machine-readable form is `contracts/asyncapi.yaml` (AsyncAPI 2.6), and "
        "`contracts/asyncapi-3.0.yaml` (the same, as AsyncAPI 3.0).",
        "",
        "## How events are delivered",
        "",
        "- One topic exchange per producer, `<producer>.events` (durable, alternate exchange "
        "`<producer>.unrouted`); the routing key is the event type. Bind your own durable queue "
        "for the types you want (`examples/subscriber/` shows how in Python, "
        "`examples/node-subscriber/` in Node.js). The exchanges are the platform's: check them "
        "passively, or declare them exactly as the AsyncAPI document's bindings say (type, "
        "durability and the `alternate-exchange` argument, `x-arguments`), which the broker "
        "otherwise refuses.",
        "- The production broker's vhost is `returnee-platform` (the bindings name it; a "
        "subscriber's user has rights there only); a local run (`make run`) uses `/`.",
        f"- The body is a CloudEvents 1.0 envelope in structured JSON mode (`{CONTENT_TYPE}`): "
        "`specversion`, `id`, `source`, `type`, `time`, `subject`, `datacontenttype`, "
        "`dataschema`, `correlationid`, `causationid` and the payload in `data`. An event "
        "about no aggregate leaves `subject` out (it is never null).",
        "- `dataschema` names the payload version (`urn:returnee-platform:event:<type>:v<n>`). "
        "Fields may be added within a version: ignore fields you do not know. A breaking change "
        "is published as a new version alongside the old one.",
        "- Delivery is at least once: the same `id` can arrive twice. Process each `id` once.",
        "- Times are ISO 8601 with an offset; ids are UUIDs; money is whole yuan (integers).",
        "",
        "## Events",
        "",
        "| event | producer | emitted when |",
        "|---|---|---|",
    ]
    for event_type in event_types:
        lines.append(
            f"| [{event_type.type} v{event_type.version}](#{_anchor(event_type)}) "
            f"| {event_type.producer} | {_cell(event_type.emitted_when)} |"
        )
    lines.append("")
    for producer in producers:
        lines += [f"## {producer}", "", f"Exchange `{producer}.events`.", ""]
        for event_type in catalog.produced_by(producer):
            lines += _section(event_type)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m contracts.catalog_page", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {PAGE_PATH}")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        PAGE_PATH.write_text(text)
        print(f"wrote {PAGE_PATH}", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
