"""The registry of event types: producer, version, payload schema and meaning of each one."""

import json
from dataclasses import dataclass, replace
from functools import cached_property

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from contracts.envelope import Event, InvalidEvent


class UnknownEventType(KeyError):
    pass


@dataclass(frozen=True)
class EventType:
    type: str
    version: int
    producer: str
    schema: type[Schema]
    emitted_when: str
    # Checked by the compiled check of its JSON Schema first (`contracts.compiled`): for types
    # published by the thousand, shown equivalent by tests/unit/test_contracts_compiled.py.
    compiled: bool = False

    @property
    def exchange(self) -> str:
        return f"{self.producer}.events"

    @property
    def routing_key(self) -> str:
        return self.type

    # Schema instances are built once: building one deep-copies every field.
    @cached_property
    def strict_schema(self) -> Schema:
        """For producers: unknown fields refused."""
        return self.schema()

    @cached_property
    def tolerant_schema(self) -> Schema:
        """For consumers: unknown fields ignored at every depth."""
        return _tolerant(self.schema())

    @cached_property
    def compiled_check(self):
        from contracts.compiled import compile_check

        return compile_check(self.schema)

    @cached_property
    def tolerant_read(self):
        """The compiled tolerant reader of its data (`contracts.compiled`), or None."""
        from contracts.compiled import compile_tolerant_read

        return compile_tolerant_read(self.tolerant_schema)

    def load(self, data) -> dict:
        """`data` as a consumer reads it: what `tolerant_schema.load` returns, through the
        compiled reader where it has one and accepts the data; else through marshmallow, whose
        `ValidationError` names what is wrong."""
        from contracts.compiled import Refused

        read = self.tolerant_read
        if read is not None:
            try:
                return read(data)
            except Refused:
                pass
        return self.tolerant_schema.load(data)

    def wire_data(self, data: dict) -> dict | None:
        """`data` as published (a copy), when the compiled check accepts it as it is; else None
        (invalid, or not in wire form: marshmallow decides)."""
        from contracts.compiled import Refused

        try:
            self.compiled_check(data)
        except Refused:
            return None
        return json.loads(json.dumps(data))  # a copy, in the lists and dicts marshmallow dumps


class Catalog:
    def __init__(self, event_types=()):
        self._types: dict[tuple[str, int], EventType] = {}
        for event_type in event_types:
            self.add(event_type)

    def add(self, event_type: EventType) -> None:
        key = (event_type.type, event_type.version)
        if key in self._types:
            raise ValueError(f"{event_type.type} v{event_type.version} is registered twice")
        self._types[key] = event_type

    def __iter__(self):
        return iter(sorted(self._types.values(), key=lambda t: (t.producer, t.type, t.version)))

    def get(self, type_: str, version: int = 1) -> EventType:
        try:
            return self._types[(type_, version)]
        except KeyError:
            raise UnknownEventType(f"{type_} v{version}") from None

    def produced_by(self, producer: str) -> list[EventType]:
        return [t for t in self if t.producer == producer]

    def create(self, producer: str, type_: str, data: dict, version: int = 1, **attrs) -> Event:
        """A new event whose data the producer's schema accepts strictly: unknown fields are
        refused, so a producer cannot publish what the contract does not document."""
        event_type = self.get(type_, version)
        if event_type.producer != producer:
            raise ValueError(f"{type_} is published by {event_type.producer}, not {producer}")
        dumped = event_type.wire_data(data) if event_type.compiled else None
        if dumped is None:
            try:
                schema = event_type.strict_schema
                dumped = schema.dump(schema.load(data))
            except ValidationError as exc:
                raise InvalidEvent(
                    f"{type_} v{version} data does not match its schema", exc.messages
                ) from None
        return Event(type=type_, data=dumped, source=f"/{producer}", version=version, **attrs)

    def check(self, event: Event) -> Event:
        """The event with its data loaded by its schema, as a tolerant reader: unknown fields are
        ignored, missing or malformed ones raise `InvalidEvent`."""
        try:
            event_type = self.get(event.type, event.version)
        except UnknownEventType:
            raise InvalidEvent(f"unknown event type {event.type} v{event.version}") from None
        if event.producer != event_type.producer:
            raise InvalidEvent(f"{event.type} must come from /{event_type.producer}")
        try:
            data = event_type.load(event.data)
        except ValidationError as exc:
            raise InvalidEvent(
                f"{event.type} v{event.version} data is invalid", exc.messages
            ) from None
        return replace(event, data=data)


def _tolerant(schema: Schema) -> Schema:
    """The schema ignoring unknown fields at every depth: `load(unknown=...)` reaches only the top
    level, and a field a producer adds to a nested object must not break older consumers."""
    schema.unknown = EXCLUDE
    for field in schema.fields.values():
        _tolerate(field)
    return schema


def _tolerate(field: fields.Field) -> None:
    if isinstance(field, fields.Nested):
        _tolerant(field.schema)
    elif isinstance(field, fields.List):
        _tolerate(field.inner)
