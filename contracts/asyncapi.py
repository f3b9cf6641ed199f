"""The AsyncAPI 2.6.0 document of every event in the catalog, and the pinned schemas.

    python -m contracts.asyncapi            print the document
    python -m contracts.asyncapi --write    write contracts/asyncapi.yaml and asyncapi-3.0.yaml
    python -m contracts.asyncapi --pin      write contracts/pins/<type>.v<version>.json

`--pin` refuses to overwrite a pin with a schema that breaks it: a breaking change is published
as a new version of the event (`<type>` v2) next to the old one. Only a version never released
may be re-pinned after a breaking change, by deleting its pin first.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml
from apispec.ext.marshmallow import OpenAPIConverter
from marshmallow import Schema

from chassis.topology import events_exchange
from contracts import CATALOG
from contracts.catalog import Catalog, EventType
from contracts.compatibility import breaking_changes
from contracts.compiled import converter, opened
from contracts.envelope import CONTENT_TYPE, EnvelopeSchema, dataschema
from contracts.examples import example_event
from contracts.partners import (
    PARTNER_EXCHANGE,
    PARTNER_PRODUCERS,
    PERSONAL_FIELDS,
    PRIVATE_EVENTS,
    PROFILE_EVENTS,
    PSEUDONYMOUS_PROFILE,
    PSEUDONYMOUS_SUFFIX,
    pseudonymous_data,
)

HERE = Path(__file__).resolve().parent
DOCUMENT_PATH = HERE / "asyncapi.yaml"
DOCUMENT_3_PATH = HERE / "asyncapi-3.0.yaml"
PINS_DIR = HERE / "pins"

ASYNCAPI_VERSION = "2.6.0"
AMQP_BINDING_VERSION = "0.2.0"
DOCUMENT_VERSION = "1.0.0"  # contract v1 (see the design's contract.md)


def _converter() -> OpenAPIConverter:
    return converter(DOCUMENT_VERSION)


def json_schema(schema: type[Schema]) -> dict:
    """The JSON schema of a marshmallow schema, open to additions at every depth.

    Producers refuse unknown fields (marshmallow's default, which apispec renders as
    `additionalProperties: false`), but what is published must not forbid fields: consumers read
    tolerantly and adding a field keeps the event's version.
    """
    return opened(_converter().schema2jsonschema(schema))


def data_schema(event_type: EventType) -> dict:
    """The JSON schema of the event's `data`: what is pinned and documented."""
    return json_schema(event_type.schema)


def envelope_schema(event_type: EventType) -> dict:
    envelope = json_schema(EnvelopeSchema)
    properties = envelope["properties"]
    properties["type"] = {"type": "string", "const": event_type.type}
    properties["source"] = {"type": "string", "const": f"/{event_type.producer}"}
    properties["dataschema"] = {
        "type": "string",
        "const": dataschema(event_type.type, event_type.version),
    }
    properties["subject"]["description"] = "Id of the aggregate the event is about."
    properties["correlationid"]["description"] = "Id of the request or event that started the flow."
    properties["causationid"]["description"] = "Id of the event that caused this one, if any."
    properties["data"] = data_schema(event_type)
    envelope["description"] = "CloudEvents 1.0, structured JSON mode."
    return envelope


def _message(event_type: EventType) -> dict:
    urn = dataschema(event_type.type, event_type.version)
    example = json.loads(example_event(event_type).to_json())
    return {
        "messageId": f"{event_type.type}.v{event_type.version}",
        "name": event_type.type,
        "title": f"{event_type.type} v{event_type.version}",
        "summary": event_type.emitted_when,
        "contentType": CONTENT_TYPE,
        "correlationId": {
            "description": "Shared by every event of one flow.",
            "location": "$message.payload#/correlationid",
        },
        "tags": [{"name": event_type.producer}],
        "bindings": {
            "amqp": {"messageType": event_type.type, "bindingVersion": AMQP_BINDING_VERSION}
        },
        "x-producer": event_type.producer,
        "x-dataschema": urn,
        "payload": envelope_schema(event_type),
        "examples": [{"name": f"{event_type.type}.v{event_type.version}", "payload": example}],
    }


def _operation_id(type_: str) -> str:
    words = type_.replace(".", "_").split("_")
    return "on" + "".join(word.capitalize() for word in words)


# The production broker's vhost (deploy/rabbitmq/definitions.json, deploy/secrets.py), which the
# channel bindings name; a local run (`make run`) uses the default vhost `/`.
PRODUCTION_VHOST = "returnee-platform"


