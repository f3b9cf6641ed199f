"""The eligibility engine: YAML cases (profile + date -> expected outcome per policy), the
operators, three-valued groups, explanations in both languages, and the vectorised screening
agreeing with the explaining engine."""

import random
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from services.consulting.catalog import load_policies, parse_policy
from services.consulting.eligibility import (
    ONE_GROUP,
    OP_DOES_NOT_APPLY,
    WRONG_VALUE,
    InvalidPolicy,
    assess,
    assess_all,
    changes,
    check,
    combine,
    criterion_problem,
    derive,
    explain,
    validate_policy,
)
from services.consulting.screening import STATUS_OF, Columns, screen

CASES_FILE = Path("services/consulting/cases/eligibility.yaml")
SPEC = yaml.safe_load(CASES_FILE.read_text())
POLICIES = {p["code"]: p for p in load_policies()}


def profile_of(case: dict) -> dict:
    profile = dict(SPEC["bases"][case["base"]]) if "base" in case else {}
    profile.update(case.get("profile") or {})
    return profile


EXPECTATIONS = [
    pytest.param(case, code, expected, id=f"{case['name'][:60]} | {code}")
    for case in SPEC["cases"]
    for code, expected in case["expect"].items()
]


def test_the_catalog_holds_at_least_eight_cited_bilingual_policies():
    assert len(POLICIES) >= 8
    for policy in POLICIES.values():
        assert policy["title"]["zh-CN"] and policy["title"]["en"]
        assert policy["citation"]["title"] and policy["citation"]["url"].startswith("https://")
        assert isinstance(policy["effective_from"], date)
    assert any(p["tiers"] for p in POLICIES.values())
    assert any(p["application_deadline"] for p in POLICIES.values())


@pytest.mark.parametrize(("case", "code", "expected"), EXPECTATIONS)
def test_yaml_case(case, code, expected):
    outcome = assess(POLICIES[code], profile_of(case), case["as_of"])
    assert outcome.status == expected["status"], [r.as_dict() for r in outcome.reasons]
    assert outcome.tier == expected.get("tier")


@pytest.mark.parametrize(("case", "code", "expected"), EXPECTATIONS)
def test_yaml_case_screened_in_bulk_agrees(case, code, expected):
    verdict, tier = screen(POLICIES[code], Columns([profile_of(case)], case["as_of"]))
    assert STATUS_OF[int(verdict[0])] == expected["status"]
    tiers = POLICIES[code]["tiers"]
    assert (tiers[tier[0]]["code"] if tier[0] >= 0 else None) == expected.get("tier")


def test_derived_values_are_computed_as_of_the_date():
    profile = profile_of(SPEC["cases"][0])
    derived = derive(profile, date(2026, 5, 14))
    assert derived["age_years"] == 34
    assert derive(profile, date(2026, 5, 13))["age_years"] == 33
    assert derived["highest_overseas_degree"] == "master"
    assert derived["study_abroad_days"] == (date(2016, 9, 30) - date(2015, 9, 28)).days
    assert derived["years_since_return"] == 4
    assert derived["company_age_months"] == 25
    assert derived["best_overseas_qs_rank"] == 2
    # Before the company existed its age is unknown, not negative.
    assert derive(profile, date(2024, 1, 1))["company_age_months"] is None


def test_overlapping_study_periods_count_once():
    profile = {
        "education": [
            {"degree": "master", "overseas": True, "start_date": date(2020, 1, 1),
             "end_date": date(2020, 12, 31)},
            {"degree": "phd", "overseas": True, "start_date": date(2020, 7, 1),
             "end_date": date(2021, 6, 30)},
        ]
    }  # fmt: skip
    assert derive(profile, date(2025, 1, 1))["study_abroad_days"] == 546
    # Study still going on counts up to the evaluation date only.
    assert derive(profile, date(2020, 1, 31))["study_abroad_days"] == 30


