"""Passwords, refresh tokens, single-use links and throttling. No I/O but the hashing thread.

Passwords are hashed with Argon2id at the OWASP minimum (19 MiB, 2 passes, 1 lane): a hash costs
tens of milliseconds of CPU, so it runs in a native thread (`eventlet.tpool`) and the process
keeps serving other requests meanwhile. Refresh tokens and the tokens of emailed links are 256
random bits, stored as their SHA-256 only: a leaked table opens no account.
"""

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool

_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the email is unknown, so both cases take the same time.
_UNKNOWN_ACCOUNT_HASH = _hasher.hash("no account has this password")


def hash_password(password: str) -> str:
    return tpool.execute(_hasher.hash, password)


def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        matched = tpool.execute(_hasher.verify, password_hash or _UNKNOWN_ACCOUNT_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


def new_secret() -> tuple[str, bytes]:
    """A token to hand out, and the digest it is stored (and looked up) as."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


REFRESH_TOKEN_LIFETIME = timedelta(days=14)
# Single-use links emailed to an account's own address, by purpose.
LINK_LIFETIMES = {
    "verify_email": timedelta(days=7),
    "reset_password": timedelta(hours=1),
    "set_password": timedelta(days=7),
}
LINK_PATHS = {
    "verify_email": "/verify-email",
    "reset_password": "/reset-password",
    "set_password": "/set-password",
}


def link(portal_url: str, purpose: str, token: str) -> str:
    """`<PORTAL_URL>/verify-email?token=<token>` and the like: the portal page that posts the
    token back to accounts."""
    return f"{portal_url.rstrip('/')}{LINK_PATHS[purpose]}?token={token}"


@dataclass(frozen=True)
class Throttle:
    """At most `limit` attempts per key within `window_seconds`."""

    name: str
    limit: int
    window_seconds: int

    def key(self, *parts: str) -> str:
        """What the attempts are counted under: a digest, so the table holds no email or
        address of anyone."""
        return hashlib.sha256("|".join((self.name, *parts)).encode()).hexdigest()

    def blocked(self, recent: int) -> bool:
        return recent >= self.limit

    def window_start(self, now: datetime) -> datetime:
        """Attempts after this time count."""
        return now - timedelta(seconds=self.window_seconds)

    def retry_after(self, oldest: datetime, now: datetime) -> int:
        """Seconds until the oldest counted attempt leaves the window."""
        left = (oldest + timedelta(seconds=self.window_seconds) - now).total_seconds()
        return max(1, math.ceil(left))


# Failed sign-ins of one account from one client address: another address is never blocked by
# them, so nobody can lock anyone out. An address guessing across accounts is stopped by the
# second throttle.
SIGN_IN_PER_ACCOUNT_AND_ADDRESS = Throttle("sign-in", limit=5, window_seconds=15 * 60)
SIGN_IN_PER_ADDRESS = Throttle("sign-in-address", limit=20, window_seconds=15 * 60)
REGISTRATIONS_PER_ADDRESS = Throttle("registration", limit=20, window_seconds=60 * 60)
RESET_REQUESTS_PER_ADDRESS = Throttle("password-reset", limit=5, window_seconds=15 * 60)
