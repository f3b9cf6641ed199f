"""The advisors' console under `/console`: the consultation queue by nearest deadline and each
consultation's thread (assign to me, answer, ask for information, close), a returnee's page,
the station's appointment slots, and the exchange activities (create, registrations and
waitlist, check-in at the door, agreements, close and report). Each reads and writes through
the services' APIs with the advisor's own token."""

from datetime import UTC, date, datetime, timedelta

from werkzeug.utils import redirect

from chassis.clock import SHANGHAI
from services.portal.forms import field_errors
from services.portal.rendering import TOPICS, render
from services.portal.upstream import ApiError

OPEN = ("new", "assigned", "answered", "waiting_on_returnee", "reopened")
STATES = (*OPEN, "closed")
# Until the first response, its deadline comes first; after it, the resolution's.
RESPONDING = ("new", "assigned", "reopened")
ACTIVITY_KINDS = ("exchange", "site_visit", "briefing", "training")


def _see_other(url: str):
    return redirect(url, code=303)


def _moment(value) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def time_left(due, now: datetime) -> dict | None:
    """A deadline as the queue shows it: `{due, minutes, breached}`, minutes left (negative
    once it has passed)."""
    moment = _moment(due)
    if moment is None:
        return None
    minutes = int((moment - now).total_seconds() // 60)
    return {"due": moment, "minutes": minutes, "breached": minutes < 0}


def queue_entry(consultation: dict, now: datetime) -> dict:
    """A consultation with its clocks: the first response's (until answered) and the
    resolution's; paused while waiting on the returnee; `breached` when a clock ran out or
    consulting escalated it."""
    status = consultation["status"]
    closed = status == "closed"
    paused = bool(consultation.get("sla_paused")) or status == "waiting_on_returnee"
    first = None
    if not consultation.get("first_responded_at") and status in RESPONDING:
        first = time_left(consultation.get("first_response_due"), now)
    resolution = None if closed else time_left(consultation.get("resolution_due"), now)
    clocks = [c for c in (first, resolution) if c]
    breached = not closed and (
        bool(consultation.get("escalated")) or any(c["breached"] for c in clocks)
    )
    nearest = min((c["due"] for c in clocks), default=None)
    return {
        **consultation,
        "first": first,
        "resolution": resolution,
        "paused": paused,
        "breached": breached,
        "nearest": nearest,
    }


def queue_order(entry: dict):
    """Nearest deadline first (the oldest first among equal ones); paused and closed ones
    after the running clocks."""
    far = datetime.max.replace(tzinfo=UTC)
    return (
        entry["status"] == "closed",
        entry["paused"],
        entry["nearest"] or far,
        entry.get("created_at") or "",
    )


def _duration(minutes: int) -> tuple[int, int, int]:
    minutes = abs(minutes)
    return minutes // 1440, minutes % 1440 // 60, minutes % 60


def queue(request, api):
    topic = request.args.get("topic", "")
    state = request.args.get("state", "open")
    params = {"limit": 200}
    if state in STATES:
        params["status"] = state
    found = api.get("consulting", "/consultations", params=params)
    now = datetime.now(UTC)
    entries = [queue_entry(c, now) for c in found]
    if state == "open":
        entries = [e for e in entries if e["status"] in OPEN]
    if topic in TOPICS:
        entries = [e for e in entries if e["topic"] == topic]
    entries.sort(key=queue_order)
    return render(
        request,
        "console/queue.html",
        entries=entries,
        topic=topic,
        state=state,
        states=STATES,
        duration=_duration,
        me=request.session.person_id,
    )


def _returnee_name(api, returnee_id) -> str | None:
    try:
        return api.get("accounts", f"/returnees/{returnee_id}").get("name")
    except ApiError:
        return None  # erased, or not theirs to read: the page shows the id


def consultation(request, api, consultation_id, errors=None, values=None, status=200):
    found = api.get("consulting", f"/consultations/{consultation_id}")
    entry = queue_entry(found, datetime.now(UTC))
    replies = api.get("consulting", "/canned-replies", params={"topic": found["topic"]})
    values = dict(values or {})
    inserted = inserted_reply(replies, request.args.get("canned"), request.args.get("in"))
    if inserted is not None and "body" not in values:
        values["body"] = inserted
    return render(
        request,
        "console/consultation.html",
        status=status,
        consultation=entry,
        returnee_name=_returnee_name(api, found["returnee_id"]),
        duration=_duration,
        errors=errors or {},
        values=values,
        me=request.session.person_id,
        replies=replies,
    )


def inserted_reply(replies: list[dict], reply_id: str | None, language: str | None):
    """The text of the canned reply chosen (`?canned=<id>&in=zh-CN|en`) to start the answer
    with; None when none (or none of this topic) is chosen."""
    suffix = {"zh-CN": "zh", "en": "en"}.get(language or "")
    for reply in replies:
        if suffix and reply["id"] == reply_id:
            return reply[f"body_{suffix}"]
    return None


CONSULTATION_DONE = {
    "assign": "The consultation is yours.",
    "answer": "Your answer is sent.",
    "ask": "Your question is sent; the clock waits for the returnee.",
    "close": "The consultation is closed.",
}


def consultation_action(request, api, consultation_id):
    action = request.form.get("action")
    path = f"/consultations/{consultation_id}"
    try:
        if action == "assign":
            api.post("consulting", f"{path}/assign", json={"advisor_id": request.session.person_id})
        elif action in ("answer", "ask"):
            body = {"body": request.form.get("body", "").strip(), "asks_returnee": action == "ask"}
            api.post("consulting", f"{path}/messages", json=body)
        elif action == "close":
            api.post("consulting", f"{path}/close")
        else:
            return consultation(request, api, consultation_id, status=400)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        errors = field_errors(exc.fields) or {"body": [exc.message]}
        values = {"body": request.form.get("body", "")}
        return consultation(request, api, consultation_id, errors=errors, values=values, status=422)
    request.session.flash(CONSULTATION_DONE[action])
    return _see_other(f"/console/consultations/{consultation_id}")


# ---------------------------------------------------------------- a returnee's page


def find_returnee(request, api):
    """Search by part of a name, email, phone or company name (accounts' search)."""
    q = request.args.get("q", "").strip()
    errors, found = {}, None
    if q:
        try:
            found = api.get("accounts", "/search/returnees", params={"q": q, "limit": 50})
        except ApiError as exc:
            if exc.status != 400:
                raise
            errors = {"q": [m for ms in field_errors(exc.fields).values() for m in ms]
                      or [exc.message]}  # fmt: skip
    return render(
        request,
        "console/find.html",
        status=422 if errors else 200,
        q=q,
        found=found,
        errors=errors,
    )


def returnee(request, api, returnee_id):
    try:
        profile = api.get("accounts", f"/returnees/{returnee_id}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return render(request, "error.html", status=404, status_code=404)
    found = api.gather(
        eligibility=("GET", "consulting", f"/returnees/{returnee_id}/eligibility"),
        matches=("GET", "matching", f"/returnees/{returnee_id}/matches"),
        consultations=(
            "GET",
            "consulting",
            "/consultations",
            {"params": {"returnee_id": returnee_id, "limit": 50}},
        ),
        appointments=("GET", "consulting", f"/returnees/{returnee_id}/appointments"),
    )
    return render(request, "console/returnee.html", profile=profile, **found)


# ---------------------------------------------------------------- appointments


def _day(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else datetime.now(SHANGHAI).date()
    except ValueError:
        return datetime.now(SHANGHAI).date()


def _local(value: str) -> str:
    """A `datetime-local` field (Shanghai time, no offset) as the APIs take it."""
    value = (value or "").strip()
    if len(value) == 16:  # 2026-12-02T10:00
        value += ":00"
    return f"{value}+08:00" if value else value


def appointments(request, api, errors=None, values=None, status=200):
    view = request.args.get("view", "day")
    first = _day(request.args.get("day"))
    if view == "week":
        first -= timedelta(days=first.weekday())
        days = 7
    else:
        view, days = "day", 1
    last = first + timedelta(days=days)
    slots = []
    for slot in api.get("consulting", "/slots"):
        start = _moment(slot["starts_at"])
        if start and first <= start.astimezone(SHANGHAI).date() < last:
            slots.append(slot)
    slots.sort(key=lambda s: s["starts_at"])
    _who_booked(api, slots)
    step = timedelta(days=days)
    return render(
        request,
        "console/appointments.html",
        status=status,
        slots=slots,
        view=view,
        first=first,
        last=last - timedelta(days=1),
        earlier=(first - step).isoformat(),
        later=(first + step).isoformat(),
        errors=errors or {},
        values=values or {},
    )


def _who_booked(api, slots: list[dict]) -> None:
    """Each slot's booked appointments, with the returnee's name (`slot["appointments"]`)."""
    booked = [slot for slot in slots if slot.get("booked")]
    found = api.gather(
        **{
            slot["id"]: ("GET", "consulting", f"/slots/{slot['id']}/appointments")
            for slot in booked
        }
    )
    people = {
        a["returnee_id"]
        for listed in found.values()
        for a in listed or ()
        if a["status"] == "booked"
    }
    names = api.gather(**{p: (lambda p=p: _returnee_name(api, p)) for p in people})
    for slot in slots:
        slot["appointments"] = [
            {**a, "name": names.get(a["returnee_id"])}
            for a in found.get(slot["id"]) or ()
            if a["status"] == "booked"
        ]


def publish_slot(request, api):
    form = request.form
    capacity = form.get("capacity", "").strip()
    body = {
        "starts_at": _local(form.get("starts_at", "")),
        "ends_at": _local(form.get("ends_at", "")),
        "location": form.get("location", "").strip(),
        "capacity": int(capacity) if capacity.isdigit() else capacity,
    }
    try:
        api.post("consulting", "/slots", json=body)
    except ApiError as exc:
        if exc.status != 400:
            raise
        errors = field_errors(exc.fields) or {"starts_at": [exc.message]}
        return appointments(request, api, errors=errors, values=dict(form), status=422)
    request.session.flash("The time slot is published.")
    day = body["starts_at"][:10]
    return _see_other(f"/console/appointments?day={day}")


# ---------------------------------------------------------------- activities


def activities(request, api):
    page = api.get("activities", "/activities", params={"limit": 100})
    return render(request, "console/activities.html", activities=page["items"])


def new_activity(request, api):
    organizations = api.get("accounts", "/organizations", auth=False)
    choices = [(o["id"], o["name"]) for o in organizations]
    if request.method == "GET":
        return render(
            request, "console/new_activity.html", values={}, errors={}, organizations=choices
        )
    form = request.form
    capacity = form.get("capacity", "").strip()
    body = {
        "kind": form.get("kind", ""),
        "title": {
            "zh-CN": form.get("title-zh-CN", "").strip(),
            "en": form.get("title-en", "").strip(),
        },
        "summary": {
            "zh-CN": form.get("summary-zh-CN", "").strip(),
            "en": form.get("summary-en", "").strip(),
        },
        "starts_at": _local(form.get("starts_at", "")),
        "ends_at": _local(form.get("ends_at", "")),
        "venue": {
            "name": form.get("venue-name", "").strip(),
            "address": form.get("venue-address", "").strip(),
        },
        "capacity": int(capacity) if capacity.isdigit() else capacity,
        "organizer_ids": form.getlist("organizer_ids"),
    }
    try:
        created = api.post("activities", "/activities", json=body)
    except ApiError as exc:
        if exc.status != 400:
            raise
        errors = field_errors(exc.fields) or {"kind": [exc.message]}
        return render(
            request,
            "console/new_activity.html",
            status=422,
            values={**form, "organizer_ids": form.getlist("organizer_ids")},
            errors=errors,
            message=exc.message,
            organizations=choices,
        )
    request.session.flash("The activity is published.")
    return _see_other(f"/console/activities/{created['id']}")


def activity(request, api, activity_id, errors=None, values=None, status=200, checked=None):
    try:
        found = api.get("activities", f"/activities/{activity_id}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return render(request, "error.html", status=404, status_code=404)
    extra = api.gather(
        registrations=(
            "GET",
            "activities",
            f"/activities/{activity_id}/registrations",
            {"params": {"limit": 100}},
        ),
        report=lambda: _report(api, activity_id),
        organizations=("GET", "accounts", "/organizations", {"auth": False}),
    )
    organizations = extra.pop("organizations") or []
    return render(
        request,
        "console/activity.html",
        status=status,
        activity=found,
        organization_choices=[(o["id"], o["name"]) for o in organizations],
        errors=errors or {},
        values=values or {},
        checked=checked,
        **extra,
    )


def _report(api, activity_id):
    try:
        return api.get("activities", f"/activities/{activity_id}/report")
    except ApiError as exc:
        if exc.status in (404, 409):
            return None
        raise


def check_in(request, api, activity_id):
    """The door: the code typed (or read from the QR code by the device), the name shown."""
    if request.method == "GET":
        return _check_in_page(request, api, activity_id)
    code = request.form.get("code", "").strip()
    try:
        checked = api.post(
            "activities", f"/activities/{activity_id}/check-ins", json={"code": code}
        )
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        errors = field_errors(exc.fields)
        errors = {"code": [m for ms in errors.values() for m in ms] or [exc.message]}
        return _check_in_page(request, api, activity_id, errors=errors, status=422)
    return _check_in_page(request, api, activity_id, checked=checked)


# The door's page may use the camera (its QR code scanner), and no other page may.
CAMERA_ALLOWED = "camera=(self), microphone=(), geolocation=()"


def _check_in_page(request, api, activity_id, errors=None, checked=None, status=200):
    found = api.get("activities", f"/activities/{activity_id}")
    page = render(
        request,
        "console/check_in.html",
        status=status,
        activity=found,
        errors=errors or {},
        checked=checked,
    )
    page.headers["Permissions-Policy"] = CAMERA_ALLOWED
    return page


def record_agreement(request, api, activity_id):
    form = request.form
    parties = [{"organization_id": o} for o in form.getlist("parties") if o]
    returnee_id = form.get("returnee_id", "").strip()
    if returnee_id:
        parties.append({"returnee_id": returnee_id})
    body = {
        "title": form.get("title", "").strip(),
        "parties": parties,
        "signed_on": form.get("signed_on", ""),
    }
    if form.get("summary", "").strip():
        body["summary"] = form.get("summary", "").strip()
    try:
        api.post("activities", f"/activities/{activity_id}/agreements", json=body)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        found = field_errors(exc.fields) or {"title": [exc.message]}
        errors = {
            (f"agreement-{k}" if k in ("title", "signed_on") else k): v for k, v in found.items()
        }
        return activity(request, api, activity_id, errors=errors, values=dict(form), status=422)
    request.session.flash("The agreement is recorded.")
    return _see_other(f"/console/activities/{activity_id}")


def record_intention(request, api, activity_id):
    """A cooperation intention met at the activity, recorded for a returnee who came, toward an
    organization there (matching's `POST /intentions` with the returnee's id); the
    organization's providers accept or decline it as any other."""
    form = request.form
    body = {
        "returnee_id": form.get("intention-returnee_id") or None,
        "organization_id": form.get("intention-organization_id") or None,
        "activity_id": activity_id,
    }
    if form.get("intention-message", "").strip():
        body["message"] = form.get("intention-message", "").strip()
    try:
        api.post("matching", "/intentions", json=body)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        found = field_errors(exc.fields) or {"organization_id": [exc.message]}
        errors = {f"intention-{k}": v for k, v in found.items()}
        return activity(request, api, activity_id, errors=errors, values=dict(form), status=422)
    request.session.flash("The intention is recorded; the organization answers it.")
    return _see_other(f"/console/activities/{activity_id}")


def close_activity(request, api, activity_id):
    summary = request.form.get("summary", "").strip()
    try:
        api.post(
            "activities",
            f"/activities/{activity_id}/close",
            json={"summary": summary} if summary else {},
        )
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        flat = [m for ms in field_errors(exc.fields).values() for m in ms]
        errors = {"close-summary": [exc.message, *flat]}
        return activity(request, api, activity_id, errors=errors, status=422)
    request.session.flash("The activity is closed; its report is below.")
    return _see_other(f"/console/activities/{activity_id}")