def exchange_binding(producer: str) -> dict:
    """The producer's exchange as `chassis.topology` declares it: a client declaring it with
    these properties and arguments (even passively) is not refused by the broker."""
    exchange = events_exchange(producer)
    return {
        "name": exchange.name,
        "type": exchange.type,
        "durable": exchange.durable,
        "autoDelete": exchange.auto_delete,
        "vhost": PRODUCTION_VHOST,
        # The AMQP binding has no field for exchange arguments: an extension carries them.
        "x-arguments": dict(exchange.arguments or {}),
    }


def _channel(versions: list[EventType]) -> dict:
    latest = versions[-1]
    messages = [_message(event_type) for event_type in versions]
    return {
        "description": f"{latest.emitted_when} Routing key `{latest.routing_key}` on exchange "
        f"`{latest.exchange}`.",
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": exchange_binding(latest.producer),
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
        "subscribe": {
            "operationId": _operation_id(latest.type),
            "summary": latest.emitted_when,
            "tags": [{"name": latest.producer}],
            "bindings": {
                "amqp": {
                    "deliveryMode": 2,
                    "mandatory": True,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
            # Versions of one type share the routing key: during a deprecation period both flow.
            "message": messages[0] if len(messages) == 1 else {"oneOf": messages},
        },
    }


def _without_personal_schema(node):
    if isinstance(node, dict):
        found = {}
        for key, value in node.items():
            if key == "properties":
                value = {k: v for k, v in value.items() if k not in PERSONAL_FIELDS}
            elif key == "required" and isinstance(value, list):
                value = [k for k in value if k not in PERSONAL_FIELDS]
            found[key] = _without_personal_schema(value)
        return found
    if isinstance(node, list):
        return [_without_personal_schema(v) for v in node]
    return node


def pseudonymous_schema(event_type: EventType) -> dict:
    """The `data` of the event's pseudonymous view (`contracts.partners`)."""
    full = data_schema(event_type)
    if event_type.type not in PROFILE_EVENTS:
        return _without_personal_schema(full)
    properties = {k: full["properties"][k] for k in PSEUDONYMOUS_PROFILE if k in full["properties"]}
    properties["district"] = {
        "type": ["string", "null"],
        "description": "The company's registered district, if any.",
    }
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in full.get("required", []) if k in properties] + ["district"],
    }


def document(catalog: Catalog = CATALOG) -> dict:
    by_type: dict[str, list[EventType]] = {}
    for event_type in catalog:  # ordered by producer, type, version
        by_type.setdefault(event_type.type, []).append(event_type)
    producers = sorted({event_type.producer for event_type in catalog})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:returnee-platform:events",
        "info": {
            "title": "Returnee Entrepreneur Service Platform events",
            "version": DOCUMENT_VERSION,
            "description": (
                "Events the platform's services publish, one topic exchange per producer "
                "(`<service>.events`, durable), routing key = event type. Bodies are CloudEvents "
                "1.0 structured JSON; `dataschema` names the version of `data`. Additive changes "
                "keep the version; a breaking change is published as a new version alongside "
                "the old one. Consumers bind their own durable queues and ignore fields they do "
                "not know. District systems read the partner exchange `partners.events` alone "
                "(channels `partners.events/<type>`): each event whole when the returnee it "
                "concerns granted share_with_partners, else its pseudonymous view (`dataschema` "
                "ending in `:pseudonymous`). Generated from `contracts/` by "
                "`python -m contracts.asyncapi --write`."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "production": {
                "url": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": f"The platform's broker (docker compose, Kubernetes), vhost "
                f"`{PRODUCTION_VHOST}`: the vhost the channel bindings name. A subscriber "
                "connects with its own user, which has rights on that vhost only "
                "(deploy/rabbitmq/definitions.json).",
            },
            "local": {
                "url": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ of a local run (`make run`): the default vhost `/`, "
                "with the same exchanges as production's vhost.",
            },
        },
        "tags": [
            {"name": producer, "description": f"Published by {producer}."} for producer in producers
        ],
        "channels": {type_: _channel(versions) for type_, versions in by_type.items()},
        "x-partners": partner_views(by_type),
    }


