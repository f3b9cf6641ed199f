"""What a staff member states with a read (`chassis.access`): the case as `<kind>:<id>`, the
reason percent-encoded UTF-8, both documented on the operations that read personal data."""

import uuid
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from werkzeug.datastructures import Headers

from chassis.access import CASE_RULE, HEADER_PARAMETERS, REASON_MAX, stated
from chassis.auth import Caller
from chassis.errors import HttpError
from chassis.i18n import translate_errors
from chassis.openapi import openapi_document
from services.consulting.service import ConsultingService

ADVISOR = Caller(str(uuid.uuid4()), "advisor")


def request(caller=ADVISOR, **headers):
    return SimpleNamespace(caller=caller, headers=Headers(headers))


def test_a_reason_is_read_as_percent_encoded_utf8_its_first_characters_kept():
    reason = "回访：房租补贴"
    seen = stated(request(**{"X-Access-Reason": quote(reason)}))
    assert seen == {"reader_id": ADVISOR.id, "reader_role": "advisor", "case_ref": None,
                    "reason": reason}  # fmt: skip
    long = stated(request(**{"X-Access-Reason": "x" * (REASON_MAX + 50) + "%00"}))
    assert long["reason"] == "x" * REASON_MAX
    assert stated(request(**{"X-Access-Reason": "  "}))["reason"] is None
    assert stated(request(caller=None)) is None


def test_a_case_is_a_kind_and_an_id_or_a_422_naming_the_header_by_the_rule_stated():
    case = f"registration:{uuid.uuid4()}"
    assert stated(request(**{"X-Access-Case": case}))["case_ref"] == case
    for wrong in ("consultation:42", f"match:{uuid.uuid4()}", "consultation"):
        with pytest.raises(HttpError) as refused:
            stated(request(**{"X-Access-Case": wrong}))
        assert refused.value.status == 422 and "X-Access-Case" in refused.value.fields
        assert "事项" in str(translate_errors(refused.value.fields, "zh-CN"))


def test_the_operations_that_read_personal_data_document_both_headers_and_the_403():
    paths = openapi_document(ConsultingService)["paths"]
    operation = paths["/returnees/{returnee_id}/eligibility"]["get"]
    headers = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [p["name"] for p in headers] == [p["name"] for p in HEADER_PARAMETERS]
    assert "case_or_reason_required" in operation["responses"]["403"]["description"]
    assert CASE_RULE in operation["responses"]["422"]["description"]  # the case's form
    assert not [p for p in paths["/policies"]["get"]["parameters"] if p["in"] == "header"]


def test_a_header_longer_or_shorter_than_the_document_allows_is_a_400_naming_it():
    for name, value in (("X-Access-Reason", "0" * 4501), ("X-Access-Case", "c" * 201),
                        ("X-Access-Case", ""), ("X-Access-Reason", "")):  # fmt: skip
        with pytest.raises(HttpError) as refused:
            stated(request(**{name: value}))
        assert refused.value.status == 400 and set(refused.value.fields) == {name}
        assert "长度" in str(translate_errors(refused.value.fields, "zh-CN"))
    assert stated(request(**{"X-Access-Reason": "0" * 4500}))["reason"] == "0" * REASON_MAX
