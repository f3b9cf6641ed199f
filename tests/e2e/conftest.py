import uuid

import pytest

from tests.integration.smtp_sink import SmtpSink
from tests.platform import Platform
from tests.support import Databases, vhost_uri


@pytest.fixture(scope="module")
def platform(rabbit_admin):
    """The four services as processes, shared by the tests of a module (starting them is the
    slow part); each module gets its own vhost, databases and SMTP sink."""
    vhost = f"test-e2e-{uuid.uuid4().hex[:10]}"
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
