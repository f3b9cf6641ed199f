"""accounts alone under `POST /returnees`: its CPU per registration, with and without Argon2id.

    python -m bench.accounts_register [--runs 3] [--registrations 600] [--hashed 300]
    python -m bench.accounts_register --checkout base=../other-checkout --checkout new=.
    python -m bench.accounts_register --profile DIR    # py-spy of the unhashed runs

Each measurement starts one accounts process (`chassis.run`, as in production) on a fresh
migrated database, in a vhost of its own with the whole topology declared, posts 50
registrations to warm it up, then the measured ones with `--clients` keep-alive clients, and
waits until its outbox relay has published every event of them (`returnee.registered` and
`account.link_issued`: the relay's CPU is the registration's). CPU is the process's own
(`/proc`, all threads) and that of the PostgreSQL backends serving its database, per
registration. Two variants: the real service, and `bench/platform_unhashed.py` (the Argon2id
hash replaced by a precomputed one, never for production), which shows what accounts costs
besides the hash.

`--checkout LABEL=PATH` (repeatable) runs the services of another checkout of the project (its
`services`, `chassis` and `bench` modules, this checkout's interpreter and migrations): the
checkouts alternate within each run, in turn first, so a baseline is measured beside its
candidate under the same load. Medians of the runs at the end, with the load average.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from chassis import green

green.patch()

import psycopg2  # noqa: E402

from bench.cpu import cpu_by_owner, cpu_seconds  # noqa: E402
from bench.platform import (  # noqa: E402
    PY_SPY,
    free_port,
    post_all,
    registration_bodies,
    wait_ready,
)
from chassis.settings import SERVICES  # noqa: E402
from deploy.topology import declare_services  # noqa: E402
from tests.support import ROOT, Databases, RabbitAdmin, ServiceProcess, vhost_uri  # noqa: E402

VARIANTS = {"unhashed": "bench.platform_unhashed:UnhashedAccounts", "hashed": None}


class Checkout(ServiceProcess):
    """A service process started in another checkout's directory (its modules come first)."""

    def __init__(self, root: Path, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.root = root

    def start(self) -> "Checkout":
        args = [sys.executable, "-m", "chassis.run", self.name]
        if self.service_class:
            args.append(self.service_class)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            args, cwd=self.root, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self


def backend_cpu(url: str, admin_conn) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to the database of `url`."""
    with admin_conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (url.rsplit("/", 1)[1],))
        pids = {row[0] for row in cur.fetchall()}
    processes = cpu_by_owner(("postgres",))["postgres"]
    return sum(t for pid, t in processes.items() if pid in pids)


def unpublished(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return cur.fetchone()[0]


def measure(args, root: Path, variant: str, count: int, databases: Databases,
            admin: RabbitAdmin, profile: Path | None) -> dict:  # fmt: skip
    vhost = f"bench-accounts-{uuid.uuid4().hex[:8]}"
    admin.create_vhost(vhost)
    amqp_uri = vhost_uri(vhost)
    url = databases.create("accounts")
    port = free_port()
    env = {
        "AMQP_URI": amqp_uri,
        "LOG_LEVEL": "WARNING",
        "ACCOUNTS_REGISTRATIONS_PER_HOUR": "10000000",
        "ACCOUNTS_DATABASE_URL": url,
        "ACCOUNTS_HTTP_PORT": str(port),
    }
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        declare_services(amqp_uri, list(SERVICES))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    process = Checkout(root, "accounts", env, VARIANTS[variant]).start()
    db = psycopg2.connect(url)
    db.autocommit = True
    try:
        wait_ready("accounts", process, port)
        tag = uuid.uuid4().hex[:6]
        post_all(port, registration_bodies(50, f"{tag}w"), args.clients)
        wait_drained(db)
        bodies = registration_bodies(count, f"{tag}m")
        recorder = None
        if profile is not None:
            profile.parent.mkdir(parents=True, exist_ok=True)
            recorder = subprocess.Popen(
                [PY_SPY, "record", "-p", str(process.process.pid), "-f", "raw", "-o",
                 str(profile), "--nonblocking", "-r", "250", "-d", "600"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
        own_before, pg_before = cpu_seconds(process.process.pid), backend_cpu(url, db)
        posted = post_all(port, bodies, args.clients)
        wait_drained(db)
        own = cpu_seconds(process.process.pid) - own_before
        postgres = backend_cpu(url, db) - pg_before
        if recorder is not None:
            recorder.send_signal(2)  # SIGINT: py-spy writes what it sampled
            recorder.wait(timeout=60)
        done = len(posted.ok)
        if done != count:
            raise RuntimeError(f"{count - done} registrations failed")
        return {
            "accounts CPU ms": 1000 * own / done,
            "postgres CPU ms": 1000 * postgres / done,
            "req/s": posted.per_second,
        }
    finally:
        db.close()
        process.stop()
        databases.drop([url.rsplit("/", 1)[1]])
        databases.created.remove(url.rsplit("/", 1)[1])
        admin.delete_vhost(vhost)


def wait_drained(db, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while unpublished(db):
        if time.time() > deadline:
            raise RuntimeError("the outbox relay did not publish every event")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--registrations", type=int, default=600, help="per unhashed run")
    parser.add_argument("--hashed", type=int, default=300, help="per run with Argon2id (0: none)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--checkout", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the unhashed runs")
    args = parser.parse_args()
    checkouts = [
        (label, Path(path).resolve())
        for label, path in (item.split("=", 1) for item in args.checkout)
    ] or [("this", ROOT)]
    admin, databases = RabbitAdmin(), Databases()
    results: dict[tuple[str, str], list[dict]] = {}
    loads = []
    try:
        for run in range(1, args.runs + 1):
            turn = checkouts[run - 1 :] + checkouts[: run - 1]  # each first in turn
            for label, root in turn:
                for variant, count in (("unhashed", args.registrations), ("hashed", args.hashed)):
                    if not count:
                        continue
                    profile = None
                    if args.profile and variant == "unhashed":
                        profile = Path(args.profile) / f"accounts-{label}-run{run}.txt"
                    figures = measure(args, root, variant, count, databases, admin, profile)
                    results.setdefault((label, variant), []).append(figures)
                    load = os.getloadavg()[0]
                    loads.append(load)
                    shown = ", ".join(f"{k} {v:.1f}" for k, v in figures.items())
                    print(f"run {run}  {label:<8} {variant:<9} {shown}  (load {load:.2f})",
                          flush=True)  # fmt: skip
    finally:
        databases.drop_created()
        databases.drop_templates()
    print(
        f"\nmedians of {args.runs} run(s), {args.registrations} registrations unhashed,"
        f" {args.hashed} hashed, {args.clients} clients; load average 1 min"
        f" {min(loads):.2f}-{max(loads):.2f}"
    )
    for (label, variant), runs in results.items():
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        each = " / ".join(f"{r['accounts CPU ms']:.1f}" for r in runs)
        shown = ", ".join(f"{k} {v:.1f}" for k, v in medians.items())
        print(f"  {label:<8} {variant:<9} {shown}  (accounts ms per run: {each})")
    print(json.dumps({f"{k[0]} {k[1]}": v for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
