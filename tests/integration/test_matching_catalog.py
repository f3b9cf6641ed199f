"""The catalog a matching replica holds in memory is what PostgreSQL says: after resources are
published, withdrawn and have their places taken, by this replica or by another writer, and
after a transaction that wrote a resource rolled back, the held catalog equals one read whole
from the table, column by column."""

import functools
import uuid

import pytest
import requests

from chassis.db import Database, ScriptDatabase
from chassis.pool import ConnectionPool
from contracts import CATALOG
from contracts.examples import EXAMPLES
from services.matching.engine import Catalog
from services.matching.service import MatchingService
from services.matching.store import MatchingStore, Replica, ReplicaCatalog, as_resource
from tests.support import publish_events, query, service_url, wait_until

PROFILE = {k: v for k, v in EXAMPLES[("returnee.registered", 1)].data.items() if k != "returnee_id"}


def columns(catalog: Catalog) -> list[tuple]:
    """Each resource and its columns, codes read back as what they stand for."""
    districts = {code: key for key, code in catalog.district_codes.items()}
    return [
        (
            catalog.resources[i],
            catalog.organization_ids[catalog.organization[i]],
            int(catalog.needs[i]),
            int(catalog.industries[i]),
            int(catalog.stages[i]),
            districts.get(int(catalog.district[i])),
            float(catalog.capacity[i]),
            int(catalog.capacity_left[i]),
            int(catalog.valid_from[i]),
            int(catalog.valid_until[i]),
        )
        for i in range(len(catalog))
    ]


def from_the_table(url: str) -> Catalog:
    rows = query(
        url,
        "SELECT id::text, organization_id::text, needs_served, industries, stages, district,"
        " capacity, capacity - taken AS capacity_left, valid_from, valid_until"
        " FROM resources WHERE withdrawn_at IS NULL",
    )
    return Catalog(as_resource(row) for row in rows)


def resource(organization_id, number, **changes):
    return {
        "organization_id": organization_id,
        "title": f"Resource {number}",
        "kind": "mentorship",
        "needs_served": ["mentorship", "financing"][: 1 + number % 2],
        "industries": ["biotech"] if number % 3 == 0 else [],
        "stages": [],
        "district": ["Changning", "Xuhui", None][number % 3],
        "capacity": 1 + number % 4,
        "valid_from": None,
        "valid_until": None,
        "description": "",
        **changes,
    }


@pytest.fixture
def stored(databases):
    url = databases.create("matching")
    pool = ConnectionPool(url, 2)
    yield url, pool
    pool.clear()


def test_the_held_catalog_follows_every_write_and_ignores_rolled_back_ones(stored):
    url, pool = stored
    held_by = Replica()
    replica = held_by.catalog
    held = ScriptDatabase(pool, "matching", store=functools.partial(MatchingStore, replica=held_by))
    other = ScriptDatabase(pool, "matching", store=MatchingStore)  # another replica, a script
    organizations = [str(uuid.uuid4()) for _ in range(3)]
    ids = [str(uuid.uuid4()) for _ in range(60)]
    with other.unit_of_work() as uow:
        for number, organization_id in enumerate(organizations):
            uow.store.save_organization(organization_id, f"Partner {number}", "enterprise")
        for number, rid in enumerate(ids[:40]):
            uow.store.insert_resource(rid, resource(organizations[number % 3], number))

    def read() -> Catalog:
        with held.unit_of_work() as uow:
            return uow.store.catalog()

    assert columns(read()) == columns(from_the_table(url))
    assert replica.builds == 1

    with other.unit_of_work() as uow:
        for number, rid in enumerate(ids[40:], start=40):  # new ones, between the old ids
            uow.store.insert_resource(rid, resource(organizations[number % 3], number))
        for rid in ids[:10]:
            uow.store.take_place(rid)
        uow.store.withdraw_resource(ids[10])
    with held.unit_of_work() as uow:  # this replica writes too, in a unit of its own
        uow.store.withdraw_resource(ids[11])
        while uow.store.take_place(ids[12]) is not None:
            pass
    first = read()
    assert columns(first) == columns(from_the_table(url))
    assert ids[10] not in first.position and int(first.capacity_left[first.position[ids[12]]]) == 0
    assert replica.builds == 1  # brought up to date by the changed rows alone

    # A unit of work that writes sees its own write, from the table; rolled back, it leaves the
    # held catalog as it was.
    with pytest.raises(RuntimeError), held.unit_of_work() as uow:
        uow.store.withdraw_resource(ids[13])
        assert ids[13] not in uow.store.catalog().position
        raise RuntimeError("rolled back")
    assert replica.catalog is first
    assert ids[13] in read().position
    assert columns(read()) == columns(from_the_table(url))
    assert read() is read()  # nothing changed: the same columns, no copy


