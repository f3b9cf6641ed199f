"""CloudEvents 1.0 structured JSON, plus the platform's correlation and causation extensions.

Wire form (AMQP body, content type `application/cloudevents+json`)::

    {"specversion": "1.0", "id": "<uuid>", "source": "/accounts", "type": "returnee.registered",
     "time": "2026-11-28T10:00:00+00:00", "subject": "<aggregate id>",
     "datacontenttype": "application/json",
     "dataschema": "urn:returnee-platform:event:returnee.registered:v1",
     "correlationid": "<uuid>", "causationid": "<uuid or null>", "data": {...}}
"""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from marshmallow import Schema, ValidationError, fields, validate

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
DATASCHEMA_PREFIX = "urn:returnee-platform:event:"


class InvalidEvent(ValueError):
    """A message that is not a valid platform event; carries field errors when there are some."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message if not errors else f"{message}: {json.dumps(errors)}")
        self.errors = errors or {}


def dataschema(event_type: str, version: int) -> str:
    return f"{DATASCHEMA_PREFIX}{event_type}:v{version}"


def version_of(dataschema_uri: str, event_type: str) -> int:
    prefix = f"{DATASCHEMA_PREFIX}{event_type}:v"
    if not dataschema_uri.startswith(prefix) or not dataschema_uri[len(prefix) :].isdigit():
        raise InvalidEvent("dataschema does not name a version of the event type")
    return int(dataschema_uri[len(prefix) :])


class EnvelopeSchema(Schema):
    specversion = fields.String(required=True, validate=validate.Equal(SPECVERSION))
    id = fields.UUID(required=True)
    source = fields.String(required=True, validate=validate.Regexp(r"^/[a-z][a-z0-9_-]*$"))
    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z_]+(\.[a-z_0-9]+)+$"))
    time = fields.AwareDateTime(required=True)
    subject = fields.String(allow_none=True, load_default=None)
    datacontenttype = fields.String(required=True, validate=validate.Equal("application/json"))
    dataschema = fields.String(required=True)
    correlationid = fields.String(required=True)
    causationid = fields.String(allow_none=True, load_default=None)
    data = fields.Dict(required=True)


_envelope = EnvelopeSchema()


@dataclass(frozen=True)
class Event:
    """One event as producers create it and consumers receive it."""

    type: str
    data: dict
    source: str
    version: int = 1
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    causation_id: str | None = None

    @property
    def producer(self) -> str:
        return self.source.lstrip("/")

    def to_json(self) -> bytes:
        body = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
            "subject": self.subject,
            "datacontenttype": "application/json",
            "dataschema": dataschema(self.type, self.version),
            "correlationid": self.correlation_id or self.id,
            "causationid": self.causation_id,
            "data": self.data,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, body: bytes | str) -> "Event":
        """Parse and check the envelope (not the data: see `Catalog.check`)."""
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEvent(f"body is not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise InvalidEvent("body is not a JSON object")
        try:
            loaded = _envelope.load(raw, unknown="exclude")
        except ValidationError as exc:
            raise InvalidEvent("envelope is not CloudEvents 1.0", exc.messages) from None
        return cls(
            type=loaded["type"],
            data=loaded["data"],
            source=loaded["source"],
            version=version_of(loaded["dataschema"], loaded["type"]),
            subject=loaded["subject"],
            id=str(loaded["id"]),
            time=loaded["time"],
            correlation_id=loaded["correlationid"],
            causation_id=loaded["causationid"],
        )
