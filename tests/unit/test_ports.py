"""A listening port is one process's: a second one is refused, naming the first."""

import os

import pytest

from chassis.ports import PortTaken, holders, listen
from tests.support import free_port, served_port


@pytest.mark.parametrize("holder_reuses_port", [False, True])
def test_a_served_port_is_refused_naming_the_process_that_serves_it(holder_reuses_port):
    with served_port(holder_reuses_port) as port, pytest.raises(PortTaken) as refused:
        listen("127.0.0.1", port)
    message = str(refused.value)
    assert message.startswith(f"127.0.0.1:{port} is already in use by pid {os.getpid()} (")
    assert "pytest" in message  # this process's command line
    assert refused.value.refusal("consulting") == (
        f"consulting not started: {message}; stop that process or set CONSULTING_HTTP_PORT to "
        "a free port"
    )


def test_processes_share_a_port_only_when_each_asks_to():
    with served_port(reuse_port=True) as port:
        listen("127.0.0.1", port, reuse_port=True).close()


def test_a_free_port_is_listened_on_and_nobody_holds_a_closed_one():
    port = free_port()
    assert holders(port) == []
    sock = listen("127.0.0.1", port)
    try:
        assert [pid for pid, _ in holders(port)] == [os.getpid()]
    finally:
        sock.close()
    assert holders(port) == []