def test_the_services_catalog_equals_the_database_after_publishing_accepting_withdrawing(
    config_for, container_factory, amqp_uri, token_for
):
    config = config_for("matching", OUTBOX_SWEEP_SECONDS=0.2)
    container = container_factory(MatchingService, config)
    container.start()
    url, db = service_url(container), config["DATABASE_URL"]
    [provider] = [d for d in container.dependencies if isinstance(d, Database)]
    replica: ReplicaCatalog = provider.held.catalog
    organization_id = str(uuid.uuid4())
    provider_headers = token_for("provider", organization_id=organization_id)

    def publish(type_, data, subject):
        event = CATALOG.create("accounts", type_, data, subject=subject)
        publish_events(amqp_uri, [event])
        wait_until(lambda: query(db, "SELECT 1 FROM inbox WHERE event_id = %s", (event.id,)))

    def register() -> str:
        returnee_id = str(uuid.uuid4())
        publish("returnee.registered", {**PROFILE, "returnee_id": returnee_id}, returnee_id)
        return returnee_id

    def settled():
        """Every reverse match done, then a registration (a read of the catalog)."""
        wait_until(lambda: query(db, "SELECT count(*) AS n FROM rematch_queue")[0]["n"] == 0)
        register()
        assert columns(replica.catalog) == columns(from_the_table(db))

    data = {"organization_id": organization_id, "name": "Partner", "kind": "bank",
            "district": "Changning"}  # fmt: skip
    publish("organization.registered", data, organization_id)
    settled()
    published = []
    for number in range(6):
        body = resource(organization_id, number, needs_served=["financing"], capacity=1)
        body = {k: v for k, v in body.items() if v is not None}
        answer = requests.post(f"{url}/resources", json=body, headers=provider_headers, timeout=30)
        assert answer.status_code == 201, answer.text
        published.append(answer.json()["id"])
    settled()
    returnee_id = register()
    matches = requests.get(
        f"{url}/returnees/{returnee_id}/matches", headers=token_for("returnee", returnee_id)
    ).json()
    assert matches
    intention = requests.post(
        f"{url}/intentions",
        json={"resource_id": matches[0]["resource_id"]},
        headers=token_for("returnee", returnee_id),
        timeout=30,
    ).json()
    accepted = requests.post(
        f"{url}/intentions/{intention['intention_id']}/accept", headers=provider_headers
    )
    assert accepted.status_code == 200, accepted.text
    settled()
    assert (
        int(replica.catalog.capacity_left[replica.catalog.position[matches[0]["resource_id"]]]) == 0
    )
    # Places and validity changed by the provider (`PATCH`): the held columns follow.
    for rid, change in (
        (matches[0]["resource_id"], {"capacity": 3}),  # a place taken, two free again
        (published[1], {"valid_from": "2027-03-01", "valid_until": "2027-06-30"}),
        (published[2], {"capacity": 5, "valid_until": "2030-12-31"}),
    ):
        changed = requests.patch(
            f"{url}/resources/{rid}", json=change, headers=provider_headers, timeout=30
        )
        assert changed.status_code == 200, changed.text
    settled()
    held_now = replica.catalog
    assert int(held_now.capacity_left[held_now.position[matches[0]["resource_id"]]]) == 2
    withdrawn = requests.delete(f"{url}/resources/{published[-1]}", headers=provider_headers)
    assert withdrawn.status_code == 204
    settled()
    assert published[-1] not in replica.catalog.position
    assert replica.builds == 1


