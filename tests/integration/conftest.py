"""Fixtures of the backbone's integration tests (tests/integration/test_backbone.py and
test_batched_consumption.py): a consumer's database with the test tables, a producer's pool, and
outbox relays started on it."""

import eventlet
import pytest

from chassis.outbox import OutboxRelay
from chassis.pool import ConnectionPool
from tests.integration.backbone import create_test_tables


@pytest.fixture
def consumer_db(databases):
    url = databases.create("matching")
    create_test_tables(url)
    return url


@pytest.fixture
def producer_pool(databases):
    pool = ConnectionPool(databases.create("accounts"), 8)
    yield pool
    pool.clear()


@pytest.fixture
def start_relay(producer_pool, amqp_uri):
    relays = []

    def start(pool=None):
        relay = OutboxRelay(pool or producer_pool, amqp_uri, "accounts", sweep_seconds=0.2)
        relay.start(eventlet.spawn)
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        relay.stop()
