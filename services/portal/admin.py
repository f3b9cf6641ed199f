"""The admins' pages under `/admin`: partner organizations (list, create), staff (invite an
advisor, a provider, an admin or an official; disable or enable an account) and the policy
catalog (each policy's versions; a new version previewed over the caseload, then published)
the dead letters of every service (list, show, replay, discard) and imports of returnees,
organizations or resources from a spreadsheet (`imports.py`).
The district dashboard (`district.py`) is theirs too."""

import io
import json
from urllib.parse import quote

from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from chassis.sheets import KINDS, errors_csv, write_template
from services.portal.forms import field_errors
from services.portal.imports import MAX_UPLOAD_BYTES, UnreadableFile, prepared
from services.portal.rendering import render, text
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
    members = api.get("accounts", "/staff")
    names = {o["id"]: o["name"] for o in found}
    for member in members:
        member["organization_name"] = names.get(member.get("organization_id"))
    return render(
        request,
        "admin/staff.html",
        status=status,
        members=members,
        me=request.session.person_id,
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


# ---------------------------------------------------------------- policies

# What consulting answers about a policy beyond its document (not sent back with a version).
POLICY_OUTPUT_ONLY = ("id", "version", "published_at", "in_force_from")


def policies(request, api):
    found = api.get("consulting", "/policies", auth=False)
    return render(request, "admin/policies.html", policies=found)


def policy(request, api, policy_id, document=None, errors=None, preview=None, status=200):
    try:
        found = api.get("consulting", f"/policies/{policy_id}", auth=False)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return render(request, "error.html", status=404, status_code=404)
    versions = api.get("consulting", f"/policies/{policy_id}/versions", auth=False)
    if document is None:
        kept = {k: v for k, v in found.items() if k not in POLICY_OUTPUT_ONLY}
        document = json.dumps(kept, ensure_ascii=False, indent=2)
    return render(
        request,
        "admin/policy.html",
        status=status,
        policy=found,
        versions=versions,
        values={"document": document},
        errors=errors or {},
        preview=preview,
    )


def publish_version(request, api, policy_id):
    """The new version's document as JSON: previewed (its impact over the caseload) or
    published; consulting's field errors are listed with the path they name."""
    document = request.form.get("document", "")
    action = request.form.get("action")
    try:
        body = json.loads(document)
    except ValueError as exc:
        errors = {
            "document": [text(request.locale, "This is not valid JSON: {detail}", detail=exc)]
        }
        return policy(request, api, policy_id, document, errors=errors, status=422)
    try:
        if action == "preview":
            found = api.post("consulting", "/policies/preview", json=body)
            return policy(request, api, policy_id, document, preview=found)
        api.post("consulting", f"/policies/{policy_id}/versions", json=body)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        problems = [
            f"{name}: {' '.join(messages)}" for name, messages in field_errors(exc.fields).items()
        ]
        errors = {"document": problems or [exc.message]}
        return policy(request, api, policy_id, document, errors=errors, status=422)
    request.session.flash("The new version is published; returnees are assessed again.")
    return _see_other(f"/admin/policies/{policy_id}")


# ---------------------------------------------------------------- dead letters

# The services whose handlers consume events (each serves its own `/dead-letters`).
CONSUMERS = ("accounts", "consulting", "matching", "notify", "activities", "insights")


def dead_letters(request, api):
    found = api.gather(**{s: ("GET", s, "/dead-letters") for s in CONSUMERS})
    return render(request, "admin/dead_letters.html", found=found, consumers=CONSUMERS)


def dead_letter(request, api, service, event_id):
    if service not in CONSUMERS:
        return render(request, "error.html", status=404, status_code=404)
    if request.method == "POST":
        action = request.form.get("action")
        if action not in ("replay", "discard"):
            return render(request, "error.html", status=400, status_code=400)
        try:
            api.post(service, f"/dead-letters/{event_id}/{action}")
        except ApiError as exc:
            if exc.status != 404:
                raise
        if action == "replay":
            request.session.flash("The event is sent back to its handler.")
        else:
            request.session.flash("The dead letter is discarded.")
        return _see_other("/admin/dead-letters")
    try:
        found = api.get(service, f"/dead-letters/{event_id}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return render(request, "error.html", status=404, status_code=404)
    return render(request, "admin/dead_letter.html", letter=found, service=service)


# ---------------------------------------------------------------- imports

IMPORT_KINDS = tuple(KINDS)


def imports_page(request, api, jobs, errors=None, values=None, status=200):
    return render(
        request,
        "admin/imports.html",
        status=status,
        kinds=IMPORT_KINDS,
        jobs=jobs.of(request.session.person_id),
        errors=errors or {},
        values=values or {},
    )


def start_import(request, api, jobs):
    """The uploaded file read and checked (its columns against the service's row schema), then
    imported in the background; the person watches it on its own page."""
    if (request.content_length or 0) > MAX_UPLOAD_BYTES:
        message = text(request.locale, "The file is larger than {size} MB.",
                       size=MAX_UPLOAD_BYTES // (1024 * 1024))  # fmt: skip
        return render(request, "error.html", status=413, status_code=413, message=message)
    kind = request.form.get("kind", "")
    upload = request.files.get("file")
    values = {"kind": kind}
    if kind not in IMPORT_KINDS:
        errors = {"kind": [text(request.locale, "Choose what the file holds.")]}
        return imports_page(request, api, jobs, errors, values, status=422)
    if upload is None or not upload.filename:
        errors = {"file": [text(request.locale, "Choose a file to upload.")]}
        return imports_page(request, api, jobs, errors, values, status=422)
    try:
        layout, rows = prepared(api, kind, upload.filename, upload.read())
    except UnreadableFile as exc:
        errors = {"file": [text(request.locale, exc.args[0], **exc.params)]}
        return imports_page(request, api, jobs, errors, values, status=422)
    job = jobs.begin(api, kind, upload.filename, layout, rows)
    return _see_other(f"/admin/imports/{job.id}")


def import_job(request, api, jobs, job_id, fragment=False):
    job = jobs.find(job_id, request.session.person_id)
    if job is None:
        return render(request, "error.html", status=404, status_code=404)
    template = "admin/_import_progress.html" if fragment else "admin/import.html"
    return render(request, template, job=job, shown=job.errors[:SHOWN_ERRORS])


SHOWN_ERRORS = 50  # on the page; the file has them all


def import_errors(request, api, jobs, job_id):
    job = jobs.find(job_id, request.session.person_id)
    if job is None:
        return render(request, "error.html", status=404, status_code=404)
    name = f"{job.file_name}.errors.csv"
    return Response(
        errors_csv(job.errors),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


def import_template(request, api, kind):
    """The kind's template, as `station import --template` writes it."""
    if kind not in IMPORT_KINDS:
        return render(request, "error.html", status=404, status_code=404)
    document = api.get(KINDS[kind][0], "/openapi.json", auth=False)
    out = io.BytesIO()
    write_template(document, kind, out)
    return Response(
        out.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{kind}-template.xlsx"'},
    )


# ---------------------------------------------------------------- canned replies

CANNED_FIELDS = ("topic", "title_zh", "title_en", "body_zh", "body_en")


def canned_replies(request, api, errors=None, values=None, status=200):
    found = api.get("consulting", "/canned-replies")
    return render(
        request,
        "admin/canned_replies.html",
        status=status,
        replies=found,
        errors=errors or {},
        values=values or {},
    )


def _canned_body(form) -> dict:
    return {name: form.get(name, "").strip() for name in CANNED_FIELDS}


def create_canned_reply(request, api):
    body = _canned_body(request.form)
    try:
        api.post("consulting", "/canned-replies", json=body)
    except ApiError as exc:
        if exc.status != 400:
            raise
        errors = field_errors(exc.fields) or {"title_en": [exc.message]}
        return canned_replies(request, api, errors=errors, values=body, status=422)
    request.session.flash("The canned reply is saved; advisors can insert it now.")
    return _see_other("/admin/canned-replies")


def canned_reply(request, api, reply_id, errors=None, values=None, status=200):
    if request.method == "POST":
        return change_canned_reply(request, api, reply_id)
    found = next((r for r in api.get("consulting", "/canned-replies") if r["id"] == reply_id),
                 None)  # fmt: skip
    if found is None:
        return render(request, "error.html", status=404, status_code=404)
    return render(
        request,
        "admin/canned_reply.html",
        status=status,
        reply=found,
        errors=errors or {},
        values=values or {k: found[k] for k in CANNED_FIELDS},
    )


def change_canned_reply(request, api, reply_id):
    if request.form.get("action") == "delete":
        try:
            api.delete("consulting", f"/canned-replies/{reply_id}")
        except ApiError as exc:
            if exc.status != 404:
                raise
        request.session.flash("The canned reply is deleted.")
        return _see_other("/admin/canned-replies")
    body = _canned_body(request.form)
    try:
        api.put("consulting", f"/canned-replies/{reply_id}", json=body)
    except ApiError as exc:
        if exc.status == 404:
            return render(request, "error.html", status=404, status_code=404)
        if exc.status != 400:
            raise
        request.method = "GET"
        errors = field_errors(exc.fields) or {"title_en": [exc.message]}
        return canned_reply(request, api, reply_id, errors=errors, values=body, status=422)
    request.session.flash("The canned reply is saved; advisors can insert it now.")
    return _see_other("/admin/canned-replies")
