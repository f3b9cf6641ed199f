"""`self.settings`: what accounts' use cases read of its settings, read once at start."""

from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from chassis.settings import service_settings
from services.accounts.credentials import REGISTRATIONS_PER_ADDRESS, Throttle
from services.accounts.settings import DECLARED


@dataclass(frozen=True)
class AccountsSettings:
    portal_url: str  # where the emailed links lead
    registrations: Throttle  # per client address

    @classmethod
    def load(cls, config: dict | None = None) -> "AccountsSettings":
        values = service_settings("accounts", DECLARED, config)
        limit = int(values["REGISTRATIONS_PER_HOUR"])
        return cls(
            portal_url=values["PORTAL_URL"],
            registrations=Throttle(REGISTRATIONS_PER_ADDRESS.name, limit, 60 * 60),
        )


class Settings(DependencyProvider):
    def setup(self):
        self.settings = AccountsSettings.load(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings
