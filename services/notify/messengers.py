"""Work messengers: WeCom (企业微信) group robots, DingTalk custom robots, Feishu custom bots,
each over its documented webhook API.

A destination is the robot's token (WeCom's `key`, DingTalk's `access_token`, Feishu's hook id)
and, for DingTalk and Feishu, the secret of their signature check; the base URL is a setting.
Each answers HTTP 200 with a JSON code (0: sent); the codes that mean "too many messages"
are transient, the rest permanent (a removed robot, a failed signature, a message refused).
"""

import base64
import hashlib
import hmac
import time
import urllib.parse
from dataclasses import dataclass

import requests

from services.notify.domain import DeliveryOutcome

ELLIPSIS = "…"


@dataclass(frozen=True)
class MessengerSettings:
    wecom_url: str = "https://qyapi.weixin.qq.com"
    dingtalk_url: str = "https://oapi.dingtalk.com"
    feishu_url: str = "https://open.feishu.cn"
    timeout: float = 10.0


def fit(text: str, limit_bytes: int) -> str:
    """The text cut to at most `limit_bytes` of UTF-8, on a character boundary, marked."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit_bytes:
        return text
    room = limit_bytes - len(ELLIPSIS.encode("utf-8"))
    return encoded[:room].decode("utf-8", errors="ignore") + ELLIPSIS


def chat_text(subject: str, body: str, markdown: bool) -> str:
    """The message for a chat: the subject as a heading, then the text part."""
    return f"### {subject}\n\n{body.strip()}" if markdown else f"{subject}\n\n{body.strip()}"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: base64(HMAC-SHA256(key=secret, "<timestamp>\\n<secret>")), then URL-encoded."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return urllib.parse.quote_plus(base64.b64encode(mac.digest()).decode())


def feishu_sign(secret: str, timestamp: int) -> str:
    """Feishu: base64(HMAC-SHA256(key="<timestamp>\\n<secret>", empty message))."""
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class Messenger:
    """One messenger's webhook API."""

    channel = ""
    limit_bytes = 4096
    markdown = True
    # The messenger's codes for "too many messages" (and a busy system): worth trying later.
    transient_codes: frozenset[int] = frozenset()

    def __init__(self, settings: MessengerSettings, session: requests.Session):
        self.settings = settings
        self.session = session

    def request(self, destination: dict, text: str, title: str) -> tuple[str, dict]:
        raise NotImplementedError

    @staticmethod
    def code_of(answer: dict) -> tuple[int, str]:
        return int(answer.get("errcode", -1)), str(answer.get("errmsg", ""))

    def send(self, destination: dict, subject: str, body: str) -> DeliveryOutcome:
        text = fit(chat_text(subject, body, self.markdown), self.limit_bytes)
        url, payload = self.request(destination, text, subject)
        try:
            response = self.session.post(url, json=payload, timeout=self.settings.timeout,
                                         allow_redirects=False)  # fmt: skip
        except requests.RequestException as exc:
            return DeliveryOutcome(
                False, transient=True, error=f"{self.channel} unreachable: {type(exc).__name__}"
            )
        if response.status_code == 429 or response.status_code >= 500:
            return DeliveryOutcome(
                False, transient=True, error=f"{self.channel}: HTTP {response.status_code}"
            )
        try:
            code, message = self.code_of(response.json())
        except ValueError:
            return DeliveryOutcome(
                False,
                transient=False,
                error=f"{self.channel}: HTTP {response.status_code}, not JSON",
            )
        if code == 0:
            return DeliveryOutcome(True)
        return DeliveryOutcome(False, transient=code in self.transient_codes,
                               error=f"{self.channel}: {code} {message}"[:500],
                               details={"code": str(code)})  # fmt: skip


class WeCom(Messenger):
    """企业微信群机器人: `POST /cgi-bin/webhook/send?key=…`, markdown of at most 4096 bytes;
    20 messages a minute per robot (code 45009 past that). No signature: the key is the secret."""

    channel = "wecom"
    limit_bytes = 4096
    transient_codes = frozenset({45009, -1})

    def request(self, destination, text, title):
        url = f"{self.settings.wecom_url}/cgi-bin/webhook/send?" + urllib.parse.urlencode(
            {"key": destination["token"]}
        )
        return url, {"msgtype": "markdown", "markdown": {"content": text}}


class DingTalk(Messenger):
    """钉钉自定义机器人: `POST /robot/send?access_token=…[&timestamp=…&sign=…]`, markdown with a
    title; 20 messages a minute per robot (410100 past that, the robot then held ten minutes)."""

    channel = "dingtalk"
    limit_bytes = 5000
    transient_codes = frozenset({410100, 130101, -1})

    def request(self, destination, text, title):
        query = f"access_token={urllib.parse.quote_plus(destination['token'])}"
        if destination.get("secret"):
            timestamp = int(time.time() * 1000)
            query += (
                f"&timestamp={timestamp}&sign={dingtalk_sign(destination['secret'], timestamp)}"
            )
        payload = {"msgtype": "markdown", "markdown": {"title": title[:64], "text": text}}
        return f"{self.settings.dingtalk_url}/robot/send?{query}", payload


class Feishu(Messenger):
    """飞书自定义机器人: `POST /open-apis/bot/v2/hook/<id>`, a text message, `timestamp` and
    `sign` in the body when the bot checks signatures; 100 a minute and 5 a second per bot,
    request bodies up to 20 KB."""

    channel = "feishu"
    limit_bytes = 18000
    markdown = False
    transient_codes = frozenset({11232})

    @staticmethod
    def code_of(answer):
        # Older answers carry StatusCode/StatusMessage rather than code/msg.
        code = answer.get("code", answer.get("StatusCode", -1))
        return int(code), str(answer.get("msg", answer.get("StatusMessage", "")))

    def request(self, destination, text, title):
        payload: dict = {"msg_type": "text", "content": {"text": text}}
        if destination.get("secret"):
            timestamp = int(time.time())
            payload = {
                "timestamp": str(timestamp),
                "sign": feishu_sign(destination["secret"], timestamp),
                **payload,
            }
        url = f"{self.settings.feishu_url}/open-apis/bot/v2/hook/" + urllib.parse.quote(
            destination["token"], safe=""
        )
        return url, payload


def messengers(settings: MessengerSettings, session: requests.Session) -> dict[str, Messenger]:
    return {m.channel: m(settings, session) for m in (WeCom, DingTalk, Feishu)}
