"""What a service refuses to start with in production: a secret that is missing, a placeholder
(`REPLACE_ME`, `changeme`, ...), a development value shipped in this repository, or too weak.
`chassis.run` says each refusal in one line naming the variable and exits non-zero, before
anything connects.

The chassis checks what every service holds (broker and database URLs, token keys); a service
adds its own secrets with `unsafe(values)` in its `settings.py`, `values` being its declared
settings as `chassis.settings.service_settings` reads them:

    def unsafe(values: dict) -> list[SettingError]:
        return [e for e in [secret_refusal("DATA_KEY", values["DATA_KEY"])] if e]
"""

import importlib
import re
from urllib.parse import unquote, urlsplit

from chassis.broker import broker_urls
from chassis.keys import KeyProblem, load_private_key, within_development_folder
from chassis.settings import (
    FRONTS,
    TOKEN_ISSUER,
    SettingError,
    configured,
    jwt_settings,
    service_settings,
    setting,
)

# Words that mark a value someone was meant to replace: found anywhere in it (letters and digits
# only, case ignored), they are long enough never to turn up in a random secret by chance.
PLACEHOLDER_WORDS = ("replaceme", "changeme", "changeit", "placeholder", "yourpassword",
                     "yoursecret", "insertsecret", "setme")  # fmt: skip
# Whole values that are placeholders too (short, so only as the entire value).
PLACEHOLDER_VALUES = frozenset(
    {
        "secret",
        "password",
        "passwd",
        "todo",
        "tbd",
        "xxx",
        "xxxx",
        "test",
        "example",
        "default",
        "none",
        "null",
        "empty",
        "dummy",
        "fixme",
    }  # fmt: skip
)
# Credentials of the development broker and database (the chassis' defaults, the old compose
# file's): never a production password.
DEVELOPMENT_PASSWORDS = frozenset({"guest", "postgres", "platform"})


def placeholder(value: str) -> bool:
    text = re.sub(r"[^a-z0-9]", "", value.lower())
    stripped = value.strip()
    return (
        any(word in text for word in PLACEHOLDER_WORDS)
        or text in PLACEHOLDER_VALUES
        or (stripped.startswith("<") and stripped.endswith(">"))
        or (bool(stripped) and len(set(stripped)) == 1)  # "xxxxxxxx", "00000000"
    )


def secret_refusal(name: str, value: str | None, development_values=(),
                   required: bool = True) -> SettingError | None:  # fmt: skip
    """The refusal of a secret's value, or None when it may be used."""
    if not value:
        return SettingError(name, "is missing") if required else None
    if placeholder(value):
        return SettingError(name, "is a placeholder: set a secret of your own")
    if value in development_values:
        return SettingError(name, "is a development value shipped in the repository")
    return None


def _url_refusals(name: str, url: str, default_hint: str) -> list[SettingError]:
    """A URL's password; `AMQP_URI` may name a cluster's nodes (`;`-separated URLs): each one's."""
    if not url:
        return [SettingError(name, f"is missing (the default is {default_hint})")]
    urls = broker_urls(url) if name == "AMQP_URI" else [url]
    refusals = []
    for n, one in enumerate(urls, 1):
        password = unquote(urlsplit(one).password or "")
        if not password:
            continue  # a password-less login (certificates, peer authentication) is theirs to pick
        label = f"{name}'s password" if len(urls) == 1 else f"{name}'s password of node {n}"
        refusal = secret_refusal(label, password, DEVELOPMENT_PASSWORDS)
        if refusal:
            refusals.append(refusal)
    return refusals


def _key_refusals(name: str, path: str) -> list[SettingError]:
    if within_development_folder(path):
        return [SettingError(name, "is a development key (.dev/keys): generate one of its own")]
    try:
        load_private_key(path)
    except KeyProblem as problem:
        return [SettingError(name, f"{path} {problem}")]
    return []


def _token_refusals(service: str) -> list[SettingError]:
    """The token keys: the issuer's signing key, the others' public keys (a web front, which
    verifies nothing, holds neither)."""
    refusals = []
    if configured(service, "JWT_SECRET"):
        refusals.append(
            SettingError(
                "JWT_SECRET",
                "is set, but tokens are signed with asymmetric keys: remove it (accounts signs "
                "with JWT_PRIVATE_KEY_FILE, the others verify with JWT_JWKS_URL)",
            )
        )
    settings = jwt_settings(service)
    if service == TOKEN_ISSUER:
        if not settings["private_key_file"]:
            refusals.append(
                SettingError(
                    "JWT_PRIVATE_KEY_FILE",
                    "is missing: generate one with `python -m chassis.keys generate <file>`",
                )
            )
        else:
            refusals += _key_refusals("JWT_PRIVATE_KEY_FILE", settings["private_key_file"])
        if settings["previous_key_file"]:
            refusals += _key_refusals("JWT_PREVIOUS_KEY_FILE", settings["previous_key_file"])
        return refusals
    if configured(service, "JWT_PRIVATE_KEY_FILE"):
        refusals.append(
            SettingError(
                "JWT_PRIVATE_KEY_FILE",
                f"is set, but only {TOKEN_ISSUER} signs tokens: remove it, {service} verifies "
                "with JWT_JWKS_URL",
            )
        )
    if service in FRONTS:
        return refusals
    if not (settings["jwks_url"] or settings["jwks_file"]):
        refusals.append(
            SettingError(
                "JWT_JWKS_URL", f"is missing (or JWT_JWKS_FILE): {service} cannot verify tokens"
            )  # fmt: skip
        )
    elif settings["jwks_file"] and within_development_folder(settings["jwks_file"]):
        refusals.append(SettingError("JWT_JWKS_FILE", "holds the development keys (.dev/keys)"))
    return refusals


def refusals(service: str) -> list[SettingError]:
    """Every reason `service` (or web front) must not start in production (none: it may)."""
    found = []
    if service not in FRONTS:  # a web front has no broker and no database
        found += _url_refusals(
            "AMQP_URI",
            setting(service, "AMQP_URI") if configured(service, "AMQP_URI") else "",
            "a development broker on localhost",
        )
        found += _url_refusals(
            "DATABASE_URL",
            setting(service, "DATABASE_URL") if configured(service, "DATABASE_URL") else "",
            "a development database on localhost",
        )
    found += _token_refusals(service)
    try:
        own = importlib.import_module(f"services.{service}.settings")
    except ModuleNotFoundError:
        own = None
    if own is not None and hasattr(own, "unsafe"):
        found += own.unsafe(service_settings(service, own.DECLARED))
    return found
