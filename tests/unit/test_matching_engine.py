"""The matching engine: hard filters, weights, reasons, diversity, ties; and that the vectorised
engine gives the same answers as the straightforward implementation of the benchmark."""

import uuid
from datetime import date, timedelta

import pytest

from bench.matching_engine import (
    plain_fitting,
    plain_top,
    synthetic_profiles,
    synthetic_resources,
)
from contracts import CATALOG, Event
from contracts.reasons import describe
from services.matching.configuration import load_settings, parse_weights
from services.matching.engine import (
    Catalog,
    MatchPolicy,
    Profile,
    Resource,
    ReturneeTable,
    diff,
    match_resources,
    returnees_fitting,
)
from services.matching.events import proposed_data
from services.matching.reasons import explained

TODAY = date(2026, 11, 28)
EVEN = MatchPolicy(
    weights={"need": 0.4, "industry": 0.2, "stage": 0.15, "district": 0.15, "availability": 0.1},
    top_k=20,
    max_organization_share=1.0,
)
LI_WEI = Profile(
    returnee_id="li-wei",
    industry="biotech",
    stage="registered",
    needs=("financing", "office_space"),
    district="Changning",
)


def resource(rid, org="org-a", **kw) -> Resource:
    kw.setdefault("needs_served", ("financing",))
    return Resource(id=rid, organization_id=org, **kw)


def matched(profile, resources, policy=EVEN, today=TODAY) -> list[str]:
    return [m.resource_id for m in match_resources(profile, Catalog(resources), policy, today)]


@pytest.mark.parametrize(
    "excluded",
    [
        resource("x", needs_served=("legal",)),
        resource("x", industries=("ai", "fintech")),
        resource("x", stages=("growth",)),
        resource("x", district="Xuhui"),
        resource("x", capacity=5, capacity_left=0),
        resource("x", valid_until=TODAY - timedelta(days=1)),
        resource("x", valid_from=TODAY + timedelta(days=1)),
    ],
    ids=["need", "industry", "stage", "district", "capacity", "expired", "not-yet-valid"],
)
def test_each_hard_filter_excludes_a_resource_that_fails_it(excluded):
    assert matched(LI_WEI, [excluded, resource("ok")]) == ["ok"]


def test_open_and_fitting_resources_pass_and_the_boundaries_are_inclusive():
    resources = [
        resource("open"),
        resource("aimed", industries=("biotech",), stages=("registered",), district="changning "),
        resource("last-day", valid_until=TODAY, valid_from=TODAY, capacity=3, capacity_left=1),
    ]
    assert sorted(matched(LI_WEI, resources)) == ["aimed", "last-day", "open"]


def test_dismissed_resources_and_withheld_consent_give_nothing():
    resources = [resource("a"), resource("b")]
    dismissed = Profile(**{**LI_WEI.__dict__, "dismissed": frozenset({"a"})})
    assert matched(dismissed, resources) == ["b"]
    no_consent = Profile(**{**LI_WEI.__dict__, "consent": False})
    assert matched(no_consent, resources) == []


def test_a_returnee_without_a_company_district_gets_only_open_resources():
    nowhere = Profile(**{**LI_WEI.__dict__, "district": None})
    assert matched(nowhere, [resource("open"), resource("local", district="Changning")]) == ["open"]


def test_score_is_the_weighted_share_of_the_factors():
    both = resource("both", needs_served=("financing", "office_space"), industries=("biotech",))
    one = resource("one", needs_served=("financing",))
    matches = match_resources(LI_WEI, Catalog([one, both]), EVEN, TODAY)
    assert [m.resource_id for m in matches] == ["both", "one"]
    # both: need 2/2, industry 1, stage open .5, district open .5, availability 1/1
    assert matches[0].score == pytest.approx(0.4 + 0.2 + 0.075 + 0.075 + 0.1)
    # one: need 1/2, industry open .5, stage .5, district .5, availability 1
    assert matches[1].score == pytest.approx(0.2 + 0.1 + 0.075 + 0.075 + 0.1)
    assert all(0 <= m.score <= 1 for m in matches)


def test_weights_decide_the_order():
    local = resource("local", district="Changning")
    aimed = resource("aimed", industries=("biotech",))
    by_district = MatchPolicy({"need": 1, "district": 3, "industry": 1}, 5, 1.0)
    by_industry = MatchPolicy({"need": 1, "district": 1, "industry": 3}, 5, 1.0)
    assert matched(LI_WEI, [local, aimed], by_district) == ["local", "aimed"]
    assert matched(LI_WEI, [local, aimed], by_industry) == ["aimed", "local"]


def test_every_weighted_factor_gives_a_reason_in_both_languages():
    r = resource(
        "r",
        needs_served=("office_space", "incubation"),
        stages=("registered",),
        district="Changning",
        capacity=10,
        capacity_left=3,
    )
    (match,) = match_resources(LI_WEI, Catalog([r]), EVEN, TODAY)
    reasons = [x.as_dict() for x in match.reasons]
    assert [x["factor"] for x in reasons] == [
        "need",
        "industry",
        "stage",
        "district",
        "availability",
    ]
    assert [x["detail"] for x in explained(reasons, "en")] == [
        "serves your need: Office space",
        "open to every industry",
        "stage: Company registered",
        "district: Changning",
        "3 of 10 places left",
    ]
    assert [x["detail"] for x in explained(reasons, "zh-CN")] == [
        "满足您的需求：办公空间",
        "面向所有行业",
        "阶段：已注册",
        "区域：Changning",
        "剩余名额 3/10",
    ]
    unweighted = MatchPolicy(weights={"need": 1.0})
    (only_need,) = match_resources(LI_WEI, Catalog([r]), unweighted, TODAY)
    assert [x.factor for x in only_need.reasons] == ["need"]
    assert describe({"factor": "future", "code": "unknown"}, "en") == "future"


