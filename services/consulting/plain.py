"""Eligibility in plain language: every field a rule reads and every value it compares, in words
a returnee understands, in zh-CN and en. Pure.

    Your highest overseas degree: Master's ✓ (required: Bachelor's or higher)

`explain()` adds these sentences (`text`) and the field's words (`field_label`) beside its
technical `detail`, so a page can show the reason and ask for what is missing ("tell us your
date of birth") without knowing the rules' field names.
"""

from datetime import date

from contracts.labels import label

EN, ZH = "en", "zh-CN"

# field -> (en, zh-CN): a noun phrase that fits "Tell us …" and "…: value".
FIELD_WORDS = {
    "highest_overseas_degree": ("your highest overseas degree", "您的最高海外学位"),
    "study_abroad_days": ("your time studying abroad", "您的海外学习时长"),
    "years_since_return": ("the time since you returned", "您回国的时长"),
    "company_age_months": ("your company's age", "您企业成立的时长"),
    "age_years": ("your age", "您的年龄"),
    "best_overseas_qs_rank": ("your overseas university's QS rank", "您海外院校的 QS 排名"),
    "highest_degree": ("your highest degree", "您的最高学位"),
    "years_since_graduation": ("the time since you graduated", "您毕业的时长"),
    "birth_date": ("your date of birth", "您的出生日期"),
    "return_date": ("the date you returned", "您的回国日期"),
    "has_overseas_job": ("your work experience abroad", "您的海外工作经历"),
    "residence_status": ("your residence status", "您的居住身份"),
    "industry": ("your industry", "您的行业"),
    "startup_stage": ("your start-up stage", "您的创业阶段"),
    "prior_awards": ("programmes that selected you before", "您曾入选的项目"),
    "needs": ("your needs", "您的需求"),
    "company": ("your company", "您的企业"),
    "company.registered_district": ("your company's district", "您企业的注册区"),
    "company.registration_date": ("your company's registration date", "您企业的注册日期"),
    "company.registered_capital_cny": ("your company's registered capital", "您企业的注册资本"),
    "company.shareholding_pct": ("your shareholding", "您的持股比例"),
    "company.is_legal_representative": (
        "being your company's legal representative",
        "担任企业法定代表人",
    ),
    "company.is_largest_shareholder": (
        "being your company's largest shareholder",
        "担任企业第一大股东",
    ),
    "company.vc_raised_cny": ("the venture capital you raised", "您获得的风险投资"),
}

# field -> vocabulary of contracts.labels its values belong to
VOCABULARY_OF = {
    "highest_overseas_degree": "degrees",
    "highest_degree": "degrees",
    "industry": "industries",
    "startup_stage": "stages",
    "needs": "needs",
    "residence_status": "residence_statuses",
}
# field -> (en, zh-CN) template of one number
UNITS = {
    "study_abroad_days": ("{v} days", "{v} 天"),
    "years_since_return": ("{v} years", "{v} 年"),
    "years_since_graduation": ("{v} years", "{v} 年"),
    "company_age_months": ("{v} months", "{v} 个月"),
    "age_years": ("{v} years old", "{v} 岁"),
    "company.registered_capital_cny": ("{v} CNY", "{v} 元"),
    "company.vc_raised_cny": ("{v} CNY", "{v} 元"),
    "company.shareholding_pct": ("{v}%", "{v}%"),
    "best_overseas_qs_rank": ("no. {v}", "第 {v} 名"),
}
DISTRICTS_ZH = {
    "Changning": "长宁区",
    "Huangpu": "黄浦区",
    "Xuhui": "徐汇区",
    "Jing'an": "静安区",
    "Putuo": "普陀区",
    "Hongkou": "虹口区",
    "Yangpu": "杨浦区",
    "Minhang": "闵行区",
    "Baoshan": "宝山区",
    "Jiading": "嘉定区",
    "Pudong": "浦东新区",
    "Jinshan": "金山区",
    "Songjiang": "松江区",
    "Qingpu": "青浦区",
    "Fengxian": "奉贤区",
    "Chongming": "崇明区",
}
DEGREE_ORDER = ("bachelor", "master", "phd")
MARKS = {True: "✓", False: "✗", None: "?"}
NOT_KNOWN = ("not known yet", "尚未提供")
NONE = ("none", "无")
GIVEN = ("given", "已填写")
REGISTERED = ("registered", "已注册")
YES_NO = {True: ("Yes", "是"), False: ("No", "否")}


def _pick(pair, lang: str) -> str:
    return pair[1] if lang == ZH else pair[0]


def field_words(field: str, lang: str) -> str:
    return _pick(FIELD_WORDS[field], lang) if field in FIELD_WORDS else field


