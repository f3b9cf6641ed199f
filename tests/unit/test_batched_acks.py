"""A batch's acks: one multiple-ack covers only deliveries no other worker still holds."""

from chassis.events import EventQueueConsumer


class Channel:
    connection = True

    def __init__(self):
        self.acks: list[tuple[int, bool]] = []


class Message:
    def __init__(self, channel: Channel, tag: int):
        self.channel, self.delivery_tag = channel, tag

    def ack(self, multiple: bool = False):
        self.channel.acks.append((self.delivery_tag, multiple))


def consumer_holding(channel: Channel, tags) -> tuple[EventQueueConsumer, dict]:
    consumer = EventQueueConsumer()
    consumer._unsettled = {channel: set(tags)}
    return consumer, {tag: Message(channel, tag) for tag in tags}


def test_a_batch_of_the_oldest_deliveries_is_acked_with_one_multiple_ack():
    channel = Channel()
    consumer, messages = consumer_holding(channel, range(1, 8))
    consumer.ack_messages([messages[t] for t in (1, 2, 3, 4)])
    assert channel.acks == [(4, True)]
    assert consumer._unsettled[channel] == {5, 6, 7}


def test_deliveries_after_one_another_worker_holds_are_acked_one_by_one():
    channel = Channel()
    consumer, messages = consumer_holding(channel, range(1, 8))
    # 3 is still in another batch (or a poison event being retried): 4 and 6 must not ack it
    consumer.ack_messages([messages[t] for t in (1, 2, 4, 6)])
    assert channel.acks == [(2, True), (4, False), (6, False)]
    assert consumer._unsettled[channel] == {3, 5, 7}


def test_a_batch_behind_another_is_acked_one_by_one():
    channel = Channel()
    consumer, messages = consumer_holding(channel, range(1, 6))
    consumer.ack_messages([messages[t] for t in (3, 4, 5)])
    assert channel.acks == [(3, False), (4, False), (5, False)]
    assert consumer._unsettled[channel] == {1, 2}
