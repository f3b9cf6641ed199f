"""Every service's HTTP API fuzzed by schemathesis as an integrator would run it.

Each service runs in-process on a fresh, seeded database and the test's vhost; `schemathesis run`
loads the `/openapi.json` it serves and sends its coverage, fuzzing and stateful phases with every
check (`--checks all`: server errors, status codes, content types, response schemas, invalid data
accepted, valid data rejected, ignored auth, use after free...), once with an admin token and once
with a returnee token (a registered returnee's, for accounts). Any failure fails the test, with
schemathesis' report of it.

One allowance, stated in the documents: an operation that lists rules beyond its schemas (a
field compared with another or with today, a reference that must exist) answers a body breaking
one with 422, and for those operations 422 is an expected answer to schema-valid data.

Bounded and derandomized (fixed seed, no example database, one worker), so CI sends the same
cases every time, within about two minutes for the twelve runs on two cores (the coverage phase,
the longest, covers each request body schema once).
"""

import json
import subprocess
import sys
import uuid

import eventlet
import pytest
import requests

from chassis.pool import ConnectionPool
from contracts.examples import EXAMPLES
from services.accounts.seed import seed as seed_accounts
from services.accounts.service import AccountsService
from services.activities.seed import seed as seed_activities
from services.activities.service import ActivitiesService
from services.consulting.seed import seed as seed_consulting
from services.consulting.service import ConsultingService
from services.insights.service import InsightsService
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
    "insights": (InsightsService, lambda pool: []),  # no reference data
    "activities": (ActivitiesService, seed_activities),
}
ROLES = ("admin", "returnee")

# Generated cases per operation in the fuzzing phase; the coverage phase adds its own
# deterministic boundary and invalid cases, the stateful phase follows inferred links.
MAX_EXAMPLES = 5
SEED = 20260408
TIMEOUT = 30
RUN_TIMEOUT = 300  # one schemathesis run; a run takes about 5-25 s
# schemathesis' default for positive_data_acceptance, plus 422 where the operation documents it
ACCEPTED_WITH_RULES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]


def register_returnee(url: str) -> str:
    body = {k: v for k, v in EXAMPLES[("returnee.registered", 1)].data.items()}
    body.pop("returnee_id")
    body["email"] = f"fuzz.{uuid.uuid4().hex[:8]}@example.com"
    body["password"] = "Returnee2026!"
    response = requests.post(f"{url}/returnees", json=body, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def run_config(document: dict) -> str:
    """schemathesis configuration: 422 accepted for valid data on the operations that document
    rules (and their 422); the coverage phase once per request body schema (consulting's policy
    document is the body of three operations: its boundary cases take most of a run's time, and
    the second and third would send the same ones)."""
    lines, covered = [], set()
    for operations in document["paths"].values():
        for operation in operations.values():
            settings = []
            if "422" in operation["responses"]:
                settings.append(
                    "checks.positive_data_acceptance.expected-statuses = "
                    + json.dumps(ACCEPTED_WITH_RULES)
                )
            body = json.dumps(operation.get("requestBody"), sort_keys=True)
            if "requestBody" in operation and body in covered:
                settings.append("phases.coverage.enabled = false")
            covered.add(body)
            if settings:
                lines += [
                    "[[operations]]",
                    f"include-operation-id = {json.dumps(operation['operationId'])}",
                    *settings,
                    "",
                ]
    return "\n".join(lines)


@pytest.fixture(params=sorted(SERVICES))
def service(request, config_for, container_factory, monkeypatch):
    """(name, URL) of the service running on a fresh database with its reference data."""
    service_cls, seed = SERVICES[request.param]
    if request.param == "accounts":
        monkeypatch.setenv("ACCOUNTS_ADMIN_EMAIL", "admin@station.example")
        monkeypatch.setenv("ACCOUNTS_ADMIN_PASSWORD", "Admin-Password-1")
    config = config_for(request.param)
    pool = ConnectionPool(config["DATABASE_URL"], 1)
    try:
        seed(pool)  # listings return real rows for the response schemas to check
    finally:
        pool.clear()
    container = container_factory(service_cls, config)
    container.start()
    return request.param, service_url(container)


@pytest.mark.parametrize("role", ROLES)
def test_api_conforms_to_its_openapi_document(service, role, token_for, tmp_path):
    name, url = service
    document = requests.get(f"{url}/openapi.json", timeout=TIMEOUT).json()
    config = tmp_path / "schemathesis.toml"
    config.write_text(run_config(document))
    subject = register_returnee(url) if (name, role) == ("accounts", "returnee") else None
    token = token_for(role, subject)["Authorization"]
    report = tmp_path / "report.txt"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{url}/openapi.json",
        "--checks", "all",
        "--phases", "coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-deterministic",  # and so no example database
        "--workers", "1",  # hypothesis' caches are not thread-safe
        "--suppress-health-check", "too_slow,filter_too_much",
        "--request-timeout", str(TIMEOUT),
        "--header", f"Authorization: {token}",
        "--no-color",
    ]  # fmt: skip
    with report.open("w") as out:
        run = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        # The service runs in this process: wait cooperatively, so it keeps answering.
        with eventlet.Timeout(RUN_TIMEOUT):
            while run.poll() is None:
                eventlet.sleep(0.2)
    output = report.read_text()
    failures = output[output.find("=== FAILURES") :] if "=== FAILURES" in output else output
    assert run.returncode == 0, f"{name} as {role}:\n{failures[-12000:]}"
    assert "Stateful" in output, output[-2000:]  # the stateful phase ran