def value_words(field: str, value, lang: str, titles: dict | None = None) -> str:
    """One value of a field, as a person reads it."""
    if value is None:
        return _pick(NOT_KNOWN, lang)
    if isinstance(value, bool):
        return _pick(YES_NO[value], lang)
    if isinstance(value, list | tuple | set | frozenset):
        if not value:
            return _pick(NONE, lang)
        return _join([value_words(field, v, lang, titles) for v in value], lang, "and")
    if isinstance(value, date):
        return value.isoformat()
    if value == "none" and field in ("highest_overseas_degree", "highest_degree"):
        return _pick(NONE, lang)
    if field in VOCABULARY_OF:
        return label(VOCABULARY_OF[field], value, lang)
    if field == "prior_awards":
        title = (titles or {}).get(value)
        return (title.get(lang) or title.get(EN)) if isinstance(title, dict) else str(value)
    if field == "company.registered_district" and lang == ZH:
        return DISTRICTS_ZH.get(value, str(value))
    if isinstance(value, int | float) and field in UNITS:
        number = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        return _pick(UNITS[field], lang).format(v=number)
    return str(value)


def _join(items: list[str], lang: str, word: str) -> str:
    if lang == ZH:
        return "、".join(items)
    if len(items) < 2:
        return "".join(items)
    conjunction = {"and": "and", "or": "or"}[word]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def requirement(field: str, op: str, expected, lang: str, titles: dict | None = None) -> str:
    """What a criterion asks for, e.g. "Bachelor's or higher", "at least 180 days"."""
    words = lambda v: value_words(field, v, lang, titles)  # noqa: E731
    en = lang != ZH
    if op == "in" and VOCABULARY_OF.get(field) == "degrees":
        wanted = [d for d in DEGREE_ORDER if d in expected]
        if wanted and wanted == list(DEGREE_ORDER[DEGREE_ORDER.index(wanted[0]) :]):
            lowest = words(wanted[0])
            return f"{lowest} or higher" if en else f"{lowest}及以上"
    if op == "eq":
        return words(expected)
    if op == "ne":
        return f"not {words(expected)}" if en else f"不是{words(expected)}"
    if op == "in":
        options = [words(v) for v in expected]
        if field in ("needs",):
            return (
                f"any of {_join(options, lang, 'or')}"
                if en
                else f"其中之一：{_join(options, lang, 'or')}"
            )
        return _join(options, lang, "or") if en else f"{_join(options, lang, 'or')}之一"
    if op == "not_in":
        options = _join([words(v) for v in expected], lang, "or")
        return f"none of {options}" if en else f"不属于：{options}"
    if op == "gte":
        return f"at least {words(expected)}" if en else f"不少于 {words(expected)}"
    if op == "lte":
        if field == "best_overseas_qs_rank":
            return f"in the top {expected}" if en else f"前 {expected} 名"
        return f"at most {words(expected)}" if en else f"不超过 {words(expected)}"
    if op == "between":
        low, high = expected
        if field == "best_overseas_qs_rank":
            return f"between no. {low} and no. {high}" if en else f"第 {low} 至 {high} 名"
        return f"between {words(low)} and {words(high)}" if en else f"{words(low)} 至 {words(high)}"
    if op == "within_days":
        return f"within the last {expected:,} days" if en else f"最近 {expected:,} 天以内"
    if op == "exists":
        return _pick(GIVEN if expected else NONE, lang)
    return f"{op} {words(expected)}"


def _calendar(criterion: str, passed, expected, lang: str) -> str:
    mark = MARKS[passed]
    if criterion == "in_effect":
        start, end = expected
        if lang == ZH:
            until = f"至 {end.isoformat()}" if end else "起长期有效"
            return f"政策有效期：{start.isoformat()} {until} {mark}"
        until = f"to {end.isoformat()}" if end else "onwards"
        return f"The programme runs from {start.isoformat()} {until} {mark}"
    if lang == ZH:
        return f"申报截止日期：{expected.isoformat()} {mark}"
    return f"Applications close on {expected.isoformat()} {mark}"


def sentence(outcome, lang: str, titles: dict | None = None) -> str:
    """One line a returnee reads: their value, whether it meets the rule, and the rule."""
    if outcome.group:
        joined = {"all": ("all of these", "须全部满足"), "any": ("one of these", "满足其一即可")}
        how = _pick(joined[outcome.group], lang)
        if lang == ZH:
            return f"{outcome.label[lang]}（{how}）{MARKS[outcome.passed]}"
        return f"{outcome.label[lang]} ({how}) {MARKS[outcome.passed]}"
    if outcome.field == "as_of":
        return _calendar(outcome.id, outcome.passed, outcome.expected, lang)
    what = field_words(outcome.field, lang)
    if outcome.op == "exists":  # whether there is one at all: "given" or "none", never unknown
        given = REGISTERED if outcome.field == "company" else GIVEN
        actual = _pick(given if outcome.actual not in (None, []) else NONE, lang)
    else:
        actual = value_words(outcome.field, outcome.actual, lang, titles)
    wanted = requirement(outcome.field, outcome.op, outcome.expected, lang, titles)
    mark = MARKS[outcome.passed]
    if lang == ZH:
        return f"{what}：{actual} {mark}（要求：{wanted}）"
    return f"{what[0].upper()}{what[1:]}: {actual} {mark} (required: {wanted})"
