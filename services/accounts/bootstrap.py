"""The first admin: created at start from ADMIN_EMAIL / ADMIN_PASSWORD when absent."""

import logging

import eventlet
from nameko.extensions import DependencyProvider

from chassis.db import Database, ScriptDatabase
from chassis.pool import DatabaseUnavailable
from chassis.settings import service_settings
from chassis.web import Conflict
from services.accounts.settings import DECLARED

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
        from services.accounts.credentials import hash_password
        from services.accounts.profile import normalize_email
        from services.accounts.service import register_staff
        from services.accounts.store import account_exists

        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        unit = ScriptDatabase(database.pool, self.container.service_name)
        email = normalize_email(email)
        for attempt in range(60):
            try:
                with unit.transaction() as tx:
                    if account_exists(tx, email):
                        return
                admin = {"email": email, "name": "Administrator", "role": "admin"}
                register_staff(unit, admin, hash_password(password))
                log.info("created the admin account %s", email)
                return
            except Conflict:
                return
            except (DatabaseUnavailable, ConnectionError) as exc:
                log.warning("admin bootstrap waits for the database: %s", exc)
                eventlet.sleep(min(2**attempt, 10))
