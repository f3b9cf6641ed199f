"""The services as the portal reaches them: their public HTTP APIs, called with the signed-in
person's token and language. A service that does not answer is `ServiceDown`; a refusal in the
platform's error shape is `ApiError` (its message and field errors already in the person's
language); a token nobody accepts any more is `SignedOut`.

A list the services answer a page at a time (chassis.paging: an array, the next page's cursor
in `X-Next-Cursor`) comes back whole from `get` unless the call names a `limit`: the portal
follows the cursors, `MAX_PAGE` items a request, up to `MAX_FOLLOWED` pages.
"""

import logging
from urllib.parse import quote

import eventlet
import requests
from nameko.extensions import DependencyProvider
from requests.adapters import HTTPAdapter

from chassis.access import ACCESS_CASE_HEADER, ACCESS_REASON_HEADER
from services.portal.session import Session
from services.portal.settings import PortalSettings

log = logging.getLogger(__name__)

NEXT_CURSOR = "X-Next-Cursor"  # chassis.paging.NEXT_HEADER, as the services answer it
MAX_PAGE = 100  # chassis.paging.MAX_LIMIT
MAX_FOLLOWED = 100  # pages of one list: 10,000 items, beyond any page the portal renders


class ServiceDown(Exception):
    def __init__(self, service: str):
        self.service = service
        super().__init__(f"{service} does not answer")


class SignedOut(Exception):
    """The person's session ended (token expired and not renewable, or revoked)."""


class ApiError(Exception):
    def __init__(self, service: str, status: int, payload: dict):
        self.service = service
        # A 422 (the body broke a rule its operation states) is, for a page, what a 400 is:
        # the form's field errors; `answered` keeps what the service said.
        self.answered = status
        self.status = 400 if status == 422 else status
        self.code = payload.get("error", "error")
        self.message = payload.get("message", "")
        self.fields = payload.get("fields") or {}
        super().__init__(f"{service} answered {status} {self.code}: {self.message}")


class Unavailable:
    """What an optional call gives when its service is down: pages say so in that place."""

    def __init__(self, service: str):
        self.service = service

    def __bool__(self):
        return False

    def __iter__(self):
        return iter(())


class Platform:
    """One request's view of the services: `api.get("consulting", "/policies")`."""

    def __init__(self, services: "Services", session: Session, locale: str, correlation_id: str):
        self.services = services
        self.session = session
        self.locale = locale
        self.correlation_id = correlation_id
        self.stated: dict[str, str] = {}

    def stating(self, case: str | None = None, reason: str | None = None) -> "Platform":
        """The same view, each call stating the case a staff member reads a returnee's data
        through, or their reason (`chassis.access`: percent-encoded, a header is Latin-1)."""
        stating = Platform(self.services, self.session, self.locale, self.correlation_id)
        if case:
            stating.stated[ACCESS_CASE_HEADER] = case
        if reason:
            stating.stated[ACCESS_REASON_HEADER] = quote(reason, safe="")
        return stating

    def get(self, service, path, **kwargs):
        return self.call("GET", service, path, **kwargs)

    def post(self, service, path, **kwargs):
        return self.call("POST", service, path, **kwargs)

    def put(self, service, path, **kwargs):
        return self.call("PUT", service, path, **kwargs)

    def patch(self, service, path, **kwargs):
        return self.call("PATCH", service, path, **kwargs)

    def delete(self, service, path, **kwargs):
        return self.call("DELETE", service, path, **kwargs)

    def call(self, method, service, path, *, json=None, params=None, auth=True, raw=False):
        """The answer's JSON (None for 204; the response itself with `raw`). With `auth`, the
        person's token goes along, refreshed first when it is about to run out. A paged list
        read without a `limit` comes whole: every page is followed."""
        if method != "GET" or raw or "limit" in (params or {}):
            return self._call(method, service, path, json, params, auth, raw)
        answer, response = self._call(method, service, path, json, params, auth, raw, True)
        followed = 0
        while isinstance(answer, list) and response.headers.get(NEXT_CURSOR):
            followed += 1
            if followed >= MAX_FOLLOWED:
                log.warning("%s %s: more than %s pages, the rest not read", service, path,
                            MAX_FOLLOWED)  # fmt: skip
                break
            following = {**(params or {}), "limit": MAX_PAGE,
                         "cursor": response.headers[NEXT_CURSOR]}  # fmt: skip
            more, response = self._call(method, service, path, json, following, auth, raw, True)
            answer = answer + (more or [])
        return answer

    def _call(self, method, service, path, json, params, auth, raw, with_response=False):
        if auth and self.session.signed_in and self.session.expiring():
            self.refresh()
        response = self._send(method, service, path, json, params, auth)
        if response.status_code == 401 and auth and self.session.signed_in:
            self.refresh()
            response = self._send(method, service, path, json, params, auth)
            if response.status_code == 401:
                raise SignedOut()
        if raw:
            return response
        if response.status_code >= 500:
            log.warning("%s answered %s to %s %s", service, response.status_code, method, path)
            raise ServiceDown(service)
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = {}
            raise ApiError(
                service, response.status_code, payload if isinstance(payload, dict) else {}
            )
        answer = None if response.status_code == 204 or not response.content else response.json()
        return (answer, response) if with_response else answer

    def refresh(self) -> None:
        """New tokens for the refresh token, where accounts issues them; otherwise, or when it
        is refused, the session is over."""
        token = self.session.get("refresh")
        if not token:
            raise SignedOut()
        response = self._send(
            "POST", "accounts", "/auth/refresh", {"refresh_token": token}, None, auth=False
        )
        if response.status_code != 200:
            raise SignedOut()
        self.session.renew(response.json())

    def _send(self, method, service, path, body, params, auth) -> requests.Response:
        # X-Consent-Source: what a person decides here is decided on the web (accounts records it).
        headers = {"Accept-Language": self.locale, "X-Correlation-Id": self.correlation_id,
                   "X-Consent-Source": "web", **self.stated}  # fmt: skip
        if auth and self.session.signed_in:
            headers["Authorization"] = f"Bearer {self.session['access']}"
        url = f"{self.services.settings.urls[service]}{path}"
        try:
            return self.services.http.request(
                method,
                url,
                json=body,
                params=params,
                headers=headers,
                timeout=self.services.settings.timeout,
            )
        except requests.RequestException as exc:
            log.warning("%s unreachable (%s %s): %s", service, method, path, exc)
            raise ServiceDown(service) from None

    def gather(self, **calls):
        """Several calls at once, each `name=(method, service, path[, kwargs])` or a callable;
        `{name: answer}`. A call whose service is down gives `Unavailable`; other errors
        propagate after every call has ended."""
        pool = eventlet.GreenPool(len(calls) or 1)

        def run(call):
            try:
                if callable(call):
                    return call()
                method, service, path, *options = call
                return self.call(method, service, path, **(options[0] if options else {}))
            except ServiceDown as exc:
                return Unavailable(exc.service)

        threads = {name: pool.spawn(run, call) for name, call in calls.items()}
        return {name: thread.wait() for name, thread in threads.items()}


class Services(DependencyProvider):
    """The HTTP connections to the services, shared by the portal's workers."""

    def setup(self):
        self.settings = PortalSettings.from_config(self.container.config)
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def stop(self):
        self.http.close()

    def get_dependency(self, worker_ctx):
        return self

    def acting_for(self, request) -> Platform:
        return Platform(self, request.session, request.locale, request.correlation_id)
