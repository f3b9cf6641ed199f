"""OpenAPI 3.1 documents generated from a service's `@http` entrypoints and their schemas."""

import re
from functools import cache
from http import HTTPStatus

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, resolver
from marshmallow import Schema, fields

from chassis.web import JsonHttp

_RULE_PARAMETER = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
# werkzeug's converters as JSON Schema: a value outside them matches no route (404).
_CONVERTER_SCHEMAS = {
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
}
# The chassis refuses text holding U+0000 anywhere in a request (PostgreSQL stores none): stated
# on every string the document does not constrain otherwise.
NO_NUL = "^[^\\u0000]*$"
# A value of a batch's row (chassis.batches), as the chassis takes any body: JSON without U+0000
# in any text.
CELL = "Cell"
CELL_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": ["number", "boolean", "null"]},
        {"type": "array", "items": {"$ref": f"#/components/schemas/{CELL}"}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": f"#/components/schemas/{CELL}"},
        },
    ]
}
RULES_INTRO = (
    "Beyond the schemas, the request must keep these rules; breaking one is answered 422 with"
    " the fields concerned:"
)


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "machine-readable code"})
    message = fields.String(required=True, metadata={"description": "in the caller's language"})
    fields_ = fields.Dict(
        data_key="fields", metadata={"description": "field errors, by field, when there are some"}
    )


def routes(service_cls) -> list[tuple[str, JsonHttp]]:
    found = []
    for attr in dir(service_cls):
        for entrypoint in getattr(getattr(service_cls, attr, None), "nameko_entrypoints", ()):
            if isinstance(entrypoint, JsonHttp):
                found.append((attr, entrypoint))
    return sorted(found, key=lambda item: (item[1].url, item[1].method))


def _outcome(description: str, status: int, media_type: str, schema) -> dict:
    """A documented response: no body for 204, else the schema (any JSON when there is none;
    a string for text)."""
    if status == 204:
        return {"description": description}
    if schema is None:
        schema = {} if media_type == "application/json" else {"type": "string"}
    return {"description": description, "content": {media_type: {"schema": schema}}}


@cache
def openapi_document(service_cls) -> dict:
    spec = APISpec(
        title=f"{service_cls.name} API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": (service_cls.__doc__ or "").strip()},
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.schema("Error", schema=ErrorSchema)
    error = {"content": {"application/json": {"schema": "Error"}}}
    paths: dict[str, dict] = {}
    for attr, entrypoint in routes(service_cls):
        path = _RULE_PARAMETER.sub(lambda m: "{" + m.group("name") + "}", entrypoint.url)
        parameters = [
            {
                "in": "path",
                "name": m.group("name"),
                "required": True,
                "schema": _CONVERTER_SCHEMAS.get(m.group("converter"), {"type": "string"}),
            }
            for m in _RULE_PARAMETER.finditer(entrypoint.url)
        ]
        if entrypoint.query_schema is not None:
            parameters.append({"in": "query", "schema": type(entrypoint.query_schema)})
        responses = {
            str(entrypoint.status): _outcome(
                "success", entrypoint.status, entrypoint.media_type, entrypoint.response_schema
            ),
            **{
                str(status): _outcome(HTTPStatus(status).phrase, status, "application/json", schema)
                for status, schema in entrypoint.responses.items()
            },
            "default": {"description": "error", **error},
        }
        operation = {
            "operationId": attr,
            "summary": entrypoint.summary or attr.replace("_", " "),
            "parameters": parameters,
            "responses": responses,
        }
        if entrypoint.rules:
            rules = "".join(f"\n- {rule}" for rule in entrypoint.rules)
            operation["description"] = f"{RULES_INTRO}{rules}"
            responses["422"] = {"description": f"A rule is broken:{rules}", **error}
        if entrypoint.body_schema is not None:
            operation["requestBody"] = {
                "required": not entrypoint.optional_body,
                "content": {"application/json": {"schema": type(entrypoint.body_schema)}},
            }
        if entrypoint.auth:
            operation["security"] = [{"bearer": []}]
        for method in entrypoint.method.split(","):
            paths.setdefault(path, {})[method.strip().lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    components = document["components"]["schemas"]
    for schema_cls in _schema_classes(service_cls):
        # `Meta.openapi(generated) -> published`: what apispec cannot derive from the fields
        adjust = getattr(getattr(schema_cls, "Meta", None), "openapi", None)
        name = resolver(schema_cls)
        if adjust is not None and name in components:
            components[name] = adjust(components[name])
    if any("x-row-schema" in str(component) for component in components.values()):
        components[CELL] = CELL_SCHEMA
    # Everything a request can carry; components serve responses too, where it holds as well.
    _refuse_nul(document["components"])
    for operations in document["paths"].values():
        for operation in operations.values():
            _refuse_nul(operation.get("parameters", []))
            _refuse_nul(operation.get("requestBody", {}))
    return document


def _schema_classes(service_cls) -> set[type]:
    """Every schema class the service's entrypoints use, nested ones included."""
    found: set[type] = set()
    pending = [
        schema
        for _, entrypoint in routes(service_cls)
        for schema in (entrypoint.body_schema, entrypoint.query_schema, entrypoint.response_schema)
        if schema is not None
    ]
    while pending:
        schema = pending.pop()
        if type(schema) in found:
            continue
        found.add(type(schema))
        fields_ = list(schema.fields.values())
        while fields_:
            field = fields_.pop()
            if isinstance(field, fields.Nested):
                pending.append(field.schema)
            elif isinstance(field, fields.List):
                fields_.append(field.inner)
    return found


def _refuse_nul(node) -> None:
    """Add `NO_NUL` to every string schema without a pattern, format or enum of its own."""
    if isinstance(node, list):
        for item in node:
            _refuse_nul(item)
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    if is_string and not {"pattern", "format", "enum", "const"} & node.keys():
        node["pattern"] = NO_NUL
    for value in node.values():
        _refuse_nul(value)
