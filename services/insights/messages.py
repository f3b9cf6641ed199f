"""Every text insights answers with, in English and Chinese: the one message catalog of the
service."""

from chassis.i18n import add_translations

MESSAGES = {
    "Must not be after to.": "不能晚于结束日期（to）。",
    "A period is at most 3700 days.": "统计期间最长 3700 天。",
}

add_translations(MESSAGES)
