"""The matching engine: hard filters, weights, reasons, diversity, ties; and that the vectorised
engine gives the same answers as an oracle written here from docs/matching.md alone."""

import dataclasses
import math
import uuid
from datetime import date, timedelta
from fractions import Fraction

import pytest

from bench.matching_engine import synthetic_profiles, synthetic_resources
from contracts import CATALOG, Event
from contracts.reasons import describe
from contracts.vocabulary import NEEDS
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


# --- the oracle: docs/matching.md "The engine", written out with nothing of the engine's --------
#
# Exact fractions, plain loops, its own reading of districts: a mistake in the engine's helpers
# (constants, district keys, weighting, the organization cap) is not shared by the oracle.

ORACLE_OPEN = Fraction(1, 2)  # "1 for an explicit fit, 0.5 for an open resource"


def oracle_district(text):
    """Compared case- and space-blind; empty is no district."""
    words = (text or "").split()
    return " ".join(words).casefold() if words else None


def oracle_fits(resource, profile, today, dismissed: bool) -> bool:
    own = oracle_district(profile.district)
    return (
        bool(set(resource.needs_served) & set(profile.needs))
        and (not resource.industries or profile.industry in resource.industries)
        and (not resource.stages or profile.stage in resource.stages)
        and (
            oracle_district(resource.district) is None
            or (own is not None and oracle_district(resource.district) == own)
        )
        and resource.capacity_left > 0
        and (resource.valid_from is None or resource.valid_from <= today)
        and (resource.valid_until is None or today <= resource.valid_until)
        and not dismissed
        and profile.consent
    )


def oracle_score(resource, profile, weights) -> Fraction:
    factors = {
        "need": Fraction(
            len(set(resource.needs_served) & set(profile.needs)), len(set(profile.needs))
        ),
        "industry": 1 if resource.industries else ORACLE_OPEN,
        "stage": 1 if resource.stages else ORACLE_OPEN,
        "district": 1 if oracle_district(resource.district) else ORACLE_OPEN,
        "availability": min(Fraction(resource.capacity_left, max(resource.capacity, 1)), 1),
    }
    exact = {name: Fraction(str(weight)) for name, weight in weights.items()}
    total = sum(exact.get(name, 0) * value for name, value in factors.items())
    return round(total / sum(exact.values()), 6)  # "rounded to 6 decimals"


def oracle_top(profile, resources, weights, top_k, share, today) -> list[tuple[str, Fraction]]:
    cap = max(1, math.floor(top_k * Fraction(str(share))))
    ranked = sorted(
        (
            (oracle_score(r, profile, weights), r)
            for r in resources
            if oracle_fits(r, profile, today, r.id in profile.dismissed)
        ),
        key=lambda item: (-item[0], item[1].id),
    )
    chosen, per_organization = [], {}
    for score, resource in ranked:
        if per_organization.get(resource.organization_id, 0) == cap:
            continue  # not back-filled past the cap
        per_organization[resource.organization_id] = (
            per_organization.get(resource.organization_id, 0) + 1
        )
        chosen.append((resource.id, score))
        if len(chosen) == top_k:
            break
    return chosen


def oracle_fitting(resource, profiles, weights, today, dismissed_by=()):
    found = [
        (p.returnee_id, oracle_score(resource, p, weights))
        for p in profiles
        if oracle_fits(resource, p, today, p.returnee_id in dismissed_by)
    ]
    return sorted(found, key=lambda item: (-item[1], item[0]))


def as_floats(ranked):
    return [(rid, pytest.approx(float(score), abs=1e-9)) for rid, score in ranked]


def varied(resources, profiles):
    """The synthetic data with what it lacks: districts typed loosely, dismissals, full ones."""
    resources = [
        dataclasses.replace(r, district=f"  {r.district.upper()} ")
        if r.district and i % 5 == 0
        else dataclasses.replace(r, capacity_left=0)
        if i % 11 == 0
        else r
        for i, r in enumerate(resources)
    ]
    profiles = [
        dataclasses.replace(p, dismissed=frozenset(r.id for r in resources[i : i + 400 : 7]))
        if i % 3 == 0
        else dataclasses.replace(p, district=p.district.lower())
        if p.district and i % 3 == 1
        else p
        for i, p in enumerate(profiles)
    ]
    return resources, profiles


