"""Returnee profiles: the rules a profile must satisfy and how changes are described. No I/O."""

import re
from datetime import date

from contracts.schemas.accounts import PROFILE_FIELDS
from contracts.vocabulary import CONSENT_PURPOSES

OLDEST_AGE_YEARS = 100
YOUNGEST_AGE_YEARS = 16
# Stored in accounts.email, not in the profile document; consents live in their own table.
STORED_APART = ("email", "consents")
# Study in another country than this one is study abroad (ISO 3166-1 alpha-2, as `country`).
HOME_COUNTRY = "CN"


def abroad(country: str) -> bool:
    """Whether an institution in `country` is abroad: what `education[].overseas` says when
    the returnee does not say it themself."""
    return country != HOME_COUNTRY


def normalize_email(email: str) -> str:
    return email.strip().lower()


def age_on(birth_date: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
    return today.year - birth_date.year - before_birthday


def profile_problems(profile: dict, today: date) -> dict[str, list[str]]:
    """Field errors of a (loaded) profile that no single field's schema can see. The profile
    may be what loaded of an invalid body (fields or entries' fields missing): the rules check
    what is there, so one answer names every invalid field."""
    problems: dict[str, list[str]] = {}

    def problem(field, message):
        problems.setdefault(field, []).append(message)

    birth_date = profile.get("birth_date")
    if birth_date is not None:
        if birth_date > today:
            problem("birth_date", "Must not be in the future.")
        elif not YOUNGEST_AGE_YEARS <= age_on(birth_date, today) <= OLDEST_AGE_YEARS:
            problem(
                "birth_date",
                f"Age must be between {YOUNGEST_AGE_YEARS} and {OLDEST_AGE_YEARS} years.",
            )
    return_date = profile.get("return_date")
    if return_date is not None and return_date > today:
        problem("return_date", "Must not be in the future.")
    education = profile.get("education") or []
    for index, entry in enumerate(education):
        start_date = entry.get("start_date")
        if start_date is None:
            continue
        if start_date > today:
            problems.setdefault("education", {}).setdefault(index, {})["start_date"] = [
                "Must not be in the future."
            ]
        if birth_date is not None and start_date <= birth_date:
            problems.setdefault("education", {}).setdefault(index, {})["start_date"] = [
                "Must be after the birth date."
            ]
    overseas_ends = [e["end_date"] for e in education if e.get("overseas") and "end_date" in e]
    if return_date is not None and overseas_ends and return_date < max(overseas_ends):
        problem("return_date", "Must not be before the end of study abroad.")
    registered = (profile.get("company") or {}).get("registration_date")
    if registered is not None and registered > today:
        problems["company"] = {"registration_date": ["Must not be in the future."]}
    needs = profile.get("needs")
    if needs is not None and len(set(needs)) != len(needs):
        problem("needs", "Must not repeat a need.")
    return problems


def merged_problems(first: dict, second: dict) -> dict:
    """Two sets of field errors (marshmallow's shape: messages by field, nested by entry) as
    one; a field named in both keeps the messages of both."""
    merged = dict(first)
    for field, messages in second.items():
        if field not in merged:
            merged[field] = messages
        elif isinstance(merged[field], dict) and isinstance(messages, dict):
            merged[field] = merged_problems(merged[field], messages)
        elif isinstance(merged[field], list) and isinstance(messages, list):
            merged[field] = merged[field] + [m for m in messages if m not in merged[field]]
    return merged


PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
# A letter a-z or A-Z and a digit 0-9 somewhere (and no U+0000, which the API refuses anywhere):
# the OpenAPI document states this pattern and the policy checks it, so the two cannot differ.
PASSWORD_PATTERN = r"^(?=[^\u0000]*[A-Za-z])(?=[^\u0000]*[0-9])[^\u0000]*$"


LETTERS_AND_DIGITS = "Must contain a letter (a-z or A-Z) and a digit (0-9)."


def password_problems(password: str, email: str | None = None) -> list[str]:
    """The password policy: long enough, a letter and a digit, not built from the email."""
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"Must be at least {PASSWORD_MIN_LENGTH} characters long.")
    if not re.match(PASSWORD_PATTERN, password):
        problems.append(LETTERS_AND_DIGITS)
    if email:
        local = normalize_email(email).split("@")[0]
        if len(local) >= 4 and local in password.lower():
            problems.append("Must not contain your email address.")
    return problems


def changed_fields(before: dict, after: dict) -> list[str]:
    """Profile fields whose values differ, in the contract's order."""
    return [f for f in PROFILE_FIELDS if f in after and before.get(f) != after.get(f)]


def consent_changes(before: dict, after: dict) -> dict[str, bool]:
    """Purposes whose consent was granted or withdrawn."""
    return {
        purpose: after[purpose]
        for purpose in CONSENT_PURPOSES
        if purpose in after and before.get(purpose) != after[purpose]
    }
