"""HTTP entrypoints: JSON in and out, errors as `{"error", "message", "fields"}` with the right
status in the caller's language, a correlation id per request, request bodies and queries
validated by marshmallow schemas, and the endpoints every service serves.

    @http("POST", "/returnees", body=Registration, response=ReturneeOut(), status=201)
    def register(self, request, body): ...
"""

import functools
import ipaddress
import json
import logging
import math
import numbers
import re
import time
import uuid
from datetime import date, datetime
from decimal import Decimal

from eventlet.event import Event as GreenEvent
from marshmallow import Schema, ValidationError, fields, validate
from nameko.containers import WorkerContext
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import STATE_IDLE, WebServer, WsgiApp, parse_address
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.exceptions import NotFound as NotFoundHere
from werkzeug.wrappers import Request, Response

from chassis.access import CASE_RULE, stated
from chassis.broker import BrokerUnavailable
from chassis.errors import (
    DEFAULT_MESSAGES,
    HttpError,
    Unauthorized,
    Unavailable,
    invalid,
)
from chassis.i18n import negotiate, translate_errors
from chassis.metrics import HTTP_LATENCY, HTTP_REQUESTS
from chassis.paging import CURSOR_RULE, NEXT_HEADER, Page, PageQuery, next_link
from chassis.pool import CONNECTION_ERRORS, DatabaseUnavailable
from chassis.ports import listen

log = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-Id"
# In a request's WSGI environ: whether it came to the operations port, or to the HTTP port of a
# service that has one (False), or to the HTTP port of one that has none (absent).
OPERATIONS_PORT = "chassis.operations_port"
# Items a list in a request body may hold when its schema sets no maximum of its own.
MAX_LIST_ITEMS = 100


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(payload, default=_json_default, ensure_ascii=False)
    return Response(body, status=status, headers=headers, content_type="application/json")


def error_response(error: HttpError, locale: str) -> Response:
    payload = {"error": error.code, "message": error.message_in(locale)}
    if error.fields:
        payload["fields"] = translate_errors(error.fields, locale)
    return json_response(payload, error.status, error.headers)


def as_http_error(exc: Exception) -> HttpError:
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, ValidationError):
        return invalid(exc.messages)
    if isinstance(exc, HTTPException):
        code = exc.name.lower().replace(" ", "_")
        error = HttpError(DEFAULT_MESSAGES.get(code, (exc.description,))[0], code=code)
        error.status = exc.code
        error.zh = DEFAULT_MESSAGES.get(code, (None, None))[1]
        if getattr(exc, "valid_methods", None):
            error.headers = {"Allow": ", ".join(exc.valid_methods)}
        return error
    if isinstance(exc, (DatabaseUnavailable, BrokerUnavailable, *CONNECTION_ERRORS)):
        log.warning("request failed, dependency unavailable: %s", exc)
        return Unavailable()
    log.error("request failed: %r", exc, exc_info=exc)
    error = HttpError(code="internal")
    error.status = 500
    return error


def client_address(request, trusted_proxies) -> str:
    """The address of whoever sent the request: the connection's, or, when that is a trusted
    proxy, the nearest address in X-Forwarded-For that is not one (addresses further left are
    whatever the client chose to write there)."""
    address = request.remote_addr or ""
    if not _within(address, trusted_proxies):
        return address
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([a for a in forwarded if a]):
        if not _within(hop, trusted_proxies):
            return hop
    return address


