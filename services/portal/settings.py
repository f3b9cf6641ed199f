"""The portal's own settings (beyond the chassis'), read with `service_settings`.

The portal keeps nobody's data: it reaches each service over its public HTTP API at the URL
below (`PORTAL_ACCOUNTS_URL` or `ACCOUNTS_URL`, ...), with the signed-in person's token.
"""

import base64
import hashlib
from dataclasses import dataclass

from chassis.secrets import secret_refusal
from chassis.settings import PORTS, SettingError, http_port, service_settings

# The services the portal calls (a page says which one is away when one is).
UPSTREAMS = ("accounts", "consulting", "matching", "notify", "activities", "insights")
FALLBACK_PORTS = {"activities": 8005}  # a service chassis.settings does not list yet

DECLARED = {
    **{f"{s.upper()}_URL": "" for s in UPSTREAMS},  # empty: 127.0.0.1 on the service's port
    # Encrypts and signs the session cookie (which holds the person's tokens). Required in
    # production; a development secret otherwise.
    "SESSION_SECRET": "",
    "SESSION_DAYS": "14",
    # production: cookies are Secure (HTTPS only) and a missing SESSION_SECRET stops the start.
    "PLATFORM_ENV": "production",
    "UPSTREAM_TIMEOUT_SECONDS": "10",
}

DEVELOPMENT_SESSION_SECRET = "development-only-portal-secret-set-PORTAL_SESSION_SECRET"


class UnsafeSettings(RuntimeError):
    pass


def unsafe(values: dict) -> list[SettingError]:
    """What a production start refuses (`chassis.secrets`): a session secret that is missing, a
    placeholder, the development one, or too short to be a secret."""
    secret = values["SESSION_SECRET"]
    refusal = secret_refusal("SESSION_SECRET", secret, (DEVELOPMENT_SESSION_SECRET,))
    if refusal is None and len(secret) < 32:
        refusal = SettingError("SESSION_SECRET", "is too weak: use 32 random characters or more")
    return [refusal] if refusal else []


@dataclass(frozen=True)
class PortalSettings:
    urls: dict[str, str]
    session_key: bytes  # a Fernet key
    session_seconds: int
    secure_cookies: bool
    timeout: float

    @classmethod
    def from_config(cls, config=None) -> "PortalSettings":
        values = service_settings("portal", DECLARED, config)
        production = values["PLATFORM_ENV"] != "development"
        secret = values["SESSION_SECRET"]
        if not secret:
            if production:
                raise UnsafeSettings("PORTAL_SESSION_SECRET must be set in production.")
            secret = DEVELOPMENT_SESSION_SECRET
        key = base64.urlsafe_b64encode(hashlib.sha256(f"portal-session:{secret}".encode()).digest())
        urls = {
            s: (
                values[f"{s.upper()}_URL"]
                or f"http://127.0.0.1:{http_port(s) if s in PORTS else FALLBACK_PORTS[s]}"
            ).rstrip("/")
            for s in UPSTREAMS
        }
        return cls(
            urls=urls,
            session_key=key,
            session_seconds=int(float(values["SESSION_DAYS"]) * 86400),
            secure_cookies=production,
            timeout=float(values["UPSTREAM_TIMEOUT_SECONDS"]),
        )
