"""notify's channel rules without a network: the SMS gateway's signature (against the example
Alibaba Cloud documents), its codes, SMS texts within the carriers' length rules, messenger
messages within their size limits, provider quotas. The adapters against local servers that
speak the providers' protocols: tests/integration/test_notify_channels.py."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from services.notify.aliyun_sms import outcome_of, signature, string_to_sign
from services.notify.domain import RateLimit, next_slot, rate_key
from services.notify.messengers import fit
from services.notify.settings import DECLARED, NotifySettings
from services.notify.sms import LOCALES, MAX_VALUE, PLACEHOLDER, SMS_DIR, compose, parts

# The worked example of Alibaba Cloud's SMS signature document (signature version 1.0).
DOCUMENTED = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


def test_the_gateway_signature_is_the_one_alibaba_cloud_documents():
    assert signature("testSecret", "GET", DOCUMENTED) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    signed = string_to_sign("POST", {"a": "x y*~", "B": "中"})
    assert signed == "POST&%2F&B%3D%25E4%25B8%25AD%26a%3Dx%2520y%252A~"


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", True),  # flow control: later
        ("isv.DAY_LIMIT_CONTROL", True),
        ("isv.AMOUNT_NOT_ENOUGH", True),  # top up and it goes
        ("isp.SYSTEM_ERROR", True),
        ("isv.MOBILE_NUMBER_ILLEGAL", False),  # no retry changes the number
        ("isv.SMS_TEMPLATE_ILLEGAL", False),
        ("SignatureDoesNotMatch", False),
        ("isp.RAM_PERMISSION_DENY", False),
        ("isv.SOMETHING_NEW", False),
    ],
)
def test_gateway_codes_are_transient_or_permanent(code, transient):
    outcome = outcome_of(code, "message")
    assert (outcome.delivered, outcome.transient) == (False, transient)
    assert outcome.details == {"code": code} and code in outcome.error


def texts():
    return [(p.parent.name, p.stem) for p in sorted(SMS_DIR.glob("*/*.txt"))]


def test_every_registered_text_exists_in_both_languages_with_known_values():
    names = {name for _, name in texts()}
    assert names == {"appointment_booked", "appointment_cancelled", "appointment_reminder"}
    for locale in LOCALES:
        for name in names:
            text = (SMS_DIR / locale / f"{name}.txt").read_text(encoding="utf-8")
            assert set(PLACEHOLDER.findall(text)) == {"time", "place"}, (locale, name)
            assert "【" not in text  # the gateway puts the signature in front


LONGEST = {
    "starts_at": "2026-12-03 14:00",
    "ends_at": "15:00",
    "location": "长宁区海归创业服务站仙霞路 99 号尚嘉中心 2 楼 201 室（近娄山关路地铁站 4 号口）",
}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    ("template", "change"),
    [("appointment_confirmation", "booked"), ("appointment_confirmation", "cancelled"),
     ("appointment_reminder", None)],
)  # fmt: skip
@pytest.mark.parametrize("max_parts", [1, 2])
def test_every_sms_fits_the_carriers_length_with_the_longest_signature(
    locale, template, change, max_parts
):
    signature_name = "长宁区海归创业服务平台官方"[:12]  # the longest a signature may be
    sms = compose(template, locale, {**LONGEST, "change": change}, signature_name, max_parts)
    assert all(len(v) <= MAX_VALUE for v in sms.params.values())
    assert sms.params["time"] == "2026-12-03 14:00-15:00"  # the time is never cut
    if max_parts == 2:
        assert parts(sms.text, signature_name) <= 2
    else:
        assert sms.params["place"].endswith("…")  # cut as far as it goes for one message
    assert re.search(r"\$\{", sms.text) is None


def test_a_short_sms_is_one_message_and_a_long_one_counted_in_parts_of_67():
    assert parts("x" * 60, "12345678") == 1  # 60 + 10 = 70
    assert parts("x" * 61, "12345678") == 2
    assert parts("x" * 125, "12345678") == 3  # 135 > 134
    assert compose("welcome", "zh-CN", {}, "签名", 2) is None  # no SMS for it


def test_messenger_texts_are_cut_on_a_character_boundary_within_their_limit():
    text = "咨询已超时" * 1000
    cut = fit(text, 4096)
    assert len(cut.encode("utf-8")) <= 4096 and cut.endswith("…")
    assert cut[:-1] == text[: len(cut) - 1]
    assert fit("short", 4096) == "short"


NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def test_a_quota_allows_sends_until_a_window_is_full_then_names_when():
    per_minute = RateLimit.parse_all("2/60, 3/3600")
    assert per_minute == (RateLimit(2, 60.0), RateLimit(3, 3600.0))
    assert next_slot(per_minute, [], NOW) is None
    one = [NOW - timedelta(seconds=30)]
    assert next_slot(per_minute, one, NOW) is None
    two = [*one, NOW - timedelta(seconds=10)]
    assert next_slot(per_minute, two, NOW) == NOW + timedelta(seconds=30)
    three_in_the_hour = [NOW - timedelta(minutes=50), NOW - timedelta(minutes=5), NOW]
    assert next_slot(per_minute, three_in_the_hour, NOW) == NOW + timedelta(minutes=10)
    assert next_slot(per_minute, [NOW - timedelta(seconds=60)] * 2, NOW) is None  # left it


def test_a_phone_number_is_kept_in_the_ledger_of_sends_only_as_a_hash():
    key = rate_key("sms", "r1", "13800138000")
    assert key.startswith("sms:") and "13800138000" not in key
    assert key == rate_key("sms", "other", "13800138000")  # the number is what counts
    assert rate_key("wecom", "r1", "wecom") == "wecom:r1"


def test_settings_refuse_an_unknown_gateway_and_a_signature_outside_the_rules():
    assert NotifySettings.load(DECLARED).unavailable("appointment_reminder", "zh-CN", {}) == {
        "sms": "no SMS gateway configured"
    }
    with pytest.raises(ValueError, match="SMS_GATEWAY"):
        NotifySettings.load({**DECLARED, "SMS_GATEWAY": "log"})
    with pytest.raises(ValueError, match="2 to 12"):
        NotifySettings.load({**DECLARED, "ALIYUN_SMS_SIGN_NAME": "长宁区海归创业服务平台官方号"})


def test_mainland_numbers_are_given_to_the_gateway_as_their_eleven_digits():
    from services.notify.sms import mainland_number

    assert mainland_number("+86 138 0013 8000") == "13800138000"
    assert mainland_number("0086-138-0013-8000") == "13800138000"
    assert mainland_number("13800138000") == "13800138000"
    assert mainland_number("+1 415 555 0100") is None  # abroad: no domestic text reaches it
    assert mainland_number("") is None


def test_a_refusal_quoting_the_address_is_logged_without_it(caplog):
    import logging

    from services.notify.channels import Mail, _report_malformed

    mail = Mail("qian.duoduo@example.com", b"", "n-9")
    with caplog.at_level(logging.ERROR, logger="services.notify.channels"):
        _report_malformed(mail, 501, "5.1.3 Bad recipient address syntax <qian.duoduo@example.com>")
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("notification n-9: ") and "<recipient>" in line
    assert "qian.duoduo" not in line
