"""What an SMS says and how long it may be: pure rules, no gateway.

Mainland gateways send only texts registered with them beforehand (a *template*, reviewed by the
provider and the carriers) with short values filled in; the platform sends the template's code
and the values, never free text. The texts live in `templates/sms/<locale>/<name>.txt`, written
in the provider's own placeholder syntax (`${time}`): each file is what is registered with the
provider, and filling it in here gives the notification's body exactly as the phone shows it,
after the signature 【SignName】 the gateway puts in front.

Length, as the carriers bill it: up to 70 characters (signature and brackets included) is one
message; longer ones go as parts of 67 characters each. Each value is at most 35 characters
(the provider refuses longer ones); the place is shortened further when the whole would need
more than the allowed parts.
"""

import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SMS_DIR = Path(__file__).resolve().parent / "templates" / "sms"
LOCALES = ("zh-CN", "en")
SINGLE = 70
PART = 67
MAX_VALUE = 35
PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")
ELLIPSIS = "…"


@dataclass(frozen=True)
class Sms:
    """One SMS: the registered text it uses, its values, and the text as the phone shows it."""

    name: str  # the registered text (templates/sms/<locale>/<name>.txt)
    locale: str
    params: dict[str, str]
    text: str  # filled in, without the signature


def mainland_number(phone: str) -> str | None:
    """The 11 digits a mainland gateway takes (`+86 138 0013 8000` -> `13800138000`), or None
    for a number outside the mainland, which its domestic texts cannot reach."""
    digits = re.sub(r"[\s\-()]", "", phone or "")
    digits = re.sub(r"^(\+86|0086|86)(?=1\d{10}$)", "", digits)
    return digits if re.fullmatch(r"1\d{10}", digits) else None


def sms_name(template: str, context: dict) -> str | None:
    """The registered text a notification template sends by SMS, or None if it has none."""
    if template == "appointment_confirmation":
        return "appointment_cancelled" if context.get("change") == "cancelled" else (
            "appointment_booked"
        )  # fmt: skip
    if template == "appointment_reminder":
        return "appointment_reminder"
    return None


@cache
def registered_text(name: str, locale: str) -> str:
    return (SMS_DIR / locale / f"{name}.txt").read_text(encoding="utf-8").strip()


def parts(text: str, signature: str) -> int:
    """How many billed messages the text is, with its 【signature】."""
    length = len(signature) + 2 + len(text)
    return 1 if length <= SINGLE else math.ceil(length / PART)


def fill(text: str, params: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: params[m.group(1)], text)


def shorten(value: str, limit: int) -> str:
    value = " ".join(str(value).split())
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + ELLIPSIS


def compose(template: str, locale: str, context: dict, signature: str,
            max_parts: int) -> Sms | None:  # fmt: skip
    """The SMS of a notification, within `max_parts`; None when the template has no SMS."""
    name = sms_name(template, context)
    if name is None:
        return None
    locale = locale if locale in LOCALES else LOCALES[0]
    text = registered_text(name, locale)
    starts, ends = context["starts_at"], context["ends_at"]
    params = {
        "time": shorten(f"{starts}-{ends}", MAX_VALUE),
        "place": shorten(context["location"], MAX_VALUE),
    }
    wanted = set(PLACEHOLDER.findall(text))
    params = {k: v for k, v in params.items() if k in wanted}
    # The place is the one free text: shortened until the message fits.
    while "place" in params and parts(fill(text, params), signature) > max_parts:
        if len(params["place"]) <= 4:
            break
        params["place"] = shorten(params["place"], len(params["place"]) - 1)
    return Sms(name, locale, params, fill(text, params))
