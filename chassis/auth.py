"""Bearer tokens: issued by accounts, verified the same way by every service.

    class MatchingService(Operable):
        auth = Authenticator()

        @http("GET", "/returnees/<returnee_id>/matches")
        def matches(self, request, returnee_id):
            caller = self.auth.caller(request)            # 401 without a valid token
            caller.require_self_or("advisor", "admin", owner=returnee_id)   # 403 otherwise

Only the configured algorithm is accepted (never `none`); `iss`, `aud`, `exp`, `iat`, `sub` and
`role` are required and checked.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from nameko.extensions import DependencyProvider

from chassis.web import Forbidden, Unauthorized

ROLES = ("returnee", "advisor", "provider", "admin", "official")
ROLE_NAMES_ZH = {
    "returnee": "返乡创业者",
    "advisor": "顾问",
    "provider": "资源提供方",
    "admin": "管理员",
    "official": "区政府工作人员",
}
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "role"]


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


class TokenCodec:
    def __init__(self, algorithm, secret, public_key_file, private_key_file, issuer, audience,
                 ttl_seconds):  # fmt: skip
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        if algorithm.startswith("HS"):
            self._verifying_key = self._signing_key = secret
        else:
            self._verifying_key = _read(public_key_file, "JWT_PUBLIC_KEY_FILE")
            self._signing_key = _read(private_key_file) if private_key_file else None

    @classmethod
    def from_config(cls, config: dict) -> "TokenCodec":
        return cls(**config["JWT"])

    def issue(self, subject: str, role: str, organization_id: str | None = None) -> str:
        if self._signing_key is None:
            raise RuntimeError("no JWT_PRIVATE_KEY_FILE: this service cannot issue tokens")
        now = datetime.now(UTC)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(subject),
            "role": role,
            "iat": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
        }
        if organization_id:
            claims["org"] = str(organization_id)
        return jwt.encode(claims, self._signing_key, algorithm=self.algorithm)

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(code="token_expired") from None
        except jwt.InvalidTokenError as exc:  # PyJWT's reason stays in its English
            raise Unauthorized(
                f"The token is not valid: {exc}", code="invalid_token", zh=f"访问令牌无效：{exc}"
            ) from None
        if claims["role"] not in ROLES:
            raise Unauthorized(
                "The token names an unknown role.",
                code="invalid_token",
                zh="访问令牌中的角色未知。",
            )
        return Caller(id=claims["sub"], role=claims["role"], organization_id=claims.get("org"))


def _read(path: str, name: str = "JWT_PRIVATE_KEY_FILE") -> str:
    if not path:
        raise RuntimeError(f"{name} must be set for asymmetric JWT algorithms")
    return Path(path).read_text()


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Authenticator(DependencyProvider):
    """`self.auth.caller(request)`: the verified caller, or 401."""

    def setup(self):
        self.codec = TokenCodec.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self

    def caller(self, request) -> Caller:
        caller = self.optional_caller(request)
        if caller is None:
            raise Unauthorized(code="missing_token")
        return caller

    def optional_caller(self, request) -> Caller | None:
        if hasattr(request, "caller"):  # verified by the `@http` entrypoint already
            return request.caller
        token = bearer_token(request)
        return None if token is None else self.codec.verify(token)
