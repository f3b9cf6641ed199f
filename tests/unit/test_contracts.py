"""Contract tests of the event catalog: schemas, the AsyncAPI document, pins and compatibility."""

import copy
import json

import pytest
import yaml

from contracts import CATALOG, Event, InvalidEvent
from contracts.asyncapi import (
    DOCUMENT_3_PATH,
    DOCUMENT_PATH,
    PINS_DIR,
    data_schema,
    document,
    document_3,
    pin_path,
    pin_text,
    render,
)
from contracts.compatibility import (
    BECAME_NULLABLE,
    BECAME_OPTIONAL,
    ENUM_VALUE_ADDED,
    ENUM_VALUE_REMOVED,
    FIELD_REMOVED,
    TYPE_CHANGED,
    breaking_changes,
)
from contracts.envelope import dataschema
from contracts.examples import EXAMPLES, example, example_event

EVENT_TYPES = list(CATALOG)
IDS = [f"{t.type}.v{t.version}" for t in EVENT_TYPES]


def test_the_catalog_has_every_event_type_of_the_platform():
    assert {(t.producer, t.type, t.version) for t in EVENT_TYPES if t.version > 1} == {
        ("matching", "intention.expressed", 2),
        ("matching", "intention.accepted", 2),
        ("matching", "intention.declined", 2),
    }
    assert {(t.producer, t.type) for t in EVENT_TYPES} == {
        ("accounts", "returnee.registered"),
        ("accounts", "returnee.updated"),
        ("accounts", "returnee.erased"),
        ("accounts", "consent.changed"),
        ("accounts", "organization.registered"),
        ("accounts", "staff.registered"),
        ("accounts", "staff.updated"),
        ("accounts", "credentials.revoked"),
        ("accounts", "account.link_issued"),
        ("accounts", "account.email_verified"),
        ("consulting", "policy.published"),
        ("consulting", "eligibility.assessed"),
        ("consulting", "consultation.requested"),
        ("consulting", "consultation.assigned"),
        ("consulting", "consultation.answered"),
        ("consulting", "consultation.waiting_on_returnee"),
        ("consulting", "consultation.closed"),
        ("consulting", "consultation.reopened"),
        ("consulting", "consultation.rated"),
        ("consulting", "consultation.sla_breached"),
        ("consulting", "appointment.booked"),
        ("consulting", "appointment.cancelled"),
        ("consulting", "application.submitted"),
        ("consulting", "application.approved"),
        ("consulting", "application.rejected"),
        ("consulting", "application.awarded"),
        ("consulting", "application.withdrawn"),
        ("matching", "resource.published"),
        ("matching", "resource.withdrawn"),
        ("matching", "matches.proposed"),
        ("matching", "intention.expressed"),
        ("matching", "intention.accepted"),
        ("matching", "intention.declined"),
        ("activities", "activity.published"),
        ("activities", "activity.cancelled"),
        ("activities", "activity.closed"),
        ("activities", "invitation.issued"),
        ("activities", "registration.confirmed"),
        ("activities", "registration.waitlisted"),
        ("activities", "registration.cancelled"),
        ("activities", "attendance.recorded"),
        ("activities", "agreement.signed"),
        ("notify", "notification.sent"),
        ("notify", "notification.failed"),
        ("notify", "subscription.disabled"),
    }


def test_every_event_type_has_one_example_and_every_example_an_event_type():
    assert set(EXAMPLES) == {(t.type, t.version) for t in EVENT_TYPES}


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=IDS)
def test_emitted_when_is_one_sentence(event_type):
    text = event_type.emitted_when
    assert text[0].isupper() and text.endswith(".") and len(text) <= 200


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=IDS)
def test_an_event_round_trips_from_producer_to_consumer(event_type):
    found = example(event_type.type, event_type.version)

    created = CATALOG.create(
        event_type.producer,
        event_type.type,
        found.data,
        version=event_type.version,
        subject=found.subject,
    )
    received = CATALOG.check(Event.from_json(created.to_json()))

    assert created.data == found.data  # examples are in wire form: nothing lost or reshaped
    assert json.loads(created.to_json())["dataschema"] == dataschema(
        event_type.type, event_type.version
    )
    assert (received.id, received.type, received.source, received.subject) == (
        created.id,
        event_type.type,
        f"/{event_type.producer}",
        found.subject,
    )
    assert received.time == created.time
    assert received.data == event_type.schema().load(found.data)


