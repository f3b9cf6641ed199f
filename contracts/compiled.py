"""The contract's check of an event's data compiled to Python (fastjsonschema), for the events a
producer publishes by the thousand (`EventType.compiled`).

marshmallow's strict load and dump of a `matches.proposed` (twenty matches, three reasons each)
costs about 3.5 ms of CPU, half of a new returnee's match inside matching (docs/performance.md);
the compiled check of the same data, in wire form, about 0.25 ms. It runs on the contract's own
strict JSON Schema (the one the AsyncAPI document is made from, unknown fields refused), with
UUIDs in their canonical form only. What it accepts is published as it is; what it refuses goes
through marshmallow as every other event does, which refuses it with its messages or turns it
into wire form. tests/unit/test_contracts_compiled.py shows, over each compiled type's example
and its mutations, that whatever the compiled check accepts marshmallow accepts and dumps
unchanged.
"""

import fastjsonschema
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from marshmallow import Schema

# OpenAPI 3.1 schema objects are JSON Schema: nullable fields become `type: [..., "null"]`, which
# AsyncAPI's schema format (a JSON Schema draft 07 superset) reads; 3.0's `nullable` it does not.
OPENAPI_VERSION = "3.1.0"

# Lowercase with hyphens, as marshmallow dumps a UUID; `\Z`, not `$`, so no trailing newline.
CANONICAL_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"


def converter(document_version: str = "1.0.0") -> OpenAPIConverter:
    """marshmallow to JSON Schema, as the AsyncAPI document (`contracts.asyncapi`) uses it."""
    spec = APISpec(
        title="contracts",
        version=document_version,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
    )
    # No schema names: nested schemas are inlined, so each payload schema stands alone.
    return OpenAPIConverter(OPENAPI_VERSION, lambda schema: None, spec)


def strict_json_schema(schema: type[Schema]) -> dict:
    """The schema's JSON Schema as producers are held to it: unknown fields refused (what the
    AsyncAPI document opens, `contracts.asyncapi.json_schema`)."""
    return converter().schema2jsonschema(schema)


def compile_check(schema: type[Schema]):
    """A function that raises `fastjsonschema.JsonSchemaException` unless `data` is valid in
    wire form; fastjsonschema ships its own checks of `date`, `date-time` and the others."""
    return fastjsonschema.compile(strict_json_schema(schema), formats={"uuid": CANONICAL_UUID})


Refused = fastjsonschema.JsonSchemaException
