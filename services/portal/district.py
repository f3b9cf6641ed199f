"""The district dashboard under `/district`, for the district office's officials and the
station's admins: insights' figures for a period, each chart beside the table it draws (the
table is the chart's text alternative), and the XLSX export. Insights counts; it names nobody,
and neither does any page here."""

from datetime import date, datetime, timedelta

from werkzeug.wrappers import Response

from chassis.clock import SHANGHAI
from contracts import labels
from services.portal.forms import COUNTRIES
from services.portal.rendering import render, text
from services.portal.upstream import ApiError

DEFAULT_DAYS = 30
PROBLEMS = ("Enter a date as YYYY-MM-DD.", "The first day comes after the last.")
# The registration series' interval by the period's length.
INTERVALS = ((62, "day"), (400, "week"))


def today() -> date:
    return datetime.now(SHANGHAI).date()


def period(args) -> tuple[date, date, dict]:
    """The period asked (`from`, `to`, or a `preset`), else the 30 days to today; problems in
    the person's words by field."""
    end = today()
    start = end - timedelta(days=DEFAULT_DAYS - 1)
    problems = {}
    preset = args.get("preset")
    if preset == "month":
        start = end.replace(day=1)
    elif preset == "year":
        start = end.replace(month=1, day=1)
    elif preset == "quarter":
        start = end - timedelta(days=89)
    else:
        for name in ("from", "to"):
            value = args.get(name, "").strip()
            if not value:
                continue
            try:
                chosen = date.fromisoformat(value)
            except ValueError:
                problems[name] = [PROBLEMS[0]]
                continue
            if name == "from":
                start = chosen
            else:
                end = chosen
        if start > end:
            problems["from"] = [PROBLEMS[1]]
    return start, end, problems


def interval_for(start: date, end: date) -> str:
    days = (end - start).days + 1
    return next((name for limit, name in INTERVALS if days <= limit), "month")


def chart(kind: str, labels: list, series: list[tuple[str, list]]) -> dict:
    """What `dashboard.js` draws: `{kind, labels, series: [{name, values}]}`."""
    return {"kind": kind, "labels": labels, "series": [{"name": n, "values": v} for n, v in series]}


def _ranked(counts: dict, name) -> list[tuple[str, int]]:
    return sorted(((name(k), v) for k, v in (counts or {}).items()), key=lambda kv: -kv[1])


def dashboard(request, api):
    start, end, problems = period(request.args)
    locale = request.locale
    query = {"from": start.isoformat(), "to": end.isoformat()}
    if problems:
        return render(
            request,
            "district/dashboard.html",
            status=422,
            errors={k: [text(locale, m) for m in v] for k, v in problems.items()},
            values=dict(request.args),
            overview=None,
        )
    interval = interval_for(start, end)
    try:
        found = api.gather(
            overview=lambda: api.get("insights", "/statistics/overview", params=query),
            series=lambda: api.get(
                "insights",
                "/statistics/timeseries",
                params={**query, "metric": "registrations", "interval": interval},
            ),
            policies=lambda: api.get("consulting", "/policies", auth=False),
        )
    except ApiError as exc:
        if exc.status != 400:
            raise
        return render(
            request,
            "district/dashboard.html",
            status=422,
            errors={"from": [exc.message]},
            values=dict(request.args),
            overview=None,
        )
    overview = found["overview"]
    if not overview:
        return render(
            request,
            "district/dashboard.html",
            errors={},
            values=query,
            overview=overview,
        )
    titles = {}
    for policy in found["policies"] or ():
        titles[policy.get("code")] = policy.get("title")
    countries = {code: (zh if locale == "zh-CN" else en) for code, en, zh in COUNTRIES}
    countries["none"] = text(locale, "No overseas degree")

    def industry(value):
        return request_label("industries", value, locale)

    def stage(value):
        return request_label("stages", value, locale)

    points = (found["series"] or {}).get("points") or []
    registrations = [(p["start"], p["value"] or 0) for p in points]
    tables = {
        "registrations": registrations,
        "industry": _ranked(overview["by_industry"], industry),
        "country": _ranked(overview["by_country"], lambda c: countries.get(c, c)),
        "stage": _ranked(overview["by_stage"], stage),
        "eligible": _ranked(
            overview["eligible_by_policy"], lambda c: _title(titles.get(c), locale) or c
        ),
    }
    intentions = overview["intentions"]
    funnel = [
        (text(locale, "Proposed to a returnee"), overview.get("matches_proposed") or 0),
        (text(locale, "Intentions expressed"), intentions.get("expressed") or 0),
        (text(locale, "Accepted"), intentions.get("accepted") or 0),
    ]
    activities = overview["activities"]
    attendance = [
        (text(locale, "Activities held"), activities.get("held") or 0),
        (text(locale, "Seats taken"), activities.get("registrations") or 0),
        (text(locale, "People who came"), activities.get("attended") or 0),
        (text(locale, "Agreements signed"), overview.get("agreements_signed") or 0),
    ]
    charts = {
        "registrations": chart(
            "line",
            [label for label, _ in registrations],
            [(text(locale, "Returnees registered"), [v for _, v in registrations])],
        ),
        **{
            name: chart(
                "bar", [k for k, _ in rows], [(text(locale, "Returnees"), [v for _, v in rows])]
            )
            for name, rows in tables.items()
            if name != "registrations"
        },
        "funnel": chart(
            "bar", [k for k, _ in funnel], [(text(locale, "Intentions"), [v for _, v in funnel])]
        ),
        "attendance": chart(
            "bar",
            [k for k, _ in attendance],
            [(text(locale, "Number"), [v for _, v in attendance])],
        ),
    }
    return render(
        request,
        "district/dashboard.html",
        errors={},
        values=query,
        start=start,
        end=end,
        interval=interval,
        overview=overview,
        tables=tables,
        funnel=funnel,
        attendance=attendance,
        charts=charts,
    )


def request_label(vocabulary: str, value, locale: str) -> str:
    if value in ("none", None):
        return text(locale, "Not said")
    return labels.label(vocabulary, value, locale)


def _title(value, locale):
    if isinstance(value, dict):
        return value.get(locale) or value.get("en")
    return value


def export(request, api):
    start, end, problems = period(request.args)
    if problems:
        return dashboard(request, api)
    found = api.get(
        "insights",
        "/statistics/export",
        params={"format": "xlsx", "from": start.isoformat(), "to": end.isoformat()},
        raw=True,
    )
    if found.status_code != 200:
        return render(request, "error.html", status=503, status_code=503, service="insights")
    return Response(
        found.content,
        content_type=found.headers.get(
            "Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ),
        headers={
            "Content-Disposition": f'attachment; filename="district-{start}-{end}.xlsx"',
        },
    )
