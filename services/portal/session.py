"""The browser session: a cookie the portal alone can read, holding the person's tokens.

The cookie is encrypted and authenticated (Fernet: AES-CBC and HMAC-SHA256), HttpOnly,
SameSite=Lax and, in production, Secure; a session older than `SESSION_DAYS`, or tampered
with, reads as empty. There is no session store: the portal keeps nothing about anyone.

Every form carries the session's CSRF token (`csrf_token`), compared in constant time; a
cross-site form post has no cookie (SameSite) and no token.
"""

import hmac
import json
import secrets
import time

import jwt
from cryptography.fernet import Fernet, InvalidToken

COOKIE = "portal_session"
# Where each role starts after signing in: one home per role.
HOMES = {
    "returnee": "/me",
    "advisor": "/console",
    "provider": "/partner",
    "admin": "/admin",
    "official": "/district",
}
LANGUAGE_COOKIE = "lang"
CSRF_FIELD = "csrf_token"
# Refresh an access token this long before it runs out, so a call never carries a dead one.
EXPIRY_MARGIN_SECONDS = 30


class Session(dict):
    """What the cookie holds; `modified` says whether it must be written back."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.modified = False

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.modified = True

    def __delitem__(self, key):
        super().__delitem__(key)
        self.modified = True

    def pop(self, key, *default):
        self.modified = self.modified or key in self
        return super().pop(key, *default)

    def clear(self):
        self.modified = self.modified or bool(self)
        super().clear()

    # -- who is signed in ----------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return bool(self.get("access"))

    @property
    def person_id(self) -> str | None:
        return self.get("sub")

    @property
    def role(self) -> str | None:
        return self.get("role")

    @property
    def organization_id(self) -> str | None:
        return self.get("org")

    @property
    def home(self) -> str:
        """The signed-in person's first page (their role's), or the public home."""
        return HOMES.get(self.role, "/") if self.signed_in else "/"

    def sign_in(self, tokens: dict) -> None:
        """Keep the tokens accounts issued. Their claims are read without checking the
        signature: they came straight from accounts, and every service checks them anyway."""
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        csrf = self.get("csrf")
        self.clear()
        self.update(
            access=tokens["access_token"],
            refresh=tokens.get("refresh_token"),
            expires=int(claims.get("exp") or time.time() + int(tokens.get("expires_in", 0))),
            sub=claims["sub"],
            role=claims.get("role"),
            org=claims.get("org"),
            csrf=csrf or secrets.token_urlsafe(24),
        )
        self.modified = True

    def renew(self, tokens: dict) -> None:
        """A refreshed pair of tokens, for the same person."""
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        self["access"] = tokens["access_token"]
        self["refresh"] = tokens.get("refresh_token") or self.get("refresh")
        self["expires"] = int(claims.get("exp") or 0)

    def expiring(self) -> bool:
        return self.get("expires", 0) - EXPIRY_MARGIN_SECONDS < time.time()

    def sign_out(self) -> None:
        csrf = self.get("csrf")
        self.clear()
        if csrf:
            self["csrf"] = csrf

    # -- forms ---------------------------------------------------------------------------

    def csrf_token(self) -> str:
        if not self.get("csrf"):
            self["csrf"] = secrets.token_urlsafe(24)
        return self["csrf"]

    def csrf_matches(self, token: str | None) -> bool:
        expected = self.get("csrf")
        return bool(expected and token) and hmac.compare_digest(expected, token)

    def flash(self, message: str) -> None:
        """An English interface text to show once, on the next page."""
        self["flash"] = message


class SessionCodec:
    def __init__(self, key: bytes, max_age_seconds: int):
        self.fernet = Fernet(key)
        self.max_age = max_age_seconds

    def load(self, cookie: str | None) -> Session:
        if not cookie:
            return Session()
        try:
            data = json.loads(self.fernet.decrypt(cookie.encode(), ttl=self.max_age))
        except (InvalidToken, ValueError):
            return Session()
        return Session(data) if isinstance(data, dict) else Session()

    def dump(self, session: Session) -> str:
        return self.fernet.encrypt(
            json.dumps(dict(session), separators=(",", ":")).encode()
        ).decode()