def test_the_oracle_reads_the_documented_rules():
    # A hand-worked case, so the oracle itself is checked against the text, not the engine.
    r = resource(
        "r", needs_served=("financing",), district=" changning", capacity=4, capacity_left=1
    )
    score = oracle_score(r, LI_WEI, EVEN.weights)
    # need 1/2, industry open .5, stage open .5, district explicit 1, availability 1/4
    assert score == round(
        (Fraction(4, 10) / 2 + Fraction(2, 10) / 2 + Fraction(15, 100) / 2 + Fraction(15, 100)
         + Fraction(1, 10) / 4),
        6,
    )  # fmt: skip
    assert oracle_fits(r, LI_WEI, TODAY, dismissed=False)
    assert not oracle_fits(r, dataclasses.replace(LI_WEI, district=None), TODAY, False)
    same = oracle_score(resource("a0"), LI_WEI, EVEN.weights)
    five = [resource(f"a{i}") for i in range(5)]
    assert oracle_top(LI_WEI, five, EVEN.weights, 4, 0.5, TODAY) == [("a0", same), ("a1", same)]


def test_the_engine_agrees_with_the_oracle():
    resources, profiles = varied(
        synthetic_resources(3000, seed=3, organizations=40), synthetic_profiles(300, seed=5)
    )
    catalog = Catalog(resources)
    policy = MatchPolicy(weights=EVEN.weights, top_k=10, max_organization_share=0.2)
    matched = 0
    for profile in profiles[:60]:
        engine = [
            (m.resource_id, m.score) for m in match_resources(profile, catalog, policy, TODAY)
        ]
        assert engine == as_floats(oracle_top(profile, resources, policy.weights, 10, 0.2, TODAY))
        matched += bool(engine)
    table = ReturneeTable(profiles)
    fitting = 0
    for r in resources[:30]:
        dismissed_by = [p.returnee_id for p in profiles[::9]]
        engine = returnees_fitting(r, table, policy, TODAY, dismissed_by)
        assert engine == as_floats(
            oracle_fitting(r, profiles, policy.weights, TODAY, set(dismissed_by))
        )
        fitting += bool(engine)
    assert matched > 40 and fitting > 15  # the comparison is not of empty lists


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


def _rows(catalog: Catalog) -> list[tuple]:
    """Each resource's columns, with organization and district codes read back as what they
    stand for (codes themselves are arbitrary)."""
    districts = {code: key for key, code in catalog.district_codes.items()}
    return [
        (
            rid,
            catalog.organization_ids[catalog.organization[i]],
            int(catalog.needs[i]),
            int(catalog.industries[i]),
            int(catalog.stages[i]),
            districts.get(int(catalog.district[i])),
            float(catalog.capacity[i]),
            int(catalog.capacity_left[i]),
            int(catalog.valid_from[i]),
            int(catalog.valid_until[i]),
        )
        for i, rid in enumerate(catalog.ids)
    ]


def test_a_changed_catalog_answers_as_one_built_from_the_resulting_resources():
    import random

    rng = random.Random(5)
    resources = synthetic_resources(1000, seed=5, organizations=50)
    held = Catalog(resources)
    current = {r.id: r for r in resources}
    profiles = synthetic_profiles(40, seed=6)
    for step in range(6):
        ids = sorted(current)
        taken = [
            dataclasses.replace(current[rid], capacity_left=max(0, current[rid].capacity_left - 1))
            for rid in rng.sample(ids, 20)
        ]
        new = synthetic_resources(15, seed=100 + step, organizations=60)
        new = [dataclasses.replace(r, id=f"{r.id}-{step}", district="Fengxian") for r in new]
        gone = rng.sample(ids, 10) + ["never-there"]
        before = _rows(held)
        changed = held.changed([*taken, *new], gone)
        assert _rows(held) == before  # the old one is left as it was
        for r in [*taken, *new]:
            current[r.id] = r
        for rid in gone:
            current.pop(rid, None)
        rebuilt = Catalog(current.values())
        assert changed.resources == rebuilt.resources
        assert _rows(changed) == _rows(rebuilt)
        assert changed.position == rebuilt.position
        for profile in profiles:
            assert match_resources(profile, changed, EVEN, TODAY) == match_resources(
                profile, rebuilt, EVEN, TODAY
            )
        places = [dataclasses.replace(r, capacity_left=0) for r in held.resources[:3]]
        only_places = held.changed(places)  # the same ids: nothing moves
        assert only_places.position is held.position
        by_id = {r.id: r for r in [*held.resources, *places]}
        assert _rows(only_places) == _rows(Catalog(by_id.values()))
        held = changed
    assert held.changed() is held


def test_a_changed_empty_catalog_takes_its_first_resources():
    first = [resource("b"), resource("a", district="Xuhui")]
    assert Catalog([]).changed(first).resources == Catalog(first).resources
    assert _rows(Catalog(first).changed(removed=["a", "b"])) == []


