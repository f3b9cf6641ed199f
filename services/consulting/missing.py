"""What is still missing: the facts that would decide the policies a returnee is undetermined
for, as one personal list "tell us … / bring …" (一次告知: everything at once, each fact once
however many policies need it). Pure.

A criterion is unknown when the fact it reads is missing from the profile; derived values
(age, years since return, degrees, ...) are asked for as the fact they come from.
"""

from services.consulting.eligibility import STATUS_UNDETERMINED, Assessment, Outcome

# criterion field → the fact to ask for
FACT_OF = {
    "age_years": "birth_date",
    "years_since_return": "return_date",
    "company_age_months": "company.registration_date",
    "highest_overseas_degree": "education",
    "highest_degree": "education",
    "study_abroad_days": "education",
    "years_since_graduation": "education",
    "best_overseas_qs_rank": "qs_rank",
}

# fact → (tell us, zh-CN; tell us, en; bring, zh-CN; bring, en)
FACTS = {
    "birth_date": ("出生日期", "Your date of birth", "身份证或护照", "ID card or passport"),
    "return_date": (
        "回国日期",
        "The date you returned to China",
        "护照及出入境记录",
        "Passport and the record of entries and exits",
    ),
    "education": (
        "学习经历：学位、国家或地区、起止日期",
        "Your studies: degrees, countries and dates",
        "教育部留学服务中心国（境）外学历学位认证书",
        "The CSCSE's verification of your overseas degrees",
    ),
    "qs_rank": (
        "海外毕业院校的QS世界大学排名",
        "The QS world ranking of your overseas university",
        "学位证书（用于核对院校）",
        "Your degree certificate (to identify the university)",
    ),
    "has_overseas_job": (
        "是否有海外工作经历",
        "Whether you have worked abroad",
        "海外工作证明（雇主证明或劳动合同）",
        "Proof of work abroad (an employer's letter or contract)",
    ),
    "residence_status": (
        "户籍或居住证情况",
        "Your hukou or residence permit status",
        "户口簿或上海市居住证",
        "Household register or Shanghai residence permit",
    ),
    "industry": (
        "所属行业",
        "Your industry",
        "项目或企业简介",
        "A short description of your venture",
    ),
    "startup_stage": (
        "创业阶段（创意、已注册、成长期）",
        "Your start-up's stage (idea, registered, growth)",
        "商业计划书",
        "Business plan",
    ),
    "prior_awards": (
        "曾获得的人才或创业资助项目",
        "The talent or start-up programmes that have funded you",
        "资助文件或入选通知（如有）",
        "Award letters, if any",
    ),
    "needs": (
        "目前最需要的支持（如办公场地、融资）",
        "What support you need (office space, financing, ...)",
        "无需材料",
        "Nothing to bring",
    ),
    "company": (
        "是否已注册企业",
        "Whether you have registered a company",
        "企业营业执照（如已注册）",
        "The business licence, if registered",
    ),
    "company.registered_district": (
        "企业注册所在区",
        "The district your company is registered in",
        "企业营业执照",
        "Business licence",
    ),
    "company.registration_date": (
        "企业成立日期",
        "The date your company was registered",
        "企业营业执照",
        "Business licence",
    ),
    "company.registered_capital_cny": (
        "企业注册资本",
        "Your company's registered capital",
        "公司章程或验资报告",
        "Articles of association or capital verification report",
    ),
    "company.shareholding_pct": (
        "本人持股比例",
        "Your share of the company",
        "公司章程及股东名册",
        "Articles of association and register of shareholders",
    ),
    "company.is_legal_representative": (
        "本人是否为企业法定代表人",
        "Whether you are the company's legal representative",
        "企业营业执照",
        "Business licence",
    ),
    "company.is_largest_shareholder": (
        "本人是否为第一大股东",
        "Whether you are the largest shareholder",
        "股东名册",
        "Register of shareholders",
    ),
    "company.vc_raised_cny": (
        "企业已获融资金额",
        "How much venture capital your company has raised",
        "融资协议及资金到账凭证",
        "Financing agreements and bank receipts of the funds",
    ),
}


def fact_of(field: str) -> str:
    return FACT_OF.get(field, field)


def _unknown_leaves(outcomes: list[Outcome]) -> list[Outcome]:
    found = []
    for outcome in outcomes:
        if outcome.passed is not None:
            continue
        if outcome.group:
            found += _unknown_leaves(outcome.children)
        else:
            found.append(outcome)
    return found


def deciding(assessment: Assessment) -> list[Outcome]:
    """The unknown criteria that decide an undetermined assessment: those of the policy's own
    criteria, and, while no tier is reached, those of the tiers not ruled out."""
    if assessment.status != STATUS_UNDETERMINED:
        return []
    found = _unknown_leaves(assessment.reasons)
    if not any(t["reached"] is True for t in assessment.tiers):
        for tier in assessment.tiers:
            if tier["reached"] is None:
                found += _unknown_leaves(tier["reasons"])
    return found


def missing_facts(assessments: list[Assessment], policies: dict[str, dict], lang: str) -> list:
    """One entry per missing fact, in the order first needed (policies by code): what to tell,
    what to bring, and which policies and criteria it decides, in `lang`."""
    lang = "zh-CN" if lang == "zh-CN" else "en"
    entries: dict[str, dict] = {}
    for assessment in assessments:
        policy = policies[assessment.policy_id]
        for outcome in deciding(assessment):
            fact = fact_of(outcome.field)
            ask_zh, ask_en, bring_zh, bring_en = FACTS[fact]
            entry = entries.setdefault(
                fact,
                {
                    "fact": fact,
                    "tell_us": ask_zh if lang == "zh-CN" else ask_en,
                    "bring": bring_zh if lang == "zh-CN" else bring_en,
                    "policies": [],
                },
            )
            listed = next(
                (p for p in entry["policies"] if p["policy_id"] == assessment.policy_id), None
            )
            if listed is None:
                listed = {
                    "policy_id": assessment.policy_id,
                    "code": assessment.code,
                    "title": policy["title"][lang],
                    "criteria": [],
                }
                entry["policies"].append(listed)
            if outcome.label[lang] not in listed["criteria"]:
                listed["criteria"].append(outcome.label[lang])
    return list(entries.values())
