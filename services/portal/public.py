"""Pages anyone may open: the home page, the policy catalog, the exchange activities."""

from services.portal.rendering import render
from services.portal.upstream import ApiError, Unavailable

UPCOMING_ON_HOME = 3


def _activities(api, limit: int, cursor: str | None = None):
    """A page of upcoming activities; `Unavailable` while the activities service is away (or
    not deployed yet)."""
    params = {"limit": limit, **({"next": cursor} if cursor else {})}
    try:
        return api.get("activities", "/activities", params=params, auth=False)
    except ApiError as exc:
        if exc.status == 404:  # no such route: an activities service that is not there yet
            return Unavailable("activities")
        raise


def home(request, api):
    found = api.gather(
        policies=lambda: api.get(
            "consulting", "/policies", params={"in_effect": "true"}, auth=False
        ),
        activities=lambda: _activities(api, UPCOMING_ON_HOME),
    )
    return render(request, "home.html", **found)


def policies(request, api):
    catalog = api.get("consulting", "/policies", params={"in_effect": "true"}, auth=False)
    return render(request, "policies.html", policies=catalog)


def policy(request, api, policy_id):
    try:
        found = api.get("consulting", f"/policies/{policy_id}", auth=False)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return render(request, "error.html", status=404, status_code=404)
    return render(request, "policy.html", policy=found)


def activities(request, api):
    page = _activities(api, 20, request.args.get("next"))
    return render(request, "activities.html", activities=page)


def activity(request, api, activity_id):
    try:
        found = api.get("activities", f"/activities/{activity_id}", auth=False)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return render(request, "error.html", status=404, status_code=404)
    registration = (request.session.get("registrations") or {}).get(activity_id)
    return render(request, "activity.html", activity=found, registration=registration)
