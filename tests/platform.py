"""The whole platform for end-to-end and chaos tests: every service as its own process, on the
test's vhost, fresh migrated and seeded databases, free ports, and a real SMTP sink. The web
fronts (the portal) are there too, started on demand: `platform.start("portal")`."""

import copy
import os
import re
import subprocess
import sys
import time
import uuid

import requests
from kombu import Connection

from chassis.settings import FRONTS, SERVICES, nameko_config
from chassis.topology import declare_service
from contracts.examples import EXAMPLES
from tests.support import ROOT, ServiceProcess, free_port, wait_until

ADMIN = ("admin@station.example", "Station-admin-2026")
STAFF_PASSWORD = "Station-staff-2026"  # deploy/reference/organizations.yml
PASSWORD = "Returnee2026!"


def registration(locale="zh-CN", **changes) -> dict:
    body = copy.deepcopy(EXAMPLES[("returnee.registered", 1)].data)
    body.pop("returnee_id")
    body.update(
        email=f"returnee.{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD, locale=locale
    )
    body.update(changes)
    return body


class Platform:
    def __init__(self, amqp_uri: str, databases, smtp_sink):
        self.amqp_uri = amqp_uri
        self.smtp = smtp_sink
        self.database_urls = {s: databases.create(s) for s in SERVICES}
        self.ports = {s: free_port() for s in (*SERVICES, *FRONTS)}
        # The emailed links lead to this platform's portal.
        self.portal_url = f"http://127.0.0.1:{self.ports['portal']}"
        self.env = {
            "PLATFORM_ENV": "development",
            "ACCOUNTS_PORTAL_URL": self.portal_url,
            # The chaos tests register a thousand returnees from this one address.
            "ACCOUNTS_REGISTRATIONS_PER_HOUR": "100000",
            "ADMIN_EMAIL": ADMIN[0],
            "ADMIN_PASSWORD": ADMIN[1],
            "NOTIFY_SMTP_HOST": smtp_sink.host,
            "NOTIFY_SMTP_PORT": str(smtp_sink.port),
            "NOTIFY_DELIVERY_INTERVAL_SECONDS": "0.2",
            "NOTIFY_DIGEST_WINDOW_SECONDS": "0",
            "SHUTDOWN_TIMEOUT_SECONDS": "10",
        }
        for service in SERVICES:
            prefix = service.upper()
            self.env[f"{prefix}_AMQP_URI"] = amqp_uri
            self.env[f"{prefix}_DATABASE_URL"] = self.database_urls[service]
            self.env[f"{prefix}_HTTP_PORT"] = str(self.ports[service])
        self.env.update(self.portal_environment())
        self.processes = {s: ServiceProcess(s, self.env) for s in (*SERVICES, *FRONTS)}
        self._prepare()

    def _prepare(self) -> None:
        """What the deploy steps do: topology first, then reference data."""
        from chassis.loader import service_class

        with Connection(self.amqp_uri) as connection:
            for service in SERVICES:
                declare_service(
                    connection.default_channel, service_class(service), nameko_config(service)
                )
        for service in SERVICES:
            if (ROOT / "services" / service / "seed.py").exists():
                subprocess.run(
                    [sys.executable, "-m", f"services.{service}.seed"],
                    cwd=ROOT,
                    env={**os.environ, **self.env},
                    check=True,
                    capture_output=True,
                )

    def portal_environment(self, **down) -> dict:
        """The portal's variables: each service it calls at this platform's port; a service
        named in `down` (`consulting=True`) at a port where nothing answers."""
        from services.portal.settings import UPSTREAMS

        env = {"PORTAL_HTTP_PORT": str(self.ports["portal"])}
        for service in UPSTREAMS:
            port = self.ports.get(service) if not down.get(service) else None
            env[f"PORTAL_{service.upper()}_URL"] = f"http://127.0.0.1:{port or free_port()}"
        return env

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def ready(self, service: str) -> bool:
        try:
            return requests.get(f"{self.url(service)}/health/ready", timeout=5).ok
        except requests.RequestException:
            return False

    def start(self, *services: str) -> "Platform":
        for service in services or SERVICES:
            self.processes[service].start()
        for service in services or SERVICES:
            wait_until(lambda s=service: self.ready(s), 60, 0.2, f"{service} ready")
        return self

    def kill(self, service: str) -> None:
        self.processes[service].signal(9)
        self.processes[service].wait()

    def stop(self) -> None:
        """Every process asked to stop at once, then each waited for: they drain together."""
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.stop()

    def output(self, service: str) -> str:
        return self.processes[service].output()

    # -- as a client ---------------------------------------------------------------------

    def call(self, method, service, path, headers=None, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.url(service)}{path}", headers=headers, timeout=30, **kwargs
        )

    def every(self, service, path, headers=None, params=None) -> list:
        """Every page of a paged list (chassis.paging), following `X-Next-Cursor`."""
        found, query = [], {**(params or {}), "limit": 100}
        while True:
            response = self.call("GET", service, path, headers, params=query)
            assert response.status_code == 200, response.text
            found.extend(response.json())
            cursor = response.headers.get("X-Next-Cursor")
            if not cursor:
                return found
            query = {**query, "cursor": cursor}

    def settled_inbox(self, returnee_id: str, headers: dict, quiet: float = 2.5,
                      timeout: float = 30) -> list:  # fmt: skip
        """The returnee's in-app notifications once no new one came for `quiet` seconds: the
        notices that follow a registration (matches, eligibility, invitations) come from
        background subscribers, in batches up to `BACKGROUND_BATCH_LINGER_MS` later, each."""
        params = {"recipient_id": returnee_id, "channel": "in_app"}
        deadline = time.monotonic() + timeout
        seen, since = None, time.monotonic()
        while time.monotonic() < deadline:
            inbox = self.every("notify", "/notifications", headers, params)
            if len(inbox) != seen:
                seen, since = len(inbox), time.monotonic()
            elif inbox and time.monotonic() - since >= quiet:
                return inbox
            time.sleep(0.25)
        raise AssertionError(f"the inbox of {returnee_id} did not settle in {timeout} s")

    def token(self, email: str, password: str) -> dict:
        headers = self._try_token(email, password)
        assert headers is not None, f"{email} cannot sign in"
        return headers

    def admin(self) -> dict:
        return wait_until(lambda: self._try_token(*ADMIN), 30, 0.2, "the admin account")

    def _try_token(self, email, password):
        credentials = {"email": email, "password": password}
        response = self.call("POST", "accounts", "/auth/token", json=credentials)
        if response.status_code == 200:
            return {"Authorization": f"Bearer {response.json()['access_token']}"}
        return None

    def register(self, **changes) -> tuple[dict, dict, dict]:
        """A new returnee: (profile as accounts answered, their token headers, the body sent)."""
        body = registration(**changes)
        response = self.call("POST", "accounts", "/returnees", json=body)
        assert response.status_code == 201, response.text
        return response.json(), self.token(body["email"], PASSWORD), body

    def invite(self, admin: dict, password: str, **staff) -> tuple[dict, dict]:
        """A staff member the admin invites (`POST /staff` takes no password), who sets
        `password` through the emailed link: (the account as accounts answered, token headers)."""
        created = self.call("POST", "accounts", "/staff", admin, json=staff)
        assert created.status_code == 201, created.text
        token = self.link_token(staff["email"], "/set-password")
        confirmed = self.call("POST", "accounts", "/auth/password-reset/confirm",
                              json={"token": token, "password": password})  # fmt: skip
        assert confirmed.status_code == 204, confirmed.text
        return created.json(), self.token(staff["email"], password)

    def link_token(self, address: str, page: str, seen: int = 0, timeout: float = 30) -> str:
        """The token of the link to `<PORTAL_URL><page>` in an email to `address` that the SMTP
        server received, past the first `seen` such emails."""

        def found():
            tokens = [
                m.group(1)
                for mail in self.smtp.to(address)
                for m in re.finditer(
                    rf"{re.escape(self.portal_url + page)}\?token=([\w-]+)",
                    mail.get_body(("plain",)).get_content(),
                )
            ]
            return tokens[seen] if len(tokens) > seen else None

        return wait_until(found, timeout, 0.1, f"an email to {address} with a {page} link")
