"""Authorization before validation, on every service: an entrypoint that needs a role declares
it in `@http(..., roles=[...])`, and a caller without the role gets 403 whatever the body, so a
stranger learns nothing of what a staff-only body looks like (docs/architecture.md)."""

import inspect
import re
import uuid

import pytest
import requests

from chassis.auth import ROLES
from chassis.openapi import routes
from services.accounts.service import AccountsService
from services.activities.service import ActivitiesService
from services.consulting.service import ConsultingService
from services.insights.service import InsightsService
from services.matching.service import MatchingService
from services.notify.service import NotifyService
from tests.support import service_url

SERVICES = {
    "accounts": AccountsService,
    "consulting": ConsultingService,
    "matching": MatchingService,
    "notify": NotifyService,
    "insights": InsightsService,
    "activities": ActivitiesService,
}
_PARAMETER = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


def role_checks(service_cls) -> list[tuple[str, str]]:
    """(entrypoint, line) where a handler checks a role itself instead of declaring it."""
    found = []
    for attr, _ in routes(service_cls):
        source = inspect.getsource(getattr(service_cls, attr))
        found += [(attr, line.strip()) for line in source.splitlines() if ".require(" in line]
    helpers = [m for m in vars(service_cls) if m.startswith("_") and callable(vars(service_cls)[m])]
    for name in helpers:
        source = inspect.getsource(vars(service_cls)[name])
        found += [(name, line.strip()) for line in source.splitlines() if ".require(" in line]
    return found


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_roles_are_declared_on_the_entrypoint_not_checked_in_the_handler(name):
    # Object-level rules (`require_self_or`, an organization's own resources) stay in handlers.
    assert role_checks(SERVICES[name]) == []


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_a_caller_without_the_role_gets_403_before_the_body_is_read(
    name, config_for, container_factory, token_for
):
    service_cls = SERVICES[name]
    container = container_factory(service_cls, config_for(name))
    container.start()
    url = service_url(container)
    checked = 0
    for _, entrypoint in routes(service_cls):
        if not entrypoint.roles:
            continue
        path = _PARAMETER.sub(lambda _: str(uuid.uuid4()), entrypoint.url)
        for role in sorted(set(ROLES) - set(entrypoint.roles)):
            for method in entrypoint.method.split(","):
                response = requests.request(
                    method.strip(),
                    f"{url}{path}",
                    data='{"not a field": "\x00", ',  # not even JSON
                    headers={**token_for(role), "Content-Type": "application/json"},
                    timeout=30,
                )
                assert response.status_code == 403, (method, entrypoint.url, role, response.text)
                assert response.json()["error"] == "forbidden"
                checked += 1
    assert checked > 0
