"""OpenAPI 3.1 documents generated from a service's `@http` entrypoints and their schemas."""

import ast
import copy
import inspect
import re
import textwrap
from functools import cache
from http import HTTPStatus

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, resolver
from marshmallow import Schema, fields

from chassis.access import FORBIDDEN_WHY, HEADER_PARAMETERS
from chassis.errors import HttpError
from chassis.paging import CURSOR_PATTERN
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


# The next page of a paged list (chassis.paging), beside its array body; absent on the last.
PAGE_HEADERS = {
    "Link": {
        "description": 'The next page, `<...?cursor=...>; rel="next"` (RFC 8288); absent on'
        " the last page.",
        "schema": {"type": "string"},
    },
    "X-Next-Cursor": {
        "description": "The next page's `cursor`; absent on the last page.",
        "schema": {"type": "string", "pattern": CURSOR_PATTERN},
    },
}


def _outcome(description: str, status: int, media_type, schema) -> dict:
    """A documented response: no body for 204, else the schema (the error shape for an error
    without one of its own); text as a string, any other type as binary. `media_type` may be
    a tuple of the types the operation answers in."""
    if status == 204:
        return {"description": description}
    content = {}
    for media in (media_type,) if isinstance(media_type, str) else media_type:
        if schema is not None and media == "application/json":
            content[media] = {"schema": schema}
        elif media == "application/json":  # an untyped success is `{}`, which tests refuse
            content[media] = {"schema": "Error" if status >= 400 else {}}
        elif media.startswith("text/"):
            content[media] = {"schema": {"type": "string"}}
        else:
            content[media] = {"schema": {"type": "string", "format": "binary"}}
    return {"description": description, "content": content}


# Answers the chassis gives before or around a use case, documented from what the entrypoint
# declares: (status, when, why).
_CHASSIS_ERRORS = (
    (400, "takes input", "The request breaks this document: every invalid field is named."),
    (401, "always", "A bearer token is missing, invalid, expired or revoked."),
    (403, "restricted", "The caller's role may not do this."),
    (404, "addresses", "Nothing is found at this address (or it is not the caller's to see)."),
    (413, "body", "The body is larger than the service takes."),
    (415, "body", "The body is not JSON."),
)
_RAISED = "answered by the use case, `error` says why."
OPERATIONS_TAG = "operations"
TAG_DESCRIPTIONS = {OPERATIONS_TAG: "Health probes, metrics and this document."}


def _chassis_errors(entrypoint, parameters) -> dict:
    takes = {
        # A token sent to a public operation is verified too: a bad one is refused.
        "always": True,
        "takes input": bool(parameters) or entrypoint.body_schema is not None,
        "restricted": bool(entrypoint.roles or entrypoint.owner),
        "addresses": any(p["in"] == "path" for p in parameters),
        "body": entrypoint.body_schema is not None,
    }
    return {status: why for status, when, why in _CHASSIS_ERRORS if takes[when]}


def _who(entrypoint) -> str:
    if not entrypoint.auth:
        return "Public: no token needed (a token that is sent must be valid)."
    allowed = ", ".join(entrypoint.roles or ()) or "any signed-in caller"
    if entrypoint.owner:
        return f"Bearer token of the returnee `{entrypoint.owner}` names, or of: {allowed}."
    return f"Bearer token of: {allowed}."


def tags_of(entrypoint) -> tuple[str, ...]:
    if entrypoint.tags:
        return entrypoint.tags
    segment = entrypoint.url.strip("/").split("/")[0]
    if segment in ("health", "metrics", "openapi.json", ".well-known"):
        return (OPERATIONS_TAG,)
    return (segment,)


def servers(service_cls) -> list[dict]:
    from chassis.settings import PORTS  # chassis.settings reads no web module: no cycle

    port = PORTS[service_cls.name]
    return [
        {"url": f"http://127.0.0.1:{port}", "description": "A local run (`make run`)."},
        {
            "url": f"http://{service_cls.name}:{port}",
            "description": "Inside the platform's network: its Service in Kubernetes, its"
            " container in docker compose (deploy/).",
        },
    ]


def raised_statuses(method) -> set[int]:
    """The statuses of the `HttpError`s an entrypoint's use case raises (a 409, a 429, a 404
    of a lookup), read from the source of the method and of the functions of its service's
    package and the chassis it calls: documented with the others, so an operation added later
    documents its own."""
    package = method.__module__.rsplit(".", 1)[0] + "."
    return _raised(method, (package, "chassis."), set())