def test_a_consumer_ignores_fields_added_at_any_depth():
    data = copy.deepcopy(example("returnee.registered").data)
    data["nickname"] = "Wei"
    data["education"][0]["gpa"] = 3.8
    data["company"]["employees"] = 12
    event = Event(type="returnee.registered", source="/accounts", data=data)

    received = CATALOG.check(event)

    assert "nickname" not in received.data
    assert "gpa" not in received.data["education"][0]
    assert "employees" not in received.data["company"]


def test_a_policy_title_is_keyed_by_locale_once_loaded():
    event = example_event(CATALOG.get("policy.published"))

    title = CATALOG.check(event).data["title"]

    assert set(title) == {"zh-CN", "en"}


_MISSING = object()


def _with(type_: str, **changes) -> dict:
    """The example's data with `a__0__b=value` set (or removed, with `_MISSING`)."""
    data = copy.deepcopy(example(type_).data)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = data
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is _MISSING:
            del target[last]
        else:
            target[last] = value
    return data


@pytest.mark.parametrize(
    ("type_", "data", "errors"),
    [
        (
            "returnee.registered",
            _with("returnee.registered", email=_MISSING),
            {"email": ["Missing data for required field."]},
        ),
        (
            "returnee.registered",
            _with("returnee.registered", education__1__degree="diploma"),
            {"education": {1: {"degree": ["Must be one of: bachelor, master, phd."]}}},
        ),
        (
            "returnee.registered",
            _with("returnee.registered", company__shareholding_pct=120.0),
            {
                "company": {
                    "shareholding_pct": [
                        "Must be greater than or equal to 0 and less than or equal to 100."
                    ]
                }
            },
        ),
        (
            "returnee.registered",
            _with("returnee.registered", password="s3cret"),
            {"password": ["Unknown field."]},
        ),
        (
            "returnee.updated",
            _with("returnee.updated", changed_fields=[]),
            {"changed_fields": ["Shorter than minimum length 1."]},
        ),
        (
            "consent.changed",
            _with("consent.changed", changed_at="2026-11-28T09:58:12"),
            {"changed_at": ["Not a valid aware datetime."]},
        ),
        (
            "consultation.rated",
            _with("consultation.rated", rating=6),
            {"rating": ["Must be greater than or equal to 1 and less than or equal to 5."]},
        ),
        (
            "appointment.booked",
            _with("appointment.booked", ends_at="2026-12-03T13:30:00+08:00"),
            {"ends_at": ["must be after starts_at"]},
        ),
        (
            "resource.published",
            _with("resource.published", resource_id="R-17"),
            {"resource_id": ["Not a valid UUID."]},
        ),
        (
            "notification.failed",
            _with("notification.failed", channel="fax", reason=_MISSING),
            {
                "channel": ["Must be one of: email, in_app, webhook, sms."],
                "reason": ["Missing data for required field."],
            },
        ),
    ],
    ids=[
        "required",
        "nested-enum",
        "nested-range",
        "unknown-field",
        "min-length",
        "naive-datetime",
        "range",
        "date-order",
        "uuid",
        "several",
    ],
)
def test_invalid_data_is_refused_with_field_errors(type_, data, errors):
    producer = CATALOG.get(type_).producer

    with pytest.raises(InvalidEvent) as refused:
        CATALOG.create(producer, type_, data)

    assert refused.value.errors == errors


def test_a_consumer_refuses_invalid_data_with_field_errors():
    data = _with("intention.accepted", status="maybe")
    event = Event(type="intention.accepted", source="/matching", data=data)

    with pytest.raises(InvalidEvent) as refused:
        CATALOG.check(event)

    assert set(refused.value.errors) == {"status"}


def test_the_committed_asyncapi_document_is_the_generated_one():
    generated = render(document())
    committed = DOCUMENT_PATH.read_text() if DOCUMENT_PATH.exists() else ""

    assert committed == generated, (
        "contracts/asyncapi.yaml is out of date with contracts/: "
        "run `python -m contracts.asyncapi --write` and commit it"
    )


def test_the_asyncapi_3_document_is_committed_and_says_what_the_2_6_one_says():
    assert DOCUMENT_3_PATH.read_text() == render(document_3()), (
        "contracts/asyncapi-3.0.yaml is out of date: run `python -m contracts.asyncapi --write`"
    )
    two, three = document(), document_3()
    assert three["asyncapi"] == "3.0.0"
    assert {c["address"] for c in three["channels"].values()} == set(two["channels"])
    for channel in three["channels"].values():
        exchange = channel["bindings"]["amqp"]["exchange"]
        assert exchange == two["channels"][channel["address"]]["bindings"]["amqp"]["exchange"]
    payloads_2 = sorted(
        json.dumps(m["payload"], sort_keys=True)
        for c in two["channels"].values()
        for m in c["subscribe"]["message"].get("oneOf", [c["subscribe"]["message"]])
    )
    payloads_3 = sorted(json.dumps(m["payload"], sort_keys=True) for c in three["channels"].values()
                        for m in c["messages"].values())  # fmt: skip
    assert payloads_2 == payloads_3
    assert {op["action"] for op in three["operations"].values()} == {"receive"}
    assert three["servers"]["production"]["pathname"] == "/returnee-platform"
    assert three["x-partners"] == two["x-partners"]
    assert three["x-partners"]["exchange"] == "partners.events"


