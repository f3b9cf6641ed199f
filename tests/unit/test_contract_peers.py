"""The published contract checked by peers that did not write it: the CloudEvents Python SDK reads
every shipped example event, jsonschema validates every shipped example against the published
payload schemas (the pins and the AsyncAPI document), the AsyncAPI Initiative's own JSON Schema
validates the document, and the example subscriber (examples/subscriber) accepts every example.

The examples shipped are those of `contracts/examples.py`, the ones embedded in
`contracts/asyncapi.yaml` and the ones printed in `docs/events.md`.
"""

import copy
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from cloudevents.core.formats.json import JSONFormat
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource

from contracts import CATALOG, Event
from contracts.asyncapi import DOCUMENT_PATH, pin_path
from contracts.examples import example, example_event

ROOT = Path(__file__).resolve().parents[2]
SPECS = Path(__file__).resolve().parent / "asyncapi_specs"
EVENT_TYPES = list(CATALOG)
IDS = [f"{t.type}.v{t.version}" for t in EVENT_TYPES]
DOCUMENT = yaml.safe_load(DOCUMENT_PATH.read_text())


def _messages(document: dict):
    for channel in document["channels"].values():
        message = channel["subscribe"]["message"]
        yield from message.get("oneOf", [message])


def _page_examples() -> list[dict]:
    page = (ROOT / "docs" / "events.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", page, re.S)]


# Every shipped example event, as (where it is shipped, the envelope as JSON).
SHIPPED = [
    *((f"examples.py:{t.type}.v{t.version}", json.loads(example_event(t).to_json()))
      for t in EVENT_TYPES),
    *((f"asyncapi.yaml:{m['messageId']}", e["payload"])
      for m in _messages(DOCUMENT) for e in m["examples"]),
    *((f"events.md:{e['type']}", e) for e in _page_examples()),
]  # fmt: skip
SHIPPED_IDS = [where for where, _ in SHIPPED]


def test_every_event_type_has_its_example_shipped_in_each_place():
    for place in ("examples.py", "asyncapi.yaml", "events.md"):
        shipped = {(e["type"], e["dataschema"]) for where, e in SHIPPED if where.startswith(place)}
        assert shipped == {(t.type, f"urn:returnee-platform:event:{t.type}:v{t.version}")
                           for t in EVENT_TYPES}, place  # fmt: skip


# --- the CloudEvents SDK ------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "envelope"), SHIPPED, ids=SHIPPED_IDS)
def test_the_cloudevents_sdk_reads_every_example(where, envelope):
    read = JSONFormat().read(None, json.dumps(envelope).encode())

    assert read.get_specversion() == "1.0"
    assert (read.get_id(), read.get_source(), read.get_type()) == (
        envelope["id"],
        envelope["source"],
        envelope["type"],
    )
    assert read.get_subject() == envelope.get("subject")
    assert read.get_time().isoformat() == Event.from_json(json.dumps(envelope)).time.isoformat()
    assert read.get_dataschema() == envelope["dataschema"]
    assert read.get_datacontenttype() == "application/json"
    assert read.get_extension("correlationid") == envelope["correlationid"]
    assert read.get_data() == envelope["data"]


def test_the_cloudevents_sdk_reads_an_event_about_no_aggregate():
    # CloudEvents has no null subject: an event without one leaves the attribute out.
    event = Event(type="organization.registered", source="/accounts", data={"name": "ICBC"})
    body = event.to_json()

    assert "subject" not in json.loads(body)
    assert JSONFormat().read(None, body).get_subject() is None
    assert Event.from_json(body).subject is None


def test_the_cloudevents_sdk_is_a_peer_that_can_refuse():
    envelope = json.loads(example_event(EVENT_TYPES[0]).to_json())
    for broken in ({**envelope, "specversion": "0.2"}, {**envelope, "subject": None}):
        with pytest.raises(Exception, match="validation errors"):
            JSONFormat().read(None, json.dumps(broken).encode())


# --- jsonschema: the examples against the published payload schemas -----------------------------


def _pin(type_: str, version: int) -> dict:
    return json.loads(pin_path(CATALOG.get(type_, version)).read_text())


def _version(envelope: dict) -> int:
    return int(envelope["dataschema"].rsplit(":v", 1)[1])


def _payload_schema(type_: str, version: int) -> dict:
    """The envelope schema of the event as the AsyncAPI document publishes it."""
    messageid = f"{type_}.v{version}"
    return next(m for m in _messages(DOCUMENT) if m["messageId"] == messageid)["payload"]


def _errors(validator, instance) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(instance)]  # fmt: skip


def test_the_validators_check_the_formats_the_schemas_use():
    # Without rfc3339-validator jsonschema skips date-time silently; uuid only from 2019-09 on.
    assert {"date", "date-time", "email", "uuid"} <= set(
        Draft202012Validator.FORMAT_CHECKER.checkers
    )
    assert {"date", "date-time", "email"} <= set(Draft7Validator.FORMAT_CHECKER.checkers)


