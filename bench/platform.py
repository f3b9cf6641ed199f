"""The whole platform under load: four services as processes, a real SMTP server, baselines.

    python -m bench.platform [--runs 3] [--registrations 600] [--paced 500] [--rate 50]
    python -m bench.platform --quick          # a smoke test: small counts, one run

Each run builds its own world: a broker vhost, fresh migrated and seeded databases, the SMTP
sink (`bench/platform_smtp.py`) and the four services as separate processes (`chassis.run`) on
free ports, with notify's SMTP pointed at the sink. Then, in this order:

1. **Raw kombu hop** (`bench.hop.run_baseline`), with only accounts running.
2. **HTTP**: `--http-requests` `POST /returnees` with `--clients` concurrent keep-alive
   clients, same bodies, against a bare nameko `@http` endpoint (`bench/platform_bare.py`, its
   own process) and against accounts, while consulting, matching and notify are not yet
   started (their events wait in their queues): requests/s and latency, and the ratio.
3. The three other services start and work off the backlog of step 2 (a warm-up).
4. **Saturation**: `--registrations` registrations as fast as `--clients` clients can post
   them; fully processed per second, from the first request to the moment every one has its
   matches stored (matching DB), its eligibility assessment stored (consulting DB) and its
   welcome notifications sent (notify DB, every channel, the email received by the sink), and
   latency from the start of `POST /returnees` to the welcome email's `sent_at`.
5. **Paced**: `--paced` registrations at `--rate` per second (open loop): the same latency.

`--profile DIR` records each service with py-spy during the saturation phase, or at `--rate`
with `--profile-phase paced` (raw collapsed stacks, `DIR/<service>-run<k>.txt`);
`python -m bench.platform_profile DIR/*.txt` summarizes. At `--rate` the welcome's latency is
also split in three (`POST` answered, the answer until notify's intake wrote the email's row,
that row until the email was sent), a diagnostic.
`--unhashed` runs the whole benchmark with accounts' password hash replaced by a precomputed
one (`bench/platform_unhashed.py`, a diagnostic, never for production), so the CPU per
registration without the hash is counted directly instead of by subtracting an estimate of it.
`--env NAME=VALUE` passes a setting to the services (e.g. `NOTIFY_DELIVERY_INTERVAL_SECONDS`).
"""

import argparse
import copy
import http.client
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from chassis import green

green.patch()

import eventlet  # noqa: E402
import psycopg2  # noqa: E402

from bench.cpu import cpu_by_owner, cpu_seconds, machine_busy  # noqa: E402
from bench.hop import percentile, run_baseline  # noqa: E402
from chassis.settings import SERVICES  # noqa: E402
from contracts.examples import EXAMPLES  # noqa: E402
from deploy.topology import declare_services  # noqa: E402
from tests.support import (  # noqa: E402
    ROOT,
    Databases,
    RabbitAdmin,
    ServiceProcess,
    vhost_uri,
)

PASSWORD = "Returnee2026!"
# Every service subscribed to `returnee.registered`: a registration is fully processed once
# each of them has taken it in (activities and insights counted since 2026-12-03).
DOWNSTREAM = ("consulting", "matching", "notify", "activities", "insights")
# The four a welcome passes through, which the figures before 2026-12-03 counted alone.
WELCOME_PATH = ("accounts", "consulting", "matching", "notify")
STARTED = ("accounts", *DOWNSTREAM)  # the services a registration goes through, all started
PY_SPY = Path(sys.executable).parent / "py-spy"


