"""notify's channels for China through the real delivery path: the real broker and database,
and local servers that speak Alibaba Cloud SMS's, WeCom's, DingTalk's and Feishu's documented
protocols (`providers.py`: signatures checked, receipts sent back, their error answers).
Nothing here reaches the internet."""

import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from prometheus_client import REGISTRY

from contracts import CATALOG
from contracts.examples import ADVISOR, ICBC, PROVIDER, example
from services.notify.service import NotifyService
from tests.integration.providers import (
    SIGN_NAME,
    MessengerServer,
    gateway_settings,
    platform_gateway,
)
from tests.support import publish_events, query, service_url, wait_until

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def gateway():
    server = platform_gateway()
    yield server
    server.stop()


@pytest.fixture
def robots():
    server = MessengerServer()
    yield server
    server.stop()


@pytest.fixture
def start_notify(container_factory, config_for, robots):
    def start(**overrides):
        settings = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": 9,  # no SMTP server: these tests look at the other channels
            "DELIVERY_BASE_DELAY_SECONDS": 0.2,
            "DIGEST_WINDOW_SECONDS": 0,
            "WECOM_URL": robots.url,
            "DINGTALK_URL": robots.url,
            "FEISHU_URL": robots.url,
            **overrides,
        }
        config = config_for("notify", **settings)
        container = container_factory(NotifyService, config)
        container.start()
        return service_url(container), config["DATABASE_URL"]

    return start


def registered(phone="+86 138 0013 8000", locale="zh-CN"):
    data = {
        **example("returnee.registered").data,
        "returnee_id": str(uuid.uuid4()),
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "phone": phone,
        "locale": locale,
    }
    return CATALOG.create("accounts", "returnee.registered", data, subject=data["returnee_id"])


def booking(returnee_id, hours=48):
    starts = (datetime.now(SHANGHAI) + timedelta(hours=hours)).replace(second=0, microsecond=0)
    data = {
        **example("appointment.booked").data,
        "appointment_id": str(uuid.uuid4()),
        "returnee_id": returnee_id,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(minutes=30)).isoformat(),
    }
    return CATALOG.create("consulting", "appointment.booked", data, subject=data["appointment_id"])


def sms_rows(database_url, returnee_id):
    return query(
        database_url,
        "SELECT id::text, status, reason, body, attempts, provider_ref, last_error"
        " FROM notifications WHERE recipient_id = %s AND channel = 'sms' ORDER BY created_at",
        (returnee_id,),
    )


def settled(rows):
    return rows if rows and all(r["status"] not in ("queued", "accepted") for r in rows) else None


def counted(name, **labels):
    return REGISTRY.get_sample_value(name, {"service": "notify", **labels}) or 0.0


# --- SMS ---------------------------------------------------------------------------------------


def test_an_appointment_sms_goes_through_the_gateway_and_its_receipt_reports_it_sent(
    start_notify, gateway, amqp_uri, spy, token_for
):
    gateway.pending_queries = 1  # the first question finds no receipt yet
    base_url, database_url = start_notify(**gateway_settings(gateway))
    sent = spy("notify", "notification.sent")
    welcome = registered()
    returnee_id = welcome.data["returnee_id"]
    booked = booking(returnee_id)
    publish_events(amqp_uri, [welcome, booked, booked])  # the booking delivered twice

    report = sent.wait_for("notification.sent", lambda e: e.data["channel"] == "sms", timeout=20)
    [message] = gateway.sent  # once, signed as the provider checks it
    assert message["phone"] == "13800138000" and message["code"] == "SMS_4610001"
    starts = datetime.fromisoformat(booked.data["starts_at"]).astimezone(SHANGHAI)
    assert (
        message["params"]["time"]
        == f"{starts:%Y-%m-%d %H:%M}-{starts + timedelta(minutes=30):%H:%M}"
    )
    assert message["text"].startswith(f"【{SIGN_NAME}】您在长宁区海归创业服务站的预约已确认")
    [row] = sms_rows(database_url, returnee_id)
    assert row["status"] == "sent" and row["provider_ref"] == message["biz_id"]
    assert f"【{SIGN_NAME}】{row['body']}" == message["text"]  # the body is what the phone shows
    assert message["out_id"] == row["id"] == report.data["notification_id"]
    assert report.data["template"] == "appointment_confirmation"
    assert gateway.calls.count("QuerySendDetails") >= 2  # waited, then read the receipt

    response = requests.get(
        f"{base_url}/notifications",
        params={"recipient_id": returnee_id, "channel": "sms"},
        headers=token_for("returnee", returnee_id),
    )
    assert [(n["status"], n["body"]) for n in response.json()] == [("sent", row["body"])]


