"""notify's own settings (beyond the chassis'), read with `chassis.settings.service_settings`,
and what makes them unsafe in production (`chassis.secrets`)."""

import json
from dataclasses import dataclass
from datetime import timedelta

from chassis.secrets import secret_refusal
from chassis.settings import SettingError, development, service_settings
from services.notify.aliyun_sms import AliyunSmsSettings
from services.notify.channels import SmtpSettings
from services.notify.destinations import parse_networks
from services.notify.domain import MESSENGERS, RateLimit, RetryPolicy
from services.notify.messengers import MessengerSettings
from services.notify.sms import sms_name

DECLARED = {
    "DELIVERY_INTERVAL_SECONDS": "1",
    "SMTP_HOST": "localhost",
    "SMTP_PORT": "1025",
    "SMTP_STARTTLS": "false",
    "SMTP_CA_FILE": "",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_FROM": "Changning Returnee Service Platform <noreply@returnee-platform.example.cn>",
    "SMTP_TIMEOUT_SECONDS": "10",
    # The mail relay's quota, every email of every replica together (count/seconds, comma
    # separated, e.g. 50/1): a storm (an activity announced to thousands) leaves at this pace.
    "SMTP_RATE_LIMITS": "",
    "DELIVERY_BATCH_SIZE": "100",
    "DELIVERY_CONCURRENCY": "8",
    "DELIVERY_LEASE_SECONDS": "120",
    "DELIVERY_MAX_ATTEMPTS": "6",
    "DELIVERY_BASE_DELAY_SECONDS": "5",
    "DELIVERY_MAX_DELAY_SECONDS": "900",
    "DIGEST_WINDOW_SECONDS": "300",
    "WEBHOOK_TIMEOUT_SECONDS": "10",
    "WEBHOOK_MAX_FAILURES": "20",
    # A delivery's whole attempt (connect, send, answer) and how much of the answer is read.
    "WEBHOOK_TOTAL_SECONDS": "15",
    "WEBHOOK_MAX_RESPONSE_BYTES": "65536",
    # CIDRs webhooks may reach although not public (a district's own network), comma separated.
    "WEBHOOK_ALLOWED_NETWORKS": "",
    # SMS: none until a gateway is configured (SMS is then suppressed, never pretended sent).
    "SMS_GATEWAY": "",
    "SMS_MAX_PARTS": "2",
    "SMS_RATE_LIMITS": "1/60,5/3600,50/86400",
    "SMS_RECEIPT_FIRST_CHECK_SECONDS": "10",
    "SMS_RECEIPT_TIMEOUT_SECONDS": "86400",
    "ALIYUN_SMS_ENDPOINT": "https://dysmsapi.aliyuncs.com/",
    "ALIYUN_SMS_ACCESS_KEY_ID": "",
    "ALIYUN_SMS_ACCESS_KEY_SECRET": "",
    "ALIYUN_SMS_SIGN_NAME": "",
    "ALIYUN_SMS_REGION": "cn-hangzhou",
    "ALIYUN_SMS_TEMPLATES": "{}",
    "WECOM_URL": "https://qyapi.weixin.qq.com",
    "WECOM_RATE_LIMITS": "20/60",
    "DINGTALK_URL": "https://oapi.dingtalk.com",
    "DINGTALK_RATE_LIMITS": "20/60",
    "FEISHU_URL": "https://open.feishu.cn",
    "FEISHU_RATE_LIMITS": "5/1,100/60",
    "APPOINTMENT_REMINDER_HOURS": "24",
    "APPOINTMENT_REMINDER_INTERVAL_SECONDS": "5",
    # How long before an activity its registrants are reminded (the same loop queues them).
    "ACTIVITY_REMINDER_HOURS": "24",
    # How long a settled notification (sent, failed or suppressed) is kept, then purged.
    "NOTIFICATION_RETENTION_DAYS": "180",
}


def unsafe(values: dict) -> list[SettingError]:
    """The mail relay's password (needed with a user name) and, with the Aliyun SMS gateway,
    its access key: never missing, never a placeholder."""
    aliyun = values["SMS_GATEWAY"].strip().lower() == "aliyun"
    refusals = [
        secret_refusal("SMTP_PASSWORD", values["SMTP_PASSWORD"],
                       required=bool(values["SMTP_USERNAME"])),
        secret_refusal("ALIYUN_SMS_ACCESS_KEY_ID", values["ALIYUN_SMS_ACCESS_KEY_ID"],
                       required=aliyun),
        secret_refusal("ALIYUN_SMS_ACCESS_KEY_SECRET", values["ALIYUN_SMS_ACCESS_KEY_SECRET"],
                       required=aliyun),
    ]  # fmt: skip
    return [r for r in refusals if r is not None]