@pytest.mark.parametrize(
    ("op", "actual", "expected", "result"),
    [
        ("eq", "ai", "ai", True),
        ("ne", "ai", "ai", False),
        ("in", "ai", ["ai", "biotech"], True),
        ("not_in", "ai", ["biotech"], True),
        ("gte", 500000, 500000, True),
        ("lte", 36, 35, False),
        ("between", 60, [51, 100], True),
        ("between", 101, [51, 100], False),
        ("within_days", date(2026, 1, 1), 365, True),
        ("within_days", date(2025, 1, 1), 365, False),
        ("within_days", date(2027, 1, 1), 365, False),
        ("exists", None, False, True),
        ("exists", [], True, False),
        ("in", ["x", "pujiang-talent"], ["pujiang-talent"], True),
        ("not_in", ["x"], ["pujiang-talent"], True),
        ("gte", None, 3, None),
    ],
)
def test_operators(op, actual, expected, result):
    assert check(op, actual, expected, date(2026, 11, 28)) is result


def test_groups_use_three_valued_logic():
    assert combine("all", [True, None]) is None
    assert combine("all", [False, None]) is False
    assert combine("any", [True, None]) is True
    assert combine("any", [False, None]) is None
    assert combine("any", [False, False]) is False


def test_every_criterion_is_explained_with_values_in_both_languages():
    case = SPEC["cases"][0]
    policy = POLICIES["national-startup-support"]
    outcome = assess(policy, profile_of(case), case["as_of"])
    en, zh = explain(outcome, policy, "en"), explain(outcome, policy, "zh-CN")
    ids = [r["criterion"] for r in en["reasons"]]
    assert ids == ["in_effect", "application_open"] + [c["id"] for c in policy["criteria"]]
    capital = next(r for r in en["reasons"] if r["criterion"] == "capital_500k")
    assert capital["passed"] is True and capital["values"] == {
        "actual": "1000000",
        "required": "500000",
    }
    assert "required ≥ 500000" in capital["detail"]
    assert en["title"] == policy["title"]["en"] and zh["title"] == policy["title"]["zh-CN"]
    assert zh["reasons"][2]["label"] == "本人为企业法定代表人"
    assert zh["reasons"][2]["detail"].startswith("符合")
    assert [t["code"] for t in en["tiers"]] == ["key", "excellent"]


def test_unknown_is_explained_as_missing_information():
    policy = POLICIES["high-tech-enterprise-tax"]
    outcome = assess(policy, {"industry": "ai", "company": None}, date(2026, 11, 28))
    reasons = explain(outcome, policy, "en")["reasons"]
    assert outcome.status == "undetermined"
    assert "information missing" in next(r for r in reasons if r["passed"] is None)["detail"]


def test_policies_with_unknown_fields_or_ops_are_refused_with_the_path():
    with pytest.raises(InvalidPolicy) as caught:
        validate_policy(
            {
                "criteria": [
                    {"id": "a", "field": "salary", "op": "gte", "value": 1},
                    {
                        "id": "b",
                        "any": [{"id": "c", "field": "age_years", "op": "approx", "value": 1}],
                    },
                    {"id": "d", "field": "industry", "op": "in", "value": "ai"},
                    {"id": "e", "field": "return_date", "op": "between", "value": ["x", "y"]},
                ]
            }  # fmt: skip
        )
    assert caught.value.errors == {
        "criteria[0].field": "Unknown field to compare.",
        "criteria[1].any[0].op": "This op does not apply to this field.",
        "criteria[2].value": "Not a value this op takes for this field.",
        "criteria[3].value": "Not a value this op takes for this field.",
    }


VALUE = ("value", WRONG_VALUE)
OP = ("op", OP_DOES_NOT_APPLY)


