"""Every text matching answers with, in English and Chinese: the one message catalog of the
service. Errors are raised in English (`NotFound("No such resource.")`); `{name}` placeholders
are filled after translation."""

from chassis.i18n import add_translations

MESSAGES = {
    "No such resource.": "资源不存在。",
    "This account was erased.": "该账户已注销。",
    "No such match.": "匹配不存在。",
    "No such intention.": "合作意向不存在。",
    "Providers publish only their own organization's resources.": "机构用户只能发布本机构的资源。",
    "This belongs to another organization.": "该资源属于其他机构。",
    "The resource is withdrawn already.": "该资源已撤回。",
    "The resource is no longer on offer.": "该资源已不再提供。",
    "The resource is no longer on offer (withdrawn, expired or full).": (
        "该资源已不再提供（已撤回、已过期或名额已满）。"
    ),
    "You can express interest only in resources matched to you.": (
        "只能对与您匹配的资源表达合作意向。"
    ),
    "You have expressed interest in this resource already.": "您已对该资源表达过合作意向。",
    "You can express an intention at an activity only after attending it.": (
        "只有参加活动后才能在该活动上表达合作意向。"
    ),
    "The organization neither organized nor attended this activity.": (
        "该机构未组织也未参加此活动。"
    ),
    "You have expressed interest in this organization at this activity already.": (
        "您已在该活动上向该机构表达过合作意向。"
    ),
    "The intention has been decided already.": "该合作意向已处理。",
    "The resource has no place left.": "该资源已无剩余名额。",
    "Your account has no organization.": "您的账号未关联机构。",
    # field errors: the schemas' and the stated rules'
    "Must not be before valid_from.": "不能早于 valid_from。",
    "Must not be in the past.": "不能是过去的日期。",
    "Unknown organization.": "未知的机构。",
    "Must not be below the places already taken.": "不能少于已被占用的名额。",
    "Give resource_id, or organization_id and activity_id.": (
        "请提供 resource_id，或同时提供 organization_id 与 activity_id。"
    ),
    "Not with resource_id.": "不能与 resource_id 同时提供。",
    "Name the returnee who attended.": "请指明参加活动的海归。",
    "Returnees express only their own intentions.": "海归只能表达本人的合作意向。",
    "This returnee's account was erased.": "该海归的账户已注销。",
    "Give organization_id or organization_name.": "请提供 organization_id 或 organization_name。",
}

add_translations(MESSAGES)