def _within(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # not an address: never a trusted proxy, and stops the walk
    return any(ip in network for network in networks)


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    """A JSON number as a float, unless it is beyond a double (1e400 would become inf, which
    no column or document stores)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app answering unknown routes and wrong methods with JSON errors.

    `operations`: None where the HTTP port serves everything; False for the HTTP port of a
    service with an operations port (its `operations` endpoints, `/metrics`, are not found
    there); True for the operations port, which serves the probe endpoints alone."""

    def __init__(self, server, operations: bool | None = None):
        super().__init__(server)
        self.operations = operations

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        if self.operations is not None:
            environ[OPERATIONS_PORT] = self.operations
        try:
            provider, request.path_values = adapter.match()
            if self.operations is not None and not self._served_here(provider):
                raise NotFoundHere()
        except HTTPException as exc:
            if exc.code < 400:  # redirects (trailing slashes) as werkzeug answers them
                return exc(environ, start_response)
            locale = negotiate(request.headers.get("Accept-Language"))
            return error_response(as_http_error(exc), locale)(environ, start_response)
        return provider.handle_request(request)(environ, start_response)

    def _served_here(self, provider) -> bool:
        if self.operations:
            return getattr(provider, "probe", False)
        return not getattr(provider, "operations", False)


class JsonWebServer(WebServer):
    def setup(self):
        # Bound here, before any extension starts (consumers included), so a port another
        # process serves stops the service before it takes an event; `listen` refuses such a
        # port rather than share it through SO_REUSEPORT as eventlet.listen would.
        address = self.bind_addr
        reuse_port = self.container.config.get("HTTP_REUSE_PORT", False)
        self._sock = listen(address.address or "0.0.0.0", address.port, reuse_port)
        # The operations port, when the settings give one (production): `/metrics` and the
        # detailed readiness there, for Prometheus and the kubelet; not on the public port.
        self._ops_sock = self._ops_serv = None
        operations = self.container.config.get("OPERATIONS_ADDRESS")
        if operations:
            ops = parse_address(operations)
            try:
                self._ops_sock = listen(ops.address or "0.0.0.0", ops.port, reuse_port)
            except BaseException:
                self._sock.close()
                raise
        super().setup()

    def start(self):  # nameko's, on the socket bound in setup
        if not self._starting:
            self._starting = True
            self._sock.settimeout(None)  # nameko's workaround for kombu issue 838
            split = None if self._ops_sock is None else False
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app(split))
            self._gt = self.container.spawn_managed_thread(self.run)
            if self._ops_sock is not None:
                self._ops_sock.settimeout(None)
                self._ops_serv = self.get_wsgi_server(self._ops_sock, JsonWsgiApp(self, True))
                self._ops_gt = self.container.spawn_managed_thread(self._run_operations)

    def _run_operations(self):
        while self._is_accepting:
            sock, addr = self._ops_sock.accept()
            sock.settimeout(self._ops_serv.socket_timeout)
            self.container.spawn_managed_thread(
                functools.partial(self._ops_serv.process_request, [addr, sock, STATE_IDLE])
            )

    def stop(self):
        if self._ops_sock is not None:
            self._is_accepting = False
            if self._ops_serv is not None:
                self._ops_gt.kill()
            self._ops_sock.close()
        super().stop()

    @property
    def operations_port(self) -> int | None:
        """The port the operations endpoints listen on (None: the HTTP port serves them)."""
        return None if self._ops_sock is None else self._ops_sock.getsockname()[1]

    def get_wsgi_app(self, operations: bool | None = None):
        return JsonWsgiApp(self, operations)

    def context_data_from_headers(self, request):
        return {"correlation_id": request.correlation_id, "locale": request.locale}


