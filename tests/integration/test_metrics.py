"""What `/metrics` tells an operator, read as Prometheus scrapes it: a redelivered event counted as
a duplicate rather than handled twice, and the age of events stuck in the outbox while the broker
is out of reach."""

import time
import uuid
from functools import partial

import requests
from prometheus_client.parser import text_string_to_metric_families

from chassis.settings import nameko_config
from contracts import CATALOG
from services.accounts.service import AccountsService
from services.matching.service import MatchingService
from tests.support import publish_events, query, refused_port, service_url, wait_until


def scraped(url: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with these labels on the service's `/metrics`."""
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_a_redelivered_event_is_counted_as_a_duplicate_not_handled_again(
    config_for, container_factory, amqp_uri
):
    config = config_for("matching")
    container = container_factory(MatchingService, config)
    container.start()
    consumed = partial(
        scraped,
        service_url(container),
        "events_consumed_total",
        service="matching",
        handler="remember_organization",
        type="organization.registered",
    )
    # Counters are per process, shared with earlier tests' containers: count from here.
    before = {outcome: consumed(outcome=outcome) or 0 for outcome in ("handled", "duplicate")}
    organization_id = str(uuid.uuid4())
    event = CATALOG.create(
        "accounts",
        "organization.registered",
        {
            "organization_id": organization_id,
            "name": "Test Park",
            "kind": "industrial_park",
            "district": "Changning",
        },
        subject=organization_id,
    )

    publish_events(amqp_uri, [event])
    wait_until(lambda: consumed(outcome="handled") == before["handled"] + 1, 15, 0.1)
    publish_events(amqp_uri, [event])  # the same event again, as after a lost ack
    wait_until(lambda: consumed(outcome="duplicate") == before["duplicate"] + 1, 15, 0.1)

    assert consumed(outcome="handled") == before["handled"] + 1
    assert query(config["DATABASE_URL"], "SELECT id FROM organizations") == [
        {"id": organization_id}
    ]


def test_events_the_broker_cannot_take_show_their_age(
    databases, container_factory, token_for, monkeypatch
):
    for name in ("ADMIN_EMAIL", "ACCOUNTS_ADMIN_EMAIL"):  # no admin bootstrap and its event
        monkeypatch.delenv(name, raising=False)
    with refused_port() as port:
        config = nameko_config(
            "accounts",
            AMQP_URI=f"amqp://guest:guest@127.0.0.1:{port}/",
            DATABASE_URL=databases.create("accounts"),
            WEB_SERVER_ADDRESS="127.0.0.1:0",
            OUTBOX_SWEEP_SECONDS=0.2,
        )
        container = container_factory(AccountsService, config)
        container.start()
        url = service_url(container)
        assert scraped(url, "outbox_pending", service="accounts") == 0
        assert scraped(url, "outbox_oldest_pending_seconds", service="accounts") == 0

        response = requests.post(
            f"{url}/organizations",
            json={"name": "ICBC Changning", "kind": "bank"},
            headers=token_for("admin"),
            timeout=30,
        )
        assert response.status_code == 201, response.text
        time.sleep(1.0)

        assert scraped(url, "outbox_pending", service="accounts") == 1
        assert scraped(url, "outbox_oldest_pending_seconds", service="accounts") >= 1.0
