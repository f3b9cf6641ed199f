"""Run one service as its own process.

    python -m chassis.run accounts
    python -m chassis.run accounts my_package.module:AccountsVariant   # another class, same name

SIGTERM or Ctrl-C stops it gracefully: consumers stop taking events, HTTP stops accepting, and
running workers get `SHUTDOWN_TIMEOUT_SECONDS` to finish before the rest is killed. Events whose
acks are lost on the way are redelivered and absorbed by the inbox. Started by the local runner,
it also stops when the runner dies (`chassis.lifetime`). A port another process already serves
stops it at start, with a line naming that process (`chassis.ports`); so does, in production, a
secret that is missing, a placeholder, a development value or too weak (`chassis.secrets`).
"""

import sys

from chassis import green

green.patch()

import errno  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402

import eventlet  # noqa: E402
import eventlet.debug  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from chassis.lifetime import stop_with_runner  # noqa: E402
from chassis.loader import service_class  # noqa: E402
from chassis.logs import configure_logging  # noqa: E402
from chassis.ports import PortTaken  # noqa: E402
from chassis.settings import SettingError, development, nameko_config  # noqa: E402
from chassis.topology import QueueMismatch  # noqa: E402

log = logging.getLogger("chassis.run")


def refused(name: str) -> bool:
    """Whether the settings stop the start; each reason is logged in one line."""
    from chassis import secrets

    try:
        nameko_config(name)
        problems = [] if development() else secrets.refusals(name)
    except SettingError as exc:
        problems = [exc]
    for problem in problems:
        log.error("%s refuses to start: %s", name, problem)
    return bool(problems)


def run(name: str, path: str | None = None) -> int:
    if refused(name):
        return 1
    config = nameko_config(name)
    lower_priority(config["CPU_NICENESS"])
    runner = ServiceRunner(config)
    runner.add_service(service_class(name, path))
    timeout = config["SHUTDOWN_TIMEOUT_SECONDS"]

    def stop():
        log.info("stopping (up to %.0f s for running work)", timeout)
        try:
            with eventlet.Timeout(timeout):
                runner.stop()
        except eventlet.Timeout:
            log.warning("work still running after %.0f s; killing it", timeout)
            runner.kill()

    # Signal handlers run outside the hub: hand over to a greenthread.
    signal.signal(signal.SIGTERM, lambda *_: eventlet.spawn_n(stop))
    signal.signal(signal.SIGINT, lambda *_: eventlet.spawn_n(stop))
    _wake_hub_on_signals()
    # What stops a start propagates to here, where a refusal is said in one line; the hub would
    # also print it as a traceback from each greenthread it passed through.
    eventlet.debug.hub_exceptions(False)
    try:
        runner.start()
    except QueueMismatch as exc:  # a restart would meet the same queue: say which and exit
        log.error("%s not started: %s", name, exc)
        return 1
    except PortTaken as exc:
        log.error("%s", exc.refusal(name))
        return 1
    finally:
        eventlet.debug.hub_exceptions(True)
    log.info("%s started on %s", name, config["WEB_SERVER_ADDRESS"])
    waiter = eventlet.spawn(runner.wait)
    while True:
        try:
            waiter.wait()
            break
        except OSError as exc:  # EINTR from a signal while the hub waits
            if exc.errno != errno.EINTR:
                raise
    log.info("%s stopped", name)
    return 0


def lower_priority(niceness: int) -> None:
    """Run at `niceness` at least (`CPU_NICENESS`; never above the priority the process was
    started with), before any thread starts (eventlet's pool, the hash's) so that every one
    inherits it. A nice value weighs only against the processes of the same scheduling group:
    a service leading its own session (`make run` starts each so) is alone in its autogroup,
    whose own nice value is then the one that counts against the other services."""
    if niceness <= os.getpriority(os.PRIO_PROCESS, 0):
        return
    os.setpriority(os.PRIO_PROCESS, 0, niceness)
    if os.getsid(0) == os.getpid():
        try:
            with open("/proc/self/autogroup", "w") as group:
                group.write(str(niceness))
        except OSError:  # no autogroups (a kernel without them, a container): nothing to set
            pass


def _wake_hub_on_signals() -> None:
    """A signal's handler only schedules the stop; the hub runs it when it next wakes, which a
    process without timers (the portal: HTTP only) does once a minute. The signal's byte on a
    pipe the hub watches wakes it at once."""
    from eventlet.greenio import GreenPipe

    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    wakeups = GreenPipe(read_end, "rb", 0)

    def drain():
        while wakeups.read(64):
            pass

    eventlet.spawn_n(drain)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        print("usage: python -m chassis.run <service> [module:ServiceClass]", file=sys.stderr)
        return 2
    stop_with_runner(argv[0])
    configure_logging(argv[0])
    return run(*argv)


if __name__ == "__main__":
    sys.exit(main())
