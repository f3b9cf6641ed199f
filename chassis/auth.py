"""Bearer tokens: signed by accounts alone, verified the same way by every service.

Every `@http` entrypoint verifies the caller's token before anything else (`roles=`, `owner=`,
`auth=True`, `chassis.web`); a service needs nothing of its own for it:

    @http("GET", "/returnees/<returnee_id>/matches", roles=["advisor", "admin"],
          owner="returnee_id")
    def matches(self, request, returnee_id):
        caller = request.caller                   # verified: 401, then 403, before the body

A token is a JWT signed with an Ed25519 (EdDSA) or RSA (RS256) key, its `kid` naming the key.
Accounts holds the private keys (`JWT_PRIVATE_KEY_FILE`, and during a rollover
`JWT_PREVIOUS_KEY_FILE`, `chassis.keys`) and serves their public halves at
`/.well-known/jwks.json`; the other services hold public keys only, from that URL
(`JWT_JWKS_URL`, cached; an unknown `kid` fetches again, at most once per
`JWKS_REFETCH_SECONDS`) or from a file (`JWT_JWKS_FILE`). Refused with 401: another algorithm
than the key's (HS256 and `none` among them), an unknown `kid`, a wrong `iss` or `aud`, an
expired token, one missing `iss`, `aud`, `exp`, `iat`, `sub` or `role`, and a token issued before
its subject's credentials were revoked (`chassis.revocation`).
"""

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import eventlet
import jwt
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKError
from nameko.extensions import DependencyProvider, SharedExtension

from chassis.db import Database
from chassis.errors import Forbidden, Unauthorized, Unavailable
from chassis.keys import SigningKey, jwks, load_private_key
from chassis.revocation import POLL_SECONDS, Revocations

log = logging.getLogger(__name__)

ROLES = ("returnee", "advisor", "provider", "admin", "official")
ROLE_NAMES_ZH = {
    "returnee": "返乡创业者",
    "advisor": "顾问",
    "provider": "资源提供方",
    "admin": "管理员",
    "official": "区政府工作人员",
}
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "role"]
ACCEPTED_ALGORITHMS = ("EdDSA", "RS256")
JWKS_CACHE_SECONDS = 300
JWKS_REFETCH_SECONDS = 5  # how soon an unknown kid may fetch the key set again
PRUNE_EVERY = 300  # revocation polls between two prunings of the table


@dataclass(frozen=True)
class Caller:
    """Who is calling, as their token says."""

    id: str
    role: str
    organization_id: str | None = None

    def require(self, *roles: str) -> "Caller":
        if self.role not in roles:
            raise Forbidden(
                f"This needs the role {' or '.join(roles)}.",
                zh=f"此操作需要{'或'.join(ROLE_NAMES_ZH[role] for role in roles)}角色。",
            )
        return self

    def is_self(self, owner_id) -> bool:
        return self.role == "returnee" and self.id == str(owner_id)

    def require_self_or(self, *roles: str, owner) -> "Caller":
        """The returnee `owner` themself, or a caller with one of `roles`."""
        if self.is_self(owner) or self.role in roles:
            return self
        raise Forbidden("You may act only on your own data.", zh="您只能操作自己的数据。")


class TokenIssuer:
    """Signs access tokens: the first key signs, every key is published (a rollover's previous
    key stays verifiable until the tokens it signed have expired)."""

    def __init__(self, keys: list[SigningKey], issuer: str, audience: str, ttl_seconds: int):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    @classmethod
    def from_config(cls, config: dict) -> "TokenIssuer":
        settings = config["JWT"]
        files = [settings["private_key_file"], settings.get("previous_key_file")]
        if not files[0]:
            raise RuntimeError("JWT_PRIVATE_KEY_FILE is not set: this service cannot sign tokens")
        keys = {}
        for path in filter(None, files):  # the previous key may be the signing one (no rollover)
            key = load_private_key(path)
            keys.setdefault(key.kid, key)
        return cls(list(keys.values()), settings["issuer"], settings["audience"],
                   settings["ttl_seconds"])  # fmt: skip

    def issue(self, subject: str, role: str, organization_id: str | None = None,
              at: datetime | None = None) -> str:  # fmt: skip
        """A token for `subject`. `iat` keeps milliseconds (rounded down): a token issued right
        after its subject's credentials were revoked must not look older than the revocation,
        one issued right before must not look younger."""
        at = at or datetime.now(UTC)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(subject),
            "role": role,
            "iat": math.floor(at.timestamp() * 1000) / 1000,
            "exp": int((at + timedelta(seconds=self.ttl_seconds)).timestamp()),
        }
        if organization_id:
            claims["org"] = str(organization_id)
        key = self.keys[0]
        return jwt.encode(claims, key.private_key, algorithm=key.algorithm,
                          headers={"kid": key.kid})  # fmt: skip

    def jwks(self) -> dict:
        return jwks(self.keys)


def _usable(key: jwt.PyJWK) -> jwt.PyJWK | None:
    return key if key.algorithm_name in ACCEPTED_ALGORITHMS else None


class KeySet:
    """Public keys held in memory: the issuer's own."""

    def __init__(self, jwk_set: dict):
        self._keys = {}
        for entry in jwk_set.get("keys", []):
            try:
                key = _usable(jwt.PyJWK(entry))
            except PyJWKError:
                continue
            if key is not None and key.key_id:
                self._keys[key.key_id] = key

    def get(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)


