"""The portal's HTTP entrypoint: server-rendered pages.

    @page("GET", "/me/matches", signed_in=True)
    def matches(self, request): ...

Before the page runs: the person's language (`?lang=`, then the `lang` cookie, then
`Accept-Language`, else zh-CN), their session from its cookie, and for a POST the form's CSRF
token. After it: the session written back when it changed, and the security headers every
answer carries (a strict Content-Security-Policy: the portal's own scripts and styles only).
A service that is down gives a page that says so; a session that ended leads to sign-in; any
other failure is logged with the correlation id and answered with a plain error page.
"""

import logging
import time
import uuid
from functools import partial
from urllib.parse import quote

from eventlet.event import Event as GreenEvent
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from chassis.i18n import negotiate
from chassis.metrics import HTTP_LATENCY, HTTP_REQUESTS
from chassis.web import CORRELATION_HEADER, JsonWebServer
from services.portal.rendering import STATIC, render
from services.portal.session import COOKIE, CSRF_FIELD, LANGUAGE_COOKIE, SessionCodec
from services.portal.settings import PortalSettings
from services.portal.upstream import ApiError, ServiceDown, SignedOut

log = logging.getLogger(__name__)

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def locale_of(request) -> tuple[str, bool]:
    """(locale, chosen now): `?lang=` (remembered in a cookie), the cookie, Accept-Language."""
    asked = request.args.get("lang")
    if asked in LOCALES:
        return asked, True
    remembered = request.cookies.get(LANGUAGE_COOKIE)
    if remembered in LOCALES:
        return remembered, False
    header = request.headers.get("Accept-Language") or ""
    # negotiate() falls back to English; the portal speaks Chinese unless English is asked for.
    if negotiate(header) == "en" and "en" in header.lower():
        return "en", False
    return DEFAULT_LOCALE, False


class PortalSite:
    """What every page needs outside its own worker: the settings and the session codec."""

    def __init__(self, config):
        self.settings = PortalSettings.from_config(config)
        self.sessions = SessionCodec(self.settings.session_key, self.settings.session_seconds)

    def prepare(self, request) -> None:
        request.correlation_id = request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
        request.locale, request.language_chosen = locale_of(request)
        request.session = self.sessions.load(request.cookies.get(COOKIE))

    def finish(self, request, response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers[CORRELATION_HEADER] = request.correlation_id
        response.vary.update(("Cookie", "Accept-Language"))
        if request.session.signed_in or request.method == "POST":
            response.headers["Cache-Control"] = "no-store"
        secure = self.settings.secure_cookies
        if request.session.modified:
            if request.session:
                response.set_cookie(
                    COOKIE,
                    self.sessions.dump(request.session),
                    max_age=self.settings.session_seconds,
                    httponly=True,
                    secure=secure,
                    samesite="Lax",
                    path="/",
                )
            else:
                response.delete_cookie(
                    COOKIE, path="/", httponly=True, secure=secure, samesite="Lax"
                )
        if request.language_chosen:
            response.set_cookie(
                LANGUAGE_COOKIE,
                request.locale,
                max_age=365 * 86400,
                httponly=True,
                secure=secure,
                samesite="Lax",
                path="/",
            )
        return response

    def error_page(self, request, status: int, exc: Exception | None = None) -> Response:
        service = exc.service if isinstance(exc, ServiceDown) else None
        return render(request, "error.html", status=status, status_code=status, service=service)


def sign_in_first(request) -> Response:
    target = request.full_path.rstrip("?") if request.method == "GET" else request.path
    return redirect(f"/login?next={quote(target, safe='/?=&')}", code=303)


class PortalWsgiApp(WsgiApp):
    """Routes to the pages; `/static/` from the package; unknown addresses get a page too."""

    def __init__(self, server):
        super().__init__(server)
        self.static = SharedDataMiddleware(
            self._not_found, {"/static": str(STATIC)}, cache_timeout=365 * 86400
        )

    def _not_found(self, environ, start_response):
        return self._page_for_error(Request(environ), 404)(environ, start_response)

    def _page_for_error(self, request, status: int) -> Response:
        site = self.server.site
        site.prepare(request)
        return site.finish(request, site.error_page(request, status))

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/static/"):

            def with_headers(status, headers, exc_info=None):
                headers.append(("X-Content-Type-Options", "nosniff"))
                return start_response(status, headers, exc_info)

            return self.static(environ, with_headers)
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, request.path_values = adapter.match()
        except HTTPException as exc:
            if exc.code < 400:  # redirects (trailing slashes) as werkzeug answers them
                return exc(environ, start_response)
            return self._page_for_error(request, exc.code)(environ, start_response)
        return provider.handle_request(request)(environ, start_response)


class PortalWebServer(JsonWebServer):
    """The chassis' web server (its own port refusal and start) with the portal's routes."""

    def setup(self):
        self.site = PortalSite(self.container.config)
        super().setup()

    def get_wsgi_app(self, operations: bool | None = None):
        # The portal's pages on its port; the operations endpoints (`chassis.web`) are the
        # services', the portal's probes are pages of its own.
        return PortalWsgiApp(self)

    def context_data_from_headers(self, request):
        return {"correlation_id": request.correlation_id, "locale": request.locale}


class Page(HttpRequestHandler):
    """A page: `signed_in=True` sends whoever is not signed in to sign-in first; `role` is
    the role (or the roles, a tuple) the page is for once signed in: anyone else is answered
    403 with a page that leads them to their own home."""

    server = PortalWebServer()

    def __init__(self, method, url, signed_in=False, role="returnee", **kwargs):
        kwargs.setdefault("expected_exceptions", (ApiError, ServiceDown, SignedOut))
        super().__init__(method, url, **kwargs)
        self.signed_in = signed_in
        self.role = role

    def handle_request(self, request):
        started = time.perf_counter()
        site = self.server.site
        site.prepare(request)
        request.shallow = False
        response = site.finish(request, self._respond(site, request))
        service = self.container.service_name
        HTTP_REQUESTS.labels(service, self.url, request.method, response.status_code).inc()
        HTTP_LATENCY.labels(service, self.url, request.method).observe(
            time.perf_counter() - started
        )
        return response

    def _respond(self, site, request) -> Response:
        if request.method == "POST" and not request.session.csrf_matches(
            request.form.get(CSRF_FIELD)
        ):
            return render(request, "error.html", status=403, status_code=403, expired=True)
        if self.signed_in and not request.session.signed_in:
            return sign_in_first(request)
        roles = (self.role,) if isinstance(self.role, str) else self.role
        if self.signed_in and roles and request.session.role not in roles:
            return render(request, "error.html", status=403, status_code=403, forbidden=True)
        try:
            done = GreenEvent()
            self.container.spawn_worker(
                self,
                (request,),
                dict(request.path_values),
                context_data=self.server.context_data_from_headers(request),
                handle_result=partial(self.handle_result, done),
            )
            return done.wait()
        except ServiceDown as exc:
            return site.error_page(request, 503, exc)
        except SignedOut:
            request.session.sign_out()
            request.session.flash("Your session has ended; please sign in again.")
            return sign_in_first(request)
        except ApiError as exc:
            # A refusal the page did not expect (a page handles those it expects itself).
            status = exc.status if exc.status in (403, 404, 409) else 400
            return render(
                request, "error.html", status=status, status_code=status, message=exc.message
            )
        except Exception:
            log.exception("page %s %s failed", request.method, request.path)
            return site.error_page(request, 500)


page = Page.decorator
