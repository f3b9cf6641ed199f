"""notify's own nameko dependencies: its settings, and the channels that take messages out."""

from nameko.extensions import DependencyProvider

from services.notify.channels import SmtpMailer, WebhookPoster, sms_adapter
from services.notify.domain import DeliveryOutcome
from services.notify.settings import NotifySettings


class Outlets:
    """The channels, built from the settings, each sending one notification row."""

    def __init__(self, settings: NotifySettings):
        self.settings = settings
        self.mailer = SmtpMailer(settings.smtp, keep=settings.concurrency)
        self.webhooks = WebhookPoster(settings.webhook_timeout)
        self.sms = sms_adapter(settings.sms_adapter)
        self._senders = {"email": self._email, "sms": self._sms, "webhook": self._webhook}

    def send(self, row: dict, subscription: dict | None = None) -> DeliveryOutcome:
        """One attempt at the row; a webhook's goes to `subscription` (its recipient)."""
        sender = self._senders.get(row["channel"])
        if sender is None:
            return DeliveryOutcome(
                False, transient=False, error=f"unknown channel {row['channel']}"
            )
        return sender(row, subscription)

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

    def _sms(self, row: dict, subscription) -> DeliveryOutcome:
        return self.sms.send(row["address"], row["subject"])

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


class Channels(DependencyProvider):
    """`self.channels`: the service's `Outlets`, built once per container."""

    def setup(self):
        self.outlets = Outlets(NotifySettings.load(self.container.config))

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