def partner_views(by_type: dict[str, list[EventType]]) -> dict:
    """What district systems read (`contracts.partners`): the exchange, the event types on it,
    and the pseudonymous view of each version of those about a returnee (`data` schema and an
    example), which replaces the published one when the returnee has not granted
    share_with_partners."""
    views = {}
    for type_, versions in by_type.items():
        if versions[-1].producer not in PARTNER_PRODUCERS or type_ in PRIVATE_EVENTS:
            continue
        views[type_] = [
            {
                "dataschema": dataschema(v.type, v.version) + PSEUDONYMOUS_SUFFIX,
                "data": pseudonymous_schema(v),
                "example": pseudonymous_data(
                    v.type, json.loads(example_event(v).to_json())["data"]
                ),
            }
            if "returnee_id" in data_schema(v).get("properties", {})
            else {"dataschema": dataschema(v.type, v.version), "whole": True}
            for v in versions
        ]
    return {
        "exchange": PARTNER_EXCHANGE,
        "description": (
            "District systems (broker user `district-subscriber`, webhooks) receive these types "
            f"only, on `{PARTNER_EXCHANGE}` (routing key = type; the producers' exchanges are "
            "not readable by them): whole when the returnee an event concerns granted "
            "share_with_partners, else in the pseudonymous view below, whose `dataschema` ends "
            f"in `{PSEUDONYMOUS_SUFFIX}`."
        ),
        "types": views,
    }


AMQP_BINDING_3_VERSION = "0.3.0"


def _key(name: str) -> str:
    """A component key of AsyncAPI 3.0 (letters, digits, `_`, `-`) for a type or message id."""
    return name.replace(".", "_")


def document_3(catalog: Catalog = CATALOG) -> dict:
    """The same contract as AsyncAPI 3.0: channels (address = routing key) with their messages,
    one `receive` operation per channel, and what district systems read (`x-partners`, as in
    the 2.6 document), for the tools and generators that read 3.0."""
    two = document(catalog)
    servers = {}
    for name, server in two["servers"].items():
        host, vhost = server["url"], PRODUCTION_VHOST if name == "production" else ""
        servers[name] = {
            "host": host,
            "pathname": f"/{vhost}",
            "protocol": server["protocol"],
            "protocolVersion": server["protocolVersion"],
            "description": server["description"],
        }
    channels, operations = {}, {}
    for type_, channel in two["channels"].items():
        key = _key(type_)
        subscribe = channel["subscribe"]
        listed = subscribe["message"].get("oneOf", [subscribe["message"]])
        messages = {}
        for message in listed:
            message = dict(message)
            message_key = _key(message.pop("messageId"))
            message["bindings"] = {
                "amqp": {**message["bindings"]["amqp"], "bindingVersion": AMQP_BINDING_3_VERSION}
            }
            messages[message_key] = message
        amqp = channel["bindings"]["amqp"]
        channels[key] = {
            "address": type_,
            "description": channel["description"],
            "messages": messages,
            "bindings": {"amqp": {**amqp, "bindingVersion": AMQP_BINDING_3_VERSION}},
        }
        operations[subscribe["operationId"]] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": subscribe["summary"],
            "tags": subscribe["tags"],
            "messages": [{"$ref": f"#/channels/{key}/messages/{m}"} for m in messages],
        }
    return {
        "asyncapi": "3.0.0",
        "id": two["id"],
        "info": {**two["info"], "tags": two["tags"]},
        "defaultContentType": two["defaultContentType"],
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "x-partners": two["x-partners"],
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True  # no &anchors: the document is read by people and by diff


def render(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2)


def pin_path(event_type: EventType, pins_dir: Path = PINS_DIR) -> Path:
    return pins_dir / f"{event_type.type}.v{event_type.version}.json"


def pin_text(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def pin(catalog: Catalog = CATALOG, pins_dir: Path = PINS_DIR) -> list[str]:
    """Write every event's pin; refuse all of them if any schema breaks its existing pin."""
    refused = []
    for event_type in catalog:
        path = pin_path(event_type, pins_dir)
        if path.exists():
            for change in breaking_changes(json.loads(path.read_text()), data_schema(event_type)):
                refused.append(f"{event_type.type} v{event_type.version}: {change}")
    if refused:
        raise SystemExit(
            "not pinned, breaking changes (publish them as a new event version):\n  "
            + "\n  ".join(refused)
        )
    written = []
    pins_dir.mkdir(exist_ok=True)
    for event_type in catalog:
        path = pin_path(event_type, pins_dir)
        text = pin_text(data_schema(event_type))
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path.name)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m contracts.asyncapi", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {DOCUMENT_PATH.name}")
    parser.add_argument("--pin", action="store_true", help="pin every event's data schema")
    args = parser.parse_args(argv)
    if args.pin:
        for name in pin():
            print(f"pinned {name}", file=sys.stderr)
    text = render(document())
    if args.write:
        DOCUMENT_PATH.write_text(text)
        DOCUMENT_3_PATH.write_text(render(document_3()))
        print(f"wrote {DOCUMENT_PATH} and {DOCUMENT_3_PATH.name}", file=sys.stderr)
    if not (args.write or args.pin):
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