def _refuse_nul(value):
    """The value, unless a string in it holds U+0000, which PostgreSQL cannot store in text or
    jsonb: such input is a 400, not an error deep in a handler's transaction."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and "\x00" in item:
            raise HttpError("Text must not contain NUL characters.", zh="文本不能包含 NUL 字符。")
    return value


class JsonBoolean(fields.Boolean):
    """true or false, as JSON and the OpenAPI document have it; marshmallow's Boolean also
    takes 1, 0, "yes", "off"... which a query string needs and a JSON body does not."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class JsonInteger(fields.Integer):
    """An integer as JSON Schema has it: 5 and 5.0 are the same number; 5.5, "5" and true are
    not integers (marshmallow's Integer takes "5" and truncates 5.5)."""

    def _validated(self, value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


_FULL_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_RFC3339 = {
    fields.Date: re.compile(rf"^{_FULL_DATE}\Z"),
    fields.DateTime: re.compile(
        rf"^{_FULL_DATE}[Tt][0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(\.[0-9]+)?([Zz]|[+-][0-9]{{2}}:[0-9]{{2}})\Z"
    ),
}


@functools.cache
def _rfc3339_class(cls: type) -> type:
    """`cls` for a JSON body: the text must be RFC 3339, as the document's `format` says
    (Python also reads "20260101" and "2026-W01-1" as dates)."""
    pattern = _RFC3339[fields.Date if issubclass(cls, fields.Date) else fields.DateTime]

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not pattern.match(value):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        return cls._deserialize(self, value, attr, data, **kwargs)

    return type(f"Json{cls.__name__}", (cls,), {"_deserialize": _deserialize, "rfc3339": True})


def _json_types(schema: Schema, seen: set) -> None:
    """Make a body schema (and the schemas nested in it) take JSON's types as the OpenAPI
    document states them: Boolean fields JsonBoolean, Integer fields JsonInteger, dates and
    date-times RFC 3339. A query string's fields stay lenient: they parse text.
    A list without a maximum length of its own gets `MAX_LIST_ITEMS`.
    A schema nested in itself is done at its first level; deeper ones are new instances."""
    if type(schema) in seen:
        return
    seen.add(type(schema))
    pending = list(schema.fields.values())
    while pending:
        field = pending.pop()
        if type(field) is fields.Boolean:
            field.__class__ = JsonBoolean
        elif type(field) is fields.Integer:
            field.__class__ = JsonInteger
        elif isinstance(field, fields.Date | fields.DateTime) and not hasattr(field, "rfc3339"):
            field.__class__ = _rfc3339_class(type(field))
        elif getattr(field, "text_cells", False):
            continue  # a batch's rows: cells of a spreadsheet (chassis.batches)
        elif isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            _json_types(field.schema, seen)
        elif isinstance(field, fields.List):
            if not any(isinstance(v, validate.Length) and v.max is not None
                       for v in field.validators):  # fmt: skip
                field.validators.append(validate.Length(max=MAX_LIST_ITEMS))
            pending.append(field.inner)
        elif isinstance(field, fields.Tuple):
            pending.extend(field.tuple_fields)
        elif isinstance(field, fields.Dict) and field.value_field is not None:
            pending.append(field.value_field)


class JsonHttp(HttpRequestHandler):
    """nameko's `@http` with the platform's error contract, correlation ids and schemas.

    body      marshmallow schema class of the JSON body; the handler gets it loaded as `body`
    optional_body  an empty body is taken as `{}` (the schema's defaults)
    query     schema class of the query string; the handler gets it loaded as `query`
    response  schema instance the result is dumped with (and documented by); or, for an
              answer no marshmallow schema describes (a JWK set, a document), its JSON Schema
              as a dict, documented only. Every JSON answer is typed: chassis.openapi
              documents no `{}` body (tests/unit/test_openapi_documents.py)
    status    status of a successful response
    media_type  media type of a successful response (or a tuple of them), for the OpenAPI
              document (a handler answering with anything but JSON returns its own `Response`)
    responses {status: schema instance or None}: further documented outcomes: a 503 with a
              body of its own, or an error status the use case answers beyond those the
              declarations imply (409, 429, ...; None: the `Error` shape). The 400, 401, 403,
              404, 413, 415 and 422 that the chassis answers are documented from the other
              arguments (chassis.openapi)
    tags      the operation's groups in the document; by default its path's first segment
    description  what the operation does, for the document; by default the method's docstring
    auth      True when a bearer token is required: checked before the body (401 first), with
              the keys and revocations of `chassis.auth.TokenVerification`
    roles     roles allowed at all, checked right after the token (403 before the body)
    owner     the path parameter naming the returnee whose own data this is: that returnee
              may call too ("self or one of `roles`"), checked with the roles. Rules that need
              stored data (who owns a consultation) are named functions the use case calls.
    probe     answered outside the worker pool, in the web server's own greenthread: health
              probes and metrics stay answered while every worker is busy or waiting; also
              served on the operations port, when the service has one (production)
    operations  served on the operations port alone when the service has one (`/metrics`):
              the public port answers 404
    paged     a list a page at a time (chassis.paging): the query takes `limit` and `cursor`
              (`query` extends `PageQuery`, which is the query when none is given); the use
              case answers a `Page`, dumped as the array `response` describes, the next page
              named in the `Link` (rel="next") and `X-Next-Cursor` headers; the rule that a
              cursor is one a page answered is stated (a 422)
    access    the operation reads a returnee's personal data: what a staff caller states with
              it (`X-Access-Case`, `X-Access-Reason`) is read into `request.access` and
              documented (`chassis.access`); the use case checks and records it
    rules     the rules a valid body must also keep (fields compared with each other or with
              today, references that must exist), stated in the OpenAPI document; breaking
              one is a 422 (`Unprocessable`)
    """

    server = JsonWebServer()

    def __init__(self, method, url, body=None, query=None, response=None, status=200,
                 auth=False, roles=None, owner=None, summary=None,
                 media_type="application/json", responses=None, probe=False, rules=(),
                 optional_body=False, tags=None, description=None, operations=False,
                 paged=False,
                 access=False,
                 **kwargs):  # fmt: skip
        kwargs.setdefault("expected_exceptions", (HttpError, ValidationError))
        super().__init__(method, url, **kwargs)
        self.roles = tuple(roles) if roles else None
        self.owner = owner
        self.body_schema = body() if isinstance(body, type) else body
        if self.body_schema is not None:
            _json_types(self.body_schema, set())
        self.paged = paged
        if paged and query is None:
            query = PageQuery
        self.query_schema = query() if isinstance(query, type) else query
        if paged and not {"limit", "cursor"} <= set(self.query_schema.fields):
            raise TypeError(f"{url}: a paged list's query extends chassis.paging.PageQuery")
        self.response_document = response if isinstance(response, dict) else None
        if self.response_document is not None:
            response = None
        self.response_schema = response() if isinstance(response, type) else response
        self.status = status
        self.media_type = media_type
        self.responses = dict(responses or {})
        self.auth = auth or bool(roles) or bool(owner)
        self.summary = summary
        self.probe = probe or operations
        self.operations = operations
        self.rules = (
            tuple(rules) + ((CURSOR_RULE,) if paged else ()) + ((CASE_RULE,) if access else ())
        )
        self.optional_body = optional_body
        self.tags = tuple(tags) if tags else None
        self.description = description
        self.access = access

    def bind(self, container, method_name):
        if "tokens" not in vars(self):  # bound, not built: chassis.auth needs this module
            from chassis.auth import TokenVerification

            self.tokens = TokenVerification()  # one per container, shared by its entrypoints
        return super().bind(container, method_name)

    def setup(self):
        self.max_body_bytes = self.container.config.get("HTTP_MAX_BODY_BYTES")
        self.trusted_proxies = [
            ipaddress.ip_network(n, strict=False)
            for n in self.container.config.get("TRUSTED_PROXIES", [])
        ]
        super().setup()

    def authenticate(self, request) -> None:
        """`request.caller`: the verified caller (None on public routes without a token)."""
        from chassis.auth import bearer_token

        token = bearer_token(request)
        request.caller = None if token is None else self.tokens.verify(token)
        if self.auth and request.caller is None:
            raise Unauthorized(code="missing_token")
        if self.owner:
            owner = request.path_values.get(self.owner)
            request.caller.require_self_or(*(self.roles or ()), owner=owner)
        elif self.roles:
            request.caller.require(*self.roles)

    def handle_request(self, request):
        started = time.perf_counter()
        response = self._respond(request)
        service = self.container.service_name
        HTTP_REQUESTS.labels(service, self.url, request.method, response.status_code).inc()
        HTTP_LATENCY.labels(service, self.url, request.method).observe(
            time.perf_counter() - started
        )
        return response

    def _respond(self, request):
        request.client_address = client_address(request, self.trusted_proxies)
        request.correlation_id = request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
        request.locale = negotiate(request.headers.get("Accept-Language"))
        request.shallow = False
        try:
            if self.max_body_bytes:  # refused before a byte of it is read
                request.max_content_length = self.max_body_bytes  # and a streamed one
                if (request.content_length or 0) > self.max_body_bytes:
                    raise RequestEntityTooLarge()
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            done = GreenEvent()
            context = self.server.context_data_from_headers(request)
            if self.probe:
                # nameko's worker lifecycle (dependencies injected, set up, torn down), run
                # here rather than queued for a place in the pool of MAX_WORKERS.
                service = self.container.service_cls()
                worker_ctx = WorkerContext(self.container, service, self, args, kwargs, context)
                self.container._run_worker(worker_ctx, functools.partial(self.handle_result, done))
            else:
                self.container.spawn_worker(
                    self, args, kwargs, context_data=context,
                    handle_result=functools.partial(self.handle_result, done),
                )  # fmt: skip
            response = self.response_from_result(done.wait(), request)
        except Exception as exc:
            response = error_response(as_http_error(exc), request.locale)
        response.headers[CORRELATION_HEADER] = request.correlation_id
        return response

    def get_entrypoint_parameters(self, request):
        self.authenticate(request)
        kwargs = dict(request.path_values)
        _refuse_nul(kwargs)
        if self.access:
            request.access = stated(request)
        if self.body_schema is not None:
            empty = self.optional_body and not request.get_data().strip()
            payload = {} if empty else self._json_body(request)
            kwargs["body"] = self.body_schema.load(_refuse_nul(payload))
        if self.query_schema is not None:
            query = _refuse_nul(request.args.to_dict(flat=True))
            kwargs["query"] = self.query_schema.load(query)
        return (request,), kwargs

    @staticmethod
    def _json_body(request):
        if request.mimetype != "application/json":
            error = HttpError(code="unsupported_media_type")
            error.status = 415
            raise error
        try:
            payload = json.loads(
                request.get_data(as_text=True) or "null",
                parse_constant=_not_json,  # NaN, Infinity: Python reads them, JSON has none
                parse_float=_finite,
            )
        except ValueError:
            raise HttpError("The body is not valid JSON.", zh="请求体不是有效的 JSON。") from None
        if not isinstance(payload, dict):
            raise HttpError("The body must be a JSON object.", zh="请求体必须是 JSON 对象。")
        return payload

    def response_from_result(self, result, request=None):
        if isinstance(result, Response):
            return result
        if isinstance(result, Page):
            headers = {}
            if result.next is not None:
                path, args = (request.path, request.args) if request else ("", {})
                headers = {"Link": next_link(path, args, result.next), NEXT_HEADER: result.next}
            return json_response(self.response_schema.dump(result.items), self.status, headers)
        status, payload = result if isinstance(result, tuple) else (self.status, result)
        if self.response_schema is not None and payload is not None:
            payload = self.response_schema.dump(payload)
        if payload is None:
            response = Response(status=204 if status == 200 else status)
            del response.headers["Content-Type"]  # no body, so no type (werkzeug sets text/plain)
            return response
        return json_response(payload, status)


http = JsonHttp.decorator