def test_a_table_from_columns_is_the_table_of_the_same_profiles():
    profiles = sorted(
        (p for p in synthetic_profiles(500, seed=12) if p.consent), key=lambda p: p.returnee_id
    )
    whole = ReturneeTable(profiles)
    columns = ReturneeTable.from_columns(
        [p.returnee_id for p in profiles],
        [p.industry for p in profiles],
        [p.stage for p in profiles],
        [list(p.needs) for p in profiles],
        [p.district for p in profiles],
    )
    for name in ("ids", "position", "district_codes"):
        assert getattr(columns, name) == getattr(whole, name)
    for name in ("needs", "industry", "stage", "consent", "district"):
        assert getattr(columns, name).tolist() == getattr(whole, name).tolist()
    aimed = resource("aimed", needs_served=("financing", "mentorship"), district="Xuhui")
    assert returnees_fitting(aimed, columns, EVEN, TODAY) == returnees_fitting(
        aimed, whole, EVEN, TODAY
    )
    assert len(ReturneeTable.from_columns([], [], [], [], [])) == 0


def _table_rows(table: ReturneeTable) -> list[tuple]:
    """Each returnee's columns, district codes read back as the districts' keys."""
    districts = {code: key for key, code in table.district_codes.items()}
    assert table.id_array.tolist() == table.ids
    return [
        (rid, int(table.needs[i]), int(table.industry[i]), int(table.stage[i]),
         districts.get(int(table.district[i])), bool(table.consent[i]))
        for i, rid in enumerate(table.ids)
    ]  # fmt: skip


def _table_of(rows: dict) -> ReturneeTable:
    ordered = [rows[rid] for rid in sorted(rows)]
    return ReturneeTable.from_columns(*([row[i] for row in ordered] for i in range(5)))


def test_a_changed_returnee_table_answers_as_one_built_from_the_resulting_returnees():
    import random

    rng = random.Random(9)

    def row(p):
        return (p.returnee_id, p.industry, p.stage, list(p.needs), p.district)

    current = {p.returnee_id: row(p) for p in synthetic_profiles(800, seed=21)}
    held = _table_of(current)
    aimed = [
        resource("aimed", needs_served=("financing", "mentorship"), district="Xuhui"),
        resource("open", needs_served=("office_space",), industries=("biotech",)),
        resource("elsewhere", needs_served=tuple(NEEDS), district="Fengxian"),
    ]
    for step in range(6):
        ids = sorted(current)
        updated = [
            (rid, *row(p)[1:])
            for rid, p in zip(
                rng.sample(ids, 25), synthetic_profiles(25, seed=40 + step), strict=True
            )
        ]
        new = [
            (f"{p.returnee_id}-{step}", *row(p)[1:-1], rng.choice([p.district, "Fengxian"]))
            for p in synthetic_profiles(15, seed=60 + step)
        ]
        gone = rng.sample(ids, 10) + ["never-there"]
        before = _table_rows(held)
        changed = held.changed([*updated, *new], gone)
        assert _table_rows(held) == before  # the old one is left as it was
        for r in [*updated, *new]:
            current[r[0]] = r
        for rid in gone:
            current.pop(rid, None)
        rebuilt = _table_of(current)
        assert _table_rows(changed) == _table_rows(rebuilt)
        assert changed.position == rebuilt.position
        for one in aimed:
            assert returnees_fitting(one, changed, EVEN, TODAY, gone[:3]) == returnees_fitting(
                one, rebuilt, EVEN, TODAY, gone[:3]
            )
        only_profiles = held.changed(updated[:3])  # the same ids: nothing moves
        assert only_profiles.position is held.position
        held = changed
    assert held.changed() is held
    assert held.changed(removed=["never-there"]) is held
    empty = ReturneeTable.from_columns([], [], [], [], [])
    first = [("b", "biotech", "idea", ["legal"], None), ("a", "fintech", "idea", [], "Xuhui")]
    assert _table_rows(empty.changed(first)) == _table_rows(_table_of({r[0]: r for r in first}))
    assert _table_rows(_table_of({r[0]: r for r in first}).changed(removed=["a", "b"])) == []


def test_returnees_read_again_unchanged_leave_the_table_as_it_is():
    table = _table_of({"a": ("a", "biotech", "idea", ["legal"], "Xuhui")})
    assert table.changed([("a", "biotech", "idea", ["legal"], " xuhui ")]) is table
    moved = table.changed([("a", "biotech", "idea", ["legal"], "Changning")])
    assert moved is not table and _table_rows(table)[0][4] == "xuhui"
    assert _table_rows(moved)[0][4] == "changning"
