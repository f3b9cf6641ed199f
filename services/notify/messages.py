"""Every text notify answers with, in English and Chinese: the one catalog of the service.
(Email and inbox messages are content, in `templates/`, not here.)"""

from chassis.i18n import add_translations

MESSAGES = {
    "Unknown time zone.": "未知的时区。",
    "You may see only your own notifications.": "您只能查看自己的通知。",
    "You may manage only your own preferences.": "您只能管理自己的通知偏好。",
    "No such subscription.": "订阅不存在。",
}

add_translations(MESSAGES)
