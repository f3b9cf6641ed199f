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

NEED_ZH = {
    "financing": "融资",
    "cross_border_finance": "跨境金融",
    "office_space": "办公空间",
    "incubation": "孵化",
    "policy_advice": "政策咨询",
    "residence_hukou": "落户",
    "talent_recruitment": "人才招聘",
    "market_access": "市场拓展",
    "mentorship": "创业导师",
    "partners": "合作伙伴",
    "legal": "法律服务",
}
INDUSTRY_ZH = {
    "biotech": "生物科技",
    "ai": "人工智能",
    "fintech": "金融科技",
    "advanced_manufacturing": "先进制造",
    "digital_commerce": "数字商务",
    "culture_creative": "文化创意",
    "healthcare": "医疗健康",
    "new_energy": "新能源",
    "education": "教育",
    "consulting": "咨询",
    "other": "其他",
}
STAGE_ZH = {"idea": "创意阶段", "registered": "已注册", "growth": "成长期"}


def _needs(args: Mapping, locale: str) -> str:
    needs = args.get("needs", [])
    if locale == "zh-CN":
        return "、".join(NEED_ZH.get(n, n) for n in needs)
    return ", ".join(needs)


_TEMPLATES = {
    "serves_needs": (
        lambda a: f"serves your need: {_needs(a, 'en')}",
        lambda a: f"满足您的需求：{_needs(a, 'zh-CN')}",
    ),
    "industry": (
        lambda a: f"industry: {a['industry']}",
        lambda a: f"行业：{INDUSTRY_ZH.get(a['industry'], a['industry'])}",
    ),
    "any_industry": (lambda a: "open to every industry", lambda a: "面向所有行业"),
    "stage": (
        lambda a: f"stage: {a['stage']}",
        lambda a: f"阶段：{STAGE_ZH.get(a['stage'], a['stage'])}",
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
