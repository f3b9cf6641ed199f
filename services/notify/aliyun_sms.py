"""SMS through Alibaba Cloud SMS (dysmsapi, API version 2017-05-25), over its documented RPC API.

`SendSms` sends a registered template (`TemplateCode`) with its values (`TemplateParam`) under
the approved signature (`SignName`); the answer's `BizId` names the message, and
`QuerySendDetails` later tells whether the carrier delivered it (`SendStatus` 3) or not (2).

Requests are signed as the RPC API documents (signature version 1.0): the parameters sorted by
name, each percent-encoded per RFC 3986 (`*` as `%2A`, `~` kept, space as `%20`), joined with
`&`; the string to sign is `POST&%2F&` + that query string percent-encoded once more; the
signature is base64(HMAC-SHA1(AccessKeySecret + "&", string to sign)). Written over `requests`
rather than the official SDK (docs/dependencies.md).
"""

import base64
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

import requests

from services.notify.domain import DeliveryOutcome

log = logging.getLogger(__name__)

VERSION = "2017-05-25"
# Codes of a refusal that trying again later can cure: throttling (the provider's flow control,
# per number or per account), a system error on their side, a balance to top up.
TRANSIENT_CODES = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL",
    "isv.DAY_LIMIT_CONTROL",
    "isv.MONTH_LIMIT_CONTROL",
    "isv.AMOUNT_NOT_ENOUGH",
    "isv.OUT_OF_SERVICE",
    "isp.SYSTEM_ERROR",
    "isp.GATEWAY_ERROR",
    "Throttling",
    "Throttling.User",
    "Throttling.Api",
    "ServiceUnavailable",
    "InternalError",
})  # fmt: skip
# Refusals of the request itself (credentials, signature name, template, parameters): every SMS
# fails alike until the configuration is fixed, so they are logged at error level.
CONFIGURATION_CODES = frozenset({
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
    "isp.RAM_PERMISSION_DENY",
    "isv.ACCOUNT_NOT_EXISTS",
    "isv.ACCOUNT_ABNORMAL",
    "isv.PRODUCT_UN_SUBSCRIPT",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL",
    "isv.SIGN_STATE_ILLEGAL",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.TEMPLATE_PARAMS_ILLEGAL",
    "isv.INVALID_JSON_PARAM",
    "isv.PARAM_LENGTH_LIMIT",
})  # fmt: skip


@dataclass(frozen=True)
class AliyunSmsSettings:
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    access_key_id: str = ""
    access_key_secret: str = ""
    sign_name: str = ""
    region: str = "cn-hangzhou"
    # Registered text (`sms.sms_name`) -> locale -> TemplateCode
    templates: dict = field(default_factory=dict)
    timeout: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.access_key_id and self.access_key_secret and self.sign_name)

    def registered(self, name: str, locale: str) -> tuple[str, str] | None:
        """(locale, TemplateCode) of the text registered for the locale; the Chinese one when
        the locale has none (a person reads Chinese rather than nothing); None if neither."""
        codes = self.templates.get(name) or {}
        for candidate in (locale, "zh-CN"):
            if codes.get(candidate):
                return candidate, codes[candidate]
        return None


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding, as the RPC signature asks (Python's `quote` keeps `~`)."""
    return quote(str(value), safe="-_.~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def signature(secret: str, method: str, params: dict[str, str]) -> str:
    mac = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def outcome_of(code: str, message: str) -> DeliveryOutcome:
    """A refusal by its code: transient (try again later) or permanent."""
    transient = code in TRANSIENT_CODES or (
        code.startswith("isp.") and code not in CONFIGURATION_CODES
    )
    return DeliveryOutcome(False, transient=transient, error=f"SMS gateway: {code} {message}"[:500],
                           details={"code": code})  # fmt: skip


class AliyunSms:
    """Sends and follows SMS through Alibaba Cloud's SMS API."""

    def __init__(self, settings: AliyunSmsSettings, session: requests.Session | None = None):
        self.settings = settings
        self.session = session or requests.Session()

    def _call(self, action: str, params: dict[str, str], now: datetime) -> dict:
        """POST one signed API call; the decoded answer (raises `requests.RequestException` if
        unreachable, `ValueError` if the answer is not JSON)."""
        s = self.settings
        signed = {
            "AccessKeyId": s.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": s.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
            **params,
        }
        signed["Signature"] = signature(s.access_key_secret, "POST", signed)
        response = self.session.post(s.endpoint, data=signed, timeout=s.timeout,
                                     allow_redirects=False)  # fmt: skip
        answer = response.json()
        answer["_status"] = response.status_code
        return answer

    def send(self, phone: str, code: str, params: dict[str, str], out_id: str,
             now: datetime) -> DeliveryOutcome:  # fmt: skip
        """SendSms; accepted with the `BizId`, or refused with the gateway's code."""
        request = {
            "PhoneNumbers": phone,
            "SignName": self.settings.sign_name,
            "TemplateCode": code,
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
            "OutId": out_id,
        }
        try:
            answer = self._call("SendSms", request, now)
        except requests.RequestException as exc:
            return DeliveryOutcome(
                False, transient=True, error=f"SMS gateway unreachable: {exc}"[:500]
            )
        except ValueError:
            return DeliveryOutcome(False, transient=True, error="SMS gateway: an answer not JSON")
        if answer.get("Code") == "OK" and answer.get("BizId"):
            return DeliveryOutcome(False, accepted=str(answer["BizId"]))
        code = str(answer.get("Code") or f"HTTP {answer['_status']}")
        refused = outcome_of(code, str(answer.get("Message", "")))
        if answer["_status"] >= 500 and code not in CONFIGURATION_CODES:
            refused.transient = True  # the provider's own trouble
        if code in CONFIGURATION_CODES:
            log.error("SMS gateway refused the platform's request (configuration): %s %s",
                      code, answer.get("Message"))  # fmt: skip
        return refused

    def receipt(self, phone: str, biz_id: str, sent_on: str, now: datetime) -> DeliveryOutcome:
        """QuerySendDetails for one message sent on `sent_on` (yyyyMMdd, Beijing time):
        delivered, failed for good with the carrier's code, or transient: no receipt yet."""
        request = {"PhoneNumber": phone, "BizId": biz_id, "SendDate": sent_on,
                   "PageSize": "10", "CurrentPage": "1"}  # fmt: skip
        try:
            answer = self._call("QuerySendDetails", request, now)
        except (requests.RequestException, ValueError) as exc:
            return DeliveryOutcome(
                False, transient=True, error=f"receipt query failed: {exc}"[:500]
            )
        if answer.get("Code") != "OK":
            return outcome_of(str(answer.get("Code")), str(answer.get("Message", "")))
        details = (answer.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
        if not details:
            return DeliveryOutcome(False, transient=True, error="no delivery receipt yet")
        detail = details[0]
        status = int(detail.get("SendStatus", 1))
        if status == 3:
            return DeliveryOutcome(True)
        if status == 2:
            code = detail.get("ErrCode") or "unknown"
            return DeliveryOutcome(False, error=f"SMS not delivered: {code}",
                                   details={"code": code})  # fmt: skip
        return DeliveryOutcome(False, transient=True, error="no delivery receipt yet")

    def close(self) -> None:
        self.session.close()
