"""The local runner behind `make run` and `make test`.

python -m deploy.local prepare [--for-tests] [services...]
    broker and PostgreSQL up, databases created and migrated, broker topology declared;
    --for-tests: also the browser the portal's tests drive
python -m deploy.local run [services...]
    prepare, then run each service (and web front) as its own process until Ctrl-C or SIGTERM

Both run in development mode (`PLATFORM_ENV=development` unless the environment says
otherwise): development keys, the development admin and the demo staff, printed passwords.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import requests
import yaml

from chassis.broker import connect, redacted
from chassis.migrate import migrate
from chassis.ports import PortTaken, listen
from chassis.settings import FRONTS, SERVICES, database_url, http_port, setting
from chassis.topology import QueueMismatch
from deploy.topology import declare_services
from services.accounts.settings import DEVELOPMENT_ADMIN

ROOT = Path(__file__).resolve().parent.parent
MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@localhost:15672")
COLORS = {
    "accounts": 36,
    "consulting": 35,
    "matching": 33,
    "notify": 32,
    "activities": 31,
    "insights": 34,
    "portal": 94,
}


class SetupError(RuntimeError):
    pass


def emit(text: str, stream=None) -> None:
    """Write to stdout (or `stream`); once nobody reads it (`make run | head`, a `tee` gone with
    Ctrl-C), to /dev/null: the runner goes on, and still stops its services when told to."""
    stream = stream or sys.stdout
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # what is still buffered goes there on the next flush
        os.close(devnull)


def say(message: str) -> None:
    emit(f"[platform] {message}\n")


def _safe(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


def _reason(error: Exception) -> str:
    """The error on one line: libpq's messages span lines and end with a newline."""
    return " ".join(str(error).split())


def _wait(check, seconds: float) -> Exception | None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return None
        except Exception as exc:
            if time.monotonic() > deadline:
                return exc
            time.sleep(1)


def postgres_answers(url: str) -> None:
    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    psycopg2.connect(maintenance, connect_timeout=3).close()


def broker_answers(uri: str) -> None:
    connect(uri, connect_timeout=3).release()


def management_answers() -> None:
    parts = urlsplit(MANAGEMENT_URL)
    base = urlunsplit(parts._replace(netloc=parts.hostname + f":{parts.port or 15672}"))
    response = requests.get(
        f"{base}/api/overview", auth=(parts.username, parts.password), timeout=3
    )
    response.raise_for_status()


def ensure_postgres(url: str) -> None:
    if _wait(lambda: postgres_answers(url), 0) is None:
        return
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") and clusters.is_dir():
        for version in sorted(p.name for p in clusters.iterdir()):
            say(f"PostgreSQL is not answering; starting the local cluster {version}/main")
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                check=False,
            )
        error = _wait(lambda: postgres_answers(url), 30)
    else:
        error = _wait(lambda: postgres_answers(url), 0)
    if error is not None:
        raise SetupError(
            f"PostgreSQL does not answer at {_safe(url)}: {_reason(error)}\n"
            "Start it: `pg_ctlcluster --skip-systemctl-redirect <version> main start` for a local "
            "server, or `docker compose up -d postgres`; or point DATABASE_URL at yours."
        )


def ensure_rabbitmq(uri: str, management: bool) -> None:
    if _wait(lambda: broker_answers(uri), 0) is not None:
        if shutil.which("rabbitmq-server"):
            say("RabbitMQ is not answering; starting the local server")
            subprocess.run(["rabbitmq-server", "-detached"], check=False)
            error = _wait(lambda: broker_answers(uri), 90)
        else:
            error = _wait(lambda: broker_answers(uri), 0)
        if error is not None:
            raise SetupError(
                f"RabbitMQ does not answer at {redacted(uri)}: {_reason(error)}\n"
                "Start it: `rabbitmq-server -detached` for a local server, or "
                "`docker compose up -d rabbitmq`; or point AMQP_URI at yours."
            )
    if management and _wait(management_answers, 0) is not None:
        if shutil.which("rabbitmq-plugins"):
            say("enabling the RabbitMQ management plugin (the tests use its HTTP API)")
            subprocess.run(
                ["rabbitmq-plugins", "enable", "rabbitmq_management"],
                check=False,
                stdout=subprocess.DEVNULL,
            )
        error = _wait(management_answers, 60)
        if error is not None:
            raise SetupError(
                f"The RabbitMQ management API does not answer at {_safe(MANAGEMENT_URL)}: "
                f"{_reason(error)}\nEnable it: `rabbitmq-plugins enable rabbitmq_management`."
            )


