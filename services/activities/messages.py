"""Every text activities answers with, in English and Chinese: the one message catalog of the
service. Errors are raised in English (`NotFound("No such activity.")`); `{name}` placeholders
are filled after translation."""

from chassis.i18n import add_translations

MESSAGES = {
    "No such activity.": "没有该活动。",
    "No such registration.": "没有该报名。",
    "No check-in code like this for this activity.": "该活动没有此签到码。",
    "Unknown organization.": "未知的机构。",
    "Unknown returnee.": "未知的留学人员。",
    "Must be in the future.": "必须是将来的时间。",
    "Must not be after starts_at.": "不能晚于 starts_at。",
    "Must be after starts_at.": "必须晚于 starts_at。",
    "Each organization is listed once.": "每个机构只能列出一次。",
    "Each returnee is listed once.": "每位留学人员只能列出一次。",
    "Name either organization_id or returnee_id.": "请提供 organization_id 或 returnee_id 之一。",
    "Not a valid cursor.": "不是有效的分页游标。",
    "Your account has no organization to represent.": "您的账号未关联可代表的机构。",
    "This account was erased.": "该账户已注销。",
    "You are registered for this activity already.": "您已报名该活动。",
    "The activity is cancelled.": "该活动已取消。",
    "The activity is closed.": "该活动已结束并关闭。",
    "The activity has started; registration is over.": "活动已开始，报名已结束。",
    "Registration closed at {closes_at}.": "报名已于 {closes_at} 截止。",
    "The activity has started; registrations can no longer be cancelled.": (
        "活动已开始，无法再取消报名。"
    ),
    "This registration is cancelled already.": "该报名已取消。",
    "This registration is cancelled.": "该报名已取消。",
    "This registration is on the waitlist, not confirmed.": "该报名仍在候补名单中，尚未确认。",
    "The activity is over; it can no longer be cancelled.": "活动已结束，无法取消。",
    "The activity has not taken place yet.": "活动尚未举行。",
}

add_translations(MESSAGES)
