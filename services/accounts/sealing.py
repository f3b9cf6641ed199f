"""Sensitive fields sealed at rest with AES-256-GCM under a key from the environment.

`ACCOUNTS_DATA_KEY` (or `DATA_KEY`) holds 32 random bytes, base64: generate one with
`python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"`. The account id
is bound to each sealed value as associated data, so a value copied to another row does not open.

Each sealed value is stored with the id of the key that sealed it (`key_id`: the first 16 hex
digits of the key's SHA-256, which names the key without revealing it). To change the key, put
the new one in `DATA_KEY` and the old one in `DATA_KEYS_PREVIOUS` (comma separated), restart,
and run `python -m services.accounts.reseal`: every value sealed under another key (or before
key ids were recorded) is opened and sealed again under the current one, in batches; then the
old key can be dropped.
"""

import base64
import hashlib
import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nameko.extensions import DependencyProvider

from chassis.settings import SettingError, development, service_settings
from services.accounts.settings import DECLARED, DEVELOPMENT_DATA_KEY

log = logging.getLogger(__name__)


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def _key(key_b64: str) -> bytes:
    key = base64.b64decode(key_b64)
    if len(key) != 32:
        raise ValueError("the data key must be 32 bytes, base64-encoded")
    return key


class Sealer:
    def __init__(self, key_b64: str, previous: tuple[str, ...] = ()):
        current = _key(key_b64)
        self.key_id = key_id(current)
        self._aeads = {self.key_id: AESGCM(current)}
        for old in previous:
            key = _key(old)
            self._aeads.setdefault(key_id(key), AESGCM(key))

    @classmethod
    def from_environment(cls) -> "Sealer":
        values = service_settings("accounts", DECLARED)
        key = values["DATA_KEY"]
        if not key:
            if not development():
                raise SettingError("DATA_KEY", "is missing")
            log.warning("ACCOUNTS_DATA_KEY is not set: sealing with the development key")
            key = DEVELOPMENT_DATA_KEY
        previous = tuple(k for k in values["DATA_KEYS_PREVIOUS"].replace(",", " ").split() if k)
        return cls(key, previous)

    def seal(self, plaintext: str, bound_to: str) -> bytes:
        """Sealed under the current key (`self.key_id`)."""
        nonce = os.urandom(12)
        aead = self._aeads[self.key_id]
        return nonce + aead.encrypt(nonce, plaintext.encode(), bound_to.encode())

    def open(self, sealed: bytes, bound_to: str, sealed_with: str | None = None) -> str:
        """Opened with the key `sealed_with` names; a value from before key ids were recorded
        (None) with whichever known key opens it."""
        sealed = bytes(sealed)
        if sealed_with is not None:
            if sealed_with not in self._aeads:
                raise KeyError(f"no key {sealed_with} (DATA_KEY, DATA_KEYS_PREVIOUS)")
            candidates = [self._aeads[sealed_with]]
        else:
            candidates = list(self._aeads.values())
        for aead in candidates:
            try:
                return aead.decrypt(sealed[:12], sealed[12:], bound_to.encode()).decode()
            except InvalidTag:
                continue
        raise InvalidTag("no known key opens this value")


class Sealing(DependencyProvider):
    """`self.sealer` in accounts' workers, keyed from the environment at start."""

    def setup(self):
        self.sealer = Sealer.from_environment()

    def get_dependency(self, worker_ctx):
        return self.sealer
