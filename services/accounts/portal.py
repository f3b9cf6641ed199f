"""`self.portal`: the address of the portal the emailed links lead to (`PORTAL_URL`)."""

from nameko.extensions import DependencyProvider

from chassis.settings import service_settings
from services.accounts.settings import DECLARED


class Portal(DependencyProvider):
    def setup(self):
        self.url = service_settings("accounts", DECLARED, self.container.config)["PORTAL_URL"]

    def get_dependency(self, worker_ctx):
        return self.url
