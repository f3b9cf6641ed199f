"""notify's own settings (beyond the chassis'), read with `chassis.settings.service_settings`."""

from dataclasses import dataclass
from datetime import timedelta

from chassis.settings import service_settings
from services.notify.channels import SmtpSettings
from services.notify.domain import RetryPolicy

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
    "DELIVERY_BATCH_SIZE": "100",
    "DELIVERY_CONCURRENCY": "8",
    "DELIVERY_LEASE_SECONDS": "120",
    "DELIVERY_MAX_ATTEMPTS": "6",
    "DELIVERY_BASE_DELAY_SECONDS": "5",
    "DELIVERY_MAX_DELAY_SECONDS": "900",
    "DIGEST_WINDOW_SECONDS": "300",
    "WEBHOOK_TIMEOUT_SECONDS": "10",
    "WEBHOOK_MAX_FAILURES": "20",
    "SMS_ADAPTER": "log",
    "APPOINTMENT_REMINDER_HOURS": "24",
    "APPOINTMENT_REMINDER_INTERVAL_SECONDS": "5",
}


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
    sms_adapter: str
    reminder_lead: timedelta

    @classmethod
    def load(cls, config: dict | None = None) -> "NotifySettings":
        """From the container config when it names a setting (tests do), else the environment:
        `NOTIFY_<NAME>`, then `<NAME>`, then the default."""
        value = service_settings("notify", DECLARED, config)
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
            webhook_timeout=float(value["WEBHOOK_TIMEOUT_SECONDS"]),
            webhook_max_failures=int(value["WEBHOOK_MAX_FAILURES"]),
            sms_adapter=value["SMS_ADAPTER"],
            reminder_lead=timedelta(hours=float(value["APPOINTMENT_REMINDER_HOURS"])),
        )