class KeySetFile:
    """A JWK Set in a file, read again when the file changes (a mounted Secret or ConfigMap
    updated for a rollover)."""

    def __init__(self, path: str):
        self.path = path
        self._checked = 0.0
        self._loaded_mtime = None
        self._keys = KeySet({})
        self._load()

    def _load(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as exc:
            raise RuntimeError(f"JWT_JWKS_FILE {self.path} cannot be read: {exc}") from None
        if mtime != self._loaded_mtime:
            with open(self.path) as file:
                self._keys = KeySet(json.load(file))
            self._loaded_mtime = mtime

    def get(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._checked > JWKS_REFETCH_SECONDS:
            self._checked = time.monotonic()
            self._load()
            key = self._keys.get(kid)
        return key


class KeySetUrl:
    """The issuer's JWK Set over HTTP, cached (PyJWT's `PyJWKClient`)."""

    def __init__(self, url: str):
        self.client = jwt.PyJWKClient(
            url,
            cache_jwk_set=True,
            lifespan=JWKS_CACHE_SECONDS,
            cooldown_duration=JWKS_REFETCH_SECONDS,
            timeout=5,
        )

    def get(self, kid: str) -> jwt.PyJWK | None:
        try:
            return _usable(self.client.get_signing_key(kid))
        except PyJWKClientConnectionError as exc:
            log.warning("the token keys cannot be fetched: %s", exc)
            raise Unavailable() from None
        except PyJWKClientError as exc:
            if "Unable to find a signing key" in str(exc):
                return None
            log.warning("the token keys are unusable: %s", exc)
            raise Unavailable() from None
        except PyJWKError as exc:
            log.warning("the token keys are unusable: %s", exc)
            raise Unavailable() from None


def _invalid(reason: str) -> Unauthorized:
    return Unauthorized(
        f"The token is not valid: {reason}", code="invalid_token", zh=f"访问令牌无效：{reason}"
    )


class TokenVerifier:
    def __init__(self, keys, issuer: str, audience: str, revocations: Revocations | None = None):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.revocations = revocations or Revocations()

    @classmethod
    def from_config(cls, config: dict, revocations: Revocations | None = None) -> "TokenVerifier":
        settings = config["JWT"]
        if settings.get("jwks_url"):
            keys = KeySetUrl(settings["jwks_url"])
        elif settings.get("jwks_file"):
            keys = KeySetFile(settings["jwks_file"])
        elif settings.get("private_key_file"):  # the issuer verifies with its own keys
            keys = KeySet(TokenIssuer.from_config(config).jwks())
        else:
            raise RuntimeError("set JWT_JWKS_URL or JWT_JWKS_FILE: no key verifies tokens")
        return cls(keys, settings["issuer"], settings["audience"], revocations)

    def verify(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:  # PyJWT's reason stays in its English
            raise _invalid(str(exc)) from None
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _invalid("no key of the platform has this kid")
        if header.get("alg") != key.algorithm_name:
            raise _invalid(f"the key signs with {key.algorithm_name}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(code="token_expired") from None
        except jwt.InvalidTokenError as exc:
            raise _invalid(str(exc)) from None
        if claims["role"] not in ROLES:
            raise Unauthorized(
                "The token names an unknown role.",
                code="invalid_token",
                zh="访问令牌中的角色未知。",
            )
        if not isinstance(claims["sub"], str) or not isinstance(claims["iat"], int | float):
            raise _invalid("sub or iat is malformed")
        if self.revocations.revoked(claims["sub"], float(claims["iat"])):
            raise Unauthorized(code="token_revoked")
        return Caller(id=claims["sub"], role=claims["role"], organization_id=claims.get("org"))


class TokenVerification(SharedExtension):
    """A container's one verifier: its keys, and the revocations its database holds, reloaded
    each `POLL_SECONDS` by a background thread. `@http` entrypoints use it (`chassis.web`)."""

    def setup(self):
        self.revocations = Revocations()
        self.verifier = TokenVerifier.from_config(self.container.config, self.revocations)
        self._running = False

    def start(self):
        database = next((d for d in self.container.dependencies if isinstance(d, Database)), None)
        if database is None:
            log.warning("no database: revoked credentials are not checked")
            return
        self._running = True
        self.container.spawn_managed_thread(lambda: self._keep_current(database))

    def stop(self):
        self._running = False

    kill = stop

    def _keep_current(self, database) -> None:
        polls, failing = 0, None
        while self._running:
            try:
                if polls % PRUNE_EVERY == 0:
                    Revocations.prune(database.pool)
                self.revocations.reload(database.pool)
                failing = None
            except Exception as exc:  # the database is away: keep what is held, say so once
                if str(exc) != failing:
                    log.warning("revoked credentials cannot be reloaded: %s", exc)
                failing = str(exc)
            polls += 1
            eventlet.sleep(POLL_SECONDS)

    def verify(self, token: str) -> Caller:
        return self.verifier.verify(token)


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenIssuing(DependencyProvider):
    """`self.tokens` of the issuing service: its `TokenIssuer`."""

    def setup(self):
        self.issuer = TokenIssuer.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.issuer
