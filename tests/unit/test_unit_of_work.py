"""The in-memory unit of work behaves as the PostgreSQL one does where use cases can tell."""

from datetime import datetime

import pytest

from chassis.clock import SHANGHAI, FrozenClock
from chassis.uow import AlreadyHandled, MemoryDatabase
from contracts import CATALOG, InvalidEvent
from contracts.examples import EXAMPLES, example_event


class Counter:
    def __init__(self):
        self.seen: list[str] = []


def _example(event_type: str):
    return example_event(CATALOG.get(event_type, 1))


def test_a_committed_unit_keeps_its_changes_and_events():
    db = MemoryDatabase("consulting", Counter())
    data = EXAMPLES[("policy.published", 1)].data
    with db.unit_of_work() as uow:
        uow.store.seen.append("a")
        uow.publish("policy.published", data, subject=data["policy_id"])
    assert db.store.seen == ["a"]
    assert [e.type for e in db.published()] == ["policy.published"]
    assert db.published()[0].subject == str(data["policy_id"])


def test_an_exception_throws_away_changes_and_events():
    db = MemoryDatabase("consulting", Counter())
    data = EXAMPLES[("policy.published", 1)].data
    with pytest.raises(RuntimeError), db.unit_of_work() as uow:
        uow.store.seen.append("a")
        uow.publish("policy.published", data)
        raise RuntimeError("rolled back")
    assert db.store.seen == []
    assert db.outbox == []


def test_events_are_checked_against_the_contract():
    db = MemoryDatabase("consulting", Counter())
    with pytest.raises(InvalidEvent), db.unit_of_work() as uow:
        uow.publish("policy.published", {"policy_id": "not a uuid"})
    assert db.outbox == []


def test_an_event_is_handled_once_per_handler():
    db = MemoryDatabase("notify", Counter())
    event = _example("returnee.registered")

    def on_registered(event, uow):
        uow.store.seen.append(event.id)
        return "done"

    assert db.handle(on_registered, event) == "done"
    assert db.handle(on_registered, event) is None  # a redelivery changes nothing
    assert db.store.seen == [event.id]
    with pytest.raises(AlreadyHandled), db.unit_of_work(event, "notify.on_registered"):
        pass


def test_the_clock_reads_days_in_shanghai():
    # 07:30 on 1 October in Shanghai is still 30 September in UTC.
    clock = FrozenClock(datetime(2026, 10, 1, 7, 30, tzinfo=SHANGHAI))
    db = MemoryDatabase("consulting", Counter(), clock=clock)
    with db.unit_of_work() as uow:
        assert uow.today().isoformat() == "2026-10-01"
        assert uow.now() == clock.at
    clock.advance(hours=17)
    assert clock.today().isoformat() == "2026-10-02"


def test_after_commit_runs_once_committed_and_never_after_a_rollback():
    db = MemoryDatabase("consulting", {})
    woken = []
    with db.unit_of_work() as uow:
        uow.after_commit(lambda: woken.append("committed"))
        assert woken == []  # not before the commit
    assert woken == ["committed"]
    with pytest.raises(RuntimeError), db.unit_of_work() as uow:
        uow.after_commit(lambda: woken.append("rolled back"))
        raise RuntimeError("rollback")
    assert woken == ["committed"]


def test_event_batches_are_a_setting_of_at_least_one(monkeypatch):
    from chassis.settings import nameko_config

    monkeypatch.setenv("NOTIFY_EVENT_BATCH_SIZE", "0")
    monkeypatch.setenv("EVENT_BATCH_LINGER_MS", "3")
    config = nameko_config("notify")
    assert config["EVENT_BATCH_SIZE"] == 1
    assert config["EVENT_BATCH_LINGER_MS"] == 3.0
    assert nameko_config("matching")["EVENT_BATCH_SIZE"] == 20


def test_a_batch_end_runs_once_after_every_event_and_before_the_commit():
    db = MemoryDatabase("notify", Counter())
    events = [_example("returnee.registered"), _example("returnee.updated")]
    ends = []

    def use(event, uow):
        uow.store.seen.append(event.id)
        if "end" not in uow.batch.shared:
            store = uow.store
            uow.batch.shared["end"] = lambda: ends.append((list(store.seen), list(db.store.seen)))
        uow.batch.at_end(uow.batch.shared["end"])  # every event asks: called once
        return event.id

    assert db.handle_batch(use, events) == [e.id for e in events]
    # After both events, before the batch's changes were kept.
    assert ends == [([e.id for e in events], [])]
    assert db.store.seen == [e.id for e in events]


def test_a_failing_batch_end_keeps_nothing_of_the_batch():
    db = MemoryDatabase("notify", Counter())
    events = [_example("returnee.registered"), _example("returnee.updated")]

    def use(event, uow):
        uow.store.seen.append(event.id)

        def fail():
            raise RuntimeError("held rows refused")

        uow.batch.at_end(fail)

    with pytest.raises(RuntimeError):
        db.handle_batch(use, events)
    assert db.store.seen == []
    assert db.handle_batch(lambda event, uow: None, events) == [None, None]  # not handled before
