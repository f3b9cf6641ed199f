"""Every text notify answers with, in English and Chinese: the one catalog of the service.
(Email and inbox messages are content, in `templates/`, not here.)"""

from chassis.i18n import add_translations

MESSAGES = {
    "Unknown time zone.": "未知的时区。",
    "You may see only your own notifications.": "您只能查看自己的通知。",
    "You may manage only your own preferences.": "您只能管理自己的通知偏好。",
    "No such subscription.": "订阅不存在。",
    "You may manage only your own channels.": "您只能管理自己的消息渠道。",
    "No such recipient.": "收件人不存在。",
    "Messenger channels are for staff and organizations.": "工作消息渠道仅适用于工作人员和机构。",
    "Not a robot token.": "不是有效的机器人令牌。",
    "WeCom robots take no secret.": "企业微信群机器人不使用签名密钥。",
    "One destination per messenger.": "每种工作消息渠道只能配置一个目的地。",
}

add_translations(MESSAGES)
