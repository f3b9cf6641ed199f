"""OpenAPI 3.1 documents generated from a service's `@http` entrypoints and their schemas."""

import re
from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from chassis.web import JsonHttp

_RULE_PARAMETER = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}


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
                "schema": {"type": _CONVERTER_TYPES.get(m.group("converter"), "string")},
            }
            for m in _RULE_PARAMETER.finditer(entrypoint.url)
        ]
        if entrypoint.query_schema is not None:
            parameters.append({"in": "query", "schema": type(entrypoint.query_schema)})
        success = {"description": "success"}
        if entrypoint.response_schema is not None:
            success["content"] = {"application/json": {"schema": entrypoint.response_schema}}
        else:
            success["content"] = {"application/json": {"schema": {}}}
        responses = {str(entrypoint.status): success, "default": {"description": "error", **error}}
        operation = {
            "operationId": attr,
            "summary": entrypoint.summary or attr.replace("_", " "),
            "parameters": parameters,
            "responses": responses,
        }
        if entrypoint.body_schema is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": type(entrypoint.body_schema)}},
            }
        if entrypoint.auth:
            operation["security"] = [{"bearer": []}]
        for method in entrypoint.method.split(","):
            paths.setdefault(path, {})[method.strip().lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