def prepare(services: list[str], for_tests: bool = False) -> None:
    services = [s for s in services if s in SERVICES]  # web fronts have nothing to prepare
    for service in services:
        ensure_postgres(database_url(service))
    if services:
        ensure_rabbitmq(setting(services[0], "AMQP_URI"), for_tests)
    if for_tests:
        ensure_browser()
        return  # tests create their own databases and broker vhosts
    if not services:
        return
    for service in services:
        migrate(service)
        say(f"{service}: database {_safe(database_url(service))} migrated")
        if (ROOT / "services" / service / "seed.py").exists():
            # Reference data (policies, resources, topics), loaded idempotently.
            # Its output passes through the runner, which survives a stdout nobody reads.
            seeded = subprocess.run(
                [sys.executable, "-m", f"services.{service}.seed"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            emit(seeded.stdout)
            if seeded.returncode:
                raise SetupError(f"{service}: seeding failed with status {seeded.returncode}")
    try:
        declare_services(setting(services[0], "AMQP_URI"), services)
    except QueueMismatch as exc:
        raise SetupError(str(exc)) from None
    say(f"broker topology declared for {', '.join(services)}")


# What the portal's browser tests drive (tests/browser): Debian's Chromium, and CJK fonts so
# Chinese pages render as people see them. The tests find it at BROWSER (default below).
BROWSER = os.environ.get("BROWSER", "/usr/bin/chromium")
BROWSER_PACKAGES = ("chromium", "fonts-noto-cjk")


def ensure_browser() -> None:
    fonts = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    if Path(BROWSER).exists() and (fonts.exists() or "BROWSER" in os.environ):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        say(f"installing {' and '.join(BROWSER_PACKAGES)} for the portal's browser tests")
        subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
        installed = subprocess.run(
            ["apt-get", "install", "-y", "-qq", *BROWSER_PACKAGES],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
            check=False,
        )
        if installed.returncode == 0 and Path(BROWSER).exists():
            return
    raise SetupError(
        f"The portal's browser tests need Chromium at {BROWSER}: "
        f"`sudo apt-get install {' '.join(BROWSER_PACKAGES)}`, or set BROWSER to a Chromium."
    )


def ensure_ports_free(services: list[str]) -> None:
    """Refuse to start a service on a port another process serves (a second `make run`), before
    anything is prepared; each service checks again as it binds."""
    for service in services:
        try:
            listen(setting(service, "HTTP_HOST"), http_port(service)).close()
        except PortTaken as exc:
            raise SetupError(exc.refusal(service)) from None


def _port_taken(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pipe(name: str, stream, color: bool) -> None:
    prefix = f"{name:<10}|"
    if color:
        prefix = f"\033[{COLORS.get(name, 37)}m{prefix}\033[0m"
    for line in iter(stream.readline, ""):  # read to the end, so a service never blocks
        emit(f"{prefix} {line}")


# The station's first admin on a development machine, unless the environment names one.
DEMO_ADMIN = DEVELOPMENT_ADMIN


def run(services: list[str]) -> int:
    ensure_ports_free(services)
    prepare(services)
    development = os.environ["PLATFORM_ENV"] == "development"
    if development:
        for name, value in DEMO_ADMIN.items():
            os.environ.setdefault(name, value)
    color = sys.stdout.isatty()
    commands = {service: ["-m", "chassis.run", service] for service in services}
    if "notify" in services and not (setting("notify", "SMTP_HOST", "") or _port_taken(1025)):
        # No mail server configured: catch notify's emails locally, as Mailpit does in compose.
        commands = {"mail": ["-m", "deploy.mail_sink"], **commands}
        os.environ["NOTIFY_SMTP_HOST"], os.environ["NOTIFY_SMTP_PORT"] = "127.0.0.1", "1025"
    stopping = threading.Event()

    def stop(signum, frame):
        stopping.set()

    # Before the first service starts, so no signal ends the runner without stopping them.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: terminal closed
        signal.signal(signum, stop)
    # Each child stops when the runner dies, even of SIGKILL (chassis.lifetime).
    environment = {**os.environ, "RUNNER_PID": str(os.getpid())}
    processes: dict[str, subprocess.Popen] = {}
    for service, command in commands.items():
        processes[service] = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the runner only; it stops each service
        )
        threading.Thread(
            target=_pipe, args=(service, processes[service].stdout, color), daemon=True
        ).start()
    for service in services:
        host = setting(service, "HTTP_HOST")
        path = "/" if service in FRONTS else "/openapi.json"
        say(f"{service}: http://{host}:{http_port(service)}{path}")
    if "mail" in processes:
        say("emails caught: http://127.0.0.1:8025/api/messages")
    if "accounts" in services and development:  # passwords are printed in development only
        say(f"admin: {os.environ['ADMIN_EMAIL']} / {os.environ['ADMIN_PASSWORD']}")
        staff = yaml.safe_load((ROOT / "deploy" / "reference" / "organizations.yml").read_text())
        providers = ", ".join(o["provider"]["email"] for o in staff["organizations"][:2])
        advisors = ", ".join(a["email"] for a in staff["advisors"])
        say(f"providers: {providers}, ... / {staff['demo_password']}")
        say(f"advisors: {advisors} / {staff['demo_password']}")
        say("then, in another terminal: make demo")

    exit_code = 0
    while not stopping.is_set():
        for service, process in processes.items():
            if process.poll() is not None:
                say(f"{service} exited with status {process.returncode}; stopping the others")
                exit_code = process.returncode or 1
                stopping.set()
        stopping.wait(0.5)
    say("stopping services")
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for service, process in processes.items():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            say(f"{service} did not stop in 30 s; killing it")
            process.kill()
            process.wait()
    say("stopped")
    return exit_code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description=__doc__)
    parser.add_argument("command", choices=["prepare", "run"])
    parser.add_argument("services", nargs="*")
    parser.add_argument("--for-tests", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("PLATFORM_ENV", "development")  # the seeds and services it starts
    known = [*SERVICES, *FRONTS]
    services = args.services or known
    unknown = sorted(set(services) - set(known))
    if unknown:
        parser.error(f"unknown services {unknown}; choose from {known}")
    try:
        if args.command == "prepare":
            prepare(services, for_tests=args.for_tests)
            return 0
        return run(services)
    except SetupError as exc:
        emit(f"[platform] {exc}\n", sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
