"""Importing returnees with `station` against one-by-one `POST /returnees`, same run, same machine.

    python -m bench.station_import [--rows 10000] [--baseline 500] [--runs 1] [--profile DIR]

Each run builds its own world (`bench.platform.Platform`: a broker vhost, fresh migrated and
seeded databases, the SMTP sink) and starts accounts, consulting, matching and notify as
processes. Then:

1. **station**: `--rows` returnee rows in one XLSX file (English headers, a consent reference
   on each, so matching takes them in), imported by the `station` command as an operator runs
   it (its own process): rows/s stored (accounts answered every batch), and the time until
   every imported returnee is fully processed: assessed by consulting, taken in and matched by
   matching, and their invitation email sent by notify (the SMTP sink has it).
   `--accounts-processes N` runs N accounts processes on one port (`HTTP_REUSE_PORT`), as a
   deployment scales it, and station sends 2N batches at a time (`--parallel`).
2. **baseline**: `--baseline` registrations, one `POST /returnees` at a time on one keep-alive
   connection, with the same profile: rows/s (each pays Argon2 for its password; an imported
   returnee has none and sets it through the invitation).

Also prints the CPU per imported row of every process (station, each service, PostgreSQL by
the database it serves, RabbitMQ, the rest of the machine) from the start of the import until
every returnee is fully processed.

`--profile DIR` records every service with py-spy from the start of the import for
`--profile-seconds` (raw collapsed stacks, `DIR/<service>-run<k>.txt`; summarized by
`python -m bench.platform_profile DIR/*.txt`).

Prints each figure, the ratio station / baseline, and the targets (≥ 300 rows/s stored; fully
processed within 10 minutes).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import openpyxl

from bench.platform import (
    DOWNSTREAM,
    PY_SPY,
    CpuMeter,
    Platform,
    Watch,
    post_all,
    registration_bodies,
)
from chassis.sheets import EXAMPLES
from tests.support import ROOT, Databases, RabbitAdmin

CHILD_CPU = ("ru_utime", "ru_stime")
ADMIN = ("bench-admin@station.example", "Bench-admin-2026")
STATION = Path(sys.executable).parent / "station"
INDUSTRIES = ("biotech", "ai", "fintech", "new_energy", "healthcare")
# Fully processed, for an imported returnee: the invitation email (not the welcome) is sent.
STAGES = {
    "matching": "SELECT count(*) FROM returnees WHERE id = ANY(%s::uuid[])",
    "consulting": "SELECT count(*) FROM returnees"
    " WHERE id = ANY(%s::uuid[]) AND assessed_at IS NOT NULL",
    "notify": "SELECT count(DISTINCT recipient_id) FROM notifications"
    " WHERE template = 'staff_invitation' AND channel = 'email' AND status = 'sent'"
    " AND recipient_id = ANY(%s::uuid[])",
}


class ImportWatch(Watch):
    """Polls once a second, and a stage no more once it has every returnee: the polling's own
    queries (each with every imported id) took about a tenth of the platform's CPU at 0.1 s."""

    def __init__(self, urls):
        super().__init__(urls)
        self.complete: dict[str, int] = {}

    def counts(self, ids: list[str]) -> dict[str, int]:
        found = dict(self.complete)
        for stage, sql in STAGES.items():
            if stage not in found:
                found[stage] = self.one(stage, sql, (ids,))[0][0]
                if found[stage] >= len(ids):
                    self.complete[stage] = found[stage]
        return found


def write_rows(path: Path, count: int, tag: str) -> None:
    example = EXAMPLES["returnees"]
    headers = list(example)
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(headers)
    for i in range(count):
        row = {
            **example,
            "name": f"Returnee {i}",
            "email": f"imported.{tag}.{i}@example.com",
            "industry": INDUSTRIES[i % len(INDUSTRIES)],
        }
        sheet.append([row[h] for h in headers])
    workbook.save(path)


