"""Batches of rows a use case takes in one request and one transaction (an import from a
spreadsheet): each row is validated by the schema of the single-row operation and answered on
its own, so one invalid row refuses that row, not the batch.

    body=batch_of(ImportedReturnee)          # {"rows": [ImportedReturnee, ...]}
    response=BatchOut()                      # {"results": [RowResult, ...], "created": n, ...}

A row's cells may be text, as a spreadsheet holds them ("true", "42", "2026-01-31"): the row
schema reads them as marshmallow's own fields do, rather than as strict JSON types. The OpenAPI
document publishes the row schema as a component (`x-row-schema` names it), which is what a
client builds its columns from (`chassis/sheets.py`).
"""

from marshmallow import Schema, ValidationError, fields, validate

from chassis.i18n import translate
from chassis.openapi import CELL, NO_NUL

MAX_ROWS = 100  # rows per batch: a returnee's row is about 600 bytes of JSON, the body ≤ 64 KiB
ROW_STATUSES = ("created", "exists", "invalid")


class Rows(fields.List):
    """The rows of a batch, documented as the row schema, handed to the use case as they came
    (mappings), which loads each one itself and answers per row."""

    def __init__(self, row_schema: type[Schema], **kwargs):
        super().__init__(_Row(row_schema), validate=validate.Length(min=1, max=MAX_ROWS), **kwargs)


class _Row(fields.Nested):
    text_cells = True  # chassis.web leaves its schema's fields lenient (see the module doc)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("Not a valid mapping type.")
        return value


def batch_of(row_schema: type[Schema]) -> type[Schema]:
    """The body schema of a batch of `row_schema` rows. The document states each row as an
    object that `x-row-schema` (a component) describes: a row breaking it is a valid request,
    answered `invalid` in its result, not a 400."""
    name = row_schema.__name__
    reference = f"#/components/schemas/{name}"

    def document(component: dict) -> dict:
        component["properties"]["rows"]["items"] = {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": f"#/components/schemas/{CELL}"},
            "x-row-schema": reference,
            "description": f"A row as {name} describes it; each is validated and answered on its"
            " own (cells may be text).",
        }
        return component

    return type(
        f"{name}Batch",
        (Schema,),
        {
            "rows": Rows(row_schema, required=True),
            "Meta": type("Meta", (), {"ordered": True, "openapi": staticmethod(document)}),
        },
    )


class RowError(Schema):
    field = fields.String(
        required=True,
        metadata={"description": "The field, dotted where nested: education.0.institution"},
    )
    message_en = fields.String(required=True)
    message_zh = fields.String(required=True)


class RowResult(Schema):
    row = fields.Integer(required=True, metadata={"description": "The row's index in `rows`."})
    status = fields.String(required=True, validate=validate.OneOf(ROW_STATUSES))
    id = fields.String(allow_none=True, metadata={"description": "What the row created or is."})
    errors = fields.List(fields.Nested(RowError), required=True)


class BatchOut(Schema):
    results = fields.List(fields.Nested(RowResult), required=True)
    created = fields.Integer(required=True)
    existing = fields.Integer(required=True)
    invalid = fields.Integer(required=True)


def row_errors(problems, prefix: str = "") -> list[dict]:
    """marshmallow's nested field errors as a flat list, each message in both languages."""
    found = []
    if isinstance(problems, dict):
        for key, value in problems.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            found.extend(row_errors(value, "" if key == "_schema" and not prefix else name))
    elif isinstance(problems, list):
        if all(isinstance(p, str) for p in problems):
            for message in problems:
                found.append(
                    {
                        "field": prefix or "_row",
                        "message_en": message,
                        "message_zh": translate(message, "zh-CN"),
                    }
                )
        else:
            for value in problems:
                found.extend(row_errors(value, prefix))
    elif isinstance(problems, str):
        found.append(
            {
                "field": prefix or "_row",
                "message_en": problems,
                "message_zh": translate(problems, "zh-CN"),
            }
        )
    return found


def outcome(results: list[dict]) -> dict:
    """The batch's answer: each row's result, in order, and the counts."""
    counts = {status: 0 for status in ROW_STATUSES}
    for result in results:
        counts[result["status"]] += 1
    return {
        "results": sorted(results, key=lambda r: r["row"]),
        "created": counts["created"],
        "existing": counts["exists"],
        "invalid": counts["invalid"],
    }


def created(row: int, row_id) -> dict:
    return {"row": row, "status": "created", "id": str(row_id), "errors": []}


def existing(row: int, row_id) -> dict:
    return {"row": row, "status": "exists", "id": str(row_id), "errors": []}


def refused(row: int, problems) -> dict:
    return {"row": row, "status": "invalid", "id": None, "errors": row_errors(problems)}
