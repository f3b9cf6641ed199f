"""`CPU_NICENESS`: the service process, every thread of it, runs at the priority it names; a
value out of range stops the start with a line saying so."""

from pathlib import Path

import requests

from tests.support import ServiceProcess, free_port, wait_until


def niceness(pid: int) -> set[int]:
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


def test_a_service_runs_at_the_niceness_it_is_given(amqp_uri, databases):
    port = free_port()
    process = ServiceProcess(
        "insights",
        {
            "INSIGHTS_AMQP_URI": amqp_uri,
            "INSIGHTS_DATABASE_URL": databases.create("insights"),
            "INSIGHTS_HTTP_PORT": str(port),
            "INSIGHTS_CPU_NICENESS": "7",
        },
    ).start()
    try:
        wait_until(lambda: answers(port), 60, 0.2, "insights ready")
        assert niceness(process.process.pid) == {7}
    finally:
        process.stop()


def test_a_niceness_out_of_range_stops_the_start_saying_so(amqp_uri, databases):
    process = ServiceProcess(
        "insights",
        {
            "INSIGHTS_AMQP_URI": amqp_uri,
            "INSIGHTS_DATABASE_URL": databases.create("insights"),
            "INSIGHTS_HTTP_PORT": str(free_port()),
            "INSIGHTS_CPU_NICENESS": "-5",
        },
    ).start()
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.stop()
    assert (
        "insights refuses to start: CPU_NICENESS is '-5'; it must be a whole number from 0"
        " (the default) to 19"
    ) in process.output()
    assert "Traceback" not in process.output(), process.output()
