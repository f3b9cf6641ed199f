"""notify's own nameko dependencies: its settings, and the channels that take messages out."""

from datetime import datetime

import requests
from nameko.extensions import DependencyProvider

from chassis.clock import SHANGHAI, Clock, clock_from_config
from services.notify.aliyun_sms import AliyunSms
from services.notify.channels import SmtpMailer, WebhookPoster
from services.notify.domain import MESSENGERS, DeliveryOutcome
from services.notify.messengers import messengers
from services.notify.settings import NotifySettings
from services.notify.sms import compose, mainland_number

NO_GATEWAY = "no SMS gateway configured"


class Outlets:
    """The channels, built from the settings, each sending one notification row."""

    def __init__(self, settings: NotifySettings, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or Clock()
        self.mailer = SmtpMailer(settings.smtp, keep=settings.concurrency)
        self.webhooks = WebhookPoster(
            settings.webhook_timeout,
            allowed=settings.webhook_allowed_networks,
            allow_loopback=settings.development,
            total_seconds=settings.webhook_total_seconds,
            max_response_bytes=settings.webhook_max_response_bytes,
        )
        self.gateway = None
        if settings.sms_gateway == "aliyun" and settings.aliyun_sms.configured:
            self.gateway = AliyunSms(settings.aliyun_sms)
        # The work messengers' own session: their URLs are the operators' settings, not a
        # subscriber's, and need no destination check.
        self.messengers = messengers(settings.messengers, requests.Session())
        self._senders = {"email": self._email, "sms": self._sms, "webhook": self._webhook}
        self._senders.update(dict.fromkeys(MESSENGERS, self._messenger))

    def send(self, row: dict, target: dict | None = None) -> DeliveryOutcome:
        """One attempt at the row; a webhook's goes to `target`, its subscription, and a
        messenger's to its destination (`None`: the recipient has none any more)."""
        sender = self._senders.get(row["channel"])
        if sender is None:
            return DeliveryOutcome(
                False, transient=False, error=f"unknown channel {row['channel']}"
            )
        return sender(row, target)

    def receipt(self, row: dict) -> DeliveryOutcome:
        """Whether an SMS the gateway accepted reached the phone: delivered, failed, or
        transient (no receipt yet)."""
        if self.gateway is None:
            return DeliveryOutcome(False, transient=True, error=NO_GATEWAY)
        sent_on = row["accepted_at"].astimezone(SHANGHAI).strftime("%Y%m%d")
        phone = mainland_number(row["address"]) or row["address"]
        return self.gateway.receipt(phone, row["provider_ref"], sent_on, self._now())

    def _now(self) -> datetime:
        return self.clock.now()

    def _email(self, row: dict, subscription) -> DeliveryOutcome:
        message = self.mailer.message(
            to=row["address"],
            name=row["context"].get("recipient_name", ""),
            subject=row["subject"],
            text=row["body"],
            html=row["html"],
            notification_id=str(row["id"]),
        )
        return self.mailer.send(message)

    def _sms(self, row: dict, target) -> DeliveryOutcome:
        if self.gateway is None:
            return DeliveryOutcome(False, suppressed=NO_GATEWAY)
        s = self.settings
        unavailable = s.unavailable(row["template"], row["locale"], row["context"])
        if "sms" in unavailable:
            return DeliveryOutcome(False, suppressed=unavailable["sms"])
        locale = s.sms_locale(row["template"], row["locale"], row["context"])
        sms = compose(row["template"], locale, row["context"], s.aliyun_sms.sign_name,
                      s.sms_max_parts)  # fmt: skip
        _, code = s.aliyun_sms.registered(sms.name, sms.locale)
        phone = mainland_number(row["address"])
        if phone is None:
            return DeliveryOutcome(False, suppressed="not a mainland China mobile number")
        return self.gateway.send(phone, code, sms.params, str(row["id"]), self._now())

    def _messenger(self, row: dict, destination: dict) -> DeliveryOutcome:
        messenger = self.messengers[row["channel"]]
        return messenger.send(destination, row["subject"], row["body"])

    def _webhook(self, row: dict, subscription: dict) -> DeliveryOutcome:
        return self.webhooks.post(
            subscription["url"],
            subscription["secret"],
            row["body"].encode("utf-8"),  # the producer's bytes, kept as UTF-8 text
            event_id=str(row["event_id"]),
            event_type=row["event_type"],
            delivery_id=str(row["id"]),
        )

    def close(self) -> None:
        self.mailer.close()
        self.webhooks.session.close()
        if self.gateway is not None:
            self.gateway.close()


class Channels(DependencyProvider):
    """`self.channels`: the service's `Outlets`, built once per container."""

    def setup(self):
        config = self.container.config
        self.outlets = Outlets(NotifySettings.load(config), clock_from_config(config))

    def stop(self):
        self.outlets.close()

    def kill(self):
        self.outlets.close()

    def get_dependency(self, worker_ctx):
        return self.outlets


class Settings(DependencyProvider):
    """`self.settings`: the container's `NotifySettings`, read once at setup."""

    def setup(self):
        self.settings = NotifySettings.load(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings
