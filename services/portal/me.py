"""The signed-in returnee's pages under `/me`: overview with eligibility, matches and
intentions, consultations and appointments, activities, notifications and preferences, the
profile and consents, their data and the account's deletion. Each reads and writes through the
services' APIs with the person's own token: what a service refuses them, the page refuses."""

import io
from datetime import UTC, datetime

import segno
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from services.portal import export
from services.portal.forms import (
    consents_body,
    field_errors,
    form_values,
    profile_body,
    profile_values,
)
from services.portal.rendering import render, text
from services.portal.upstream import ApiError, Unavailable

# Consultation topics consulting's SLAs are set for (services/consulting/consultations.py).
TOPICS = (
    "funding",
    "policy",
    "hukou",
    "company_registration",
    "cross_border_finance",
    "office_space",
    "general",
)
CHANNELS = ("email", "in_app", "sms")
# Where on the profile page a person gives what a rule found missing.
PROFILE_ANCHORS = {
    "highest_overseas_degree": "education",
    "study_abroad_days": "education",
    "best_overseas_qs_rank": "education",
    "highest_degree": "education",
    "years_since_graduation": "education",
    "years_since_return": "return_date",
    "age_years": "birth_date",
    "company_age_months": "company-registration_date",
    "company": "company",
    "prior_awards": "profile",
}
STATUS_ORDER = {"eligible": 0, "undetermined": 1, "ineligible": 2}
# What a consultation's page says once its form did what it asked.
DONE = {
    "reply": "Your reply is sent.",
    "close": "The consultation is closed.",
    "reopen": "The consultation is open again.",
    "rate": "Thank you for your rating.",
}


def _see_other(url: str):
    return redirect(url, code=303)


def _me(request) -> str:
    return request.session.person_id


# ---------------------------------------------------------------- what every /me page shows


def unread_count(api, request) -> int:
    """In-app notifications newer than the last visit to the inbox (that visit is remembered
    in the session: notify keeps no read marks)."""
    inbox = api.get(
        "notify",
        "/notifications",
        params={"recipient_id": _me(request), "channel": "in_app", "limit": 100},
    )
    seen = request.session.get("seen") or ""
    return sum(1 for n in inbox if (n.get("created_at") or "") > seen)


def _page(request, api, template: str, status: int = 200, calls=None, **context):
    """A /me page: its own answers gathered at once with the unread count."""
    found = api.gather(unread=lambda: unread_count(api, request), **(calls or {}))
    return render(request, template, status=status, **found, **context)


def _anchor(field: str | None) -> str:
    if not field:
        return "profile"
    return PROFILE_ANCHORS.get(field) or field.replace(".", "-")


def _unknowns(reasons) -> list[dict]:
    """The criteria a rule could not decide for lack of information, each once per field."""
    found, seen = [], set()

    def walk(items):
        for reason in items:
            if reason.get("criteria"):
                walk(reason["criteria"])
            elif reason.get("passed") is None and reason.get("field") not in seen:
                seen.add(reason.get("field"))
                found.append({**reason, "anchor": _anchor(reason.get("field"))})

    walk(reasons)
    return found


def _eligibility(api, request):
    try:
        answer = api.get("consulting", f"/returnees/{_me(request)}/eligibility")
    except ApiError as exc:
        if exc.status == 404:  # registered a moment ago: the assessment is on its way
            return None
        raise
    for policy in answer:
        policy["unknown"] = _unknowns(
            [*policy["reasons"], *(r for t in policy.get("tiers") or () for r in t["reasons"])]
        )
        policy["tier_title"] = next(
            (t["title"] for t in policy.get("tiers") or () if t["code"] == policy.get("tier")), None
        )
    return sorted(answer, key=lambda p: (STATUS_ORDER.get(p["status"], 3), p["title"]))


# ---------------------------------------------------------------- overview


def overview(request, api):
    me = _me(request)
    return _page(
        request,
        api,
        "me/overview.html",
        calls={
            "profile": ("GET", "accounts", f"/returnees/{me}"),
            "eligibility": lambda: _eligibility(api, request),
            "matches": ("GET", "matching", f"/returnees/{me}/matches"),
        },
    )


# ---------------------------------------------------------------- matches and intentions


