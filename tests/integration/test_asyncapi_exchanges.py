"""A client that declares the exchanges as the AsyncAPI document describes them is not refused:
every documented exchange declared actively (with the documented type, durability and
arguments) on a vhost of the test's own, where the platform's topology declared it first, and
passively; a declaration that leaves out the documented arguments is refused, so the check
can fail."""

import pytest
import yaml
from amqp.exceptions import PreconditionFailed
from kombu import Connection

from chassis.loader import service_class
from chassis.settings import FRONTS, SERVICES
from chassis.topology import declare_producer
from contracts.asyncapi import DOCUMENT_PATH, PRODUCTION_VHOST

DOCUMENT = yaml.safe_load(DOCUMENT_PATH.read_text())
EXCHANGES = {
    channel["bindings"]["amqp"]["exchange"]["name"]: channel["bindings"]["amqp"]["exchange"]
    for channel in DOCUMENT["channels"].values()
}


def _declare(channel, exchange: dict, passive: bool) -> None:
    channel.exchange_declare(
        exchange["name"], exchange["type"], passive=passive, durable=exchange["durable"],
        auto_delete=exchange["autoDelete"], arguments=exchange.get("x-arguments") or None,
    )  # fmt: skip


def test_every_channel_names_the_production_vhost_and_the_arguments():
    assert EXCHANGES
    assert {e["vhost"] for e in EXCHANGES.values()} == {PRODUCTION_VHOST}
    assert all(e["x-arguments"].get("alternate-exchange") for e in EXCHANGES.values())


@pytest.fixture
def declared(amqp_uri):
    """The platform's topology on the test's vhost, as `python -m deploy.topology` makes it."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for service in SERVICES:
            if service not in FRONTS:
                declare_producer(channel, service_class(service).name, 1)
    return amqp_uri


def test_every_documented_exchange_declares_as_documented(declared):
    with Connection(declared) as connection:
        for exchange in EXCHANGES.values():
            channel = connection.channel()
            _declare(channel, exchange, passive=False)
            _declare(channel, exchange, passive=True)
            channel.close()


def test_a_declaration_without_the_documented_arguments_is_refused(declared):
    exchange = next(iter(EXCHANGES.values()))
    with Connection(declared) as connection:
        channel = connection.channel()
        with pytest.raises(PreconditionFailed):
            _declare(channel, {**exchange, "x-arguments": {}}, passive=False)
