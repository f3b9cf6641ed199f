"""What every service's OpenAPI document promises, checked without running a service."""

import pytest

from chassis.openapi import openapi_document
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
        if "422" in operation["responses"]
    }
    assert {"POST /slots", "POST /resources", "POST /returnees", "POST /staff"} <= set(stated)
    assert all(text.startswith("Beyond the schemas") for text in stated.values())


def test_a_criterion_is_one_of_the_shapes_the_engine_evaluates():
    criterion = DOCUMENTS["consulting"]["components"]["schemas"]["Criterion"]
    shapes = criterion["oneOf"]
    groups = [s for s in shapes if {"all", "any"} & set(s["properties"])]
    leaves = [s for s in shapes if "op" in s["properties"]]
    assert len(groups) == 2 and len(leaves) + 2 == len(shapes)
    taken = [(f, op) for s in leaves for f in s["properties"]["field"]["enum"]
             for op in s["properties"]["op"]["enum"]]  # fmt: skip
    assert len(taken) == len(set(taken))  # one shape per field and op: oneOf is exact
    within_days = next(s for s in leaves if s["properties"]["op"]["enum"] == ["within_days"])
    assert within_days["properties"]["field"]["enum"] == [
        "birth_date", "company.registration_date", "return_date"]  # fmt: skip