def test_a_returnee_matched_while_a_resource_is_published_never_goes_without_it(databases):
    """The race: the returnee's match reads the catalog before the new resource commits, and
    the resource's reverse match reads the profiles before the returnee's commits. The catalog
    is read under the version row's share lock: the resource's commit waits for the match, so
    its reverse match, read after it, finds the returnee."""
    from psycopg2.errors import LockNotAvailable

    from services.matching import handlers
    from services.matching.configuration import load_settings
    from services.matching.events import published_data

    url = databases.create("matching")
    pool = ConnectionPool(url, 3)
    policy = load_settings().policy
    units = ScriptDatabase(
        pool, "matching", store=functools.partial(MatchingStore, replica=Replica())
    )
    other = ScriptDatabase(pool, "matching", store=MatchingStore)  # the publishing replica
    organization_id, returnee_id = str(uuid.uuid4()), str(uuid.uuid4())
    with other.unit_of_work() as uow:
        uow.store.save_organization(organization_id, "Partner", "enterprise")
    registered = CATALOG.check(CATALOG.create(
        "accounts", "returnee.registered", {**PROFILE, "returnee_id": returnee_id},
        subject=returnee_id,
    ))  # fmt: skip

    def publish(lock_timeout: str | None = None):
        with other.unit_of_work() as uow:
            if lock_timeout:
                uow.execute(f"SET LOCAL lock_timeout = '{lock_timeout}'")
            row = uow.store.insert_resource(
                str(uuid.uuid4()), resource(organization_id, 2, needs_served=PROFILE["needs"])
            )
            event = uow.publish("resource.published", published_data(row), subject=row["id"])
        return row["id"], CATALOG.check(event)

    published = None
    try:
        with units.unit_of_work() as uow:  # the returnee's match, read and not yet committed
            handlers.match_returnee(registered, uow, policy=policy)
            try:
                published = publish(lock_timeout="300ms")
            except LockNotAvailable:
                pass  # the resource's commit waits for this match: it is published after it
            else:  # it committed meanwhile: its reverse match runs before this one commits
                handlers.rematch_for_resource(published[1], units, lambda: None, policy=policy)
        if published is None:
            published = publish()
            handlers.rematch_for_resource(published[1], units, lambda: None, policy=policy)
        while True:  # the re-match loop
            with units.unit_of_work() as uow:
                if not handlers.rematch_batch(uow, 50, policy):
                    break
        matched = query(url, "SELECT resource_id::text AS id FROM matches WHERE returnee_id = %s",
                        (returnee_id,))  # fmt: skip
        assert published[0] in {m["id"] for m in matched}
    finally:
        pool.clear()


def test_the_last_place_taken_while_the_loop_rematches_its_returnee_is_no_deadlock(databases):
    """The last place of a resource taken: the acceptance holds the catalog version row (the
    trigger of its write) and then queues the resource's returnees; the re-match loop claims a
    queued returnee and then reads the catalog. The loop takes the version's share lock before
    it claims, so the two never wait on each other in a cycle (PostgreSQL would abort one of
    them as a deadlock after `deadlock_timeout`)."""
    import eventlet

    from services.matching import handlers
    from services.matching.configuration import load_settings

    url = databases.create("matching")
    pool = ConnectionPool(url, 3)
    policy = load_settings().policy
    loop = ScriptDatabase(
        pool, "matching", store=functools.partial(MatchingStore, replica=Replica())
    )
    accepting = ScriptDatabase(pool, "matching", store=MatchingStore)
    organization_id, returnee_id, resource_id = (str(uuid.uuid4()) for _ in range(3))
    with accepting.unit_of_work() as uow:
        uow.store.save_organization(organization_id, "Partner", "enterprise")
        uow.store.insert_resource(resource_id, resource(organization_id, 0, capacity=1))
        uow.store.queue_rematch([returnee_id])
    version_held = eventlet.event.Event()

    def accept_the_last_place():
        with accepting.unit_of_work() as uow:
            assert uow.store.take_place(resource_id) == 0  # the version row is now held
            version_held.send()
            eventlet.sleep(0.3)  # meanwhile the loop starts its batch
            uow.store.queue_rematch([returnee_id])  # as `accept_intention` does after it

    acceptance = eventlet.spawn(accept_the_last_place)
    try:
        version_held.wait()

        def loop_batch():
            with loop.unit_of_work() as uow:
                uow.execute("SET LOCAL lock_timeout = '20s'")
                return handlers.rematch_batch(uow, 50, policy)

        assert loop_batch() is True  # waited for the acceptance, then re-matched the returnee
        acceptance.wait()  # committed, not aborted as a deadlock
        # The loop claimed the returnee after the acceptance committed (queueing it again
        # changed nothing) and read the catalog with the place taken: the queue is empty.
        assert query(url, "SELECT count(*) AS n FROM rematch_queue")[0]["n"] == 0
    finally:
        acceptance.kill()
        pool.clear()
