"""A process the local runner starts ends with the runner, however the runner ends.

The runner starts each service in a session of its own, so Ctrl-C reaches the runner alone and it
stops the services in order. The price: when the runner itself dies without stopping them
(SIGKILL, an OOM kill, a CI timeout), nothing else would reach them, and they would go on
consuming events and answering on their ports with nobody watching. So the runner names itself
in `RUNNER_PID` and each child asks Linux for SIGTERM when its parent dies
(prctl(PR_SET_PDEATHSIG)), which stops it as gracefully as the runner would have.

PR_SET_PDEATHSIG rather than a watchdog polling the parent: the kernel delivers it at the moment
the parent dies, even while the child is busy, at no cost while it lives. It is asked for here,
at the child's start, rather than in a `preexec_fn` of the runner's Popen, which is unsafe in a
process that runs threads (the runner's log pumps). Where prctl is missing (not Linux), a thread
polls the parent once a second instead.
"""

import ctypes
import os
import signal
import threading
import time

from chassis.settings import setting

PR_SET_PDEATHSIG = 1


def stop_with_runner(name: str) -> None:
    """When started by the local runner (`RUNNER_PID`), receive SIGTERM when it dies."""
    runner = setting(name, "RUNNER_PID")
    if not runner:
        return  # started by hand, compose or Kubernetes: they watch the process themselves
    runner = int(runner)
    asked = _parent_death_signal(signal.SIGTERM)
    # The runner may have died before the request above: then the signal would never come.
    if os.getppid() != runner:
        raise SystemExit(f"{name}: the runner (pid {runner}) is gone; not starting")
    if not asked:
        threading.Thread(target=_watch, args=(runner,), daemon=True).start()


def _parent_death_signal(signum: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(runner: int) -> None:
    while os.getppid() == runner:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)
