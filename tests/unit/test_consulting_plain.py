"""Eligibility in plain language (services/consulting/plain.py): every field and value a rule
can read has words in both languages, and no explanation of the catalog's policies shows a
field name or a raw value to the returnee."""

import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from contracts.labels import VOCABULARIES, label
from services.consulting import plain
from services.consulting.catalog import load_policies
from services.consulting.eligibility import FIELDS, assess, explain

SPEC = yaml.safe_load(Path("services/consulting/cases/eligibility.yaml").read_text())
POLICIES = load_policies()
TITLES = {p["code"]: p["title"] for p in POLICIES}
LANGS = ("en", "zh-CN")


def profiles():
    yield {}  # nothing known: every criterion unknown
    for case in SPEC["cases"]:
        profile = dict(SPEC["bases"][case["base"]]) if "base" in case else {}
        profile.update(case.get("profile") or {})
        yield profile


def texts(reasons):
    for reason in reasons:
        yield reason
        yield from texts(reason.get("criteria", ()))


def test_every_field_a_rule_may_read_has_words_in_both_languages():
    for field in FIELDS:
        en, zh = plain.FIELD_WORDS[field]
        assert en and zh and en != zh, field


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_every_vocabulary_value_has_words_in_both_languages(name):
    for value in VOCABULARIES[name]:
        en, zh = label(name, value, "en"), label(name, value, "zh-CN")
        assert en != value and zh != value and en != zh, (name, value)
        assert re.search(r"[\u4e00-\u9fff]", zh), (name, value, zh)


def test_the_example_of_the_issue_reads_as_promised():
    policy = next(p for p in POLICIES if p["code"] == "changning-free-office-space")
    study = {
        "degree": "master",
        "overseas": True,
        "country": "GB",
        "start_date": date(2015, 9, 1),
        "end_date": date(2016, 9, 1),
    }
    profile = {"education": [study]}
    reasons = explain(assess(policy, profile, date(2026, 11, 28)), policy, "en")["reasons"]
    degree = next(r for r in reasons if r.get("field") == "highest_overseas_degree")
    assert degree["text"] == (
        "Your highest overseas degree: Master's ✓ (required: Bachelor's or higher)"
    )
    assert degree["field_label"] == "your highest overseas degree"
    zh = explain(assess(policy, profile, date(2026, 11, 28)), policy, "zh-CN")["reasons"]
    degree = next(r for r in zh if r.get("field") == "highest_overseas_degree")
    assert degree["text"] == "您的最高海外学位：硕士 ✓（要求：学士及以上）"


@pytest.mark.parametrize("lang", LANGS)
def test_no_explanation_shows_a_field_name_or_a_raw_value(lang):
    raw = {f for f in FIELDS if "_" in f or "." in f}
    raw |= {v for name in VOCABULARIES for v in VOCABULARIES[name] if "_" in v}
    raw |= {"bachelor", "master", "phd", "True", "False", "None"}
    pattern = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, sorted(raw))) + r")(?![\w.-])")
    seen = 0
    for profile in profiles():
        for policy in POLICIES:
            answer = explain(assess(policy, profile, date(2026, 11, 28)), policy, lang, TITLES)
            reasons = [*answer["reasons"], *(r for t in answer["tiers"] for r in t["reasons"])]
            for reason in texts(reasons):
                if "criteria" in reason:
                    continue  # a group: its label is the policy's own words
                seen += 1
                found = pattern.search(reason["text"])
                assert not found, (reason["text"], found.group(0))
                assert reason["text"].rstrip().endswith(("✓", "✗", "?", ")", "）"))
    assert seen > 500


def test_unknown_values_read_as_not_known_and_marked():
    policy = next(p for p in POLICIES if p["code"] == "pujiang-talent")
    for lang, words in (("en", "not known yet ?"), ("zh-CN", "尚未提供 ?")):
        reasons = explain(assess(policy, {}, date(2026, 11, 28)), policy, lang)["reasons"]
        age = next(r for r in reasons if r.get("field") == "age_years")
        assert age["passed"] is None and words in age["text"]


def test_the_catalogs_words_are_whole_in_both_languages():
    """A comma in an unquoted YAML flow mapping splits a title ("Tier B (100" and a key
    "000 CNY)"): every label and title is exactly zh-CN and en, parentheses closed."""

    def words(node):
        if isinstance(node, dict):
            for key in ("title", "label", "summary"):
                if key in node:
                    yield node[key]
            for value in node.values():
                yield from words(value)
        elif isinstance(node, list):
            for item in node:
                yield from words(item)

    for policy in POLICIES:
        for text in words(policy):
            if isinstance(text, str):
                continue  # a citation's title: one language, the publisher's
            assert set(text) == {"zh-CN", "en"}, (policy["code"], text)
            for lang in LANGS:
                opened = text[lang].count("(") + text[lang].count("（")
                closed = text[lang].count(")") + text[lang].count("）")
                assert opened == closed, (policy["code"], text[lang])
