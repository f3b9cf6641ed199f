"""Reference data: the notification topics, named in both languages for preference screens.

    python -m services.notify.seed      # NOTIFY_DATABASE_URL or DATABASE_URL

Idempotent: each topic is upserted by name, so a changed label is corrected on the next run.
The topics are the templates (`domain.TEMPLATES`); a test keeps the two lists equal.
"""

import sys

from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool, script_pool
from services.notify.domain import APPOINTMENT_CHANNELS, RETURNEE_CHANNELS
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
     "咨询的受理、分配、答复和补充信息请求；顾问会收到分配和超时提醒。",
     "Your questions received, assigned, answered or needing information; advisors hear of "
     "assignments and missed deadlines.", RETURNEE_CHANNELS),
    ("intention_update", "合作意向", "Cooperation intentions",
     "合作意向的提出、接受或婉拒。",
     "Intentions expressed to your organization, and answers to yours.", RETURNEE_CHANNELS),
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
