"""`CPU_NICENESS`: the service process, every thread of it, runs at the priority it names, and
so does its autogroup when it leads a session of its own (as `make run` starts each service),
for a nice value weighs only within one; a value out of range stops the start with a line
saying so."""

import os
from pathlib import Path

import pytest
import requests

from tests.support import ServiceProcess, free_port, wait_until

NICENESS = 7


def threads_niceness(pid: int) -> set[int]:
    """The nice value of each thread of `pid` (field 19 of its stat)."""
    return {
        int(stat.read_text().rpartition(")")[2].split()[16])
        for stat in Path(f"/proc/{pid}/task").glob("*/stat")
    }


def answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def insights(amqp_uri, databases, niceness: str, **options) -> tuple[ServiceProcess, int]:
    port = free_port()
    env = {
        "INSIGHTS_AMQP_URI": amqp_uri,
        "INSIGHTS_DATABASE_URL": databases.create("insights"),
        "INSIGHTS_HTTP_PORT": str(port),
        "INSIGHTS_CPU_NICENESS": niceness,
    }
    return ServiceProcess("insights", env, **options).start(), port


@pytest.mark.skipif(
    os.getpriority(os.PRIO_PROCESS, 0) >= NICENESS, reason="the tests themselves run niced"
)
@pytest.mark.parametrize("new_session", [False, True], ids=["in the runner's", "its own"])
def test_a_service_runs_at_the_niceness_it_is_given(amqp_uri, databases, new_session):
    process, port = insights(amqp_uri, databases, str(NICENESS), new_session=new_session)
    try:
        wait_until(lambda: answers(port), 60, 0.2, "insights ready")
        pid = process.process.pid
        assert threads_niceness(pid) == {NICENESS}
        autogroup = Path(f"/proc/{pid}/autogroup")
        if new_session and autogroup.exists():
            assert autogroup.read_text().split()[-1] == str(NICENESS), autogroup.read_text()
        elif autogroup.exists():  # the runner's group, left as it was
            assert autogroup.read_text() == Path("/proc/self/autogroup").read_text()
    finally:
        process.stop()


def test_a_niceness_out_of_range_stops_the_start_saying_so(amqp_uri, databases):
    process, _ = insights(amqp_uri, databases, "-5")
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.stop()
    assert (
        "insights refuses to start: CPU_NICENESS is '-5'; it must be a whole number from 0"
        " (the default) to 19"
    ) in process.output()
    assert "Traceback" not in process.output(), process.output()
