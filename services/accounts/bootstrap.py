"""The first admin: created at start from ADMIN_EMAIL / ADMIN_PASSWORD when absent, with the
address taken as confirmed (whoever deploys the platform wrote it). In production the password
has passed the password policy before the service started (`settings.unsafe`)."""

import logging

import eventlet
from nameko.extensions import DependencyProvider

from chassis.db import Database, ScriptDatabase
from chassis.errors import Conflict
from chassis.pool import DatabaseUnavailable
from chassis.settings import service_settings
from services.accounts import handlers
from services.accounts.credentials import hash_password
from services.accounts.settings import DECLARED
from services.accounts.store import AccountsStore

log = logging.getLogger(__name__)


class AdminBootstrap(DependencyProvider):
    """Creates the configured admin once the database answers; safe with several replicas (the
    email is unique, so a second replica's attempt conflicts and is ignored)."""

    def start(self):
        settings = service_settings("accounts", DECLARED)
        email, password = settings["ADMIN_EMAIL"], settings["ADMIN_PASSWORD"]
        if email and password:
            self.container.spawn_managed_thread(lambda: self._ensure(email, password))

    def _ensure(self, email: str, password: str) -> None:
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        unit = ScriptDatabase(
            database.pool, self.container.service_name, store=AccountsStore, clock=database.clock
        )
        admin = {"email": email, "name": "Administrator", "role": "admin"}
        password_hash = hash_password(password)
        for attempt in range(60):
            try:
                with unit.unit_of_work() as uow:
                    created = handlers.register_staff(admin, uow, password_hash=password_hash)
                log.info("created the admin account %s", created["email"])
                return
            except Conflict:  # it exists
                return
            except (DatabaseUnavailable, ConnectionError) as exc:
                log.warning("admin bootstrap waits for the database: %s", exc)
                eventlet.sleep(min(2**attempt, 10))
