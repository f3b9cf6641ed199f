"""CloudEvents 1.0 structured JSON, plus the platform's correlation and causation extensions.

Wire form (AMQP body, content type `application/cloudevents+json`)::

    {"specversion": "1.0", "id": "<uuid>", "source": "/accounts", "type": "returnee.registered",
     "time": "2026-11-28T10:00:00+00:00", "subject": "<aggregate id>",
     "datacontenttype": "application/json",
     "dataschema": "urn:returnee-platform:event:returnee.registered:v1",
     "correlationid": "<uuid>", "causationid": "<uuid or null>", "data": {...}}

`subject` is left out of an event about no aggregate: CloudEvents has no null subject (its SDKs
refuse one), and an absent attribute is what a null one means in its JSON format.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from marshmallow import Schema, fields, validate

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


_SOURCE = re.compile(r"^/[a-z][a-z0-9_-]*$")
_TYPE = re.compile(r"^[a-z_]+(\.[a-z_0-9]+)+$")


class EnvelopeSchema(Schema):
    """The envelope as a schema: documents it (AsyncAPI) and defines what `check_envelope` does."""

    specversion = fields.String(required=True, validate=validate.Equal(SPECVERSION))
    id = fields.UUID(required=True)
    source = fields.String(required=True, validate=validate.Regexp(_SOURCE))
    type = fields.String(required=True, validate=validate.Regexp(_TYPE))
    time = fields.AwareDateTime(required=True)
    subject = fields.String(allow_none=True, load_default=None)
    datacontenttype = fields.String(required=True, validate=validate.Equal("application/json"))
    dataschema = fields.String(required=True)
    correlationid = fields.String(required=True)
    causationid = fields.String(allow_none=True, load_default=None)
    data = fields.Dict(required=True)


_REQUIRED = "Missing data for required field."


def check_envelope(raw: dict) -> tuple[dict, dict]:
    """`EnvelopeSchema().load(raw)` written out by hand: every consumed event passes here, and
    this is several times cheaper than marshmallow. tests/unit/test_envelope.py keeps the two
    in agreement. Returns the loaded values and the field errors."""
    errors: dict[str, list[str]] = {}
    loaded: dict = {}

    def text(name, required=True, equal=None, pattern=None, nullable=False):
        value = raw.get(name)
        if value is None:
            if name in raw and nullable:
                loaded[name] = None
            elif required:
                errors[name] = [_REQUIRED if name not in raw else "Field may not be null."]
            else:
                loaded[name] = None
        elif not isinstance(value, str):
            errors[name] = ["Not a valid string."]
        elif equal is not None and value != equal:
            errors[name] = [f"Must be equal to {equal}."]
        elif pattern is not None and not pattern.match(value):
            errors[name] = ["String does not match expected pattern."]
        else:
            loaded[name] = value

    text("specversion", equal=SPECVERSION)
    text("id")
    if "id" in loaded:
        try:
            loaded["id"] = uuid.UUID(loaded["id"])
        except ValueError:
            del loaded["id"]
            errors["id"] = ["Not a valid UUID."]
    text("source", pattern=_SOURCE)
    text("type", pattern=_TYPE)
    text("time")
    if "time" in loaded:
        try:
            loaded["time"] = datetime.fromisoformat(loaded["time"])
            if loaded["time"].tzinfo is None:
                errors["time"] = ["Not a valid aware datetime."]
        except ValueError:
            errors["time"] = ["Not a valid datetime."]
    text("subject", required=False, nullable=True)
    text("datacontenttype", equal="application/json")
    text("dataschema")
    text("correlationid")
    text("causationid", required=False, nullable=True)
    if "data" not in raw:
        errors["data"] = [_REQUIRED]
    elif not isinstance(raw["data"], dict):
        errors["data"] = ["Not a valid mapping type."]
    else:
        loaded["data"] = raw["data"]
    return loaded, errors


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
    # The bytes it arrived as (`from_json`), so a consumer that stores or forwards an event
    # passes on exactly what its producer published; None for an event made in this process.
    raw: bytes | None = field(default=None, repr=False, compare=False)

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
        if self.subject is None:
            del body["subject"]
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
        loaded, errors = check_envelope(raw)
        if errors:
            raise InvalidEvent("envelope is not CloudEvents 1.0", errors)
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
            raw=body.encode("utf-8") if isinstance(body, str) else bytes(body),
        )
