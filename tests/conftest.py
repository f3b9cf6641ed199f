import uuid

import pytest

from chassis.settings import nameko_config
from tests.support import Databases, RabbitAdmin, vhost_uri


@pytest.fixture(scope="session")
def rabbit_admin():
    return RabbitAdmin()


@pytest.fixture
def vhost(rabbit_admin):
    """A broker vhost of this test's own: no queue or message outlives it."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    rabbit_admin.create_vhost(name)
    yield name
    rabbit_admin.delete_vhost(name)


@pytest.fixture
def amqp_uri(vhost):
    return vhost_uri(vhost)


@pytest.fixture(scope="session")
def _databases():
    databases = Databases()
    yield databases
    databases.drop_templates()


@pytest.fixture
def databases(_databases):
    """`databases.create(service)` gives a new migrated database, dropped after the test."""
    yield _databases
    _databases.drop_created()


@pytest.fixture
def config_for(amqp_uri, databases):
    """`config_for(service, **overrides)`: container config on this test's vhost and a fresh
    database of that service."""

    def make(service: str, database_url: str | None = None, **overrides) -> dict:
        return nameko_config(
            service,
            AMQP_URI=amqp_uri,
            DATABASE_URL=database_url or databases.create(service),
            WEB_SERVER_ADDRESS="127.0.0.1:0",
            **overrides,
        )

    return make


@pytest.fixture
def spy(amqp_uri):
    """`spy("consulting", "eligibility.assessed")`: an EventSpy closed after the test."""
    from tests.support import EventSpy

    spies = []

    def make(producer: str, *event_types: str) -> EventSpy:
        spies.append(EventSpy(amqp_uri, producer, *event_types))
        return spies[-1]

    yield make
    for item in spies:
        item.close()


@pytest.fixture
def token_for():
    """`token_for(role, subject=None, organization_id=None)`: a bearer token as accounts issues."""
    from chassis.auth import TokenCodec

    codec = TokenCodec.from_config(nameko_config("accounts"))

    def make(role: str, subject: str | None = None, organization_id: str | None = None) -> dict:
        token = codec.issue(subject or str(uuid.uuid4()), role, organization_id)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture(scope="module")
def platform(rabbit_admin):
    """The services as processes, shared by the tests of a module (starting them is the
    slow part); each module gets its own vhost, databases and SMTP sink."""
    from deploy.mail_sink import SmtpSink
    from tests.platform import Platform

    vhost = f"test-platform-{uuid.uuid4().hex[:10]}"
    rabbit_admin.create_vhost(vhost)
    databases = Databases()
    smtp = SmtpSink().start()
    running = None
    try:
        running = Platform(vhost_uri(vhost), databases, smtp).start()
        running.vhost = vhost
        yield running
    finally:
        if running is not None:
            running.stop()
        smtp.stop()
        databases.drop_created()
        databases.drop_templates()
        rabbit_admin.delete_vhost(vhost)