@pytest.mark.parametrize(("where", "envelope"), SHIPPED, ids=SHIPPED_IDS)
def test_every_example_is_valid_against_its_pinned_schema(where, envelope):
    # Pins are OpenAPI 3.1 schema objects: JSON Schema 2020-12.
    pinned = _pin(envelope["type"], _version(envelope))
    validator = Draft202012Validator(pinned, format_checker=Draft202012Validator.FORMAT_CHECKER)

    assert _errors(validator, envelope["data"]) == []


@pytest.mark.parametrize(("where", "envelope"), SHIPPED, ids=SHIPPED_IDS)
def test_every_example_is_valid_against_the_asyncapi_payload_schema(where, envelope):
    # AsyncAPI 2.6's default schema format is a superset of JSON Schema draft 07.
    schema = _payload_schema(envelope["type"], _version(envelope))
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)

    assert _errors(validator, envelope) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=IDS)
def test_the_published_schemas_refuse_an_example_that_breaks_them(event_type):
    # The validation above can fail: each required field taken away, and a wrongly typed one,
    # is refused by both published schemas.
    pinned = _pin(event_type.type, event_type.version)
    envelope_schema = _payload_schema(event_type.type, event_type.version)
    data = example(event_type.type, event_type.version).data
    for field in pinned.get("required", []):
        broken = {k: v for k, v in data.items() if k != field}
        assert _errors(Draft202012Validator(pinned), broken), field
        envelope = json.loads(example_event(event_type).to_json())
        assert _errors(Draft7Validator(envelope_schema), {**envelope, "data": broken}), field
    first = pinned["required"][0]
    mistyped = {**data, first: {"not": "what the schema says"}}
    assert _errors(Draft202012Validator(pinned), mistyped)
    envelope = json.loads(example_event(event_type).to_json())
    assert _errors(Draft7Validator(envelope_schema), {**envelope, "type": "something.else"})


# --- the AsyncAPI Initiative's schema -------------------------------------------------------------


def _spec(name: str) -> dict:
    return json.loads((SPECS / name).read_text())


BINDINGS = {kind: _spec(f"amqp-0.2.0-{kind}.json") for kind in ("channel", "operation", "message")}
REGISTRY = Registry().with_resource(
    "http://asyncapi.com/definitions/3.0.0/specificationExtension.json",
    Resource.from_contents(_spec("specificationExtension-3.0.0.json")),
)


def _document_errors(document: dict) -> list[str]:
    errors = _errors(Draft7Validator(_spec("asyncapi-2.6.0.json")), document)
    # The 2.6 schema leaves protocol bindings open; AMQP's own binding schemas close them.
    for name, channel in document["channels"].items():
        checks = [("channel", channel["bindings"]["amqp"])]
        for operation in ("publish", "subscribe"):
            if operation in channel:
                checks.append(("operation", channel[operation]["bindings"]["amqp"]))
                message = channel[operation]["message"]
                for each in message.get("oneOf", [message]):
                    checks.append(("message", each["bindings"]["amqp"]))
        for kind, binding in checks:
            validator = Draft7Validator(BINDINGS[kind], registry=REGISTRY)
            errors += [f"{name} {kind} binding: {e}" for e in _errors(validator, binding)]
    return errors


def test_the_asyncapi_document_is_valid_against_the_official_asyncapi_schema():
    assert DOCUMENT["asyncapi"] == "2.6.0"
    assert _document_errors(DOCUMENT) == []


def test_the_official_asyncapi_schema_refuses_a_broken_document():
    broken = copy.deepcopy(DOCUMENT)
    del broken["info"]["title"]
    channel = next(iter(broken["channels"].values()))
    channel["subscribe"]["message"]["contentType"] = 7
    channel["bindings"]["amqp"]["is"] = "mailbox"
    channel["subscribe"]["bindings"]["amqp"]["deliveryMode"] = 3

    errors = _document_errors(broken)

    assert any("title" in e for e in errors), errors
    assert any("contentType" in e or "7" in e for e in errors), errors
    assert any("channel binding" in e and "mailbox" in e for e in errors), errors
    assert any("operation binding" in e and "3" in e for e in errors), errors


# --- the example subscriber ----------------------------------------------------------------------


def _subscriber():
    path = ROOT / "examples" / "subscriber" / "subscriber.py"
    spec = importlib.util.spec_from_file_location("district_subscriber", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("where", "envelope"), SHIPPED, ids=SHIPPED_IDS)
def test_the_example_subscriber_accepts_every_example(where, envelope):
    subscriber = _subscriber()
    producer = envelope["source"].lstrip("/")

    parsed = subscriber.parse_event(json.dumps(envelope).encode(), producer, {envelope["type"]})

    assert parsed["id"] == envelope["id"] and parsed["version"] == _version(envelope)