def matches(request, api, errors=None, status=200):
    me = _me(request)
    return _page(
        request,
        api,
        "me/matches.html",
        status=status,
        errors=errors or {},
        calls={
            "matches": ("GET", "matching", f"/returnees/{me}/matches"),
            "intentions": ("GET", "matching", "/intentions"),
        },
    )


def match_feedback(request, api, match_id):
    interest = request.form.get("interest")
    api.post("matching", f"/matches/{match_id}/feedback", json={"interest": interest})
    if interest == "interested":
        request.session.flash("Noted: you are interested.")
    else:
        request.session.flash("Noted: it is hidden.")
    return _see_other("/me/matches")


def express_intention(request, api):
    resource_id = request.form.get("resource_id", "")
    body = {"resource_id": resource_id, "message": request.form.get("message", "").strip() or None}
    try:
        api.post("matching", "/intentions", json=body)
    except ApiError as exc:
        if exc.status not in (400, 404, 409):
            raise
        errors = {f"message-{resource_id}": [exc.message, *_flat(exc.fields)]}
        return matches(request, api, errors=errors, status=422)
    request.session.flash("Your intention is sent; the provider will answer.")
    return _see_other("/me/intentions")


def _flat(fields) -> list[str]:
    return [m for messages in field_errors(fields).values() for m in messages]


def intentions(request, api):
    return _page(
        request, api, "me/intentions.html", calls={"intentions": ("GET", "matching", "/intentions")}
    )


# ---------------------------------------------------------------- consultations


def consultations(request, api):
    if request.method == "GET":
        return _page(
            request,
            api,
            "me/consultations.html",
            topics=TOPICS,
            errors={},
            values={"policy_id": request.args.get("policy", "")},
            calls=_consultation_lists(api),
        )
    form = request.form
    body = {"topic": form.get("topic", ""), "question": form.get("question", "").strip()}
    if form.get("policy_id"):
        body["policy_id"] = form["policy_id"]
    try:
        created = api.post("consulting", "/consultations", json=body)
    except ApiError as exc:
        if exc.status != 400:
            raise
        return _page(
            request,
            api,
            "me/consultations.html",
            status=422,
            topics=TOPICS,
            errors=field_errors(exc.fields),
            values=dict(form.items()),
            calls=_consultation_lists(api),
        )
    request.session.flash("Your question is sent to the station's advisors.")
    return _see_other(f"/me/consultations/{created['id']}")


def _consultation_lists(api):
    return {
        "consultations": ("GET", "consulting", "/consultations"),
        "policies": lambda: api.get("consulting", "/policies", auth=False),
    }


def consultation(request, api, consultation_id, errors=None, status=200):
    path = f"/consultations/{consultation_id}"
    try:
        thread = api.get("consulting", path)
    except ApiError as exc:
        if exc.status not in (403, 404):
            raise
        return render(request, "error.html", status=404, status_code=404)
    return _page(
        request,
        api,
        "me/consultation.html",
        status=status,
        consultation=thread,
        errors=errors or {},
    )


def consultation_action(request, api, consultation_id):
    """Reply, close, reopen or rate: the form says which."""
    action = request.form.get("action")
    path = f"/consultations/{consultation_id}"
    try:
        if action == "reply":
            api.post("consulting", f"{path}/messages", json={"body": request.form.get("body", "")})
        elif action in ("close", "reopen"):
            api.post("consulting", f"{path}/{action}")
        elif action == "rate":
            rating = request.form.get("rating", "")
            body = {
                "rating": int(rating) if rating.isdigit() else rating,
                "comment": request.form.get("comment", "").strip() or None,
            }
            api.post("consulting", f"{path}/rating", json=body)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        errors = field_errors(exc.fields) or {
            "body" if action == "reply" else action: [exc.message]
        }
        return consultation(request, api, consultation_id, errors=errors, status=422)
    request.session.flash(DONE.get(action, "Done."))
    return _see_other(f"/me/consultations/{consultation_id}")


# ---------------------------------------------------------------- appointments


def appointments(request, api, errors=None, status=200):
    me = _me(request)
    found = api.gather(
        mine=("GET", "consulting", f"/returnees/{me}/appointments"),
        slots=("GET", "consulting", "/slots"),
    )
    # consulting lists upcoming slots only; those with a seat left and not booked yet are free
    booked = {a["slot_id"] for a in found["mine"] or () if a["status"] == "booked"}
    free = [s for s in found["slots"] or () if s["seats_left"] > 0 and s["id"] not in booked]
    slots = free if not isinstance(found["slots"], Unavailable) else found["slots"]
    return _page(
        request,
        api,
        "me/appointments.html",
        status=status,
        mine=found["mine"],
        slots=slots,
        errors=errors or {},
        topics=TOPICS,
    )


