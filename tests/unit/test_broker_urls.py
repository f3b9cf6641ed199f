"""`AMQP_URI` naming a cluster's nodes: the URLs it lists, and how it is shown."""

from chassis.broker import broker_urls, redacted


def test_a_cluster_uri_lists_each_node():
    assert broker_urls("amqp://r1/v; amqp://r2/v;amqp://r3/v;") == [
        "amqp://r1/v",
        "amqp://r2/v",
        "amqp://r3/v",
    ]
    assert broker_urls("amqp://guest:guest@localhost:5672/") == [
        "amqp://guest:guest@localhost:5672/"
    ]


def test_a_cluster_uri_is_shown_without_any_node_password():
    shown = redacted("amqp://a:secret-1@r1:5672/v;amqp://b:secret-2@r2/v; amqp://r3/v")
    assert shown == "amqp://a:***@r1:5672/v;amqp://b:***@r2/v;amqp://r3/v"


def test_every_connection_of_the_consumer_reports_its_loss():
    """nameko's consumer connects, and kombu's mixin reconnects, with clones of the consumer's
    `connection`: each a `StrictConnection`, which raises where kombu's would replace itself
    unseen (tests/integration/test_broker_failover.py has the loss itself)."""
    from types import SimpleNamespace

    from chassis.broker import StrictConnection
    from chassis.events import EventQueueConsumer

    consumer = EventQueueConsumer()
    consumer.container = SimpleNamespace(
        config={"AMQP_URI": "amqp://a:b@rabbit-1//;amqp://a:b@rabbit-2//"}
    )
    connection = consumer.connection
    assert isinstance(connection, StrictConnection)
    assert isinstance(connection.clone(), StrictConnection)
    assert len(connection.clone().alt) == 2  # both nodes, to fail over between
