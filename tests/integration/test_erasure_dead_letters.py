"""An event about an erased person that fails after the erasure scrubbed the service's kept
queues is not parked there: the failure path looks for the service's tombstone first and drops
it (counted), on the real broker and database. Another person's failed event is dead-lettered as
always."""

import json
import uuid

from kombu import Connection, Exchange

from chassis.dead_letters import DeadLetterQueue
from contracts import CATALOG
from contracts.examples import example
from services.consulting.service import ConsultingService
from services.insights.service import InsightsService
from tests.support import publish_events, query, wait_until


def _invalid_update(amqp_uri: str, returnee_id: str) -> str:
    """A returnee.updated about `returnee_id` that breaks its schema: dead-lettered at once."""
    event = CATALOG.create(
        "accounts", "returnee.updated",
        {**example("returnee.updated").data, "returnee_id": returnee_id}, subject=returnee_id,
    )  # fmt: skip
    body = json.loads(event.to_json())
    body["data"]["birth_date"] = "not a date"
    exchange = Exchange("accounts.events", "topic", durable=True,
                        arguments={"alternate-exchange": "accounts.unrouted"})  # fmt: skip
    with Connection(amqp_uri) as connection:
        connection.Producer().publish(
            json.dumps(body).encode(), exchange=exchange, routing_key="returnee.updated",
            content_type="application/cloudevents+json",
            message_id=event.id, type="returnee.updated", retry=True,
        )  # fmt: skip
    return event.id


def _erase(amqp_uri: str, returnee_id: str) -> None:
    erased = CATALOG.create(
        "accounts", "returnee.erased",
        {**example("returnee.erased").data, "returnee_id": returnee_id}, subject=returnee_id,
    )  # fmt: skip
    publish_events(amqp_uri, [erased])


def _dead_letters(amqp_uri: str, service: str) -> list[str]:
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        try:
            letters = DeadLetterQueue(amqp_uri, service).browse(channel)
            return [_text(letter.body) + repr(letter.message.headers) for letter in letters]
        finally:
            channel.close()


def _text(body) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


def test_a_failed_event_about_an_erased_person_is_dropped_not_dead_lettered(
    config_for, container_factory, amqp_uri, rabbit_admin, vhost
):
    config = config_for("consulting")
    container_factory(ConsultingService, config).start()
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    _erase(amqp_uri, erased)
    wait_until(lambda: query(config["DATABASE_URL"], "SELECT 1 FROM erasures WHERE returnee_id"
                             " = %s", (erased,)), 30)  # fmt: skip

    _invalid_update(amqp_uri, erased)  # after the scrub: it would stay in the dead letters
    _invalid_update(amqp_uri, kept)

    wait_until(lambda: rabbit_admin.depth(vhost, "consulting.dead-letters") == 1, 30)
    wait_until(lambda: rabbit_admin.depth(vhost, "consulting.assess_returnee") == 0, 30)
    letters = _dead_letters(amqp_uri, "consulting")
    assert len(letters) == 1 and kept in letters[0]
    assert not any(erased in _text(m["body"]) and "returnee.erased" not in _text(m["body"])
                   for m in rabbit_admin.messages(vhost))  # fmt: skip


def test_insights_drops_them_by_the_digest_it_keeps(
    config_for, container_factory, amqp_uri, rabbit_admin, vhost
):
    config = config_for("insights")
    container_factory(InsightsService, config).start()
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    _erase(amqp_uri, erased)
    wait_until(lambda: query(config["DATABASE_URL"], "SELECT 1 FROM erasures"), 30)

    _invalid_update(amqp_uri, erased)
    _invalid_update(amqp_uri, kept)

    wait_until(lambda: rabbit_admin.depth(vhost, "insights.dead-letters") == 1, 30)
    letters = _dead_letters(amqp_uri, "insights")
    assert len(letters) == 1 and kept in letters[0]
