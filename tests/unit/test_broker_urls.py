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