def test_matches_proposed_carries_each_reason_as_code_args_and_english_detail():
    returnee_id, resource_id, organization_id = (str(uuid.uuid4()) for _ in range(3))
    r = resource(resource_id, organization_id, needs_served=("office_space",), capacity=4)
    (match,) = match_resources(LI_WEI, Catalog([r]), EVEN, TODAY)
    data = proposed_data(returnee_id, [match], [resource_id], [])

    sent = CATALOG.create("matching", "matches.proposed", data, subject=returnee_id)
    received = CATALOG.check(Event.from_json(sent.to_json()))

    (reason, *_, places) = received.data["matches"][0]["reasons"]
    assert reason == {
        "factor": "need",
        "code": "serves_needs",
        "args": {"needs": ["office_space"]},
        "detail": "serves your need: Office space",
    }
    assert places["args"] == {"left": 1, "capacity": 4}
    stored = [x.as_dict() for x in match.reasons]
    # A subscriber says what matching's own API says, in either language.
    for locale in ("zh-CN", "en"):
        assert [describe(x, locale) for x in received.data["matches"][0]["reasons"]] == [
            x["detail"] for x in explained(stored, locale)
        ]


def test_no_organization_takes_more_than_its_share_of_the_top_k():
    policy = MatchPolicy(weights={"need": 1, "industry": 1}, top_k=4, max_organization_share=0.5)
    strong = [resource(f"a{i}", "org-a", industries=("biotech",)) for i in range(5)]
    weak = [resource(f"b{i}", "org-b") for i in range(3)] + [resource("c0", "org-c")]
    result = match_resources(LI_WEI, Catalog(strong + weak), policy, TODAY)
    assert [m.resource_id for m in result] == ["a0", "a1", "b0", "b1"]
    assert policy.per_organization == 2
    # One organization alone still never fills more than its share.
    assert matched(LI_WEI, strong, policy) == ["a0", "a1"]


def test_diversity_reaches_past_a_pool_crowded_by_one_organization():
    policy = MatchPolicy(weights={"need": 1, "industry": 1}, top_k=3, max_organization_share=0.34)
    crowd = [resource(f"a{i:03d}", "org-a", industries=("biotech",)) for i in range(200)]
    others = [resource("z1", "org-b"), resource("z2", "org-c")]
    assert matched(LI_WEI, crowd + others, policy) == ["a000", "z1", "z2"]


def test_ties_are_broken_by_resource_id_whatever_the_input_order():
    tied = [resource(rid) for rid in ("d", "b", "e", "a", "c")]
    policy = MatchPolicy(weights={"need": 1}, top_k=3, max_organization_share=1.0)
    assert matched(LI_WEI, tied, policy) == ["a", "b", "c"]
    assert matched(LI_WEI, list(reversed(tied)), policy) == ["a", "b", "c"]
    many = [resource(f"r{i:04d}") for i in range(1000)]
    assert matched(LI_WEI, many[::-1], policy) == ["r0000", "r0001", "r0002"]


def test_reverse_matching_finds_exactly_the_returnees_a_resource_fits():
    profiles = [
        LI_WEI,
        Profile("ai-founder", "ai", "registered", ("financing",), "Changning"),
        Profile("elsewhere", "biotech", "registered", ("financing",), "Xuhui"),
        Profile("no-need", "biotech", "registered", ("legal",), "Changning"),
        Profile("no-consent", "biotech", "registered", ("financing",), "Changning", False),
        Profile("dismissed-it", "biotech", "registered", ("financing",), "Changning"),
    ]
    loan = resource("loan", industries=("biotech",), district="Changning")
    found = returnees_fitting(loan, ReturneeTable(profiles), EVEN, TODAY, ["dismissed-it"])
    assert [rid for rid, _ in found] == ["li-wei"]
    full = resource("full", capacity=2, capacity_left=0)
    assert returnees_fitting(full, ReturneeTable(profiles), EVEN, TODAY) == []


def test_the_engine_agrees_with_the_straightforward_implementation():
    resources = synthetic_resources(3000, seed=3, organizations=40)
    profiles = synthetic_profiles(300, seed=5)
    catalog = Catalog(resources)
    policy = MatchPolicy(weights=EVEN.weights, top_k=10, max_organization_share=0.2)
    for profile in profiles[:60]:
        engine = [
            (m.resource_id, m.score) for m in match_resources(profile, catalog, policy, TODAY)
        ]
        assert engine == plain_top(profile, resources, policy, TODAY)
    table = ReturneeTable(profiles)
    for r in resources[:30]:
        assert returnees_fitting(r, table, policy, TODAY) == plain_fitting(
            r, profiles, policy, TODAY
        )


def test_diff_names_added_and_removed_resources():
    assert diff(["a", "b"], ["b", "c"]) == (["c"], ["a"])
    assert diff(["a", "b"], ["b", "a"]) == ([], [])


def test_policy_is_configured_from_the_file_the_environment_and_overrides(monkeypatch):
    default = load_settings()
    assert default.policy.weights["need"] == 0.4 and default.policy.top_k == 20
    monkeypatch.setenv("MATCHING_MATCH_WEIGHTS", "need=0.9")
    monkeypatch.setenv("MATCH_TOP_K", "7")
    configured = load_settings({"MATCH_MAX_ORGANIZATION_SHARE": "0.5"})
    assert configured.policy.weights["need"] == 0.9
    assert configured.policy.weights["industry"] == 0.2
    assert configured.policy.top_k == 7 and configured.policy.per_organization == 3
    with pytest.raises(ValueError):
        parse_weights("charm=1")
    with pytest.raises(ValueError):
        MatchPolicy(weights={"need": 0})
