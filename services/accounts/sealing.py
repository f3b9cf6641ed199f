"""Sensitive fields sealed at rest with AES-256-GCM under a key from the environment.

`ACCOUNTS_DATA_KEY` (or `DATA_KEY`) holds 32 random bytes, base64: generate one with
`python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"`. The account id
is bound to each sealed value as associated data, so a value copied to another row does not open.
"""

import base64
import logging
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nameko.extensions import DependencyProvider

from chassis.settings import service_settings
from services.accounts.settings import DECLARED

log = logging.getLogger(__name__)

# Only when no key is configured, so a development run works; never in production.
_DEVELOPMENT_KEY = base64.b64encode(b"development-only-key-32-bytes!!!").decode()


class Sealer:
    def __init__(self, key_b64: str):
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("the data key must be 32 bytes, base64-encoded")
        self._aead = AESGCM(key)

    @classmethod
    def from_environment(cls) -> "Sealer":
        key = service_settings("accounts", DECLARED)["DATA_KEY"]
        if not key:
            log.warning("ACCOUNTS_DATA_KEY is not set: sealing with the development key")
            key = _DEVELOPMENT_KEY
        return cls(key)

    def seal(self, plaintext: str, bound_to: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> str:
        sealed = bytes(sealed)
        return self._aead.decrypt(sealed[:12], sealed[12:], bound_to.encode()).decode()


class Sealing(DependencyProvider):
    """`self.sealer` in accounts' workers, keyed from the environment at start."""

    def setup(self):
        self.sealer = Sealer.from_environment()

    def get_dependency(self, worker_ctx):
        return self.sealer
