"""Pages of the account's life: register, sign in and out, verify the email, reset or set a
password. Each calls accounts' public endpoints; the email links (`PORTAL_URL/verify-email?
token=`, `/reset-password?token=`, `/set-password?token=`) lead here."""

import contextlib
from urllib.parse import urlsplit

from werkzeug.utils import redirect

from services.portal.forms import field_errors, form_values, profile_body
from services.portal.rendering import render, text
from services.portal.upstream import ApiError, ServiceDown

NEW_PROFILE = {"locale": None, "education_rows": 2, "has_company": "no"}


def _see_other(url: str):
    return redirect(url, code=303)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another site's address)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/me"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/me"
    return target


def _refusal(request, template: str, exc: ApiError, values: dict, **context):
    """The form again, each of the service's field errors next to its field."""
    return render(
        request,
        template,
        status=422,
        values=values,
        errors=field_errors(exc.fields),
        message=exc.message,
        **context,
    )


# ---------------------------------------------------------------- registering


def register(request, api):
    if request.method == "GET":
        return render(
            request, "register.html", values={**NEW_PROFILE, "locale": request.locale}, errors={}
        )
    form = request.form
    values = form_values(form)
    if "add_education" in form:  # one more education entry, nothing sent yet
        return render(request, "register.html", values=values, errors={}, focus_education=True)
    if form.get("password", "") != form.get("password_repeat", ""):
        errors = {"password_repeat": [text(request.locale, "The two passwords differ.")]}
        return render(request, "register.html", status=422, values=values, errors=errors)
    body = profile_body(form, registering=True)
    try:
        api.post("accounts", "/returnees", json=body, auth=False)
    except ApiError as exc:
        if exc.status == 409:
            exc.fields = {"email": [exc.message]}
        elif exc.status != 400:
            raise
        return _refusal(request, "register.html", exc, values)
    request.session["registered"] = body.get("email")
    return _see_other("/register/done")


def registered(request, api):
    return render(request, "registered.html", email=request.session.get("registered"))


# ---------------------------------------------------------------- signing in and out


def sign_in(request, api):
    target = _safe_next(request.values.get("next"))
    if request.session.signed_in and request.method == "GET":
        home = request.session.home
        return _see_other(target if target.startswith(home) else home)
    if request.method == "GET":
        return render(request, "login.html", values={}, errors={}, next=target)
    email = request.form.get("email", "").strip()
    credentials = {"email": email, "password": request.form.get("password", "")}
    try:
        tokens = api.post("accounts", "/auth/token", json=credentials, auth=False)
    except ApiError as exc:
        if exc.status not in (400, 401, 403, 429):
            raise
        errors = field_errors(exc.fields)
        if not errors:  # wrong email or password, throttled, not verified: about both fields
            errors = {"email": [exc.message]}
        return render(
            request,
            "login.html",
            status=422,
            values={"email": email},
            errors=errors,
            next=target,
            message=exc.message,
        )
    request.session.sign_in(tokens)
    if request.session.role == "returnee":
        profile = api.get("accounts", f"/returnees/{request.session.person_id}")
        request.session["name"] = profile.get("name")
        return _see_other(target)
    # Staff start on their role's home, unless they were on their way to one of their pages.
    home = request.session.home
    return _see_other(target if target.startswith(home) else home)


def sign_out(request, api):
    refresh = request.session.get("refresh")
    if refresh:  # the refresh token dies with the session, where accounts issues them
        with contextlib.suppress(ApiError, ServiceDown):  # the session ends whatever it says
            api.post("accounts", "/auth/logout", json={"refresh_token": refresh}, auth=False)
    request.session.sign_out()
    request.session.flash("You are signed out.")
    return _see_other("/")


def staff(request, api):
    """The old address of the staff console: each role's home now."""
    return _see_other(request.session.home)


# ---------------------------------------------------------------- email and passwords


def verify_email(request, api):
    """The emailed link shows a button: a mail scanner following links confirms nothing."""
    token = request.values.get("token", "")
    if request.method == "GET":
        return render(request, "verify_email.html", token=token, done=False)
    try:
        api.post("accounts", "/auth/verify-email", json={"token": token}, auth=False)
    except ApiError as exc:
        if exc.status not in (400, 404, 409, 410):
            raise
        return render(
            request, "verify_email.html", status=422, token=token, done=False, message=exc.message
        )
    return render(request, "verify_email.html", token="", done=True)


def reset_password(request, api):
    """Without a token: ask for the email the link goes to. With one: choose the new password."""
    token = request.values.get("token", "")
    if token:
        return _choose_password(request, api, token, "reset_password.html")
    if request.method == "GET":
        return render(request, "forgot_password.html", values={}, errors={}, sent=False)
    email = request.form.get("email", "").strip()
    try:
        api.post("accounts", "/auth/password-reset", json={"email": email}, auth=False)
    except ApiError as exc:
        if exc.status != 400:
            raise
        return _refusal(request, "forgot_password.html", exc, {"email": email}, sent=False)
    # The same answer whether or not the email is known: nobody learns who has an account.
    return render(request, "forgot_password.html", values={}, errors={}, sent=True)


def set_password(request, api):
    """An invitation's link: the new account chooses its first password."""
    return _choose_password(request, api, request.values.get("token", ""), "set_password.html")


def _choose_password(request, api, token: str, template: str):
    if request.method == "GET":
        return render(request, template, token=token, values={}, errors={}, done=False)
    form = request.form
    if form.get("password", "") != form.get("password_repeat", ""):
        errors = {"password_repeat": [text(request.locale, "The two passwords differ.")]}
        return render(
            request, template, status=422, token=token, values={}, errors=errors, done=False
        )
    body = {"token": token, "password": form.get("password", "")}
    try:
        api.post("accounts", "/auth/password-reset/confirm", json=body, auth=False)
    except ApiError as exc:
        if exc.status not in (400, 404, 409, 410):
            raise
        errors = field_errors(exc.fields)
        if "token" in errors or not errors:
            errors.setdefault("password", []).extend(errors.pop("token", [exc.message]))
        return render(
            request,
            template,
            status=422,
            token=token,
            values={},
            errors=errors,
            done=False,
            message=exc.message,
        )
    return render(request, template, token="", values={}, errors={}, done=True)
