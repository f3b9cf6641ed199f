"""The admins' pages under `/admin`: partner organizations (list, create) and staff (invite
an advisor, a provider, an admin or an official; disable or enable an account). The district
dashboard (`district.py`) is theirs too."""

from werkzeug.utils import redirect

from services.portal.forms import field_errors
from services.portal.rendering import render
from services.portal.upstream import ApiError

STAFF_ROLES = ("advisor", "provider", "admin", "official")


def _see_other(url: str):
    return redirect(url, code=303)


def home(request, api):
    return render(request, "admin/home.html")


def organizations(request, api, errors=None, values=None, status=200):
    if request.method == "POST":
        return create_organization(request, api)
    found = api.get("accounts", "/organizations", auth=False)
    return render(
        request,
        "admin/organizations.html",
        status=status,
        organizations=found,
        errors=errors or {},
        values=values or {},
    )


def create_organization(request, api):
    form = request.form
    body = {"name": form.get("name", "").strip(), "kind": form.get("kind", "")}
    for name in ("district", "contact_email"):
        body[name] = form.get(name, "").strip() or None
    try:
        api.post("accounts", "/organizations", json=body)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        errors = field_errors(exc.fields) or {"name": [exc.message]}
        request.method = "GET"
        return organizations(request, api, errors=errors, values=dict(form), status=422)
    request.session.flash("The organization is registered.")
    return _see_other("/admin/organizations")


def staff(request, api, errors=None, values=None, status=200, invited=None):
    found = api.get("accounts", "/organizations", auth=False)
    return render(
        request,
        "admin/staff.html",
        status=status,
        organization_choices=[(o["id"], o["name"]) for o in found],
        roles=STAFF_ROLES,
        errors=errors or {},
        values=values or {},
        invited=invited,
    )


def invite(request, api):
    form = request.form
    body = {
        "email": form.get("email", "").strip(),
        "name": form.get("name", "").strip(),
        "role": form.get("role", ""),
        "organization_id": form.get("organization_id") or None,
        "locale": form.get("locale") or None,
    }
    try:
        invited = api.post("accounts", "/staff", json=body)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        errors = field_errors(exc.fields) or {"email": [exc.message]}
        return staff(request, api, errors=errors, values=dict(form), status=422)
    request.session.flash("The invitation is sent: they choose their password from the email.")
    return staff(request, api, invited=invited)


def account_state(request, api):
    account_id = request.form.get("account_id", "").strip()
    action = request.form.get("action")
    if action not in ("disable", "enable"):
        return staff(request, api, status=400)
    try:
        api.post("accounts", f"/staff/{account_id}/{action}")
    except ApiError as exc:
        if exc.status not in (400, 403, 404, 409):
            raise
        errors = {"account_id": [exc.message]}
        return staff(request, api, errors=errors, values=dict(request.form), status=422)
    if action == "disable":
        request.session.flash("The account is disabled: it cannot sign in.")
    else:
        request.session.flash("The account is enabled again.")
    return _see_other("/admin/staff")