def book_appointment(request, api):
    slot_id = request.form.get("slot_id", "")
    body = {"slot_id": slot_id, "topic": request.form.get(f"topic-{slot_id}") or None}
    try:
        api.post("consulting", "/appointments", json=body)
    except ApiError as exc:
        if exc.status not in (400, 404, 409):
            raise
        return appointments(
            request, api, errors={f"slot-{body['slot_id']}": [exc.message]}, status=422
        )
    request.session.flash("Your appointment is booked.")
    return _see_other("/me/appointments")


def cancel_appointment(request, api, appointment_id):
    try:
        api.post("consulting", f"/appointments/{appointment_id}/cancel")
    except ApiError as exc:
        if exc.status not in (404, 409):
            raise
        return appointments(
            request, api, errors={f"appointment-{appointment_id}": [exc.message]}, status=422
        )
    request.session.flash("Your appointment is cancelled.")
    return _see_other("/me/appointments")


# ---------------------------------------------------------------- activities


def my_activities(request, api):
    kept = request.session.get("registrations") or {}
    calls = {
        activity_id: (lambda a=activity_id, r=registration_id: _registration(api, a, r))
        for activity_id, registration_id in kept.items()
    }
    found = api.gather(**calls)
    mine = [found[a] for a in kept if found[a] and not isinstance(found[a], Unavailable)]
    unavailable = any(isinstance(v, Unavailable) for v in found.values())
    return _page(request, api, "me/activities.html", registrations=mine, unavailable=unavailable)


def _registration(api, activity_id, registration_id):
    try:
        found = api.gather(
            activity=("GET", "activities", f"/activities/{activity_id}"),
            registration=(
                "GET",
                "activities",
                f"/activities/{activity_id}/registrations/{registration_id}",
            ),
        )
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


def sign_up(request, api, activity_id):
    try:
        registration = api.post("activities", f"/activities/{activity_id}/registrations")
    except ApiError as exc:
        if exc.status not in (400, 404, 409):
            raise
        request.session.flash(exc.message)
        return _see_other(f"/activities/{activity_id}")
    kept = dict(request.session.get("registrations") or {})
    kept[activity_id] = registration["id"]
    request.session["registrations"] = kept
    request.session.flash("You are signed up.")
    return _see_other("/me/activities")


def cancel_registration(request, api, activity_id):
    kept = dict(request.session.get("registrations") or {})
    registration_id = kept.get(activity_id)
    if registration_id:
        try:
            api.delete("activities", f"/activities/{activity_id}/registrations/{registration_id}")
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise
        kept.pop(activity_id)
        request.session["registrations"] = kept
        request.session.flash("Your registration is cancelled.")
    return _see_other("/me/activities")


def check_in_code(request, api, activity_id, registration_id):
    """The check-in code as a QR image, for the station's scanner."""
    registration = api.get(
        "activities", f"/activities/{activity_id}/registrations/{registration_id}"
    )
    code = registration.get("check_in_code")
    if not code:
        return Response(status=404)
    image = io.BytesIO()
    segno.make(code, error="m").save(image, kind="png", scale=8, border=2)
    return Response(
        image.getvalue(), content_type="image/png", headers={"Cache-Control": "no-store"}
    )


# ---------------------------------------------------------------- notifications


def notifications(request, api):
    inbox = api.get(
        "notify",
        "/notifications",
        params={"recipient_id": _me(request), "channel": "in_app", "limit": 100},
    )
    seen = request.session.get("seen") or ""
    for item in inbox:
        item["unread"] = (item.get("created_at") or "") > seen
    if inbox:
        request.session["seen"] = max(n.get("created_at") or "" for n in inbox)
    unread = sum(1 for n in inbox if n["unread"])
    return render(request, "me/notifications.html", notifications=inbox, unread=0, new_count=unread)