@pytest.mark.parametrize(
    ("criterion", "problem"),
    [
        ({"field": "age_years", "op": "gte", "value": 18}, None),
        ({"field": "age_years", "op": "gte", "value": "18"}, VALUE),
        ({"field": "age_years", "op": "gte", "value": True}, VALUE),
        ({"field": "industry", "op": "gte", "value": "ai"}, OP),
        ({"field": "needs", "op": "in", "value": ["financing"]}, None),
        ({"field": "return_date", "op": "within_days", "value": 1825}, None),
        ({"field": "age_years", "op": "within_days", "value": 5}, OP),
        ({"field": "birth_date", "op": "lte", "value": "20000101"}, VALUE),
        ({"field": "birth_date", "op": "between", "value": ["2000-01-01", "2000-02-30"]}, VALUE),
        ({"field": "company", "op": "exists", "value": False}, None),
        ({"field": "company", "op": "eq", "value": False}, OP),
        ({"field": "industry", "op": "eq"}, ("value", "Missing data for required field.")),
        ({"all": [], "any": []}, ("any", ONE_GROUP)),
        ({"any": [], "field": "industry"}, ("field", ONE_GROUP)),
    ],
)  # fmt: skip
def test_a_criterion_takes_the_values_its_fields_kind_and_op_call_for(criterion, problem):
    assert criterion_problem({"id": "x", **criterion}) == problem


def test_policy_files_parse_with_dates_and_stable_ids():
    text = Path("services/consulting/policies/pujiang-talent.yaml").read_text()
    assert parse_policy(text)["id"] == POLICIES["pujiang-talent"]["id"]
    assert parse_policy(text)["application_deadline"] == date(2026, 12, 15)


def test_changes_name_newly_and_no_longer_eligible_codes():
    assert changes({"a", "b"}, {"b", "c"}) == (["c"], ["a"])


def random_profile(rng: random.Random) -> dict:
    """A synthetic returnee with gaps (missing company, flags, ranks) on purpose."""
    start = date(2005, 1, 1) + timedelta(days=rng.randint(0, 6000))
    education = [
        {"degree": rng.choice(["bachelor", "master", "phd"]), "overseas": rng.random() < 0.85,
         "start_date": start, "end_date": start + timedelta(days=rng.randint(90, 1500)),
         "qs_rank": rng.choice([None, rng.randint(1, 300)])}
        for _ in range(rng.randint(0, 2))
    ]  # fmt: skip
    back = start + timedelta(days=rng.randint(100, 3000))
    company = None
    if rng.random() < 0.7:
        company = {
            "registered_district": rng.choice(["Changning", "Putuo", "Xuhui"]),
            "registration_date": back + timedelta(days=rng.randint(-200, 1800)),
            "registered_capital_cny": rng.choice([100000, 500000, 2000000]),
            "shareholding_pct": rng.uniform(10, 100),
            "is_legal_representative": rng.choice([True, False, None]),
            "is_largest_shareholder": rng.choice([True, False, None]),
            "vc_raised_cny": rng.choice([None, 0, 5000000]),
        }
    return {
        "birth_date": date(1975, 1, 1) + timedelta(days=rng.randint(0, 9000)),
        "education": education,
        "return_date": back,
        "residence_status": rng.choice(["hukou", "residence_permit", "none", None]),
        "industry": rng.choice(["ai", "biotech", "fintech", "other"]),
        "startup_stage": rng.choice(["idea", "registered", "growth"]),
        "needs": rng.sample(["financing", "office_space", "incubation", "legal"], 2),
        "prior_awards": rng.choice([[], ["pujiang-talent"], ["national-startup-support"]]),
        "company": company,
    }


def test_screening_agrees_with_the_engine_on_random_profiles():
    rng = random.Random(20261128)
    profiles = [random_profile(rng) for _ in range(1500)]
    for as_of in (date(2024, 6, 30), date(2026, 11, 28)):
        columns = Columns(profiles, as_of)
        for policy in POLICIES.values():
            verdicts, tiers = screen(policy, columns)
            for profile, verdict, tier in zip(profiles, verdicts, tiers, strict=True):
                expected = assess(policy, profile, as_of)
                got_tier = policy["tiers"][tier]["code"] if tier >= 0 else None
                assert (STATUS_OF[int(verdict)], got_tier) == (expected.status, expected.tier), (
                    policy["code"],
                    profile,
                )


def test_assess_all_covers_every_policy():
    case = SPEC["cases"][0]
    codes = [a.code for a in assess_all(list(POLICIES.values()), profile_of(case), case["as_of"])]
    assert codes == list(POLICIES)