def free_port() -> int:
    """A port nobody listens on now (the kernel's ephemeral range: never 8001-8004)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def registration_bodies(count: int, tag: str) -> list[bytes]:
    """Valid registrations as `tests/integration/test_accounts.py` builds them, unique emails."""
    template = copy.deepcopy(EXAMPLES[("returnee.registered", 1)].data)
    template.pop("returnee_id")
    template["password"] = PASSWORD
    bodies = []
    for i in range(count):
        template["email"] = f"bench.{tag}.{i}@example.com"
        bodies.append(json.dumps(template, default=str).encode())
    return bodies


# --- the load generator ----------------------------------------------------------------------


class Posted:
    """What one batch of `POST /returnees` did: per request start, end, status, returnee id."""

    def __init__(self, results: list):
        self.results = results
        self.ok = [r for r in results if r[2] == 201]
        self.failed = [r for r in results if r[2] != 201]
        self.started = min(r[0] for r in results)
        self.finished = max(r[1] for r in results)

    @property
    def per_second(self) -> float:
        return len(self.ok) / (self.finished - self.started)

    def latencies_ms(self) -> list[float]:
        return [(end - start) * 1000 for start, end, *_ in self.ok]

    def starts(self) -> dict[str, float]:
        """Returnee id -> the time its `POST /returnees` started."""
        return {json.loads(r[3])["id"]: r[0] for r in self.ok}


def post_all(port: int, bodies: list[bytes], clients: int, rate: float | None = None) -> Posted:
    """POST every body to 127.0.0.1:`port`/returnees with `clients` keep-alive connections;
    at `rate` per second (request i starts no earlier than i / rate) when given."""
    results = [None] * len(bodies)
    indices = itertools.count()
    origin = time.monotonic()
    headers = {"Content-Type": "application/json"}

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for i in indices:
            if i >= len(bodies):
                break
            if rate:
                delay = origin + i / rate - time.monotonic()
                if delay > 0:
                    eventlet.sleep(delay)
            start = time.time()
            try:
                conn.request("POST", "/returnees", body=bodies[i], headers=headers)
                response = conn.getresponse()
                data = response.read()
                results[i] = (start, time.time(), response.status, data)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                results[i] = (start, time.time(), 0, repr(exc).encode())
        conn.close()

    workers = [eventlet.spawn(client) for _ in range(clients)]
    for worker in workers:
        worker.wait()
    posted = Posted(results)
    if posted.failed:
        start, end, status, data = posted.failed[0]
        print(f"  ! {len(posted.failed)} requests failed; first: {status} {data[:300]!r}")
    return posted


# --- watching the databases ------------------------------------------------------------------

STAGES = {
    # Profile stored and matches computed in the same transaction (`match_returnee`).
    "matching": "SELECT count(*) FROM returnees WHERE id = ANY(%s::uuid[])",
    "consulting": "SELECT count(*) FROM returnees"
    " WHERE id = ANY(%s::uuid[]) AND assessed_at IS NOT NULL",
    # Every welcome notification (each channel) sent, the email among them.
    "notify": "SELECT count(*) FROM (SELECT recipient_id FROM notifications"
    " WHERE template = 'welcome' AND recipient_id = ANY(%s::uuid[]) GROUP BY recipient_id"
    " HAVING bool_and(status = 'sent') AND bool_or(channel = 'email')) AS done",
    # The minimum kept for audiences, and the registration counted.
    "activities": "SELECT count(*) FROM returnees WHERE id = ANY(%s::uuid[])",
    "insights": "SELECT count(*) FROM returnees"
    " WHERE returnee_id = ANY(%s::uuid[]) AND registered_at IS NOT NULL",
}


class Watch:
    """Polls the downstream databases for how many of a set of registrations each has fully
    processed; one connection each, autocommit."""

    def __init__(self, urls: dict[str, str]):
        self.urls = urls
        self.connections = {service: self._connect(service) for service in STAGES}
        self.disturbed = 0  # connections lost: PostgreSQL restarted under the run
        # This benchmark's own PostgreSQL backends, so their CPU is not charged to a service.
        self.backends = {conn.get_backend_pid() for conn in self.connections.values()}

    def _connect(self, service: str):
        conn = psycopg2.connect(self.urls[service], connect_timeout=5)
        conn.autocommit = True
        return conn

    def one(self, service: str, sql: str, params=None) -> list[tuple]:
        """Run a query; should PostgreSQL restart meanwhile (another program on the machine
        may restart it), reconnect for up to a minute and count the run as disturbed."""
        deadline = time.time() + 60
        while True:
            try:
                with self.connections[service].cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall()
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if time.time() > deadline:
                    raise
                self.disturbed += 1
                print(f"  ! PostgreSQL connection lost ({exc}); this run is disturbed", flush=True)
                time.sleep(1)
                try:
                    self.connections[service] = self._connect(service)
                    self.backends.add(self.connections[service].get_backend_pid())
                except psycopg2.OperationalError:
                    continue

    def counts(self, ids: list[str]) -> dict[str, int]:
        return {s: self.one(s, sql, (ids,))[0][0] for s, sql in STAGES.items()}

    def wait(self, ids: list[str], stall_seconds: float = 90.0, label: str = "",
             interval: float = 0.1) -> dict:  # fmt: skip
        """Until every stage has processed every id; returns when each stage got there
        (observed by polling every `interval` s). Fails when nothing moves for `stall_seconds`."""
        done, last, moved = {}, None, time.time()
        next_report = time.time() + 10
        while len(done) < len(STAGES):
            counts = self.counts(ids)
            now = time.time()
            for service, count in counts.items():
                if count >= len(ids) and service not in done:
                    done[service] = now
            if counts != last:
                last, moved = counts, now
            elif now - moved > stall_seconds:
                raise RuntimeError(f"{label}: no progress for {stall_seconds:.0f} s: {counts}")
            if now > next_report:
                print(f"  .. {label} processed of {len(ids)}: {counts}", flush=True)
                next_report = now + 10
            time.sleep(interval)
        return done

    def welcome_sent(self, ids: list[str]) -> dict[str, float]:
        """Returnee id -> when its welcome email was recorded as sent."""
        return {i: sent for i, (_, sent) in self.welcome_times(ids).items()}

    def welcome_times(self, ids: list[str]) -> dict[str, tuple[float, float]]:
        """Returnee id -> when notify wrote its welcome email's row (the intake's transaction)
        and when it recorded the email sent."""
        rows = self.one(
            "notify",
            "SELECT recipient_id::text, extract(epoch FROM created_at)::float8,"
            " extract(epoch FROM sent_at)::float8 FROM notifications"
            " WHERE template = 'welcome' AND channel = 'email' AND recipient_id = ANY(%s::uuid[])",
            (ids,),
        )
        if len(rows) != len(ids):
            raise RuntimeError(f"{len(rows)} welcome emails for {len(ids)} registrations")
        return {i: (created, sent) for i, created, sent in rows}

    def last_assessed(self, ids: list[str]) -> float:
        return self.one(
            "consulting",
            "SELECT extract(epoch FROM max(assessed_at))::float8 FROM returnees"
            " WHERE id = ANY(%s::uuid[])",
            (ids,),
        )[0][0]

    def match_rows(self, ids: list[str]) -> int:
        sql = "SELECT count(*) FROM matches WHERE returnee_id = ANY(%s::uuid[])"
        return self.one("matching", sql, (ids,))[0][0]

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()


# --- the platform ----------------------------------------------------------------------------


def wait_ready(
    label: str, process: ServiceProcess, port: int, any_answer: bool = False, timeout: float = 90.0
) -> None:
    """Until the service on `port` answers `/health/ready` with 200 (`any_answer`: answers
    `/health/live` at all); raises if it exits or `timeout` passes first."""
    path = "/health/live" if any_answer else "/health/ready"
    deadline = time.time() + timeout
    while True:
        if process.process.poll() is not None:
            raise RuntimeError(f"{label} exited: {process.output()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            ready = any_answer or conn.getresponse().status == 200
            conn.close()
            if ready:
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError(f"{label} not ready after {timeout:.0f} s")
        time.sleep(0.2)


class Platform:
    """One run's world: vhost, databases, SMTP sink, service processes; `close` removes it."""

    def __init__(self, admin: RabbitAdmin, databases: Databases, extra_env: dict[str, str]):
        self.admin, self.databases = admin, databases
        self.vhost = f"bench-platform-{uuid.uuid4().hex[:8]}"
        self.processes: dict[str, ServiceProcess] = {}
        self.ports: dict[str, int] = {}
        self.smtp = None
        self.urls: dict[str, str] = {}
        self.admin.create_vhost(self.vhost)
        self.amqp_uri = vhost_uri(self.vhost)
        for service in SERVICES:
            self.urls[service] = databases.create(service)
        # Every registration comes from this one host: no per-address limit gets in the way.
        self.env = {"AMQP_URI": self.amqp_uri, "LOG_LEVEL": "WARNING",
                    "ACCOUNTS_REGISTRATIONS_PER_HOUR": "10000000"}  # fmt: skip
        for service in SERVICES:
            self.env[f"{service.upper()}_DATABASE_URL"] = self.urls[service]
        for service in SERVICES:
            # Reference data (policies, organizations, resources, topics), as `make run` does.
            if not (ROOT / "services" / service / "seed.py").exists():
                continue
            subprocess.run(
                [sys.executable, "-m", f"services.{service}.seed"],
                cwd=ROOT,
                env={**os.environ, **self.env},
                check=True,
                stdout=subprocess.DEVNULL,
            )
        self.smtp = subprocess.Popen(
            [sys.executable, "-m", "bench.platform_smtp"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        smtp_port = int(self.smtp.stdout.readline())
        self.env.update({"NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": str(smtp_port)})
        self.env.update(extra_env)
        saved = dict(os.environ)
        os.environ.update(self.env)  # the services' settings, as each process will read them
        try:
            declare_services(self.amqp_uri, list(SERVICES))
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start(self, service: str, service_class: str | None = None, label: str = "", **env) -> int:
        """Start `service` (as `label` when it is a variant) on a free port."""
        port = free_port()
        env = {**self.env, f"{service.upper()}_HTTP_PORT": str(port), **env}
        label = label or service
        self.processes[label] = ServiceProcess(service, env, service_class).start()
        self.ports[label] = port
        return port

    def wait_ready(self, labels, timeout: float = 90.0) -> None:
        for service in labels:
            bare = service == "bare"  # no health of its own: any answer will do
            wait_ready(service, self.processes[service], self.ports[service], bare, timeout)

    def pid(self, service: str) -> int:
        return self.processes[service].process.pid

    def emails(self) -> int:
        self.smtp.stdin.write("count\n")
        self.smtp.stdin.flush()
        return int(self.smtp.stdout.readline())

    def close(self) -> None:
        for process in self.processes.values():
            process.stop()
        if self.smtp is not None and self.smtp.poll() is None:
            self.smtp.stdin.close()
            try:
                self.smtp.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.smtp.kill()
                self.smtp.wait()
        try:
            self.admin.delete_vhost(self.vhost)
        finally:
            self.databases.drop_created()


class CpuMeter:
    """CPU used over a phase by each service process, this process, PostgreSQL and RabbitMQ
    (all their processes: that includes queries of other programs using the same servers) and
    the whole machine."""

    OWNERS = ("postgres", "rabbitmq")

    def __init__(self, pids: dict[str, int], databases: dict[str, str], watch: "Watch"):
        self.pids = {**pids, "load generator": os.getpid()}
        self.databases = {url.rsplit("/", 1)[1]: service for service, url in databases.items()}
        self.watch = watch
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.owners_before = cpu_by_owner(self.OWNERS)
        self.machine_before = machine_busy()

    def backends(self) -> dict[int, str]:
        """PostgreSQL backend pid -> the service whose database it serves (or the watcher)."""
        rows = self.watch.one(
            "notify",
            "SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY(%s)",
            (list(self.databases),),
        )
        owners = {pid: self.databases[datname] for pid, datname in rows}
        owners.update({pid: "this benchmark's polling" for pid in self.watch.backends})
        return owners

    def report(self, count: int, show, unit: str = "registration") -> None:
        used = {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}
        backends = self.backends()
        for owner, processes in cpu_by_owner(self.OWNERS).items():
            before = self.owners_before[owner]
            spent = {pid: t - before.get(pid, 0.0) for pid, t in processes.items()}
            if owner == "postgres":
                for pid, seconds in spent.items():
                    if pid in backends:
                        name = f"postgres for {backends[pid]}"
                        used[name] = used.get(name, 0.0) + seconds
                rest = sum(t for pid, t in spent.items() if pid not in backends)
                used["postgres, other backends and processes"] = rest
            else:
                used[owner] = sum(spent.values())
        busy, elapsed = (a - b for a, b in zip(machine_busy(), self.machine_before, strict=True))
        for name, seconds in used.items():
            show(f"  CPU ms per {unit}: {name}", 1000 * seconds / count, "ms")
        # Totals: the services, their PostgreSQL backends, PostgreSQL's own processes (WAL
        # writer, checkpointer), RabbitMQ and the SMTP sink standing in for the relay, as the
        # first round's figures counted; never the load generator nor this benchmark's polling.
        common = ["postgres, other backends and processes", "rabbitmq", "SMTP sink"]
        for label, services in (("in all", STARTED), ("the welcome's four", WELCOME_PATH)):
            parts = [*services, *(f"postgres for {s}" for s in services), *common]
            total = sum(used.get(part, 0.0) for part in parts)
            show(f"CPU ms per {unit}, {label}", 1000 * total / count, "ms")
        rest = busy - sum(used.values())
        show(f"  CPU ms per {unit}: rest of machine", 1000 * rest / count, "ms")
        show("  machine busy %", 100 * busy / elapsed, "%")


class SqlSampler:
    """Samples `pg_stat_activity` every 20 ms: which statements each service's backends are
    running (pg_stat_statements needs a server restart to load, which is not ours to do)."""

    def __init__(self, urls: dict[str, str], watch: "Watch"):
        self.databases = {url.rsplit("/", 1)[1]: service for service, url in urls.items()}
        self.watch = watch
        self.seen: dict[tuple[str, str], int] = {}
        self.waits: dict[tuple[str, str], int] = {}  # (service, what its active backends wait on)
        self.samples = 0
        self.running = True
        self.thread = eventlet.spawn(self._run)

    def _run(self) -> None:
        conn = psycopg2.connect(next(iter(self.watch.connections.values())).dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while self.running:
                    cur.execute(
                        "SELECT datname, query, coalesce(wait_event_type || '/' || wait_event,"
                        " 'running') FROM pg_stat_activity WHERE state = 'active'"
                        " AND datname = ANY(%s) AND pid <> pg_backend_pid()",
                        (list(self.databases),),
                    )
                    self.samples += 1
                    for datname, sql, wait in cur.fetchall():
                        service = self.databases[datname]
                        key = (service, " ".join(sql.split())[:160])
                        self.seen[key] = self.seen.get(key, 0) + 1
                        self.waits[(service, wait)] = self.waits.get((service, wait), 0) + 1
                    eventlet.sleep(0.02)
        finally:
            conn.close()

    def stop(self, path: Path) -> None:
        self.running = False
        self.thread.wait()
        lines = [f"{self.samples} samples of pg_stat_activity; active backends by their wait:"]
        for (service, wait), count in sorted(self.waits.items(), key=lambda item: -item[1]):
            lines.append(f"{100 * count / self.samples:6.1f}%  {service:<10} {wait}")
        lines.append("statements seen active:")
        for (service, sql), count in sorted(self.seen.items(), key=lambda item: -item[1])[:40]:
            lines.append(f"{100 * count / self.samples:6.1f}%  {service:<10} {sql}")
        path.write_text("\n".join(lines) + "\n")


def profile(platform: Platform, out_dir: Path, run: int, seconds: int) -> list:
    out_dir.mkdir(parents=True, exist_ok=True)
    recorders = []
    for service in STARTED:
        target = out_dir / f"{service}-run{run}.txt"
        recorders.append(
            subprocess.Popen(
                [PY_SPY, "record", "-p", str(platform.pid(service)), "-f", "raw"]
                + ["-o", str(target), "-d", str(seconds), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return recorders


# --- one run ---------------------------------------------------------------------------------


def latency_summary(name: str, posted: Posted, sent: dict[str, float]) -> dict:
    starts = posted.starts()
    latencies = [(sent[i] - starts[i]) * 1000 for i in starts]
    return {
        f"{name} p50 ms": percentile(latencies, 50),
        f"{name} p99 ms": percentile(latencies, 99),
    }


def welcome_parts(name: str, posted: Posted, times: dict[str, tuple[float, float]]) -> dict:
    """Where the welcome's time went, each part's p50 and p99 (a diagnostic): the `POST` until
    answered, the answer until notify's intake committed the email's row (the relay, the
    broker, the batch), and that commit until the email was recorded sent (the delivery loop,
    the SMTP session). `created_at` is the intake transaction's start, so the second part
    ends a little early and the third a little late."""
    parts: dict[str, list[float]] = {"POST answered": [], "answer -> row": [], "row -> sent": []}
    for start, end, _, body in posted.ok:
        created, sent = times[json.loads(body)["id"]]
        parts["POST answered"].append((end - start) * 1000)
        parts["answer -> row"].append((created - end) * 1000)
        parts["row -> sent"].append((sent - created) * 1000)
    figures = {}
    for part, values in parts.items():
        figures[f"  {name} {part} p50 ms"] = percentile(values, 50)
        figures[f"  {name} {part} p99 ms"] = percentile(values, 99)
    return figures


UNHASHED = "bench.platform_unhashed:UnhashedAccounts"


def one_run(args, run: int, admin: RabbitAdmin, databases: Databases) -> dict:
    figures: dict[str, float] = {}

    def show(name: str, value: float, unit: str = "") -> None:
        figures[name] = value
        print(f"run {run}  {name:<44} {value:10.1f} {unit}", flush=True)

    platform = Platform(admin, databases, args.extra_env)
    watch = None
    try:
        # --unhashed: the whole run with the hash replaced, to count the rest directly
        platform.start("accounts", UNHASHED if args.unhashed else None)
        platform.start("bare", "bench.platform_bare:BareService")
        unhashed_db = databases.create("accounts")  # its accounts, apart from the real ones
        platform.start(
            "accounts",
            UNHASHED,
            label="unhashed",
            ACCOUNTS_DATABASE_URL=unhashed_db,
        )
        platform.wait_ready(["accounts", "bare", "unhashed"])

        kombu = run_baseline(platform.amqp_uri, args.hop_events)
        show("raw kombu hop events/s", kombu["per_second"], "events/s")
        show("raw kombu hop p50 ms", kombu["p50_ms"], "ms")

        tag = uuid.uuid4().hex[:6]
        http_bodies = registration_bodies(args.http_requests, f"{tag}h")
        bare_bodies = registration_bodies(args.http_requests, f"{tag}b")
        post_all(platform.ports["bare"], bare_bodies[:50], args.clients)  # warm-up
        bare = post_all(platform.ports["bare"], bare_bodies, args.clients)
        post_all(platform.ports["accounts"], registration_bodies(20, f"{tag}w"), args.clients)
        accounts = post_all(platform.ports["accounts"], http_bodies, args.clients)
        show("bare nameko @http POST /returnees req/s", bare.per_second, "req/s")
        show("bare nameko @http p50 ms", percentile(bare.latencies_ms(), 50), "ms")
        show("bare nameko @http p99 ms", percentile(bare.latencies_ms(), 99), "ms")
        show("accounts POST /returnees req/s", accounts.per_second, "req/s")
        show("accounts POST /returnees p50 ms", percentile(accounts.latencies_ms(), 50), "ms")
        show("accounts POST /returnees p99 ms", percentile(accounts.latencies_ms(), 99), "ms")
        show("accounts / bare (req/s) %", 100 * accounts.per_second / bare.per_second, "%")
        # Diagnostic: the same accounts with a precomputed password hash instead of Argon2id.
        unhashed_bodies = registration_bodies(args.http_requests, f"{tag}u")
        warm_up = registration_bodies(50, f"{tag}uw")
        post_all(platform.ports["unhashed"], warm_up, args.clients)
        unhashed = post_all(platform.ports["unhashed"], unhashed_bodies, args.clients)
        platform.processes.pop("unhashed").stop()
        show("accounts without Argon2id req/s (diagnostic)", unhashed.per_second, "req/s")
        show("accounts without Argon2id p50 ms", percentile(unhashed.latencies_ms(), 50), "ms")
        show("accounts without Argon2id / bare %", 100 * unhashed.per_second / bare.per_second, "%")

        for service in DOWNSTREAM:
            platform.start(service)
        platform.wait_ready(DOWNSTREAM)
        watch = Watch(platform.urls)
        backlog = list(accounts.starts())
        drain_started = time.time()
        watch.wait(backlog, label="warm-up backlog")
        show(
            "warm-up backlog drained (registrations/s)",
            len(backlog) / (time.time() - drain_started),
            "reg/s",
        )

        bodies = registration_bodies(args.registrations, f"{tag}s")
        recorders, sampler = [], None
        if args.profile and args.profile_phase == "saturation":
            recorders = profile(platform, Path(args.profile), run, args.profile_seconds)
            sampler = SqlSampler(platform.urls, watch)
        pids = {s: platform.pid(s) for s in STARTED}
        meter = CpuMeter({**pids, "SMTP sink": platform.smtp.pid}, platform.urls, watch)
        saturated = post_all(platform.ports["accounts"], bodies, args.clients)
        ids = list(saturated.starts())
        stages = watch.wait(ids, label="saturation")
        meter.report(len(ids), show)
        sent = watch.welcome_sent(ids)
        finished = max(max(sent.values()), watch.last_assessed(ids), stages["matching"])
        for recorder in recorders:
            recorder.wait()
        if sampler is not None:
            sampler.stop(Path(args.profile) / f"sql-run{run}.txt")
        show("saturation: POST /returnees req/s", saturated.per_second, "req/s")
        show(
            "saturation: fully processed registrations/s",
            len(ids) / (finished - saturated.started),
            "reg/s",
        )
        for service, at in sorted(stages.items(), key=lambda item: item[1]):
            show(
                f"  {service} done (registrations/s)", len(ids) / (at - saturated.started), "reg/s"
            )
        latencies = latency_summary("saturation: registration->welcome", saturated, sent)
        for name, value in latencies.items():
            show(name, value, "ms")
        matches = watch.match_rows(ids)
        print(f"run {run}  ({matches / len(ids):.1f} matches stored per registration)")

        total = len(backlog) + len(ids)
        for rate, count in ((args.rate, args.paced), (args.low_rate, args.low_count)):
            if not count:
                continue
            paced_bodies = registration_bodies(count, f"{tag}p{rate:g}")
            recorders, sampler = [], None
            if args.profile and args.profile_phase == "paced" and rate == args.rate:
                recorders = profile(platform, Path(args.profile), run, args.profile_seconds)
                sampler = SqlSampler(platform.urls, watch)
            paced = post_all(platform.ports["accounts"], paced_bodies, args.clients, rate)
            paced_ids = list(paced.starts())
            watch.wait(paced_ids, label=f"paced at {rate:g}/s")
            for recorder in recorders:
                recorder.wait()
            if sampler is not None:
                sampler.stop(Path(args.profile) / f"sql-run{run}.txt")
            times = watch.welcome_times(paced_ids)
            sent = {i: at for i, (_, at) in times.items()}
            show(f"at {rate:g}/s: POST /returnees answered/s", paced.per_second, "reg/s")
            latencies = latency_summary(f"at {rate:g}/s: registration->welcome", paced, sent)
            latencies.update(welcome_parts(f"at {rate:g}/s:", paced, times))
            for name, value in latencies.items():
                show(name, value, "ms")
            total += len(paced_ids)
        print(f"run {run}  (the SMTP sink holds {platform.emails()} emails for {total} returnees)")
        show("PostgreSQL connections lost (0: undisturbed)", watch.disturbed)
        return figures
    except BaseException:
        for service, process in platform.processes.items():
            print(
                f"--- {service} log ({process.log_path}), last lines:\n{process.output()[-1500:]}"
            )
        raise
    finally:
        if watch is not None:
            watch.close()
        platform.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--registrations", type=int, default=600, help="at saturation")
    parser.add_argument("--paced", type=int, default=500, help="registrations at --rate")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument(
        "--low-rate", type=float, default=5.0, help="also paced at a rate the platform sustains"
    )
    parser.add_argument("--low-count", type=int, default=100, help="registrations at --low-rate")
    parser.add_argument("--clients", type=int, default=20, help="concurrent HTTP clients")
    parser.add_argument("--http-requests", type=int, default=300, help="per HTTP baseline")
    parser.add_argument("--hop-events", type=int, default=3000, help="raw kombu baseline")
    parser.add_argument("--quick", action="store_true", help="smoke test: small counts")
    parser.add_argument(
        "--unhashed",
        action="store_true",
        help="diagnostic: accounts with a precomputed password hash throughout the run",
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy the services at saturation")
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument(
        "--profile-phase", choices=("saturation", "paced"), default="saturation",
        help="record at saturation (the default) or at --rate",
    )  # fmt: skip
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    if args.quick:
        args.registrations, args.paced, args.http_requests, args.hop_events = 60, 50, 100, 300
        args.low_count = 10
        args.runs = 1
    args.extra_env = dict(item.split("=", 1) for item in args.env)

    admin, databases = RabbitAdmin(), Databases()
    results: list[dict] = []
    try:
        for run in range(1, args.runs + 1):
            results.append(one_run(args, run, admin, databases))
    finally:
        databases.drop_created()
        databases.drop_templates()

    print(
        f"\nmedians of {len(results)} run(s): {args.registrations} registrations at saturation,"
        f" {args.paced} at {args.rate:g}/s, {args.low_count} at {args.low_rate:g}/s,"
        f" {args.clients} clients,"
        f" {args.http_requests} requests per HTTP baseline, {args.hop_events} kombu events"
    )
    medians = {name: statistics.median(r[name] for r in results) for name in results[0]}
    for name, value in medians.items():
        print(f"  {name:<44} {value:10.1f}")
    targets = (
        ("saturation: fully processed registrations/s", ">= 200 registrations/s fully processed"),
        (
            f"at {args.rate:g}/s: registration->welcome p99 ms",
            f"p99 registration->welcome <= 250 ms at {args.rate:g}/s",
        ),
        ("accounts / bare (req/s) %", "POST /returnees >= 50% of bare nameko @http"),
    )
    for name, target in targets:
        if name in medians:
            print(f"  target {target}: measured {medians[name]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