def preferences(request, api):
    me = _me(request)
    path = f"/recipients/{me}/preferences"
    if request.method == "POST":
        form = request.form
        topics = api.get("notify", "/topics")
        opt_outs = [
            {"channel": channel, "topic": topic["name"]}
            for topic in topics
            for channel in topic["channels"]
            if channel in CHANNELS and form.get(f"receive-{topic['name']}-{channel}") != "yes"
        ]
        quiet = None
        if form.get("quiet") == "yes":
            quiet = {
                "start": form.get("quiet-start", ""),
                "end": form.get("quiet-end", ""),
                "timezone": "Asia/Shanghai",
            }
        try:
            api.put("notify", path, json={"opt_outs": opt_outs, "quiet_hours": quiet})
        except ApiError as exc:
            if exc.status != 400:
                raise
            errors = {
                k.replace("quiet_hours", "quiet"): v for k, v in field_errors(exc.fields).items()
            }
            return _page(
                request,
                api,
                "me/preferences.html",
                status=422,
                errors=errors,
                values=dict(form.items()),
                calls={"topics": ("GET", "notify", "/topics")},
            )
        request.session.flash("Your preferences are saved.")
        return _see_other("/me/preferences")
    found = api.gather(topics=("GET", "notify", "/topics"), preferences=("GET", "notify", path))
    return _page(
        request,
        api,
        "me/preferences.html",
        errors={},
        values=_preference_values(found["preferences"], found["topics"]),
        topics=found["topics"],
    )


def _preference_values(preferences, topics) -> dict:
    opted_out = {(o["channel"], o["topic"]) for o in (preferences or {}).get("opt_outs", ())}
    values = {}
    for topic in topics or ():
        for channel in topic["channels"]:
            out = {(channel, topic["name"]), (channel, "*"), ("*", topic["name"]), ("*", "*")}
            values[f"receive-{topic['name']}-{channel}"] = "" if opted_out & out else "yes"
    quiet = (preferences or {}).get("quiet_hours")
    if quiet:
        values.update(
            {"quiet": "yes", "quiet-start": quiet["start"][:5], "quiet-end": quiet["end"][:5]}
        )
    return values


# ---------------------------------------------------------------- profile and consents


def profile(request, api):
    me = _me(request)
    path = f"/returnees/{me}"
    if request.method == "GET":
        found = api.gather(profile=("GET", "accounts", path))
        return _page(
            request,
            api,
            "me/profile.html",
            values=profile_values(found["profile"]),
            errors={},
            consent_times=found["profile"].get("consent_times") or {},
        )
    form = request.form
    values = form_values(form)
    if "add_education" in form:
        return _page(
            request,
            api,
            "me/profile.html",
            values=values,
            errors={},
            consent_times={},
            focus_education=True,
        )
    try:
        changed = api.patch("accounts", path, json=profile_body(form, registering=False))
    except ApiError as exc:
        if exc.status != 400:
            raise
        return _page(
            request,
            api,
            "me/profile.html",
            status=422,
            values=values,
            errors=field_errors(exc.fields),
            message=exc.message,
            consent_times={},
        )
    request.session["name"] = changed.get("name")
    request.session.flash("Your profile is saved.")
    return _see_other("/me/profile")


def consents(request, api):
    api.put("accounts", f"/returnees/{_me(request)}/consents", json=consents_body(request.form))
    request.session.flash("Your consents are saved.")
    return _see_other("/me/profile#consents")


# ---------------------------------------------------------------- my data and my account


def my_data(request, api):
    return _page(request, api, "me/data.html")


def download(request, api, kind):
    held = export.everything(api, _me(request), request.session.get("registrations") or {})
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    if kind == "xlsx":
        body = export.as_xlsx(held, request.locale)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body = export.as_json(held)
        mimetype = "application/json"
    headers = {"Content-Disposition": f'attachment; filename="my-data-{stamp}.{kind}"'}
    return Response(body, mimetype=mimetype, headers=headers)


def delete_account(request, api):
    if request.method == "GET":
        return _page(request, api, "me/delete.html", errors={})
    if request.form.get("confirm") != "yes":
        errors = {"confirm": [text(request.locale, "Tick the box to confirm.")]}
        return _page(request, api, "me/delete.html", status=422, errors=errors)
    api.delete("accounts", f"/returnees/{_me(request)}")
    request.session.clear()
    request.session.flash("Your account and your data are deleted.")
    return _see_other("/")
