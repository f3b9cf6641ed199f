"""Local servers that speak the providers' documented protocols, for notify's channel tests:
Alibaba Cloud SMS (SendSms, QuerySendDetails) and the webhook APIs of WeCom group robots,
DingTalk custom robots and Feishu custom bots.

Each checks requests as its provider documents (signatures, required fields, quotas, sizes)
and answers as the provider does, errors included. The checks are written here from the
providers' documents, independently of notify's adapters (nothing is imported from them):
a mistake in the adapters shows as a refusal, not as a shared bug.
"""

import base64
import hashlib
import hmac
import http.server
import json
import re
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path

UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def rfc3986(text: str) -> str:
    """Percent-encoding as Alibaba Cloud's signature document defines it, byte by byte."""
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


class Server:
    """A threaded HTTP server on a free loopback port; subclasses answer `handle`."""

    def __init__(self):
        owner = self
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer = owner.handle(self.command, self.path, dict(self.headers), body)
                data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, method, path, headers, body) -> tuple[int, dict]:
        raise NotImplementedError

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class AliyunSmsServer(Server):
    """dysmsapi 2017-05-25 over RPC: signature version 1.0 (HMAC-SHA1 with `secret&` over
    `METHOD&%2F&` + the encoded, sorted query), SendSms and QuerySendDetails.

    `templates`: TemplateCode -> registered text with `${name}` placeholders. `refuse(code,
    times)` makes the next SendSms calls answer that error code; `receipt[phone]` is what the
    carrier reports for a number: (SendStatus, ErrCode), 3/DELIVERED by default, after
    `pending_queries` answers of "waiting for the receipt" (SendStatus 1)."""

    def __init__(self, key_id: str, secret: str, sign_name: str, templates: dict[str, str]):
        self.key_id, self.secret, self.sign_name = key_id, secret, sign_name
        self.templates = templates
        self.sent: list[dict] = []  # accepted messages: phone, code, params, text, biz_id
        self.calls: list[str] = []  # every Action asked for, accepted or not
        self.refusals: list[str] = []
        self.receipt: dict[str, tuple[int, str]] = {}
        self.pending_queries = 0
        self.queries: dict[str, int] = {}
        self.nonces: set[str] = set()
        super().__init__()

    def refuse(self, code: str, times: int = 1) -> None:
        self.refusals.extend([code] * times)

    def _error(self, status, code, message):
        return status, {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message,
                        "HostId": "dysmsapi.aliyuncs.com"}  # fmt: skip

    def handle(self, method, path, headers, body):
        query = urllib.parse.urlsplit(path).query
        if method == "POST":
            query = body.decode("utf-8")
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        given = params.pop("Signature", None)
        canonical = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(params.items()))
        to_sign = f"{method}&{rfc3986('/')}&{rfc3986(canonical)}"
        expected = base64.b64encode(
            hmac.new(f"{self.secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        with self.lock:
            self.calls.append(params.get("Action", ""))
            if params.get("AccessKeyId") != self.key_id:
                return self._error(
                    404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
                )
            for required in ("Format", "Version", "SignatureMethod", "Timestamp",
                             "SignatureVersion", "SignatureNonce", "Action"):  # fmt: skip
                if not params.get(required):
                    return self._error(400, "MissingParameter", f"{required} is mandatory")
            if (params["SignatureMethod"], params["SignatureVersion"]) != ("HMAC-SHA1", "1.0"):
                return self._error(400, "InvalidParameter", "SignatureMethod")
            if given is None or not hmac.compare_digest(given, expected):
                return self._error(400, "SignatureDoesNotMatch",
                                   f"Specified signature is not matched with our calculation. "
                                   f"server string to sign is:{to_sign}")  # fmt: skip
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
            if abs((datetime.now(UTC).replace(tzinfo=None) - stamp).total_seconds()) > 900:
                return self._error(400, "InvalidTimeStamp.Expired", "Specified time stamp expired.")
            if params["SignatureNonce"] in self.nonces:
                return self._error(
                    400, "SignatureNonceUsed", "Specified signature nonce was used already."
                )
            self.nonces.add(params["SignatureNonce"])
            if params["Action"] == "SendSms":
                return self._send(params)
            if params["Action"] == "QuerySendDetails":
                return self._query(params)
            return self._error(400, "InvalidAction.NotFound", "Specified api is not found")

    def _business(self, code, message):
        return 200, {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message}

    def _send(self, p):
        phone = p.get("PhoneNumbers", "")
        if self.refusals:
            return self._business(self.refusals.pop(0), "触发分钟级流控Permits:1")
        if not re.fullmatch(r"1[3-9]\d{9}", phone):
            return self._business("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if p.get("SignName") != self.sign_name:
            return self._business("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        text = self.templates.get(p.get("TemplateCode", ""))
        if text is None:
            return self._business("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(p.get("TemplateParam") or "{}")
        except ValueError:
            return self._business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        wanted = set(re.findall(r"\$\{(\w+)\}", text))
        if not wanted <= set(values):
            return self._business("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        if any(not isinstance(v, str) or len(v) > 35 for v in values.values()):
            return self._business("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")
        biz_id = f"{int(time.time() * 1000)}{len(self.sent):06d}^0"
        filled = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)
        self.sent.append({"phone": phone, "code": p["TemplateCode"], "params": values,
                          "text": f"【{self.sign_name}】{filled}", "biz_id": biz_id,
                          "out_id": p.get("OutId"), "date": datetime.now(UTC)})  # fmt: skip
        return 200, {"RequestId": str(uuid.uuid4()).upper(), "Code": "OK", "Message": "OK",
                     "BizId": biz_id}  # fmt: skip

    def _query(self, p):
        for required in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not p.get(required):
                return self._business("isv.INVALID_PARAMETERS", f"{required} is mandatory")
        if not re.fullmatch(r"\d{8}", p["SendDate"]):
            return self._business("isv.INVALID_PARAMETERS", "SendDate")
        found = [
            m for m in self.sent
            if m["phone"] == p["PhoneNumber"] and m["biz_id"] == p.get("BizId", m["biz_id"])
        ]  # fmt: skip
        details = []
        for m in found:
            asked = self.queries[m["biz_id"]] = self.queries.get(m["biz_id"], 0) + 1
            status, code = self.receipt.get(m["phone"], (3, "DELIVERED"))
            if asked <= self.pending_queries:
                status, code = 1, ""
            details.append({"PhoneNum": m["phone"], "SendStatus": status, "ErrCode": code,
                            "TemplateCode": m["code"], "Content": m["text"],
                            "SendDate": m["date"].strftime("%Y-%m-%d %H:%M:%S"),
                            "ReceiveDate": m["date"].strftime("%Y-%m-%d %H:%M:%S"),
                            "OutId": m["out_id"]})  # fmt: skip
        return 200, {"TotalCount": len(details), "Message": "OK", "Code": "OK",
                     "RequestId": str(uuid.uuid4()).upper(),
                     "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}}  # fmt: skip


TEXTS = Path(__file__).resolve().parents[2] / "services" / "notify" / "templates" / "sms"
KEY_ID, SECRET, SIGN_NAME = "LTAI5tLocalTestKey", "local-test-access-key-secret", "长宁海归服务"
# What the station registered with the provider: (text, locale) -> TemplateCode.
CODES = {
    ("appointment_booked", "zh-CN"): "SMS_4610001",
    ("appointment_booked", "en"): "SMS_4610002",
    ("appointment_cancelled", "zh-CN"): "SMS_4610003",
    ("appointment_reminder", "zh-CN"): "SMS_4610005",
    ("appointment_reminder", "en"): "SMS_4610006",
}


def platform_gateway() -> AliyunSmsServer:
    """The gateway with the platform's account and its registered texts."""
    texts = {
        code: (TEXTS / locale / f"{name}.txt").read_text(encoding="utf-8").strip()
        for (name, locale), code in CODES.items()
    }
    return AliyunSmsServer(KEY_ID, SECRET, SIGN_NAME, texts)


def gateway_settings(gateway: AliyunSmsServer, **overrides) -> dict:
    """notify's settings for `gateway`: the account, the endpoint, the registered codes."""
    templates: dict = {}
    for (name, locale), code in CODES.items():
        templates.setdefault(name, {})[locale] = code
    return {
        "SMS_GATEWAY": "aliyun",
        "ALIYUN_SMS_ENDPOINT": gateway.url + "/",
        "ALIYUN_SMS_ACCESS_KEY_ID": KEY_ID,
        "ALIYUN_SMS_ACCESS_KEY_SECRET": SECRET,
        "ALIYUN_SMS_SIGN_NAME": SIGN_NAME,
        "ALIYUN_SMS_TEMPLATES": json.dumps(templates),
        "SMS_RECEIPT_FIRST_CHECK_SECONDS": 0.2,
        **overrides,
    }


class MessengerServer(Server):
    """The three messengers' robot webhooks on one port, each on its documented path:

    - WeCom `POST /cgi-bin/webhook/send?key=K`: `{"msgtype": "markdown", "markdown":
      {"content"}}`, content at most 4096 bytes; 20 a minute per robot (45009 past that);
      an unknown key 93000.
    - DingTalk `POST /robot/send?access_token=T[&timestamp=ms&sign=S]`: with 加签, `sign` is
      base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")) URL-encoded, the timestamp within
      an hour (310000 otherwise); 20 a minute (410100); an unknown token 300001.
    - Feishu `POST /open-apis/bot/v2/hook/<id>`: with 签名校验, body `timestamp` (seconds) and
      `sign` = base64(HMAC-SHA256(key="<timestamp>\\n<secret>", message empty)), within an
      hour (19021 otherwise); bodies up to 20 KB; an unknown hook 19001.

    `robots[(messenger, token)]` = secret (None: unsigned); `per_minute` the quota;
    `fail_next(messenger, answer, times)` scripts answers."""

    def __init__(self, per_minute: int = 20, window: float = 60.0):
        self.robots: dict[tuple[str, str], str | None] = {}
        self.received: list[dict] = []  # accepted messages: messenger, token, payload, at
        self.refused: list[tuple[str, dict]] = []
        self.scripted: dict[str, list] = {"wecom": [], "dingtalk": [], "feishu": []}
        self.per_minute, self.window = per_minute, window
        super().__init__()

    def fail_next(self, messenger: str, answer: tuple[int, dict], times: int = 1) -> None:
        self.scripted[messenger].extend([answer] * times)

    def messages(self, messenger: str) -> list[dict]:
        return [m for m in self.received if m["messenger"] == messenger]

    def _over_quota(self, messenger, token) -> bool:
        since = time.monotonic() - self.window
        recent = [m for m in self.received if (m["messenger"], m["token"]) == (messenger, token)
                  and m["at"] > since]  # fmt: skip
        return len(recent) >= self.per_minute

    def handle(self, method, path, headers, body):
        parts = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        with self.lock:
            if parts.path == "/cgi-bin/webhook/send":
                messenger, answer = "wecom", self._wecom(query, body)
            elif parts.path == "/robot/send":
                messenger, answer = "dingtalk", self._dingtalk(query, body)
            elif parts.path.startswith("/open-apis/bot/v2/hook/"):
                token = urllib.parse.unquote(parts.path.rsplit("/", 1)[1])
                messenger, answer = "feishu", self._feishu(token, body)
            else:
                return 404, {"errcode": 404, "errmsg": "not found"}
            status, payload = answer
            if payload.get("errcode", payload.get("code")) != 0:
                self.refused.append((messenger, payload))
            return status, payload

    def _accept(self, messenger, token, payload):
        self.received.append({"messenger": messenger, "token": token, "payload": payload,
                              "at": time.monotonic()})  # fmt: skip

    def _wecom(self, query, body):
        key = query.get("key", "")
        if ("wecom", key) not in self.robots:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        if self.scripted["wecom"]:
            return self.scripted["wecom"].pop(0)
        if self._over_quota("wecom", key):
            return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}
        payload = json.loads(body)
        if payload.get("msgtype") != "markdown" or not payload["markdown"].get("content"):
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}
        if len(payload["markdown"]["content"].encode("utf-8")) > 4096:
            return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
        self._accept("wecom", key, payload)
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _dingtalk(self, query, body):
        token = query.get("access_token", "")
        if ("dingtalk", token) not in self.robots:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        secret = self.robots[("dingtalk", token)]
        if secret is not None:
            stamp, given = query.get("timestamp"), query.get("sign")  # URL-decoded once
            if not stamp or not given or abs(time.time() * 1000 - int(stamp)) > 3_600_000:
                return 200, {"errcode": 310000, "errmsg": "sign not match, more: [...]"}
            mac = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256)
            if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), given):
                return 200, {"errcode": 310000, "errmsg": "sign not match, more: [...]"}
        if self.scripted["dingtalk"]:
            return self.scripted["dingtalk"].pop(0)
        if self._over_quota("dingtalk", token):
            return 200, {"errcode": 410100, "errmsg": "send too fast, exceed 20 times per minute"}
        payload = json.loads(body)
        markdown = payload.get("markdown") or {}
        if (
            payload.get("msgtype") != "markdown"
            or not markdown.get("title")
            or not markdown.get("text")
        ):
            return 200, {"errcode": 400105, "errmsg": "不支持的消息类型"}
        self._accept("dingtalk", token, payload)
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _feishu(self, token, body):
        if ("feishu", token) not in self.robots:
            invalid = "param invalid: incoming webhook access token invalid"
            return 200, {"code": 19001, "msg": invalid, "data": {}}
        if len(body) > 20 * 1024:
            return 200, {"code": 9499, "msg": "Bad Request", "data": {}}
        payload = json.loads(body)
        secret = self.robots[("feishu", token)]
        if secret is not None:
            stamp = str(payload.get("timestamp", ""))
            key = f"{stamp}\n{secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            fresh = stamp.isdigit() and abs(time.time() - int(stamp)) <= 3600
            if not fresh or not hmac.compare_digest(expected, str(payload.get("sign", ""))):
                return 200, {"code": 19021, "data": {},
                             "msg": "sign match fail or timestamp is not within one hour "
                                    "from current time"}  # fmt: skip
        if self.scripted["feishu"]:
            return self.scripted["feishu"].pop(0)
        if payload.get("msg_type") != "text" or not (payload.get("content") or {}).get("text"):
            return 200, {"code": 9499, "msg": "Bad Request", "data": {}}
        self._accept("feishu", token, payload)
        return 200, {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {},
                     "msg": "success"}  # fmt: skip
