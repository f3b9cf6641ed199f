"""The two languages of the platform's users: zh-CN and en.

HTTP errors are answered in the language of the request's `Accept-Language` (zh-CN when Chinese
is preferred, English otherwise); marshmallow's field errors are translated here.
"""

import re

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "en"


def negotiate(accept_language: str | None) -> str:
    """The locale the caller prefers among ours, by `Accept-Language` quality values."""
    best, best_q = DEFAULT_LOCALE, -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        q = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = 0.0
        locale = "zh-CN" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if locale and q > best_q:
            best, best_q = locale, q
    return best


# marshmallow's messages, and the platform's own, in Chinese. Parameterised ones are patterns.
_ZH_EXACT = {
    "Missing data for required field.": "缺少必填字段。",
    "Not a cursor of this list.": "不是此列表的分页游标。",
    "Not a cursor: up to 400 letters, digits, - and _.": (
        "不是分页游标：最多 400 个字母、数字、- 和 _。"
    ),
    "Field may not be null.": "该字段不能为空。",
    "Unknown field.": "未知字段。",
    "Not a valid string.": "不是有效的字符串。",
    "Not a valid integer.": "不是有效的整数。",
    "Not a valid number.": "不是有效的数字。",
    "Not a valid boolean.": "不是有效的布尔值。",
    "Not a valid date.": "不是有效的日期。",
    "Not a valid datetime.": "不是有效的日期时间。",
    "Not a valid aware datetime.": "不是带时区的有效日期时间。",
    "Not a valid email address.": "不是有效的电子邮箱地址。",
    "Not a valid URL.": "不是有效的网址。",
    "Not a valid UUID.": "不是有效的 UUID。",
    "Not a valid list.": "不是有效的列表。",
    "Not a valid mapping type.": "不是有效的对象。",
    "Invalid input type.": "输入类型无效。",
    "Invalid value.": "值无效。",
    "String does not match expected pattern.": "格式不符合要求。",
    "Shorter than minimum length 1.": "不能为空。",
    "Invalid input.": "输入无效。",
}
_ZH_PATTERNS = [
    (re.compile(r"^Must be one of: (.*)\.$"), "必须是以下之一：{0}。"),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"), "长度必须在 {0} 到 {1} 之间。"),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), "长度不能少于 {0}。"),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), "长度不能超过 {0}。"),
    (
        re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$"),
        "必须在 {0} 到 {1} 之间。",
    ),  # fmt: skip
    (re.compile(r"^Must be greater than or equal to (\S+)\.$"), "必须大于或等于 {0}。"),
    (re.compile(r"^Must be less than or equal to (\S+)\.$"), "必须小于或等于 {0}。"),
    (re.compile(r"^Must be greater than (\S+)\.$"), "必须大于 {0}。"),
    (re.compile(r"^Must be equal to (.*)\.$"), "必须等于 {0}。"),
]
_EXTRA_ZH: dict[str, str] = {}


def add_translations(zh: dict[str, str]) -> None:
    """Register a service's own English messages with their Chinese text."""
    _EXTRA_ZH.update(zh)


def translate(text: str, locale: str) -> str:
    if locale != "zh-CN" or not isinstance(text, str):
        return text
    if text in _EXTRA_ZH:
        return _EXTRA_ZH[text]
    if text in _ZH_EXACT:
        return _ZH_EXACT[text]
    for pattern, template in _ZH_PATTERNS:
        match = pattern.match(text)
        if match:
            return template.format(*match.groups())
    return text


def translate_errors(errors, locale: str):
    """marshmallow's nested error messages, translated leaf by leaf."""
    if isinstance(errors, dict):
        return {key: translate_errors(value, locale) for key, value in errors.items()}
    if isinstance(errors, list):
        return [translate_errors(value, locale) for value in errors]
    return translate(errors, locale)