def _raised(function, packages: tuple[str, ...], seen: set) -> set[int]:
    """The statuses of the `HttpError`s `function` raises, and the functions of the service's
    own package it calls, read from their source."""
    if function in seen or not getattr(function, "__module__", "").startswith(packages):
        return set()
    seen.add(function)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError):
        return set()
    statuses = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = _resolve(node.func, function.__globals__)
        if isinstance(called, type) and issubclass(called, HttpError):
            statuses.add(called.status)
        elif inspect.isfunction(called):
            statuses |= _raised(called, packages, seen)
    return statuses


def _resolve(node, namespace):
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


@cache
def openapi_document(service_cls) -> dict:
    spec = APISpec(
        title=f"{service_cls.name} API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (service_cls.__doc__ or "").strip(),
            "license": {"name": "Apache License 2.0", "identifier": "Apache-2.0"},
        },
        servers=servers(service_cls),
    )
    spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from accounts' `POST /tokens`, signed with a key"
            " of its `/.well-known/jwks.json`.",
        },
    )
    spec.components.schema("Error", schema=ErrorSchema)
    error = {"content": {"application/json": {"schema": "Error"}}}
    paths: dict[str, dict] = {}
    tags: set[str] = set()
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
        if entrypoint.access:
            parameters.extend(copy.deepcopy(HEADER_PARAMETERS))
        success = entrypoint.response_document or entrypoint.response_schema
        responses = {
            str(entrypoint.status): _outcome(
                HTTPStatus(entrypoint.status).phrase,
                entrypoint.status,
                entrypoint.media_type,
                success,
            ),  # fmt: skip
            **{
                str(status): {"description": why, **error}
                for status, why in _chassis_errors(entrypoint, parameters).items()
            },
            **{
                str(status): {"description": f"{HTTPStatus(status).phrase}: {_RAISED}", **error}
                for status in sorted(raised_statuses(getattr(service_cls, attr)))
                if status not in _chassis_errors(entrypoint, parameters)
            },
            **{
                str(status): _outcome(HTTPStatus(status).phrase, status, "application/json", schema)
                for status, schema in entrypoint.responses.items()
            },
            "default": {"description": "Any other error, in the error shape.", **error},
        }
        if getattr(entrypoint, "paged", False):
            responses[str(entrypoint.status)]["headers"] = PAGE_HEADERS
        method_doc = inspect.getdoc(getattr(service_cls, attr)) or ""
        summary = entrypoint.summary or attr.replace("_", " ")
        description = entrypoint.description or method_doc or f"{summary}."
        operation = {
            "operationId": attr,
            "summary": summary,
            "description": f"{description}\n\n{_who(entrypoint)}",
            "tags": list(tags_of(entrypoint)),
            "parameters": parameters,
            "responses": responses,
            # An empty list states it: no token is needed (Redocly, Spectral and generators
            # read a missing `security` as undocumented).
            "security": [{"bearer": []}] if entrypoint.auth else [],
        }
        tags.update(operation["tags"])
        if entrypoint.access:
            responses["403"] = {"description": FORBIDDEN_WHY, **error}
        if entrypoint.rules:
            rules = "".join(f"\n- {rule}" for rule in entrypoint.rules)
            operation["description"] += f"\n\n{RULES_INTRO}{rules}"
            responses["422"] = {"description": f"A rule is broken:{rules}", **error}
        if entrypoint.body_schema is not None:
            operation["requestBody"] = {
                "required": not entrypoint.optional_body,
                "content": {"application/json": {"schema": type(entrypoint.body_schema)}},
            }
        methods = [m.strip().lower() for m in entrypoint.method.split(",")]
        for method in methods:
            # One operation id per method: the first method's is the method's name.
            suffix = "" if method == methods[0] else f"_{method}"
            paths.setdefault(path, {})[method] = {**operation, "operationId": attr + suffix}
    for tag in sorted(tags):
        spec.tag({"name": tag, "description": TAG_DESCRIPTIONS.get(tag, f"`/{tag}` and below.")})
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    components = document["components"]["schemas"]
    for schema_cls in _schema_classes(service_cls):
        # `Meta.openapi(generated) -> published`: what apispec cannot derive from the fields;
        # or `-> (published, {name: schema})` with components of its own it refers to.
        adjust = getattr(getattr(schema_cls, "Meta", None), "openapi", None)
        name = resolver(schema_cls)
        if adjust is not None and name in components:
            published = adjust(components[name])
            if isinstance(published, tuple):
                published, more = published
                components.update(more)
            components[name] = published
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
