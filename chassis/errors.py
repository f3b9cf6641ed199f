"""The platform's error shape: `{"error", "message", "fields"}` with the right status, in the
caller's language. Raised by use cases and the chassis alike; answered by `chassis.web`."""

from chassis.i18n import translate

# What each error code says when the raiser gives no message of its own.
DEFAULT_MESSAGES = {
    "bad_request": ("The request is not valid.", "请求无效。"),
    "invalid": ("The request has invalid fields.", "请求中有无效字段。"),
    "unauthorized": ("Authentication is required.", "需要登录认证。"),
    "missing_token": ("A bearer token is required.", "需要提供访问令牌。"),
    "invalid_token": ("The token is not valid.", "访问令牌无效。"),
    "token_expired": ("The token has expired.", "访问令牌已过期。"),
    "token_revoked": ("The token was revoked; sign in again.", "访问令牌已撤销，请重新登录。"),
    "forbidden": ("You are not allowed to do this.", "您无权执行此操作。"),
    "not_found": ("Not found.", "未找到。"),
    "method_not_allowed": ("The method is not allowed here.", "不允许此请求方法。"),
    "conflict": ("This conflicts with the current state.", "与当前状态冲突。"),
    "too_many_requests": ("Too many requests; try again later.", "请求过多，请稍后再试。"),
    "unsupported_media_type": ("The body must be JSON.", "请求体必须是 JSON。"),
    "request_entity_too_large": ("The request body is too large.", "请求体过大。"),
    "unavailable": ("A dependency is unavailable; retry later.", "依赖服务暂不可用，请稍后重试。"),
    "internal": ("Internal error; it has been logged.", "内部错误，已记录。"),
}


class HttpError(Exception):
    """An answer in the error shape. `message` is English text whose Chinese the service's
    message catalog holds (`chassis.i18n.add_translations`); `{name}` placeholders in it are
    filled from `params` after translation:

        raise Conflict("The consultation is {status} and cannot be changed.", status=status)
    """

    status = 400
    code = "bad_request"

    def __init__(self, message=None, fields=None, code=None, zh=None, headers=None, **params):
        self.code = code or self.code
        en_default, zh_default = DEFAULT_MESSAGES.get(self.code, (self.code, None))
        self.template = message or en_default
        self.params = params
        self.message = self.template.format(**params) if params else self.template
        self.zh = zh or (zh_default if message is None else None)
        self.fields = fields
        self.headers = headers
        super().__init__(self.message)

    def message_in(self, locale: str) -> str:
        if locale != "zh-CN":
            return self.message
        text = self.zh or translate(self.template, locale)
        return text.format(**self.params) if self.params else text


class Unauthorized(HttpError):
    status, code = 401, "unauthorized"


class Forbidden(HttpError):
    status, code = 403, "forbidden"


class NotFound(HttpError):
    status, code = 404, "not_found"


class Conflict(HttpError):
    status, code = 409, "conflict"


class Unprocessable(HttpError):
    """A body the OpenAPI document allows, refused by a rule the operation states beyond it: a
    field compared with another or with today, a reference to something that must exist."""

    status, code = 422, "invalid"


class TooManyRequests(HttpError):
    status, code = 429, "too_many_requests"


class Unavailable(HttpError):
    status, code = 503, "unavailable"


# Messages of the rules a schema checks beyond what its fields say (`@validates_schema`): a body
# refused only by these is a 422, not a 400. Registered with the message, like its translation.
_RULE_MESSAGES: set[str] = set()


def add_rules(*messages: str) -> None:
    """Register the messages of a schema's cross-field rules (see `Unprocessable`)."""
    _RULE_MESSAGES.update(messages)


def invalid(errors) -> HttpError:
    """Field errors as the answer they call for: 422 when every one is a registered rule's, else
    400 (the body breaks the document; the rules' messages come along)."""
    if _only_rules(errors):
        return Unprocessable(fields=errors)
    return HttpError(fields=errors, code="invalid")


def _only_rules(errors) -> bool:
    if isinstance(errors, dict):
        return bool(errors) and all(_only_rules(value) for value in errors.values())
    if isinstance(errors, list):
        return bool(errors) and all(_only_rules(value) for value in errors)
    return errors in _RULE_MESSAGES