def test_gateway_throttling_is_retried_and_bad_numbers_and_undelivered_sms_fail_for_good(
    start_notify, gateway, amqp_uri, spy
):
    # No quota of ours in the way: each retry is due when the backoff says.
    _, database_url = start_notify(**gateway_settings(gateway, SMS_RATE_LIMITS=""))
    failed = spy("notify", "notification.failed")
    throttled, bad, unreachable = registered(), registered("+86 100 0000 0000"), registered(
        "+86 139 0000 0001"
    )  # fmt: skip
    gateway.receipt["13900000001"] = (2, "MOBILE_NOT_ON_SERVICE")
    gateway.refuse("isv.BUSINESS_LIMIT_CONTROL", times=2)  # the provider's flow control
    publish_events(amqp_uri, [throttled, booking(throttled.data["returnee_id"])])
    [row] = wait_until(lambda: settled(sms_rows(database_url, throttled.data["returnee_id"])))
    assert row["status"] == "sent" and row["attempts"] == 3

    publish_events(amqp_uri, [bad, booking(bad.data["returnee_id"]),
                              unreachable, booking(unreachable.data["returnee_id"])])  # fmt: skip
    [row] = wait_until(lambda: settled(sms_rows(database_url, bad.data["returnee_id"])))
    assert (row["status"], row["attempts"]) == ("failed", 1)  # not retried: the number is wrong
    assert row["reason"].startswith("SMS gateway: isv.MOBILE_NUMBER_ILLEGAL")
    [row] = wait_until(lambda: settled(sms_rows(database_url, unreachable.data["returnee_id"])))
    assert (row["status"], row["reason"]) == ("failed", "SMS not delivered: MOBILE_NOT_ON_SERVICE")
    report = failed.wait_for("notification.failed", lambda e: "MOBILE_NOT" in e.data["reason"])
    assert report.data["channel"] == "sms" and report.data["notification_id"] == row["id"]


