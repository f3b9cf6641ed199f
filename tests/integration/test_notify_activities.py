"""notify's part in activities against the real RabbitMQ, PostgreSQL and an SMTP server: an
invitation, a confirmation whose QR code, read from the email as it arrived, is the check-in
code, the organizers' registrations notice, the reminder when its time comes (one hour ahead
here), and the cancellation."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import CATALOG
from contracts.examples import example
from deploy.mail_sink import SmtpSink
from services.notify.service import NotifyService
from tests.support import publish_events, query, service_url, wait_until
from tests.unit.test_notify_activities import decoded, from_png

ORGANIZER = str(uuid.uuid4())


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def notify(container_factory, config_for, sink):
    config = config_for(
        "notify",
        SMTP_HOST=sink.host,
        SMTP_PORT=sink.port,
        DIGEST_WINDOW_SECONDS=0,
        ACTIVITY_REMINDER_HOURS=1,
        APPOINTMENT_REMINDER_INTERVAL_SECONDS=0.5,
    )
    container = container_factory(NotifyService, config)
    container.start()
    return service_url(container), config["DATABASE_URL"]


def created(producer, type_, subject, data):
    return CATALOG.create(producer, type_, data, subject=str(subject))


def test_from_invitation_to_reminder_and_cancellation_by_email(notify, sink, amqp_uri):
    _, database_url = notify
    li = {**example("returnee.registered").data, "returnee_id": str(uuid.uuid4()),
          "email": f"{uuid.uuid4().hex[:10]}@example.com"}  # fmt: skip
    desk = {"staff_id": str(uuid.uuid4()), "email": f"{uuid.uuid4().hex[:8]}@org.example.cn",
            "name": "Activities desk", "role": "provider", "organization_id": ORGANIZER,
            "locale": "en"}  # fmt: skip
    starts = datetime.now(UTC) + timedelta(hours=1, seconds=4)  # reminder due in 4 s
    activity_id = str(uuid.uuid4())
    summary = {
        "title": {"zh-CN": "海归人才交流会", "en": "Returnee exchange session"},
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        "venue": {"name": "Service station", "address": "Changning"},
        "organizer_ids": [ORGANIZER],
    }
    published = {**example("activity.published").data, **summary, "activity_id": activity_id,
                 "registration_closes_at": None}  # fmt: skip
    registration = {**example("registration.confirmed").data, "activity_id": activity_id,
                    "registration_id": str(uuid.uuid4()), "returnee_id": li["returnee_id"],
                    "activity": summary, "check_in_code": "QX9PK7M2"}  # fmt: skip
    publish_events(
        amqp_uri,
        [
            created("accounts", "returnee.registered", li["returnee_id"], li),
            created("accounts", "staff.registered", desk["staff_id"], desk),
            created("activities", "activity.published", activity_id, published),
        ],
    )
    wait_until(lambda: query(database_url, "SELECT 1 FROM activities"))
    invitation = {"activity_id": activity_id, "returnee_id": li["returnee_id"], "activity": summary}
    publish_events(
        amqp_uri,
        [
            created("activities", "invitation.issued", li["returnee_id"], invitation),
            created(
                "activities",
                "registration.confirmed",
                registration["registration_id"],
                registration,
            ),
        ],
    )

    def mail(address, subject_part):
        return wait_until(
            lambda: [m for m in sink.to(address) if subject_part in m["Subject"]], 20
        )[0]

    assert "海归人才交流会" in mail(li["email"], "活动邀请")["Subject"]
    confirmation = mail(li["email"], "报名成功")
    html = confirmation.get_body(("html",)).get_content()
    uri = re.search(r'src="(data:image/png;base64,[^"]+)"', html).group(1)
    assert decoded(from_png(uri)) == ["QX9PK7M2"]  # the QR code as it arrived
    assert "签到码：QX9PK7M2" in confirmation.get_body(("plain",)).get_content()
    notice = mail(desk["email"], "Registrations for")
    assert "1 new with a seat" in notice.get_body(("plain",)).get_content()

    reminder = mail(li["email"], "活动提醒")  # the loop queues it once its time has come
    assert "海归人才交流会" in reminder["Subject"]
    held = query(database_url, "SELECT reminder FROM activities WHERE id = %s", (activity_id,))
    assert held == [{"reminder": "queued"}]

    cancelled = {"activity_id": activity_id, "cancelled_by": "advisor"}
    publish_events(amqp_uri, [created("activities", "activity.cancelled", activity_id, cancelled)])
    assert mail(li["email"], "活动取消")["Subject"] == "活动取消：海归人才交流会"
    reminders = [m for m in sink.to(li["email"]) if "活动提醒" in m["Subject"]]
    assert len(reminders) == 1
