"""Every text accounts answers with, English → Chinese (zh-CN): refusals and field errors alike.
The English text is what the code raises (`Conflict("This email is already registered.")`)."""

from chassis.i18n import add_translations
from services.accounts.profile import (
    LETTERS_AND_DIGITS,
    OLDEST_AGE_YEARS,
    PASSWORD_MIN_LENGTH,
    YOUNGEST_AGE_YEARS,
)

MESSAGES = {
    # refusals
    "This email is already registered.": "该邮箱已注册。",
    "Too many failed sign-ins; try again later.": "登录失败次数过多，请稍后再试。",
    "Wrong email or password.": "邮箱或密码错误。",
    "Too many registrations from your address; try again later.": (
        "您的地址注册次数过多，请稍后再试。"
    ),
    "Too many password reset requests; try again later.": "重置密码的请求过多，请稍后再试。",
    "This account is disabled.": "该账户已停用。",
    "Only the returnee may change their consents.": "只有本人可以更改其同意事项。",
    "The refresh token is not valid; sign in again.": "刷新令牌无效，请重新登录。",
    "You cannot disable your own account.": "您不能停用自己的账户。",
    "You cannot change your own role.": "您不能更改自己的角色。",
    # field errors of a profile
    "Must not be in the future.": "不能是将来的日期。",
    f"Age must be between {YOUNGEST_AGE_YEARS} and {OLDEST_AGE_YEARS} years.": (
        f"年龄必须在 {YOUNGEST_AGE_YEARS} 到 {OLDEST_AGE_YEARS} 岁之间。"
    ),
    "Must not be before the end of study abroad.": "回国日期不能早于海外学习结束日期。",
    "Must be after the birth date.": "必须晚于出生日期。",
    "Must not repeat a need.": "需求不能重复。",
    "must not be before start_date": "不能早于开始日期",
    # field errors of passwords and staff
    f"Must be at least {PASSWORD_MIN_LENGTH} characters long.": (
        f"长度至少为 {PASSWORD_MIN_LENGTH} 个字符。"
    ),
    LETTERS_AND_DIGITS: "必须同时包含字母（a-z 或 A-Z）和数字（0-9）。",
    "Must not contain your email address.": "不能包含您的邮箱地址。",
    "A provider belongs to an organization.": "资源提供方必须属于某个机构。",
    "This is not your current password.": "这不是您当前的密码。",
    "This link is not valid or has expired.": "该链接无效或已过期。",
    "No such organization.": "机构不存在。",
}

add_translations(MESSAGES)