def test_a_wrong_access_key_secret_is_refused_by_the_gateways_signature_check(
    start_notify, gateway, amqp_uri, caplog
):
    before = counted("notify_provider_refusals_total", channel="sms", code="SignatureDoesNotMatch")
    _, database_url = start_notify(
        **gateway_settings(gateway, ALIYUN_SMS_ACCESS_KEY_SECRET="wrong")
    )
    welcome = registered()
    publish_events(amqp_uri, [welcome, booking(welcome.data["returnee_id"])])
    [row] = wait_until(lambda: settled(sms_rows(database_url, welcome.data["returnee_id"])))
    assert row["status"] == "failed" and "SignatureDoesNotMatch" in row["reason"]
    assert gateway.sent == []
    assert counted("notify_provider_refusals_total", channel="sms",
                   code="SignatureDoesNotMatch") == before + 1  # fmt: skip
    assert any("configuration" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_without_a_gateway_sms_is_suppressed_shown_in_the_api_and_counted(
    start_notify, amqp_uri, spy, token_for
):
    before = counted("notify_unconfigured_suppressed_total", channel="sms")
    base_url, database_url = start_notify()  # no SMS_GATEWAY
    sent = spy("notify", "notification.sent")
    welcome = registered()
    returnee_id = welcome.data["returnee_id"]
    publish_events(amqp_uri, [welcome, booking(returnee_id)])
    sent.wait_for("notification.sent", lambda e: e.data["template"] == "appointment_confirmation")
    [row] = wait_until(lambda: sms_rows(database_url, returnee_id))
    assert (row["status"], row["reason"]) == ("suppressed", "no SMS gateway configured")
    response = requests.get(
        f"{base_url}/notifications",
        params={"recipient_id": returnee_id, "channel": "sms"},
        headers=token_for("returnee", returnee_id),
    )
    assert [(n["status"], n["reason"]) for n in response.json()] == [
        ("suppressed", "no SMS gateway configured")
    ]
    assert counted("notify_unconfigured_suppressed_total", channel="sms") == before + 1
    assert "sms" not in [e.data["channel"] for e in sent.events("notification.sent")]


# --- work messengers ------------------------------------------------------------------------


WECOM_KEY = "693a91f6-7aoc-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN, DING_SECRET = "1f2e3d4c5b6a79880f1e2d3c4b5a6978", "SEC" + "7" * 61
FEISHU_HOOK, FEISHU_SECRET = "2b9c1f36-4d0e-4c8b-9a5e-7f1d2c3b4a59", "feishu-signing-secret"


def directory_events():
    advisor = {
        **example("staff.registered").data,
        "staff_id": ADVISOR,
        "role": "advisor",
        "organization_id": None,
        "name": "王芳",
        "email": "wang.fang@example.com",
    }
    return [
        CATALOG.create(
            "accounts",
            "organization.registered",
            example("organization.registered").data,
            subject=ICBC,
        ),  # fmt: skip
        CATALOG.create(
            "accounts", "staff.registered", example("staff.registered").data, subject=PROVIDER
        ),  # fmt: skip
        CATALOG.create("accounts", "staff.registered", advisor, subject=ADVISOR),
        CATALOG.create(
            "matching",
            "resource.published",
            example("resource.published").data,
            subject=example("resource.published").subject,
        ),  # fmt: skip
    ]


def put_channels(base_url, recipient_id, headers, *destinations):
    response = requests.put(
        f"{base_url}/recipients/{recipient_id}/channels",
        json={"destinations": list(destinations)},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def messenger_rows(database_url, channel=None):
    sql = ("SELECT recipient_id::text, channel, status, reason, attempts, template"
           " FROM notifications WHERE channel IN ('wecom', 'dingtalk', 'feishu')")  # fmt: skip
    params: tuple = ()
    if channel:
        sql += " AND channel = %s"
        params = (channel,)
    return query(database_url, sql + " ORDER BY created_at", params)


def in_the_directory(database_url, *ids):
    found = query(database_url, "SELECT id::text FROM recipients WHERE id = ANY(%s::uuid[])",
                  (list(ids),))  # fmt: skip
    return len(found) == len(ids)


def intention():
    data = {**example("intention.expressed").data, "intention_id": str(uuid.uuid4())}
    return CATALOG.create("matching", "intention.expressed", data, subject=data["intention_id"])


def sla_breach():
    data = {**example("consultation.sla_breached").data, "advisor_id": ADVISOR,
            "consultation_id": str(uuid.uuid4())}  # fmt: skip
    return CATALOG.create("consulting", "consultation.sla_breached", data,
                          subject=data["consultation_id"])  # fmt: skip


def test_organizations_and_staff_hear_on_wecom_dingtalk_and_feishu_signed_as_each_asks(
    start_notify, robots, amqp_uri, token_for
):
    base_url, database_url = start_notify()
    robots.robots.update({("wecom", WECOM_KEY): None, ("dingtalk", DING_TOKEN): DING_SECRET,
                          ("feishu", FEISHU_HOOK): FEISHU_SECRET})  # fmt: skip
    publish_events(amqp_uri, directory_events())
    wait_until(lambda: in_the_directory(database_url, ICBC, PROVIDER, ADVISOR))
    wecom = {"channel": "wecom", "token": WECOM_KEY}
    dingtalk = {"channel": "dingtalk", "token": DING_TOKEN, "secret": DING_SECRET}
    shown = put_channels(base_url, ICBC, token_for("admin"), wecom, dingtalk)
    assert [(d["channel"], d["signed"]) for d in shown["destinations"]] == [
        ("dingtalk", True), ("wecom", False)
    ]  # fmt: skip
    assert DING_SECRET not in json.dumps(shown) and WECOM_KEY not in json.dumps(shown)
    put_channels(base_url, ADVISOR, token_for("advisor", ADVISOR),
                 {"channel": "feishu", "token": FEISHU_HOOK, "secret": FEISHU_SECRET})  # fmt: skip

    publish_events(amqp_uri, [intention(), sla_breach()])
    wait_until(lambda: len(robots.received) == 3, message=f"refused: {robots.refused}")
    [wecom] = robots.messages("wecom")
    content = wecom["payload"]["markdown"]["content"]
    assert content.startswith("### ") and "Cross-border settlement" in content
    [ding] = robots.messages("dingtalk")
    assert ding["payload"]["markdown"]["title"] and ding["payload"]["markdown"]["text"] == content
    [feishu] = robots.messages("feishu")
    assert "咨询已超时" in feishu["payload"]["content"]["text"]
    rows = wait_until(lambda: settled(messenger_rows(database_url)))
    assert sorted((r["recipient_id"], r["channel"], r["status"]) for r in rows) == sorted([
        (ICBC, "wecom", "sent"), (ICBC, "dingtalk", "sent"), (ADVISOR, "feishu", "sent"),
    ])  # fmt: skip
    assert robots.refused == []

    listed = requests.get(f"{base_url}/recipients/{ADVISOR}/channels",
                          headers=token_for("advisor", ADVISOR))  # fmt: skip
    assert [d["channel"] for d in listed.json()["destinations"]] == ["feishu"]
    denied = requests.put(f"{base_url}/recipients/{ICBC}/channels", json={"destinations": []},
                          headers=token_for("provider", PROVIDER))  # fmt: skip
    assert denied.status_code == 403
    bad = requests.put(
        f"{base_url}/recipients/{ICBC}/channels",
        json={"destinations": [{"channel": "wecom", "token": "x", "secret": "not for wecom"},
                               {"channel": "line", "token": WECOM_KEY}]},
        headers={**token_for("admin"), "Accept-Language": "zh-CN"},
    )  # fmt: skip
    assert bad.status_code == 400
    fields = bad.json()["fields"]["destinations"]
    assert set(fields["0"]) == {"token", "secret"} and "channel" in fields["1"]


def test_messenger_refusals_throttling_is_retried_a_wrong_secret_or_robot_fails(
    start_notify, robots, amqp_uri, token_for
):
    base_url, database_url = start_notify()
    robots.robots.update({("wecom", WECOM_KEY): None, ("dingtalk", DING_TOKEN): DING_SECRET})
    robots.fail_next("wecom", (200, {"errcode": 45009, "errmsg": "api freq out of limit"}), 2)
    publish_events(amqp_uri, directory_events())
    wait_until(lambda: in_the_directory(database_url, ICBC, PROVIDER, ADVISOR))
    wrong = {"channel": "dingtalk", "token": DING_TOKEN, "secret": "SEC" + "0" * 61}
    put_channels(
        base_url, ICBC, token_for("admin"), {"channel": "wecom", "token": WECOM_KEY}, wrong
    )
    put_channels(
        base_url, ADVISOR, token_for("admin"), {"channel": "feishu", "token": FEISHU_HOOK}
    )  # a hook Feishu does not know
    publish_events(amqp_uri, [intention(), sla_breach()])
    rows = wait_until(lambda: settled(messenger_rows(database_url)))
    found = {r["channel"]: (r["status"], r["attempts"], r["reason"]) for r in rows}
    assert found["wecom"] == ("sent", 3, None)  # throttled twice, then through
    assert found["dingtalk"][:2] == ("failed", 1) and "310000" in found["dingtalk"][2]
    assert found["feishu"][:2] == ("failed", 1) and "19001" in found["feishu"][2]
    assert [m["messenger"] for m in robots.received] == ["wecom"]


def test_a_robots_quota_quiet_hours_and_opt_outs_hold_per_channel(
    container_factory, config_for, amqp_uri, token_for
):
    robots = MessengerServer(per_minute=3, window=4.0)  # the provider's quota, scaled down
    try:
        settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": 9, "DIGEST_WINDOW_SECONDS": 0,
                    "DELIVERY_BASE_DELAY_SECONDS": 0.2, "WECOM_URL": robots.url,
                    "DINGTALK_URL": robots.url, "FEISHU_URL": robots.url,
                    "WECOM_RATE_LIMITS": "3/4"}  # fmt: skip
        config = config_for("notify", **settings)
        container = container_factory(NotifyService, config)
        container.start()
        base_url, database_url = service_url(container), config["DATABASE_URL"]
        robots.robots.update({("wecom", WECOM_KEY): None, ("dingtalk", DING_TOKEN): None,
                              ("feishu", FEISHU_HOOK): None})  # fmt: skip
        publish_events(amqp_uri, directory_events())
        wait_until(lambda: in_the_directory(database_url, ICBC, PROVIDER, ADVISOR))
        admin = token_for("admin")
        put_channels(base_url, ICBC, admin, {"channel": "wecom", "token": WECOM_KEY},
                     {"channel": "dingtalk", "token": DING_TOKEN})  # fmt: skip
        put_channels(base_url, ADVISOR, admin, {"channel": "feishu", "token": FEISHU_HOOK})
        now = datetime.now(SHANGHAI)
        quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"),
                 "end": (now + timedelta(hours=2)).strftime("%H:%M")}  # fmt: skip
        for recipient, body in [
            (ICBC, {"opt_outs": [{"channel": "dingtalk", "topic": "intention_update"}]}),
            (ADVISOR, {"quiet_hours": quiet}),
        ]:
            answer = requests.put(f"{base_url}/recipients/{recipient}/preferences", json=body,
                                  headers=admin)  # fmt: skip
            assert answer.status_code == 200, answer.text

        publish_events(amqp_uri, [intention() for _ in range(5)] + [sla_breach()])
        wait_until(lambda: len(robots.messages("wecom")) == 5, timeout=30,
                   message=f"refused: {robots.refused}")  # fmt: skip
        assert robots.refused == []  # never over the robot's quota
        times = [m["at"] for m in robots.messages("wecom")]
        assert times[3] - times[0] >= 3.5  # the fourth waited for the window to move on
        rows = messenger_rows(database_url)
        assert {r["status"] for r in rows if r["channel"] == "dingtalk"} == {"suppressed"}
        [feishu] = [r for r in rows if r["channel"] == "feishu"]
        assert feishu["status"] == "queued" and robots.messages("feishu") == []  # quiet hours
        requests.put(f"{base_url}/recipients/{ADVISOR}/preferences", json={}, headers=admin)
        wait_until(lambda: robots.messages("feishu"))
    finally:
        robots.stop()
