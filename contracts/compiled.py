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
unchanged. The consumers' side, the compiled tolerant reader, is at the end of this module.
"""

import math
import re
import uuid

import fastjsonschema
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from marshmallow import Schema, ValidationError, fields, missing, validate

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


# The consumer's side: the tolerant reader (`EventType.tolerant_read`).
#
# marshmallow's tolerant load of a `matches.proposed` (twenty matches, three reasons each) was a
# fifth of notify's CPU. The compiled reader checks the data with the same JSON Schema with
# unknown fields allowed at every depth, then builds what marshmallow's load returns from the
# schema's fields: unknown fields left out, `load_default` for the missing ones, UUIDs as
# `uuid.UUID`, numbers as `int` or `float`, under each field's attribute name, in the fields'
# order. Fields it does not mirror itself (dates, e-mails, URLs, validators JSON Schema does not
# carry) are deserialized by their own marshmallow field. Whatever it refuses (`Refused`)
# marshmallow loads, so the errors and the dead-letter reasons stay marshmallow's. A schema's
# `validates_schema` methods run on what it read; a schema with other hooks (`post_load`, ...)
# has no reader. tests/unit/test_contracts_tolerant_read.py shows, over every event type's
# example and its mutations, that the two loads agree: the same data, or both refuse.

# Validators the JSON Schema carries (apispec writes them as minLength, enum, minimum, pattern).
_CARRIED = (validate.Length, validate.OneOf, validate.Range)


def _carried(validator) -> bool:
    if isinstance(validator, _CARRIED):
        return True
    # marshmallow matches a Regexp at the start, JSON Schema anywhere: alike when anchored.
    return (
        type(validator) is validate.Regexp
        and validator.regex.pattern.startswith("^")
        and validator.regex.flags == re.compile(validator.regex.pattern).flags
    )


def opened(node):
    """A JSON schema with every `additionalProperties: false` taken out, at every depth: open
    to additions, as consumers read and as the AsyncAPI document publishes."""
    if isinstance(node, dict):
        return {
            key: opened(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [opened(value) for value in node]
    return node


def _refused(value):
    raise Refused("not read by the compiled reader")


def _finite(value) -> float:
    try:
        number = float(value)
    except OverflowError:
        _refused(value)
    if not math.isfinite(number):  # marshmallow refuses NaN and infinity
        _refused(value)
    return number


def _identity(value):
    return value


_LEAVES = {
    fields.UUID: uuid.UUID,
    fields.String: _identity,
    fields.Boolean: _identity,
    fields.Integer: int,
    fields.Float: _finite,
    fields.Raw: _identity,
}


def _by_marshmallow(field: fields.Field):
    def read(value):
        try:
            return field.deserialize(value)
        except ValidationError:
            _refused(value)

    return read


def _field_reader(field: fields.Field):
    """A function from the field's wire value (checked by the JSON Schema, not None) to what
    marshmallow loads; None when the field cannot be read here."""
    plain = not field.pre_load and not field.post_load
    carried = all(_carried(v) for v in field.validators)
    if type(field) is fields.Nested:
        if not (plain and carried) or field.many:
            return None
        return _schema_reader(field.schema)
    if type(field) is fields.List:
        if not (plain and carried):
            return None
        inner = _field_reader(field.inner)
        if inner is None:
            return None
        return lambda values: [None if v is None else inner(v) for v in values]
    if type(field) is fields.Dict:
        keys_plain = field.key_field is None or (
            type(field.key_field) is fields.String
            and not field.key_field.validators
            and not field.key_field.pre_load
            and not field.key_field.post_load
        )
        if plain and carried and keys_plain and field.value_field is None:
            return dict
        return _by_marshmallow(field)
    leaf = _LEAVES.get(type(field))
    if leaf is not None and plain and carried:
        return leaf
    if isinstance(field, fields.Nested | fields.List | fields.Tuple | fields.Mapping):
        return None
    return _by_marshmallow(field)


def _schema_validators(schema: Schema) -> list | None:
    """The schema's `validates_schema` methods as marshmallow calls them after its fields are
    loaded; None when it has hooks of other kinds (`pre_load`, `post_load`, ...)."""
    validators = []
    for tag, hooks in type(schema)._hooks.items():
        if not hooks:
            continue
        if tag != "validates_schema":
            return None
        for name, many, options in hooks:
            if many:
                return None
            validators.append((getattr(schema, name), options.get("pass_original", False)))
    return validators


def _schema_reader(schema: Schema):
    validators = _schema_validators(schema)
    if validators is None:
        return None
    steps = []
    for name, field in schema.load_fields.items():
        attribute = field.attribute or name
        if "." in attribute:  # marshmallow would nest it
            return None
        read = _field_reader(field)
        if read is None:
            return None
        steps.append((field.data_key or name, attribute, read, field.load_default))

    def read_object(data):
        loaded = {}
        for key, attribute, read, default in steps:
            if key in data:
                value = data[key]
                loaded[attribute] = None if value is None else read(value)
            elif default is not missing:
                loaded[attribute] = default() if callable(default) else default
        for validator, pass_original in validators:
            try:
                if pass_original:
                    validator(loaded, data, partial=None, many=False, unknown=schema.unknown)
                else:
                    validator(loaded, partial=None, many=False, unknown=schema.unknown)
            except ValidationError:
                _refused(data)
        return loaded

    return read_object


def compile_tolerant_read(schema: Schema):
    """A function returning what `schema.load(data)` returns (`schema` ignoring unknown fields at
    every depth), or raising `Refused` where marshmallow must decide; None when the schema has
    no compiled reader."""
    read = _schema_reader(schema)
    if read is None:
        return None
    check = fastjsonschema.compile(
        opened(strict_json_schema(type(schema))),
        formats={"uuid": CANONICAL_UUID},
        use_default=False,
    )

    def tolerant_read(data):
        check(data)
        return read(data)

    return tolerant_read
