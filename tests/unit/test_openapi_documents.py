"""What every service's OpenAPI document promises, checked without running a service."""

import json
import re

import pytest

from chassis.openapi import RULES_INTRO, openapi_document, raised_statuses, routes
from chassis.settings import PORTS
from services.accounts.service import AccountsService
from services.activities.service import ActivitiesService
from services.consulting.service import ConsultingService
from services.insights.service import InsightsService
from services.matching.service import MatchingService
from services.notify.service import NotifyService

DOCUMENTS = {
    cls.name: openapi_document(cls)
    for cls in (
        AccountsService,
        ConsultingService,
        MatchingService,
        NotifyService,
        InsightsService,
        ActivitiesService,
    )
}


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_integer_parameter_is_bounded(name):
    """A parameter the code takes up to any size reaches PostgreSQL as an out-of-range number
    (a 500); the bounds are the query schema's `Range`, so document and code agree."""
    unbounded = [
        (label, parameter["name"])
        for label, operation in operations(DOCUMENTS[name])
        for parameter in operation["parameters"]
        if "integer" in str(parameter["schema"].get("type"))
        and not {"minimum", "maximum"} <= parameter["schema"].keys()
    ]
    assert unbounded == []


def test_rules_beyond_the_schemas_are_stated_with_their_422():
    stated = {
        label: operation["description"]
        for document in DOCUMENTS.values()
        for label, operation in operations(document)
        if operation["responses"].get("422", {}).get("description", "").startswith("A rule")
    }
    assert {"POST /slots", "POST /resources", "POST /returnees", "POST /staff"} <= set(stated)
    assert all(RULES_INTRO in text for text in stated.values())


def test_a_criterion_is_one_of_the_shapes_the_engine_evaluates():
    components = DOCUMENTS["consulting"]["components"]["schemas"]
    shapes = [components[ref["$ref"].rsplit("/", 1)[1]] for ref in components["Criterion"]["oneOf"]]
    groups = [s for s in shapes if {"all", "any"} & set(s["properties"])]
    leaves = [s for s in shapes if "op" in s["properties"]]
    assert len(groups) == 2 and len(leaves) + 2 == len(shapes)
    taken = [(f, op) for s in leaves for f in s["properties"]["field"]["enum"]
             for op in s["properties"]["op"]["enum"]]  # fmt: skip
    assert len(taken) == len(set(taken))  # one shape per field and op: oneOf is exact
    within_days = next(s for s in leaves if s["properties"]["op"]["enum"] == ["within_days"])
    assert within_days["properties"]["field"]["enum"] == [
        "birth_date", "company.registration_date", "return_date"]  # fmt: skip


# --- typed and with every error documented: what a client generator needs -------------------

ALL_OPERATIONS = [
    (name, label, operation)
    for name, document in DOCUMENTS.items()
    for label, operation in operations(document)
]
OPERATION_IDS = [f"{name} {label}" for name, label, _ in ALL_OPERATIONS]
SERVICE_CLASSES = {
    cls.name: cls
    for cls in (AccountsService, ConsultingService, MatchingService, NotifyService,
                InsightsService, ActivitiesService)
}  # fmt: skip


def _entrypoint(name: str, operation: dict):
    attr = operation["operationId"].split("_head")[0]
    return dict(routes(SERVICE_CLASSES[name]))[attr]


@pytest.mark.parametrize(("name", "label", "operation"), ALL_OPERATIONS, ids=OPERATION_IDS)
def test_every_answer_is_typed(name, label, operation):
    """No `{}`: a generated client gets a model for every JSON answer, errors included."""
    untyped = [
        status
        for status, response in operation["responses"].items()
        for media in response.get("content", {}).values()
        if media.get("schema") in ({}, None)
    ]
    assert untyped == [], f"{label}: give @http a response= schema (chassis/web.py)"


@pytest.mark.parametrize(("name", "label", "operation"), ALL_OPERATIONS, ids=OPERATION_IDS)
def test_every_operation_is_described_tagged_and_secured(name, label, operation):
    assert operation["description"].strip() and operation["summary"].strip()
    assert operation["tags"]
    assert {t["name"] for t in DOCUMENTS[name]["tags"]} >= set(operation["tags"])
    assert "security" in operation
    assert re.fullmatch(r"[a-z][a-z0-9_]*", operation["operationId"]), "a method name"


def test_operation_ids_are_unique_and_servers_named():
    for name, document in DOCUMENTS.items():
        ids = [operation["operationId"] for _, operation in operations(document)]
        assert len(ids) == len(set(ids)), name
        assert [s["url"] for s in document["servers"]] == [
            f"http://127.0.0.1:{PORTS[name]}", f"http://{name}:{PORTS[name]}"]  # fmt: skip


@pytest.mark.parametrize(("name", "label", "operation"), ALL_OPERATIONS, ids=OPERATION_IDS)
def test_the_errors_the_chassis_answers_are_documented(name, label, operation):
    """From what @http declares: 401 (a token, when sent, is verified), 403 (roles, owner), 404
    (a path parameter), 400 (input), 413 and 415 (a body), 422 (rules)."""
    entrypoint = _entrypoint(name, operation)
    expected = {"401"}
    if entrypoint.roles or entrypoint.owner:
        expected.add("403")
    if "{" in label:
        expected |= {"400", "404"}
    if entrypoint.body_schema is not None or entrypoint.query_schema is not None:
        expected.add("400")
    if entrypoint.body_schema is not None:
        expected |= {"413", "415"}
    if entrypoint.rules:
        expected.add("422")
    documented = set(operation["responses"])
    assert expected <= documented
    for status in documented - {"default"}:
        if status.startswith("4"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, status


@pytest.mark.parametrize(("name", "label", "operation"), ALL_OPERATIONS, ids=OPERATION_IDS)
def test_every_error_the_use_case_raises_is_documented(name, label, operation):
    """What the use case raises (a 409, a 429, a lookup's 404) is documented with the rest."""
    method = getattr(SERVICE_CLASSES[name], operation["operationId"].split("_head")[0])
    assert {str(s) for s in raised_statuses(method)} <= set(operation["responses"])


def test_the_use_cases_errors_are_found_in_their_source():
    """The reading of the source finds what the use cases raise, through the functions of the
    service's package they call (access checks, the store's lookups)."""
    assert 409 in raised_statuses(AccountsService.register)
    assert 409 in raised_statuses(ConsultingService.rate_consultation)
    assert raised_statuses(AccountsService.health_live) == set()


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_component_is_used(name):
    """Named by a $ref or, for a batch's row schema, by its rows' `x-row-schema` (what the
    linters' unused-component rules check, which do not follow the extension)."""
    text = json.dumps(DOCUMENTS[name])
    named = set(re.findall(r'"(?:\$ref|x-row-schema)": "#/components/schemas/([^"]+)"', text))
    assert set(DOCUMENTS[name]["components"]["schemas"]) - named == set()
