"""HTTP entrypoints: JSON in and out, errors as `{"error", "message", "fields"}` with the right
status, a correlation id per request, and the endpoints every service serves."""

import json
import logging
import uuid
from datetime import date, datetime
from decimal import Decimal

import eventlet
from marshmallow import ValidationError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from chassis.broker import BrokerUnavailable
from chassis.db import DatabaseUnavailable

log = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-Id"


class HttpError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.code = code or self.code


class Unauthorized(HttpError):
    status, code = 401, "unauthorized"


class Forbidden(HttpError):
    status, code = 403, "forbidden"


class NotFound(HttpError):
    status, code = 404, "not_found"


class Conflict(HttpError):
    status, code = 409, "conflict"


class TooManyRequests(HttpError):
    status, code = 429, "too_many_requests"


class Unavailable(HttpError):
    status, code = 503, "unavailable"


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(payload, default=_json_default, ensure_ascii=False)
    return Response(body, status=status, headers=headers, content_type="application/json")


def error_response(status: int, code: str, message: str, fields=None, headers=None) -> Response:
    payload = {"error": code, "message": message}
    if fields:
        payload["fields"] = fields
    return json_response(payload, status, headers)


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app answering unknown routes and wrong methods with JSON errors."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, request.path_values = adapter.match()
        except HTTPException as exc:
            response = exc if exc.code < 400 else http_exception_response(exc)
            return response(environ, start_response)
        return provider.handle_request(request)(environ, start_response)


def http_exception_response(exc: HTTPException) -> Response:
    headers = (
        {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
    )
    code = exc.name.lower().replace(" ", "_")
    return error_response(exc.code, code, exc.description, headers=headers)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def context_data_from_headers(self, request):
        return {"correlation_id": request.correlation_id}


class JsonHttp(HttpRequestHandler):
    """nameko's `@http` with the platform's error contract and correlation ids."""

    server = JsonWebServer()

    def __init__(self, method, url, expected_exceptions=(HttpError, ValidationError), **kwargs):
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)

    def handle_request(self, request):
        correlation_id = request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
        request.correlation_id = correlation_id
        response = super().handle_request(request)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response

    def get_entrypoint_parameters(self, request):
        return (request,), request.path_values

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        if isinstance(result, tuple):
            return json_response(result[1], status=result[0])
        return json_response(result)

    def response_from_exception(self, exc):
        if isinstance(exc, HttpError):
            return error_response(exc.status, exc.code, exc.message, exc.fields)
        if isinstance(exc, ValidationError):
            return error_response(400, "invalid", "The request has invalid fields.", exc.messages)
        if isinstance(exc, HTTPException):
            return http_exception_response(exc)
        if isinstance(exc, DatabaseUnavailable | BrokerUnavailable):
            log.warning("request failed, dependency unavailable: %s", exc)
            return error_response(503, "unavailable", "A dependency is unavailable; retry later.")
        log.error("request failed: %r", exc, exc_info=exc)
        return error_response(500, "internal", "Internal error; it has been logged.")


http = JsonHttp.decorator


class Operable:
    """Health endpoints for probes; mix into a service whose `Database` is named `db`.

    `/health/live`  200 while the process serves requests
    `/health/ready` 200 only when the database and the broker answer, 503 otherwise
    """

    @http("GET", "/health/live")
    def health_live(self, request):
        return {"status": "live", "service": self.name}

    @http("GET", "/health/ready")
    def health_ready(self, request):
        checks = {}
        for name, check in (("database", self.db.ping), ("broker", self.db.ping_broker)):
            try:
                with eventlet.Timeout(5, TimeoutError(f"{name} did not answer in 5 s")):
                    check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {exc}"
        ready = all(v == "ok" for v in checks.values())
        return (200 if ready else 503), {"status": "ready" if ready else "not_ready", **checks}
