"""A service does not start on a port another process serves: it says which, and takes no
event. Sharing a port is what HTTP_REUSE_PORT asks for."""

import os

import pytest

from chassis.ports import PortTaken
from services.consulting.service import ConsultingService
from tests.support import ServiceProcess, served_port


def test_a_service_on_a_served_port_does_not_start_and_takes_no_event(
    container_factory, config_for, rabbit_admin, vhost
):
    with served_port(reuse_port=True) as port:  # as eventlet.listen binds: SO_REUSEPORT
        config = {**config_for("consulting"), "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
        container = container_factory(ConsultingService, config)
        with pytest.raises(PortTaken) as refused:
            container.start()
        assert f"127.0.0.1:{port} is already in use by pid {os.getpid()} (" in str(refused.value)
        assert rabbit_admin.consumers(vhost) == {}  # refused before any consumer started


def test_http_reuse_port_lets_processes_share_a_port(container_factory, config_for):
    with served_port(reuse_port=True) as port:
        config = {
            **config_for("consulting", HTTP_REUSE_PORT=True),
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
        }
        container_factory(ConsultingService, config).start()


def test_the_service_process_exits_naming_the_port_and_its_holder(amqp_uri, databases):
    with served_port(reuse_port=False) as port:
        process = ServiceProcess(
            "consulting",
            {
                "CONSULTING_AMQP_URI": amqp_uri,
                "CONSULTING_DATABASE_URL": databases.create("consulting"),
                "CONSULTING_HTTP_PORT": str(port),
            },
        ).start()
        try:
            assert process.wait(timeout=60) == 1
        finally:
            process.stop()
    [line] = [line for line in process.output().splitlines() if "not started" in line]
    assert (
        f" consulting ERROR chassis.run: consulting not started: 127.0.0.1:{port} is already in "
        f"use by pid {os.getpid()} ("
    ) in line
    assert line.endswith("; stop that process or set CONSULTING_HTTP_PORT to a free port")
    assert "Traceback" not in process.output(), process.output()
