"""The providers' pages under `/partner`: their organization's resources (publish, change
places and validity, withdraw),
the cooperation intentions addressed to them (accept or decline with a message) and their own
figures. Matching answers a provider only about their own organization."""

from collections import Counter

from werkzeug.utils import redirect

from services.portal.forms import field_errors
from services.portal.rendering import render
from services.portal.upstream import ApiError


def _see_other(url: str):
    return redirect(url, code=303)


def _organization(request) -> str | None:
    return request.session.organization_id


def resources(request, api, errors=None, values=None, status=200):
    organization = _organization(request)
    found = (
        api.get(
            "matching",
            "/resources",
            params={"organization_id": organization, "include_expired": "true", "limit": 500},
            auth=False,
        )
        if organization
        else []
    )
    return render(
        request,
        "partner/resources.html",
        status=status,
        resources=found,
        errors=errors or {},
        values=values or {},
    )


def publish_resource(request, api):
    form = request.form
    capacity = form.get("capacity", "").strip()
    body = {
        "title": form.get("title", "").strip(),
        "kind": form.get("kind", ""),
        "organization_id": _organization(request),
        "needs_served": form.getlist("needs_served"),
        "industries": form.getlist("industries"),
        "stages": form.getlist("stages"),
        "capacity": int(capacity) if capacity.isdigit() else capacity,
        "description": form.get("description", "").strip(),
    }
    for name in ("district", "valid_from", "valid_until"):
        if form.get(name, "").strip():
            body[name] = form.get(name).strip()
    try:
        api.post("matching", "/resources", json=body)
    except ApiError as exc:
        if exc.status not in (400, 403):
            raise
        errors = field_errors(exc.fields) or {"title": [exc.message]}
        values = {**form, **{k: form.getlist(k) for k in ("needs_served", "industries", "stages")}}
        return resources(request, api, errors=errors, values=values, status=422)
    request.session.flash("The resource is published; matching proposes it to returnees.")
    return _see_other("/partner")


def resource(request, api, resource_id, errors=None, values=None, status=200):
    """One of their organization's resources, its places and validity to change."""
    try:
        found = api.get("matching", f"/resources/{resource_id}", auth=False)
    except ApiError as exc:
        if exc.status not in (400, 404):
            raise
        found = None
    if found is None or found["organization_id"] != _organization(request):
        return render(request, "error.html", status=404, status_code=404)
    if values is None:
        values = {k: found.get(k) or "" for k in ("capacity", "valid_from", "valid_until")}
    return render(
        request,
        "partner/resource.html",
        status=status,
        resource=found,
        errors=errors or {},
        values=values,
    )


def change_resource(request, api, resource_id):
    """`PATCH /resources/{id}` with the places and validity as the form has them (an empty
    date: none). Matching refuses another organization's resource."""
    form = request.form
    capacity = form.get("capacity", "").strip()
    body = {"capacity": int(capacity) if capacity.isdigit() else capacity}
    for name in ("valid_from", "valid_until"):
        body[name] = form.get(name, "").strip() or None
    try:
        api.patch("matching", f"/resources/{resource_id}", json=body)
    except ApiError as exc:
        if exc.status == 404:
            return render(request, "error.html", status=404, status_code=404)
        if exc.status not in (400, 403, 409):
            raise
        errors = field_errors(exc.fields) or {"capacity": [exc.message]}
        values = {k: form.get(k, "") for k in ("capacity", "valid_from", "valid_until")}
        return resource(request, api, resource_id, errors=errors, values=values, status=422)
    request.session.flash("The resource is changed; matching proposes it anew.")
    return _see_other("/partner")


def withdraw_resource(request, api, resource_id):
    try:
        api.delete("matching", f"/resources/{resource_id}")
    except ApiError as exc:
        if exc.status != 409:
            raise
    request.session.flash("The resource is withdrawn.")
    return _see_other("/partner")


def intentions(request, api, errors=None, status=200):
    found = api.get("matching", "/intentions")
    found.sort(key=lambda i: (i["status"] != "expressed", i.get("expressed_at") or ""))
    return render(
        request, "partner/intentions.html", status=status, intentions=found, errors=errors or {}
    )


def decide(request, api, intention_id):
    decision = request.form.get("decision")
    if decision not in ("accept", "decline"):
        return intentions(request, api, status=400)
    message = request.form.get(f"message-{intention_id}", "").strip()
    try:
        api.post(
            "matching",
            f"/intentions/{intention_id}/{decision}",
            json={"message": message} if message else None,
        )
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        flat = [m for ms in field_errors(exc.fields).values() for m in ms]
        return intentions(
            request, api, errors={f"message-{intention_id}": [exc.message, *flat]}, status=422
        )
    if decision == "accept":
        request.session.flash("Accepted: the returnee is told.")
    else:
        request.session.flash("Declined: the returnee is told.")
    return _see_other("/partner/intentions")


def figures(request, api):
    """Their own figures: intentions by status, by resource and by month."""
    found = api.get("matching", "/intentions")
    by_status = Counter(i["status"] for i in found)
    by_resource: dict[str, Counter] = {}
    for intention in found:
        title = intention.get("resource_title") or ""
        by_resource.setdefault(title, Counter())[intention["status"]] += 1
    by_month = Counter((i.get("expressed_at") or "")[:7] for i in found)
    return render(
        request,
        "partner/figures.html",
        total=len(found),
        by_status=by_status,
        by_resource=sorted(by_resource.items()),
        by_month=sorted(by_month.items()),
    )
