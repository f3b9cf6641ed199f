"""A process the local runner starts does not outlive it, even when the runner is SIGKILLed.

The mail sink stands in for any child here (the services are checked in
tests/e2e/test_local_runner.py): a parent names itself in RUNNER_PID, as the runner does."""

import os
import signal
import subprocess
import sys
import time

import requests

from tests.support import ROOT, alive, free_port, wait_until

PARENT = """
import os, subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-m", "deploy.mail_sink",
     "--smtp-port", sys.argv[1], "--http-port", sys.argv[2]],
    env={**os.environ, "RUNNER_PID": sys.argv[3] if len(sys.argv) > 3 else str(os.getpid())},
    stdout=subprocess.DEVNULL,
    start_new_session=True,  # as the runner starts its children: no group signal reaches it
)
print(child.pid, flush=True)
sys.exit(child.wait())
"""


def start_parent(smtp: int, http: int, *runner: str) -> tuple[subprocess.Popen, int]:
    """A parent of the mail sink naming itself, or `runner`, in the child's RUNNER_PID."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(smtp), str(http), *runner],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return parent, int(parent.stdout.readline())


def answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/api/messages", timeout=2).ok
    except requests.RequestException:
        return False


def test_a_child_of_the_runner_stops_when_the_runner_is_killed():
    smtp, http = free_port(), free_port()
    parent, child = start_parent(smtp, http)
    try:
        wait_until(lambda: answers(http), 30, 0.1, "the mail sink answers")
        parent.kill()
        parent.wait()
        started = time.monotonic()
        wait_until(lambda: not alive(child), 5, 0.05, f"the child (pid {child}) gone")
        assert time.monotonic() - started < 5
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_child_whose_runner_is_already_gone_does_not_start():
    # RUNNER_PID naming another process than the parent: the runner died before the child
    # could ask to be told, and it was handed to another parent.
    parent, child = start_parent(free_port(), free_port(), "1")
    try:
        _, errors = parent.communicate(timeout=30)
        assert parent.returncode == 1  # the child's exit status, passed on by the parent
        assert errors == "mail: the runner (pid 1) is gone; not starting\n"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
