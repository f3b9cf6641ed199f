"""Passwords and sign-in throttling.

Passwords are hashed with Argon2id at the OWASP minimum (19 MiB, 2 passes, 1 lane): a hash costs
tens of milliseconds of CPU, so it runs in a native thread (`eventlet.tpool`) and the process
keeps serving other requests meanwhile.
"""

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


@dataclass(frozen=True)
class Throttle:
    """At most `limit` failed sign-ins per key within `window_seconds`."""

    limit: int
    window_seconds: int

    def blocked(self, recent_failures: int) -> bool:
        return recent_failures >= self.limit

    def window_start(self, now: datetime) -> datetime:
        """Failures after this time count."""
        return now - timedelta(seconds=self.window_seconds)


PER_EMAIL = Throttle(limit=5, window_seconds=15 * 60)
PER_ADDRESS = Throttle(limit=20, window_seconds=15 * 60)
