"""Every text consulting answers with, in English and Chinese: the one message catalog of the
service. Errors are raised in English (`NotFound("No such policy.")`); `{name}` placeholders are
filled after translation."""

from chassis.i18n import add_translations

MESSAGES = {
    "No such policy.": "没有该政策。",
    "A policy with this code exists already.": "该政策代码已存在。",
    "The policy's criteria cannot be evaluated.": "该政策的条件无法执行。",
    "No eligibility facts for this returnee yet.": "尚无该留学人员的资格信息。",
    "No such consultation.": "没有该咨询。",
    "No advisor is available.": "暂无可分配的顾问。",
    "No such advisor.": "没有该顾问。",
    "No such slot.": "没有该时段。",
    "This slot is full or already past.": "该时段已约满或已过期。",
    "You have booked this slot already.": "您已预约该时段。",
    "No such appointment.": "没有该预约。",
    "This appointment is cancelled already.": "该预约已取消。",
    "The consultation can be rated only once, after it is closed.": "咨询关闭后只能评价一次。",
    "Assign the consultation to an advisor first.": "请先将该咨询分配给顾问。",
    "The consultation cannot be changed this way now ({reason}).": (
        "该咨询当前状态不允许此操作（{status}）。"
    ),
}

add_translations(MESSAGES)