def test_rendering_the_document_is_deterministic():
    assert render(document()) == render(document())


def test_the_asyncapi_document_is_structurally_valid(asyncapi):
    doc = asyncapi

    assert doc["asyncapi"] == "2.6.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"]["local"] == {
        "url": "localhost:5672",
        "protocol": "amqp",
        "protocolVersion": "0.9.1",
        "description": doc["servers"]["local"]["description"],
    }
    assert set(doc["channels"]) == {t.type for t in EVENT_TYPES}
    for event_type in EVENT_TYPES:
        channel = doc["channels"][event_type.type]
        binding = channel["bindings"]["amqp"]
        assert binding["is"] == "routingKey"
        assert binding["exchange"]["name"] == f"{event_type.producer}.events"
        assert binding["exchange"]["type"] == "topic" and binding["exchange"]["durable"] is True
        message = _message_of(channel, event_type)
        payload = message["payload"]
        assert payload["properties"]["data"] == data_schema(event_type)
        assert payload["properties"]["type"]["const"] == event_type.type
        assert message["x-dataschema"] == dataschema(event_type.type, event_type.version)
        assert message["x-producer"] == event_type.producer
        assert message["summary"] == event_type.emitted_when


def _message_of(channel: dict, event_type) -> dict:
    """The channel's message of this version: versions of a type share a channel (one routing
    key), each its own message."""
    message = channel["subscribe"]["message"]
    messages = message.get("oneOf", [message])
    wanted = f"{event_type.type}.v{event_type.version}"
    return next(m for m in messages if m["messageId"] == wanted)


def test_versions_of_a_type_share_its_channel_each_with_its_message(asyncapi):
    channel = asyncapi["channels"]["intention.accepted"]

    messages = channel["subscribe"]["message"]["oneOf"]

    assert [m["messageId"] for m in messages] == ["intention.accepted.v1", "intention.accepted.v2"]
    assert channel["bindings"]["amqp"]["exchange"]["name"] == "matching.events"


@pytest.fixture(scope="module")
def asyncapi() -> dict:
    return yaml.safe_load(render(document()))


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=IDS)
def test_the_documented_example_is_a_valid_event(event_type, asyncapi):
    message = _message_of(asyncapi["channels"][event_type.type], event_type)
    body = json.dumps(message["examples"][0]["payload"])

    received = CATALOG.check(Event.from_json(body))

    assert received.data == event_type.schema().load(
        example(event_type.type, event_type.version).data
    )


def _properties(schema: dict, path: str = ""):
    for name, child in schema.get("properties", {}).items():
        yield f"{path}{name}", child
        yield from _properties(child, f"{path}{name}.")
    if isinstance(schema.get("items"), dict):
        yield from _properties(schema["items"], f"{path}[].")


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=IDS)
def test_no_event_carries_secrets_or_identity_numbers(event_type):
    forbidden = ("password", "secret", "id_number", "id_card", "passport", "bank_account")
    names = [path for path, _ in _properties(data_schema(event_type))]

    assert not [name for name in names if any(word in name for word in forbidden)]


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=IDS)
def test_the_schema_keeps_its_pinned_contract(event_type):
    path = pin_path(event_type)
    assert path.exists(), (
        f"{event_type.type} v{event_type.version} has no pin: "
        "run `python -m contracts.asyncapi --pin` and commit contracts/pins/"
    )
    pinned, current = json.loads(path.read_text()), data_schema(event_type)

    breaking = breaking_changes(pinned, current)

    assert not breaking, (
        f"{event_type.type} v{event_type.version} breaks consumers built against its pin: "
        + "; ".join(map(str, breaking))
        + f". A breaking change needs a new event version `{event_type.type}.v"
        f"{event_type.version + 1}` published alongside this one; additive changes only need a "
        "re-pin with `python -m contracts.asyncapi --pin`."
    )
    assert path.read_text() == pin_text(current), (
        f"{event_type.type} v{event_type.version} changed compatibly since it was pinned: "
        "re-pin with `python -m contracts.asyncapi --pin` and commit contracts/pins/"
    )


