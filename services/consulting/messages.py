"""Every text consulting answers with, in English and Chinese: the one message catalog of the
service. Errors are raised in English (`NotFound("No such policy.")`); `{name}` placeholders are
filled after translation."""

from chassis.i18n import add_translations
from services.consulting.eligibility import (
    DUPLICATE_ID,
    ONE_GROUP,
    OP_DOES_NOT_APPLY,
    UNKNOWN_FIELD,
    WRONG_VALUE,
)

MESSAGES = {
    # a criterion's shape (eligibility.criterion_problem) and the rules beyond the fields
    UNKNOWN_FIELD: "未知的比较字段。",
    OP_DOES_NOT_APPLY: "该运算不适用于此字段。",
    WRONG_VALUE: "该运算对此字段不接受这个值。",
    ONE_GROUP: "条件组只能是 all 或 any 之一，且不含 field、op 或 value。",
    DUPLICATE_ID: "同一列表中已有相同 id 的条件。",
    "must not be before effective_from": "不能早于 effective_from",
    "must be after starts_at": "必须晚于 starts_at",
    "No such policy.": "没有该政策。",
    "This account was erased.": "该账户已注销。",
    "A policy with this code exists already.": "该政策代码已存在。",
    "The policy's criteria cannot be evaluated.": "该政策的条件无法执行。",
    "No eligibility facts for this returnee yet.": "尚无该留学人员的资格信息。",
    "No such consultation.": "没有该咨询。",
    "No advisor is available.": "暂无可分配的顾问。",
    "No such advisor.": "没有该顾问。",
    "No such slot.": "没有该时段。",
    "No such canned reply.": "没有该常用回复。",
    "This slot is full or already past.": "该时段已约满或已过期。",
    "You have booked this slot already.": "您已预约该时段。",
    "No such appointment.": "没有该预约。",
    "This appointment is cancelled already.": "该预约已取消。",
    "The consultation can be rated only once, after it is closed.": "咨询关闭后只能评价一次。",
    "Assign the consultation to an advisor first.": "请先将该咨询分配给顾问。",
    "The consultation cannot be changed this way now ({reason}).": (
        "该咨询当前状态不允许此操作（{status}）。"
    ),
    "A new version keeps the policy's code.": "新版本须沿用原政策代码。",
    "No such application.": "没有该申请。",
    "Your eligibility has not been assessed yet.": "尚未评估您的申请资格。",
    "Your profile does not meet this policy's criteria.": "您的情况不符合该政策的申请条件。",
    "No such tier of this policy.": "该政策没有此档次。",
    "Your profile rules out this tier.": "您的情况不符合该档次的条件。",
    "Choose the tier you apply for.": "请选择申请的档次。",
    "You have an open application for this policy already.": "您已有该政策的在办申请。",
    "Documents can be marked only while the application is a draft.": "仅可在申请提交前标记材料。",
    "No such document in this checklist.": "材料清单中没有该项。",
    "The application cannot be changed this way now ({reason}).": (
        "该申请当前状态不允许此操作（{status}）。"
    ),
    "Mark every document provided before submitting; missing: {documents}.": (
        "提交前请备齐全部材料；尚缺：{documents}。"
    ),
}

add_translations(MESSAGES)
