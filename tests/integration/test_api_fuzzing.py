"""Every service's HTTP API fuzzed by schemathesis against the OpenAPI document it serves.

Each service runs in-process on a fresh, seeded database and the test's vhost; its own
`/openapi.json` is loaded and every operation is called with generated valid and invalid input
(schemathesis' coverage and fuzzing phases). A response must not be a server error and must have
a documented status, content type and body; invalid input must be rejected with a 4xx.

Each case is sent three ways: with an admin token, so the authorized paths behind the role checks
are exercised; without the admin token (no token, or the garbage one schemathesis generated), so
the unauthenticated paths are fuzzed too; and, when it names an object by a path parameter, once
more naming an object that exists (a registered returnee, a seeded policy or resource), so the
generated bodies and queries reach past the 404 into the code that changes or shows the object.

Bounded and derandomized (fixed seed, no example database), so CI sends the same cases every
time, within about a minute on two cores.
"""

import uuid
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from chassis.pool import ConnectionPool
from contracts.examples import EXAMPLES
from services.accounts.seed import seed as seed_accounts
from services.accounts.service import AccountsService
from services.activities.seed import seed as seed_activities
from services.activities.service import ActivitiesService
from services.consulting.catalog import policy_id
from services.consulting.seed import seed as seed_consulting
from services.consulting.service import ConsultingService
from services.insights.service import InsightsService
from services.matching.seed import RESOURCES
from services.matching.seed import seed as seed_matching
from services.matching.service import MatchingService
from services.notify.seed import seed as seed_notify
from services.notify.service import NotifyService
from tests.support import service_url

SERVICES = {
    "accounts": (AccountsService, seed_accounts),
    "consulting": (ConsultingService, seed_consulting),
    "matching": (MatchingService, seed_matching),
    "notify": (NotifyService, seed_notify),
    "activities": (ActivitiesService, seed_activities),
    "insights": (InsightsService, lambda pool: []),  # no reference data
}

# Generated cases per operation in the fuzzing phase; the coverage phase adds its own
# deterministic boundary and invalid cases (missing fields, wrong types, unknown methods...).
MAX_EXAMPLES = 15
SEED = 20260408
TIMEOUT = 30

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
]
# With a valid token only: a 2xx must not come back once the token is taken away.
AUTHORIZED_CHECKS = [*CHECKS, ignored_auth]


def fuzzing_config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",  # positive and negative
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            # Stateful scenarios follow links between operations, which the documents do not
            # declare; objects that exist are supplied by `Service.existing` instead.
            "phases": {"stateful": {"enabled": False}},
        }
    )


@dataclass
class Service:
    url: str
    existing: dict[str, str] = field(default_factory=dict)  # path parameter -> an existing id


def register_returnee(url: str) -> str:
    body = {k: v for k, v in EXAMPLES[("returnee.registered", 1)].data.items()}
    body.pop("returnee_id")
    body["email"] = f"fuzz.{uuid.uuid4().hex[:8]}@example.com"
    body["password"] = "Returnee2026!"
    response = requests.post(f"{url}/returnees", json=body, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(params=sorted(SERVICES))
def service(request, config_for, container_factory, monkeypatch):
    """The service running on a fresh database with its reference data."""
    service_cls, seed = SERVICES[request.param]
    if request.param == "accounts":
        monkeypatch.setenv("ACCOUNTS_ADMIN_EMAIL", "admin@station.example")
        monkeypatch.setenv("ACCOUNTS_ADMIN_PASSWORD", "Admin-Password-1")
    config = config_for(request.param)
    pool = ConnectionPool(config["DATABASE_URL"], 1)
    try:
        seeded = seed(pool)  # listings return real rows for the response schemas to check
    finally:
        pool.clear()
    container = container_factory(service_cls, config)
    container.start()
    running = Service(service_url(container))
    if request.param == "accounts":
        running.existing["returnee_id"] = register_returnee(running.url)
    elif request.param == "consulting":
        running.existing["policy_id"] = policy_id(seeded[0])
    elif request.param == "matching":
        running.existing["resource_id"] = RESOURCES[0]["id"]
    elif request.param == "activities":
        running.existing["activity_id"] = seeded[0]
    return running


@pytest.fixture
def api(request, service):
    """The service's OpenAPI document as it serves it."""
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json", config=fuzzing_config())
    schema.config.update(base_url=service.url)
    # schemathesis 4.32.5 renames the test item per operation through `Node._nodeid`, which
    # pytest 9.2 no longer has (its id lives in `_id`); give it the attribute it reads.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    return schema


@pytest.fixture
def admin(token_for):
    return token_for("admin")


schema = schemathesis.pytest.from_fixture("api")


# Generation efficiency, not the API: the nested, constrained policy documents make Hypothesis
# discard many drafts, and a loaded CI machine makes any of it slow. (As a decorator: the same
# in the config is overridden by the settings profile that pytest plugins may load.)
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@schema.parametrize()
def test_api_conforms_to_its_openapi_document(case, admin, service):
    case.call_and_validate(headers=admin, checks=AUTHORIZED_CHECKS, timeout=TIMEOUT)
    case.validate_response(case.call(timeout=TIMEOUT), checks=CHECKS)

    # Once more on an object that exists, unless the path is what this case gets wrong. Not for
    # DELETE: the object would be gone for the cases after it.
    known = {k: service.existing[k] for k in case.path_parameters or {} if k in service.existing}
    invalid_path = case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
    if known and not invalid_path and case.method.upper() != "DELETE":
        case.path_parameters = {**case.path_parameters, **known}
        case.call_and_validate(headers=admin, checks=CHECKS, timeout=TIMEOUT)
