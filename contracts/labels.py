"""The closed vocabularies of `contracts.vocabulary` in words people read, in zh-CN and en.

What a service shows a person names a value with these words (consulting's plain-language
eligibility, the portal's forms and pages), never with the value itself: `label("degrees",
"master", "en")` is "Master's". Match reasons (`contracts.reasons`) name needs, industries and
stages with them too, so a need reads the same everywhere.
"""

from contracts import vocabulary

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

_EN = {
    "degrees": {"bachelor": "Bachelor's", "master": "Master's", "phd": "Doctorate"},
    "industries": {
        "biotech": "Biotechnology",
        "ai": "Artificial intelligence",
        "fintech": "Financial technology",
        "advanced_manufacturing": "Advanced manufacturing",
        "digital_commerce": "Digital commerce",
        "culture_creative": "Culture and creative industries",
        "healthcare": "Healthcare",
        "new_energy": "New energy",
        "education": "Education",
        "consulting": "Consulting",
        "other": "Other",
    },
    "stages": {"idea": "Idea stage", "registered": "Company registered", "growth": "Growing"},
    "needs": {
        "financing": "Financing",
        "cross_border_finance": "Cross-border finance",
        "office_space": "Office space",
        "incubation": "Incubation",
        "policy_advice": "Policy advice",
        "residence_hukou": "Residence and hukou",
        "talent_recruitment": "Recruiting talent",
        "market_access": "Market access",
        "mentorship": "Mentorship",
        "partners": "Business partners",
        "legal": "Legal services",
    },
    "residence_statuses": {
        "hukou": "Shanghai hukou",
        "residence_permit": "Shanghai residence permit",
        "none": "Neither",
    },
    "consent_purposes": {
        "matching": "Matching with resources",
        "notifications": "Notifications",
        "share_with_partners": "Sharing with partner organizations",
    },
    "organization_kinds": {
        "bank": "Bank",
        "industrial_park": "Industrial park",
        "incubator": "Incubator",
        "enterprise": "Enterprise",
        "alumni_association": "Alumni association",
        "government_office": "Government office",
        "law_firm": "Law firm",
        "investor": "Investor",
    },
    "resource_kinds": {
        "financing": "Financing",
        "cross_border_finance": "Cross-border finance",
        "office_space": "Office space",
        "incubation": "Incubation",
        "mentorship": "Mentorship",
        "cooperation": "Cooperation",
        "talent": "Talent",
        "market_access": "Market access",
        "legal": "Legal services",
    },
    "intention_statuses": {
        "expressed": "Waiting for an answer",
        "accepted": "Accepted",
        "declined": "Declined",
    },
    "consultation_statuses": {
        "new": "Received",
        "assigned": "With an advisor",
        "answered": "Answered",
        "waiting_on_returnee": "Waiting for your reply",
        "closed": "Closed",
        "reopened": "Reopened",
    },
}

_ZH = {
    "degrees": {"bachelor": "学士", "master": "硕士", "phd": "博士"},
    "industries": INDUSTRY_ZH,
    "stages": STAGE_ZH,
    "needs": NEED_ZH,
    "residence_statuses": {
        "hukou": "上海户籍",
        "residence_permit": "上海居住证",
        "none": "均无",
    },
    "consent_purposes": {
        "matching": "资源匹配",
        "notifications": "消息通知",
        "share_with_partners": "与合作机构共享",
    },
    "organization_kinds": {
        "bank": "银行",
        "industrial_park": "产业园区",
        "incubator": "孵化器",
        "enterprise": "企业",
        "alumni_association": "校友会",
        "government_office": "政府部门",
        "law_firm": "律师事务所",
        "investor": "投资机构",
    },
    "resource_kinds": {
        "financing": "融资",
        "cross_border_finance": "跨境金融",
        "office_space": "办公空间",
        "incubation": "孵化",
        "mentorship": "创业导师",
        "cooperation": "合作",
        "talent": "人才",
        "market_access": "市场拓展",
        "legal": "法律服务",
    },
    "intention_statuses": {"expressed": "等待答复", "accepted": "已接受", "declined": "已婉拒"},
    "consultation_statuses": {
        "new": "已收到",
        "assigned": "顾问处理中",
        "answered": "已答复",
        "waiting_on_returnee": "等待您的回复",
        "closed": "已关闭",
        "reopened": "已重新打开",
    },
}

# Each vocabulary named here, with the values contracts.vocabulary publishes for it.
VOCABULARIES = {
    "degrees": vocabulary.DEGREES,
    "industries": vocabulary.INDUSTRIES,
    "stages": vocabulary.STARTUP_STAGES,
    "needs": vocabulary.NEEDS,
    "residence_statuses": vocabulary.RESIDENCE_STATUSES,
    "consent_purposes": vocabulary.CONSENT_PURPOSES,
    "organization_kinds": vocabulary.ORGANIZATION_KINDS,
    "resource_kinds": vocabulary.RESOURCE_KINDS,
    "intention_statuses": vocabulary.INTENTION_STATUSES,
    "consultation_statuses": vocabulary.CONSULTATION_STATUSES,
}


def label(vocabulary_name: str, value, locale: str) -> str:
    """The words for a value; the value itself when this version does not know it."""
    table = (_ZH if locale == "zh-CN" else _EN)[vocabulary_name]
    return table.get(value, str(value))


def choices(vocabulary_name: str, locale: str) -> list[tuple[str, str]]:
    """(value, words) of every value of a vocabulary, in the contract's order."""
    return [(v, label(vocabulary_name, v, locale)) for v in VOCABULARIES[vocabulary_name]]
