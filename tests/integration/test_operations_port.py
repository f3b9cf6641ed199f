"""The operations port (production): `/metrics` and the reasons a service is not ready are
served there, for Prometheus and the kubelet, and not on the public port, which keeps
`/health/live` and a readiness answer without reasons."""

import requests

from services.consulting.service import ConsultingService
from tests.support import service_url


def _operations_url(container) -> str:
    from chassis.web import JsonWebServer

    for extension in container.extensions:
        if isinstance(extension, JsonWebServer):
            return f"http://127.0.0.1:{extension.operations_port}"
    raise LookupError("the container serves no HTTP")


def test_metrics_and_reasons_are_on_the_operations_port_alone(config_for, container_factory):
    config = config_for("consulting", OPERATIONS_ADDRESS="127.0.0.1:0",
                        database_url="postgresql://postgres@127.0.0.1:1/none")  # fmt: skip
    container = container_factory(ConsultingService, config)
    container.start()
    public, operations = service_url(container), _operations_url(container)

    assert requests.get(f"{public}/metrics", timeout=10).status_code == 404
    assert requests.get(f"{public}/health/live", timeout=10).json()["status"] == "live"
    said = requests.get(f"{public}/health/ready", timeout=10)
    assert said.status_code == 503
    assert said.json() == {"status": "not_ready", "database": "withheld", "broker": "withheld"}
    assert requests.get(f"{public}/openapi.json", timeout=10).status_code == 200

    scraped = requests.get(f"{operations}/metrics", timeout=10)
    assert scraped.status_code == 200 and "http_requests_total" in scraped.text
    told = requests.get(f"{operations}/health/ready", timeout=10)
    assert told.status_code == 503 and told.json()["broker"] == "ok"
    assert told.json()["database"].startswith("unavailable: ")
    assert requests.get(f"{operations}/health/live", timeout=10).status_code == 200
    # The API is not served there: the operations port is not a way around the public one.
    assert requests.get(f"{operations}/openapi.json", timeout=10).status_code == 404
    assert requests.get(f"{operations}/dead-letters", timeout=10).status_code == 404


def test_a_ready_service_says_so_on_its_public_port_without_reasons(config_for, container_factory):
    config = config_for("consulting", OPERATIONS_ADDRESS="127.0.0.1:0")
    container = container_factory(ConsultingService, config)
    container.start()

    said = requests.get(f"{service_url(container)}/health/ready", timeout=10)
    assert said.status_code == 200
    assert said.json() == {"status": "ready", "database": "ok", "broker": "ok"}
    told = requests.get(f"{_operations_url(container)}/health/ready", timeout=10)
    assert told.json() == {"status": "ready", "database": "ok", "broker": "ok"}


def test_without_an_operations_port_the_public_port_serves_everything(
    config_for, container_factory
):
    config = config_for("consulting", OPERATIONS_ADDRESS="",
                        database_url="postgresql://postgres@127.0.0.1:1/none")  # fmt: skip
    container = container_factory(ConsultingService, config)
    container.start()
    public = service_url(container)

    assert requests.get(f"{public}/metrics", timeout=10).status_code == 200
    told = requests.get(f"{public}/health/ready", timeout=10)
    assert told.json()["database"].startswith("unavailable: ")
