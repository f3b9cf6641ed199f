"""Reference data: the notification topics, named in both languages for preference screens.

    python -m services.notify.seed      # NOTIFY_DATABASE_URL or DATABASE_URL

Idempotent: each topic is upserted by name, so a changed label is corrected on the next run.
The topics are the templates (`domain.TEMPLATES`); a test keeps the two lists equal.
"""

import sys

from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool, script_pool
from services.notify.domain import (
    APPOINTMENT_CHANNELS,
    DIGEST_CHANNELS,
    RETURNEE_CHANNELS,
    STAFF_CHANNELS,
)
from services.notify.store import NotifyStore

# (name, zh-CN label, en label, zh-CN description, en description, channels)
TOPICS = [
    ("welcome", "欢迎消息", "Welcome",
     "注册后的欢迎信息。", "The welcome message after registration.", RETURNEE_CHANNELS),
    ("matches_found", "新匹配资源", "New matches",
     "有新的资源与您的需求匹配时通知您；一段时间内的多条匹配会合并为一封邮件。",
     "New resources matching your needs; several within a short window come as one email.",
     RETURNEE_CHANNELS),
    ("policies_eligible", "新符合的政策", "Newly eligible policies",
     "您新符合某项政策的申请条件时通知您。",
     "Policies you have just become eligible for.", RETURNEE_CHANNELS),
    ("consultation_update", "咨询进展", "Consultation updates",
     "咨询的受理、分配、答复和补充信息请求；顾问会收到分配和超时提醒，也可通过企业微信、钉钉或飞书接收。",
     "Your questions received, assigned, answered or needing information; advisors hear of "
     "assignments and missed deadlines, also on their work messengers.", STAFF_CHANNELS),
    ("intention_update", "合作意向", "Cooperation intentions",
     "合作意向的提出、接受或婉拒；机构可通过企业微信、钉钉或飞书接收。",
     "Intentions expressed to your organization (also on its work messengers), and answers to "
     "yours.", STAFF_CHANNELS),
    ("application_update", "申请进展", "Application updates",
     "政策申请的提交、批准、驳回、资助发放或撤回。",
     "Your policy applications submitted, approved, rejected, awarded or withdrawn.",
     RETURNEE_CHANNELS),
    ("appointment_confirmation", "预约确认", "Appointment confirmations",
     "服务站预约的确认与取消，可通过短信接收。",
     "Service station appointments booked or cancelled, also by SMS.", APPOINTMENT_CHANNELS),
    ("appointment_reminder", "预约提醒", "Appointment reminders",
     "服务站预约开始前的提醒，可通过短信接收。",
     "A reminder ahead of a service station appointment, also by SMS.", APPOINTMENT_CHANNELS),
    ("activity_invitation", "活动邀请", "Activity invitations",
     "适合您的交流会、参访、政策宣讲和培训的邀请。",
     "Invitations to exchange sessions, site visits, briefings and trainings meant for you.",
     RETURNEE_CHANNELS),
    ("registration_confirmed", "报名确认", "Registration confirmations",
     "活动报名成功的确认，附签到码和二维码。",
     "Your seat at an activity, with the check-in code and its QR code.", RETURNEE_CHANNELS),
    ("waitlist_promoted", "候补转正", "Off the waitlist",
     "候补名单中的您获得了活动名额，附签到码。",
     "A seat came free for you at an activity you wait for, with the check-in code.",
     RETURNEE_CHANNELS),
    ("activity_reminder", "活动提醒", "Activity reminders",
     "活动开始前一天的提醒。", "A reminder the day before an activity you registered for.",
     RETURNEE_CHANNELS),
    ("activity_cancelled", "活动取消", "Cancelled activities",
     "您报名的活动取消时通知您。", "An activity you registered for will not take place.",
     RETURNEE_CHANNELS),
    ("activity_registrations", "活动报名汇总", "Registrations for your activities",
     "贵机构主办活动的报名情况，定时汇总为一封邮件。",
     "How many registered for the activities your organization organizes, in one email per "
     "window.", DIGEST_CHANNELS),
]  # fmt: skip


def seed(pool: ConnectionPool) -> int:
    """Upsert every topic; returns how many there are."""
    with ScriptDatabase(pool, "notify", store=NotifyStore).unit_of_work() as uow:
        return uow.store.keep_topics(TOPICS)


def main() -> int:
    with script_pool("notify") as pool:
        count = seed(pool)
    print(f"notify: {count} notification topics seeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
