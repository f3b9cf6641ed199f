"""The services' HTTP APIs as station calls them: URLs from `<SERVICE>_URL` (the local ports
by default), one signed-in admin or advisor whose tokens are kept in the user's config
directory (mode 0600) and refreshed when they expire."""

import json
import os
from pathlib import Path

import platformdirs
import requests

from chassis.settings import PORTS

SERVICES = ("accounts", "consulting", "matching", "notify", "activities", "insights")
TIMEOUT = 120  # seconds: a batch of 100 rows is one transaction


class StationError(Exception):
    """What station tells the operator and exits 1 with."""


def service_url(service: str) -> str:
    return os.environ.get(f"{service.upper()}_URL") or f"http://127.0.0.1:{PORTS[service]}"


def token_file() -> Path:
    return Path(platformdirs.user_config_dir("returnee-station")) / "token.json"


class Session:
    """Calls with the stored bearer token; a 401 refreshes it once and retries."""

    def __init__(self, stored: dict | None = None):
        self.http = requests.Session()
        self.stored = stored if stored is not None else load_tokens()

    @property
    def role(self) -> str | None:
        return (self.stored or {}).get("role")

    def call(self, method: str, service: str, path: str, **kwargs) -> requests.Response:
        if not self.stored:
            raise StationError("Not signed in: run `station login` (or set STATION_EMAIL and "
                               "STATION_PASSWORD).")  # fmt: skip
        response = self._send(method, service, path, **kwargs)
        if response.status_code == 401 and self._refresh():
            response = self._send(method, service, path, **kwargs)
        if response.status_code == 401:
            raise StationError("The sign-in has expired: run `station login` again.")
        return response

    def _send(self, method, service, path, **kwargs):
        headers = {"Authorization": f"Bearer {self.stored['access_token']}",
                   **kwargs.pop("headers", {})}  # fmt: skip
        try:
            return self.http.request(method, service_url(service) + path, headers=headers,
                                     timeout=TIMEOUT, **kwargs)  # fmt: skip
        except requests.ConnectionError as error:
            raise StationError(
                f"{service} does not answer at {service_url(service)}: {error}"
            ) from None

    def _refresh(self) -> bool:
        answer = self.http.post(
            service_url("accounts") + "/auth/refresh",
            json={"refresh_token": self.stored["refresh_token"]},
            timeout=TIMEOUT,
        )
        if answer.status_code != 200:
            return False
        self.stored = {**self.stored, **answer.json()}
        save_tokens(self.stored)
        return True


def sign_in(email: str, password: str) -> dict:
    """Tokens for the email and password, with the role they carry, stored for later calls."""
    url = service_url("accounts") + "/auth/token"
    try:
        answer = requests.post(url, json={"email": email, "password": password}, timeout=30)
    except requests.ConnectionError as error:
        raise StationError(
            f"accounts does not answer at {service_url('accounts')}: {error}"
        ) from None
    if answer.status_code != 200:
        raise StationError(f"Sign-in refused: {answer.json().get('message', answer.text)}")
    tokens = answer.json()
    stored = {**tokens, "email": email, "role": _role(tokens["access_token"])}
    save_tokens(stored)
    return stored


def _role(access_token: str) -> str | None:
    import jwt

    return jwt.decode(access_token, options={"verify_signature": False}).get("role")


def save_tokens(stored: dict) -> None:
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created 0600 before a byte is written: the refresh token is a credential.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(stored, file)


def load_tokens() -> dict | None:
    """The stored sign-in; or, with STATION_EMAIL and STATION_PASSWORD set, a new one."""
    email, password = os.environ.get("STATION_EMAIL"), os.environ.get("STATION_PASSWORD")
    path = token_file()
    if path.exists():
        stored = json.loads(path.read_text())
        if not email or stored.get("email") == email:
            return stored
    if email and password:
        return sign_in(email, password)
    return None


def forget_tokens() -> None:
    token_file().unlink(missing_ok=True)


def answer(response: requests.Response, expected: int = 200):
    """The JSON of an expected answer; otherwise the error's message as a StationError."""
    if response.status_code == expected:
        return response.json() if response.content else None
    try:
        error = response.json()
        message = error.get("message", response.text)
        if error.get("fields"):
            message += f" {json.dumps(error['fields'], ensure_ascii=False)}"
    except ValueError:
        message = response.text[:500]
    raise StationError(f"{response.request.method} {response.url}: {response.status_code} "
                       f"{message}")  # fmt: skip