@dataclass(frozen=True)
class NotifySettings:
    smtp: SmtpSettings
    retry: RetryPolicy
    batch_size: int
    concurrency: int
    lease_seconds: float
    digest_window: float
    webhook_timeout: float
    webhook_max_failures: int
    sms_gateway: str
    aliyun_sms: AliyunSmsSettings
    sms_max_parts: int
    sms_receipt_first_check: float
    sms_receipt_timeout: float
    messengers: MessengerSettings
    rate_limits: dict[str, tuple[RateLimit, ...]]
    reminder_lead: timedelta
    activity_reminder_lead: timedelta
    notification_retention_days: float = 180.0
    webhook_total_seconds: float = 15.0
    webhook_max_response_bytes: int = 65536
    webhook_allowed_networks: tuple = ()
    relay_limits: tuple[RateLimit, ...] = ()  # SMTP_RATE_LIMITS
    # Loopback destinations allowed (development mode), and http as well as https.
    development: bool = False

    def unavailable(self, template: str, locale: str, context: dict) -> dict[str, str]:
        """The channels this platform cannot send the message on, each with why: no SMS
        gateway configured, or no text registered with it for this message."""
        if self.sms_gateway != "aliyun" or not self.aliyun_sms.configured:
            return {"sms": "no SMS gateway configured"}
        if self.sms_locale(template, locale, context) is None:
            return {
                "sms": f"no SMS template registered for {sms_name(template, context) or template}"
            }
        return {}

    def sms_locale(self, template: str, locale: str, context: dict) -> str | None:
        """The language of the registered text the message goes in by SMS, if there is one."""
        name = sms_name(template, context)
        found = name and self.aliyun_sms.registered(name, locale)
        return found[0] if found else None

    @classmethod
    def load(cls, config: dict | None = None) -> "NotifySettings":
        """From the container config when it names a setting (tests do), else the environment:
        `NOTIFY_<NAME>`, then `<NAME>`, then the default."""
        value = service_settings("notify", DECLARED, config)
        gateway = value["SMS_GATEWAY"].strip().lower()
        if gateway not in ("", "aliyun"):
            raise ValueError(f"SMS_GATEWAY {gateway!r}: known gateways are 'aliyun' (or none)")
        sign_name = value["ALIYUN_SMS_SIGN_NAME"].strip()
        if sign_name and not 2 <= len(sign_name) <= 12:
            raise ValueError("ALIYUN_SMS_SIGN_NAME: a signature has 2 to 12 characters")
        timeout = float(value["WEBHOOK_TIMEOUT_SECONDS"])
        return cls(
            smtp=SmtpSettings(
                host=value["SMTP_HOST"],
                port=int(value["SMTP_PORT"]),
                sender=value["SMTP_FROM"],
                starttls=value["SMTP_STARTTLS"].lower() in ("1", "true", "yes", "on"),
                ca_file=value["SMTP_CA_FILE"] or None,
                username=value["SMTP_USERNAME"] or None,
                password=value["SMTP_PASSWORD"] or None,
                timeout=float(value["SMTP_TIMEOUT_SECONDS"]),
            ),
            retry=RetryPolicy(
                max_attempts=int(value["DELIVERY_MAX_ATTEMPTS"]),
                base_delay=float(value["DELIVERY_BASE_DELAY_SECONDS"]),
                max_delay=float(value["DELIVERY_MAX_DELAY_SECONDS"]),
            ),
            batch_size=int(value["DELIVERY_BATCH_SIZE"]),
            concurrency=int(value["DELIVERY_CONCURRENCY"]),
            lease_seconds=float(value["DELIVERY_LEASE_SECONDS"]),
            digest_window=float(value["DIGEST_WINDOW_SECONDS"]),
            webhook_timeout=timeout,
            webhook_max_failures=int(value["WEBHOOK_MAX_FAILURES"]),
            sms_gateway=gateway,
            aliyun_sms=AliyunSmsSettings(
                endpoint=value["ALIYUN_SMS_ENDPOINT"],
                access_key_id=value["ALIYUN_SMS_ACCESS_KEY_ID"],
                access_key_secret=value["ALIYUN_SMS_ACCESS_KEY_SECRET"],
                sign_name=sign_name,
                region=value["ALIYUN_SMS_REGION"],
                templates=json.loads(value["ALIYUN_SMS_TEMPLATES"] or "{}"),
                timeout=timeout,
            ),
            sms_max_parts=int(value["SMS_MAX_PARTS"]),
            sms_receipt_first_check=float(value["SMS_RECEIPT_FIRST_CHECK_SECONDS"]),
            sms_receipt_timeout=float(value["SMS_RECEIPT_TIMEOUT_SECONDS"]),
            messengers=MessengerSettings(
                wecom_url=value["WECOM_URL"].rstrip("/"),
                dingtalk_url=value["DINGTALK_URL"].rstrip("/"),
                feishu_url=value["FEISHU_URL"].rstrip("/"),
                timeout=timeout,
            ),
            rate_limits={
                channel: RateLimit.parse_all(value[f"{channel.upper()}_RATE_LIMITS"])
                for channel in ("sms", *MESSENGERS)
            },
            reminder_lead=timedelta(hours=float(value["APPOINTMENT_REMINDER_HOURS"])),
            activity_reminder_lead=timedelta(hours=float(value["ACTIVITY_REMINDER_HOURS"])),
            notification_retention_days=float(value["NOTIFICATION_RETENTION_DAYS"]),
            webhook_total_seconds=float(value["WEBHOOK_TOTAL_SECONDS"]),
            webhook_max_response_bytes=int(value["WEBHOOK_MAX_RESPONSE_BYTES"]),
            webhook_allowed_networks=parse_networks(value["WEBHOOK_ALLOWED_NETWORKS"]),
            relay_limits=RateLimit.parse_all(value["SMTP_RATE_LIMITS"]),
            development=development(),
        )