def imported_ids(platform: Platform, tag: str) -> list[str]:
    import psycopg2

    with psycopg2.connect(platform.urls["accounts"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT id::text FROM accounts WHERE email LIKE %s", (f"imported.{tag}.%",))
        return [r[0] for r in cur.fetchall()]


def profile(platform: Platform, args, run: int) -> list:
    out_dir = Path(args.profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [PY_SPY, "record", "-p", str(platform.pid(label)), "-f", "raw", "--nonblocking"]
            + ["-o", str(out_dir / f"{label}-run{run}.txt"), "-d", str(args.profile_seconds)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for label in platform.processes
    ]


def one_run(args, run: int, admin: RabbitAdmin, databases: Databases) -> dict:
    env = {"PLATFORM_ENV": "development", "ADMIN_EMAIL": ADMIN[0], "ADMIN_PASSWORD": ADMIN[1]}
    platform = Platform(admin, databases, {**env, **args.extra_env})
    figures = {}

    def show(name, value, unit=""):
        figures[name] = value
        print(f"  {name:<48} {value:10.1f} {unit}", flush=True)

    try:
        print(f"run {run}: starting accounts, {', '.join(DOWNSTREAM)}", flush=True)
        reuse = {"HTTP_REUSE_PORT": "true"} if args.accounts_processes > 1 else {}
        ports = {"accounts": platform.start("accounts", **reuse)}
        platform.wait_ready(["accounts"])
        for n in range(2, args.accounts_processes + 1):  # one port, the kernel spreads them
            label = f"accounts-{n}"
            platform.start("accounts", label=label, ACCOUNTS_HTTP_PORT=str(ports["accounts"]),
                           **reuse)  # fmt: skip
            platform.ports[label] = ports["accounts"]
            platform.wait_ready([label])
        ports.update({s: platform.start(s) for s in DOWNSTREAM})
        platform.wait_ready(list(DOWNSTREAM))
        watch = ImportWatch(platform.urls)
        tag = uuid.uuid4().hex[:8]
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "returnees.xlsx"
            write_rows(path, args.rows, tag)
            station_env = {
                **os.environ,
                "ACCOUNTS_URL": f"http://127.0.0.1:{ports['accounts']}",
                "STATION_EMAIL": ADMIN[0],
                "STATION_PASSWORD": ADMIN[1],
                "XDG_CONFIG_HOME": str(Path(work) / "config"),
            }
            # Signed in first: the import's time is the import's.
            subprocess.run([STATION, "login"], env=station_env, check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            meter = CpuMeter({label: platform.pid(label) for label in platform.processes},
                             platform.urls, watch)  # fmt: skip
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.time()
            recorders = profile(platform, args, run) if args.profile else []
            command = [STATION, "import", "returnees", str(path), "--quiet",
                       "--parallel", str(2 * args.accounts_processes)]  # fmt: skip
            done = subprocess.run(command, env=station_env, cwd=ROOT, capture_output=True,
                                  text=True)  # fmt: skip
            stored = time.time()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            station_cpu = sum(getattr(after, f) - getattr(children, f) for f in CHILD_CPU)
            if done.returncode != 0:
                raise RuntimeError(f"station failed: {done.stdout}{done.stderr}")
            print(f"  {done.stdout.strip()}", flush=True)
        ids = imported_ids(platform, tag)
        assert len(ids) == args.rows, f"{len(ids)} returnees stored of {args.rows}"
        show("station: rows stored/s", args.rows / (stored - started), "rows/s")
        reached = watch.wait(ids, label="imported", interval=1.0)
        for service, at in sorted(reached.items()):
            show(f"station: {service} done after s", at - started, "s")
        show("station: fully processed after s", max(reached.values()) - started, "s")
        print("  CPU from the start of the import until fully processed:", flush=True)
        show("  CPU ms per row: station (reading, sending)", 1000 * station_cpu / args.rows, "ms")
        meter.report(args.rows, show, unit="row")
        for recorder in recorders:
            recorder.wait()
        # The baseline, once the platform has worked off the import.
        bodies = registration_bodies(args.baseline, tag)
        posted = post_all(ports["accounts"], bodies, clients=1)
        show("baseline: POST /returnees one by one rows/s", posted.per_second, "rows/s")
        show(
            "station / baseline (rows/s) x",
            figures["station: rows stored/s"] / posted.per_second,
        )
        watch.close()
    finally:
        platform.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=500, help="one-by-one registrations")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--accounts-processes", type=int, default=1,
                        help="accounts processes sharing its port (HTTP_REUSE_PORT)")  # fmt: skip
    parser.add_argument("--profile", metavar="DIR", help="py-spy every service (raw stacks)")
    parser.add_argument("--profile-seconds", type=int, default=60)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    args.extra_env = dict(item.split("=", 1) for item in args.env)
    admin, databases = RabbitAdmin(), Databases()
    results = []
    try:
        for run in range(1, args.runs + 1):
            results.append(one_run(args, run, admin, databases))
    finally:
        databases.drop_created()
        databases.drop_templates()
    print(f"\nmedians of {len(results)} run(s): {args.rows} rows imported, "
          f"{args.baseline} one-by-one registrations")  # fmt: skip
    medians = {name: statistics.median(r[name] for r in results) for name in results[0]}
    for name, value in medians.items():
        print(f"  {name:<48} {value:10.1f}")
    print(f"  target >= 300 rows/s stored: measured {medians['station: rows stored/s']:.1f}")
    print(
        "  target fully processed <= 600 s: measured "
        f"{medians['station: fully processed after s']:.1f}"
    )
    print(json.dumps(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