def test_every_pin_names_an_event_type_still_published():
    pins = {path.name for path in PINS_DIR.glob("*.json")}

    assert pins == {pin_path(t).name for t in EVENT_TYPES}, (
        "a pinned event version is no longer in the catalog: consumers may still need it; "
        "keep publishing it until its deprecation period ends"
    )


# compatibility: one case per rule, on small schemas shaped like the generated ones.

ADDRESS = {
    "type": "object",
    "properties": {
        "district": {"type": "string"},
        "kind": {"type": "string", "enum": ["office", "lab"]},
    },
    "required": ["district", "kind"],
}
PINNED = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "stage": {"type": "string", "enum": ["idea", "registered", "growth"]},
        "note": {"type": ["string", "null"], "default": None},
        "tier": {"type": ["string", "null"], "enum": ["key", "excellent", None]},
        "address": ADDRESS,
        "sites": {"type": "array", "items": copy.deepcopy(ADDRESS)},
    },
    "required": ["address", "id", "rating", "sites", "stage"],
}


def _changed(edit) -> list[tuple[str, str]]:
    current = copy.deepcopy(PINNED)
    edit(current)
    return [(change.path, change.rule) for change in breaking_changes(PINNED, current)]


def test_an_unchanged_schema_breaks_nothing():
    assert breaking_changes(PINNED, copy.deepcopy(PINNED)) == []


def test_adding_an_optional_or_a_required_field_breaks_nothing():
    def add(schema):
        schema["properties"]["comment"] = {"type": ["string", "null"], "default": None}
        schema["properties"]["score"] = {"type": "number"}
        schema["required"].append("score")
        schema["properties"]["address"]["properties"]["room"] = {"type": "string"}

    assert _changed(add) == []


def test_narrowing_is_not_breaking():
    def narrow(schema):
        schema["properties"]["note"]["type"] = "string"  # no longer nullable
        schema["required"].append("note")  # now always there

    assert _changed(narrow) == []


def test_removing_a_field_breaks():
    assert _changed(lambda s: s["properties"].pop("rating")) == [("rating", FIELD_REMOVED)]


def test_changing_a_type_breaks():
    def retype(schema):
        schema["properties"]["rating"] = {"type": "number"}
        schema["properties"]["id"] = {"type": "string"}  # uuid format dropped

    assert _changed(retype) == [("id", TYPE_CHANGED), ("rating", TYPE_CHANGED)]


def test_a_required_field_becoming_optional_breaks():
    assert _changed(lambda s: s["required"].remove("stage")) == [("stage", BECAME_OPTIONAL)]


def test_a_field_becoming_nullable_breaks():
    def nullable(schema):
        schema["properties"]["stage"]["type"] = ["string", "null"]
        schema["properties"]["stage"]["enum"].append(None)

    assert _changed(nullable) == [("stage", BECAME_NULLABLE)]


def test_an_enum_losing_a_value_breaks():
    def lose(schema):
        schema["properties"]["stage"]["enum"].remove("growth")

    assert _changed(lose) == [("stage", ENUM_VALUE_REMOVED)]


def test_an_enum_gaining_a_value_breaks():
    def gain(schema):
        schema["properties"]["tier"]["enum"].insert(2, "promising")
        schema["properties"]["stage"].pop("enum")  # unrestricted: any value may come

    assert _changed(gain) == [("stage", ENUM_VALUE_ADDED), ("tier", ENUM_VALUE_ADDED)]


def test_a_breaking_change_in_a_nested_object_breaks():
    def nested(schema):
        schema["properties"]["address"]["required"].remove("district")
        schema["properties"]["address"]["properties"]["kind"]["enum"].append("warehouse")

    assert _changed(nested) == [
        ("address.district", BECAME_OPTIONAL),
        ("address.kind", ENUM_VALUE_ADDED),
    ]


def test_a_breaking_change_in_array_items_breaks():
    def items(schema):
        schema["properties"]["sites"]["items"] = copy.deepcopy(ADDRESS)
        schema["properties"]["sites"]["items"]["properties"].pop("district")

    assert _changed(items) == [("sites[].district", FIELD_REMOVED)]


def test_a_real_schema_change_is_detected_against_its_pin():
    pinned = data_schema(CATALOG.get("returnee.registered"))
    current = copy.deepcopy(pinned)
    current["properties"]["education"]["items"]["properties"]["degree"]["enum"].remove("phd")
    del current["properties"]["consents"]["properties"]["matching"]

    found = {(change.path, change.rule) for change in breaking_changes(pinned, current)}

    assert found == {
        ("education[].degree", ENUM_VALUE_REMOVED),
        ("consents.matching", FIELD_REMOVED),
    }
