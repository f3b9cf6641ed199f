"""Match reasons in words, in zh-CN or en (PIPL art. 24: an automated decision is explained).

A reason is stored as `{"factor", "code", "args"}` and rendered when it is shown, so the same
match reads in the language of whoever looks at it.
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
    """One reason in words; an unknown code falls back to its factor, never fails."""
    templates = _TEMPLATES.get(reason.get("code"))
    if templates is None:
        return str(reason.get("factor"))
    en, zh = templates
    return (zh if locale == "zh-CN" else en)(reason.get("args") or {})


def explained(reasons, locale: str = "en") -> list[dict]:
    """`[{"factor", "detail"}]` as the HTTP API and the `matches.proposed` event carry them."""
    return [{"factor": r["factor"], "detail": describe(r, locale)[:200]} for r in reasons]
