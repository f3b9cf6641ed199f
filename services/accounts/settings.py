"""accounts' own settings (beyond the chassis'), read with `chassis.settings.service_settings`,
and what makes them unsafe in production (`chassis.secrets`)."""

import base64
import binascii
import string

from chassis.secrets import secret_refusal
from chassis.settings import SettingError
from services.accounts.profile import password_problems

DECLARED = {
    "ADMIN_EMAIL": "",
    "ADMIN_PASSWORD": "",
    "DATA_KEY": "",
    # Keys values may still be sealed under while `python -m services.accounts.reseal` runs.
    "DATA_KEYS_PREVIOUS": "",
    # Where the links emailed to people lead: the portal's pages that post their token back
    # (`<PORTAL_URL>/verify-email?token=...`, `/reset-password`, `/set-password`).
    "PORTAL_URL": "http://127.0.0.1:8080",
    # Registrations one client address may make in an hour (a station's kiosk, or a NAT in
    # front of many people, may need more).
    "REGISTRATIONS_PER_HOUR": "20",
}

# The admin `make run` creates on a development machine (deploy/local.py), and the data key a
# development run seals with: never used in production.
DEVELOPMENT_ADMIN = {"ADMIN_EMAIL": "admin@station.example", "ADMIN_PASSWORD": "Station-admin-2026"}
DEVELOPMENT_DATA_KEY = base64.b64encode(b"development-only-key-32-bytes!!!").decode()
# Passwords written in this repository: the development admin's, the demo staff's
# (deploy/reference/organizations.yml), the demo's and the tests' returnees', the tests' admin's.
SHIPPED_PASSWORDS = frozenset(
    {
        DEVELOPMENT_ADMIN["ADMIN_PASSWORD"],
        "Station-staff-2026",
        "Returnee-demo-2026",
        "Returnee2026!",
        "Admin-Password-1",
    }
)


def data_key_problem(value: str) -> str | None:
    """Why `value` cannot seal ID numbers: not 32 bytes in base64, or not random ones."""
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "is not base64: generate one with `openssl rand -base64 32`"
    if len(key) != 32:
        return f"is {len(key)} bytes, not 32: generate one with `openssl rand -base64 32`"
    printable = set(string.printable.encode())
    if all(byte in printable for byte in key) or len(set(key)) < 16:
        return "is too weak, typed rather than random: generate one with `openssl rand -base64 32`"
    return None


def unsafe(values: dict) -> list[SettingError]:
    refusals = []
    key = values["DATA_KEY"]
    refusal = secret_refusal("DATA_KEY", key, (DEVELOPMENT_DATA_KEY,))
    if refusal is None and data_key_problem(key):
        refusal = SettingError("DATA_KEY", data_key_problem(key))
    refusals.append(refusal)
    if values["ADMIN_EMAIL"]:
        password = values["ADMIN_PASSWORD"]
        refusal = secret_refusal("ADMIN_PASSWORD", password, SHIPPED_PASSWORDS)
        problems = password_problems(password, values["ADMIN_EMAIL"]) if refusal is None else []
        if problems:
            refusal = SettingError("ADMIN_PASSWORD", f"is too weak: {' '.join(problems)}")
        refusals.append(refusal)
    return [r for r in refusals if r is not None]
