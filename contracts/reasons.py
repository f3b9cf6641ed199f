"""Match reasons in words, in zh-CN and en (PIPL art. 24: an automated decision is explained).

A reason is a `factor`, a `code` and the code's `args`; it is put into words where it is shown,
in the language of whoever reads it. matching renders its HTTP API with these words and
`matches.proposed` carries code and args next to the English `detail`, so every subscriber
that renders from the code says the same as the producer.

| code | args |
|---|---|
| `serves_needs` | `{"needs": [need, ...]}` |
| `industry` | `{"industry": industry}` |
| `any_industry` | `{}` |
| `stage` | `{"stage": stage}` |
| `any_stage` | `{}` |
| `district` | `{"district": name}` |
| `any_district` | `{}` |
| `places_left` | `{"left": n, "capacity": n}` |
"""

from collections.abc import Mapping

from contracts.labels import label


def _needs(args: Mapping, locale: str) -> str:
    needs = [label("needs", n, locale) for n in args.get("needs", [])]
    return "、".join(needs) if locale == "zh-CN" else ", ".join(needs)


_TEMPLATES = {
    "serves_needs": (
        lambda a: f"serves your need: {_needs(a, 'en')}",
        lambda a: f"满足您的需求：{_needs(a, 'zh-CN')}",
    ),
    "industry": (
        lambda a: f"industry: {label('industries', a['industry'], 'en')}",
        lambda a: f"行业：{label('industries', a['industry'], 'zh-CN')}",
    ),
    "any_industry": (lambda a: "open to every industry", lambda a: "面向所有行业"),
    "stage": (
        lambda a: f"stage: {label('stages', a['stage'], 'en')}",
        lambda a: f"阶段：{label('stages', a['stage'], 'zh-CN')}",
    ),
    "any_stage": (lambda a: "open to every stage", lambda a: "面向所有创业阶段"),
    "district": (
        lambda a: f"district: {a['district']}",
        lambda a: f"区域：{a['district']}",
    ),
    "any_district": (lambda a: "available in every district", lambda a: "不限区域"),
    "places_left": (
        lambda a: f"{a['left']} of {a['capacity']} places left",
        lambda a: f"剩余名额 {a['left']}/{a['capacity']}",
    ),
}


def describe(reason: Mapping, locale: str = "en") -> str:
    """One reason in words; never fails.

    A reason without a code (an older producer), with a code this version does not know (a
    newer one) or with args that do not fit its code is its producer's `detail`, else its
    factor."""
    templates = _TEMPLATES.get(reason.get("code"))
    if templates is not None:
        en, zh = templates
        try:
            return (zh if locale == "zh-CN" else en)(reason.get("args") or {})
        except (KeyError, TypeError):
            pass  # args come from the producer and are open-ended: fall back to its words
    return str(reason.get("detail") or reason.get("factor"))
