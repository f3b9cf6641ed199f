"""Which changes to an event's JSON schema break a consumer built against an earlier (pinned) one.

Consumers are tolerant readers (they ignore fields they do not know), so adding a field, required
or optional, is safe. Everything a consumer may rely on is checked: that a field is there, its
type, that it is present and not null when it was required, and the exact set of enum values
(a consumer may switch on them, so a new value breaks it as surely as a removed one).

Pure: takes two JSON schemas (dicts) as produced by `contracts.asyncapi.data_schema`.
"""

from dataclasses import dataclass

FIELD_REMOVED = "field_removed"
TYPE_CHANGED = "type_changed"
BECAME_OPTIONAL = "became_optional"
BECAME_NULLABLE = "became_nullable"
ENUM_VALUE_REMOVED = "enum_value_removed"
ENUM_VALUE_ADDED = "enum_value_added"

RULES = (
    FIELD_REMOVED,
    TYPE_CHANGED,
    BECAME_OPTIONAL,
    BECAME_NULLABLE,
    ENUM_VALUE_REMOVED,
    ENUM_VALUE_ADDED,
)


@dataclass(frozen=True)
class BreakingChange:
    path: str  # "company.shareholding_pct", "education[].degree"; "." is the whole payload
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


def breaking_changes(pinned: dict, current: dict) -> list[BreakingChange]:
    """The changes from `pinned` to `current` that break a consumer built against `pinned`."""
    found: list[BreakingChange] = []
    _compare(pinned, current, "", found)
    return found


def _compare(old: dict, new: dict, path: str, found: list[BreakingChange]) -> None:
    here = path or "."
    old_type, new_type = _type(old), _type(new)
    if old_type != new_type:
        found.append(
            BreakingChange(here, TYPE_CHANGED, f"type changed from {old_type} to {new_type}")
        )
        return  # nothing below a changed type can be compared meaningfully

    if _nullable(new) and not _nullable(old):
        found.append(BreakingChange(here, BECAME_NULLABLE, "may now be null"))

    old_enum, new_enum = _enum(old), _enum(new)
    if old_enum is not None:
        if new_enum is None:
            found.append(
                BreakingChange(here, ENUM_VALUE_ADDED, "is no longer restricted to an enum")
            )
        else:
            if removed := old_enum - new_enum:
                found.append(
                    BreakingChange(
                        here, ENUM_VALUE_REMOVED, f"enum lost {sorted(removed, key=str)}"
                    )
                )
            if added := new_enum - old_enum:
                found.append(
                    BreakingChange(here, ENUM_VALUE_ADDED, f"enum gained {sorted(added, key=str)}")
                )

    old_properties, new_properties = old.get("properties", {}), new.get("properties", {})
    new_required = set(new.get("required", ()))
    for name, old_property in old_properties.items():
        child = f"{path}.{name}" if path else name
        if name not in new_properties:
            found.append(BreakingChange(child, FIELD_REMOVED, "field removed"))
            continue
        if name in old.get("required", ()) and name not in new_required:
            found.append(BreakingChange(child, BECAME_OPTIONAL, "no longer required"))
        _compare(old_property, new_properties[name], child, found)

    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        _compare(old["items"], new["items"], f"{path}[]", found)
    old_values, new_values = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(old_values, dict) and isinstance(new_values, dict):
        _compare(old_values, new_values, f"{path}{{}}", found)


def _type(schema: dict) -> str:
    """Type and format, without null (nullability is its own rule): "string/uuid", "integer"."""
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared else []
    kind = "|".join(sorted(t for t in types if t != "null")) or "any"
    return f"{kind}/{schema['format']}" if "format" in schema else kind


def _nullable(schema: dict) -> bool:
    declared = schema.get("type")
    return (
        (isinstance(declared, list) and "null" in declared)
        or declared == "null"
        or schema.get("nullable") is True  # OpenAPI 3.0 spelling, should a pin use it
    )


def _enum(schema: dict) -> frozenset | None:
    # A nullable enum lists None among its values; null is the nullability rule's concern.
    if "enum" in schema:
        return frozenset(v for v in schema["enum"] if v is not None)
    if "const" in schema:
        return frozenset([schema["const"]])
    return None
