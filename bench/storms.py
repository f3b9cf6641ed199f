"""Storms: a policy published over the whole caseload, an activity announced to thousands.

    python -m bench.storms [--returnees 100000] [--audience 20000] [--runs 3]
                           [--relay 100/1] [--email-seconds 30]

Each storm runs the real services as processes (`bench.platform.Platform`: a broker vhost,
fresh migrated and seeded databases, the SMTP sink), on data loaded straight into their
databases beforehand, as their intake of accounts' events would have left it:

- **policy**: consulting and notify; `--returnees` returnees (the synthetic profiles of
  `bench.consulting_reassess`) in consulting and in notify's directory (the seed's publications
  of the reference policies taken out, so only the new policy re-assesses). `POST /policies`
  (admin) publishes a policy for companies registered in Changning; the clock runs from the
  request until every returnee it made newly eligible has the in-app notification
  (`policies_eligible`, in notify's inbox), the count checked against consulting's
  eligibilities. Target: <= 120 s.
- **activity**: activities and notify; `--audience` returnees consenting to notifications in
  activities and in notify's directory (the reference activities' publications taken out).
  `POST /activities` (advisor) announces an activity to everyone; the clock runs until every
  invitation is in-app (`activity_invitation`). Then for `--email-seconds` the emails' pace to
  the relay is watched (their `sent_at`): with notify's `SMTP_RATE_LIMITS` at `--relay`
  (**paced**), and without it (**unpaced**, the code path before the setting), alternated run
  by run. Target: in-app <= 120 s, emails at the relay's rate.

Prints each run's figures, the machine's load average, and the medians.
`--profile DIR` records notify (and consulting or activities) with py-spy during each storm.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import psycopg2.extras

from bench.consulting_reassess import synthetic_profile
from bench.platform import PY_SPY, Platform
from chassis.auth import TokenIssuer
from chassis.settings import nameko_config
from services.consulting.assessing import facts_of
from services.consulting.store import to_json
from tests.support import Databases, RabbitAdmin

TARGET_SECONDS = 120.0
POLICY = {
    "code": "bench-changning-founders-2026",
    "title": {"zh-CN": "长宁创业者补贴（测试）", "en": "Changning founders' grant (bench)"},
    "summary": {"zh-CN": "基准测试用政策。", "en": "A policy for the benchmark."},
    "citation": {"title": "bench", "url": "https://www.shcn.gov.cn/"},
    "effective_from": "2026-01-01",
    "criteria": [
        {
            "id": "in_changning",
            "label": {"zh-CN": "注册在长宁", "en": "Registered in Changning"},
            "field": "company.registered_district",
            "op": "in",
            "value": ["Changning"],
        }
    ],
}


def token(role: str) -> str:
    issuer = TokenIssuer.from_config(nameko_config("accounts"))
    return issuer.issue(str(uuid.uuid4()), role, None)


def post(port: int, path: str, body: dict, role: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token(role)}"}
    conn.request("POST", path, json.dumps(body), headers)
    answer = conn.getresponse()
    text = answer.read()
    conn.close()
    if answer.status != 201:
        raise RuntimeError(f"POST {path}: {answer.status} {text[:500]!r}")
    return json.loads(text)


def returnee_ids(n: int) -> list[str]:
    rng = random.Random(20261201)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def load(url: str, statement: str, rows, template: str | None = None) -> None:
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(cur, statement, rows, template=template, page_size=2000)
        cur.execute("ANALYZE")
    conn.close()


def load_directory(url: str, ids: list[str], at: datetime) -> None:
    """notify's directory as `returnee.registered` leaves it: contact data, consent."""
    load(
        url,
        "INSERT INTO recipients (id, kind, name, email, locale, notifications_consent,"
        " consent_at, updated_at, email_verified) VALUES %s",
        [
            (
                rid,
                "returnee",
                f"Returnee {i}",
                f"storm-{i}@example.cn",
                "zh-CN" if i % 3 else "en",
                True,
                at,
                at,
                True,
            )
            for i, rid in enumerate(ids)
        ],  # fmt: skip
    )


def unpublished(url: str, event_type: str) -> None:
    """The service's events of this type still in its outbox, taken out before it starts."""
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM outbox WHERE routing_key = %s", (event_type,))
    conn.close()


def query(url: str, statement: str, params=None) -> list[tuple]:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall()
    conn.close()
    return rows


class InApp:
    """Polls notify's inbox for the in-app notifications of one template."""

    def __init__(self, url: str, template: str):
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True
        self.template = template

    def count(self) -> tuple[int, float | None]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), extract(epoch FROM max(sent_at))::float8 FROM notifications"
                " WHERE template = %s AND channel = 'in_app' AND status = 'sent'",
                (self.template,),
            )
            return cur.fetchone()

    def wait(self, expected, started: float, label: str, stall: float = 300.0,
             detail=lambda: "") -> float:  # fmt: skip
        """Seconds from `started` to the last in-app notification's `sent_at`, once
        `expected()` (None while unknown) of them are there."""
        moved, last, report = time.time(), None, time.time() + 10
        while True:
            count, newest = self.count()
            want = expected()
            if want is not None and count >= want:
                return newest - started
            now = time.time()
            if count != last:
                moved, last = now, count
            elif now - moved > stall:
                raise RuntimeError(f"{label}: stuck at {count} in-app of {want}")
            if now > report:
                print(f"  .. {label} at {now - started:.0f} s: {count:,} in-app of"
                      f" {want or '?'}{detail()}", flush=True)  # fmt: skip
                report = now + 10
            time.sleep(0.5)

    def close(self) -> None:
        self.conn.close()


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def profiled(platform: Platform, services, out_dir, name: str) -> list:
    if not out_dir:
        return []
    os.makedirs(out_dir, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(PY_SPY),
                "record",
                "--format",
                "raw",
                "--rate",
                "50",
                "--nonblocking",
                "--pid",
                str(platform.pid(s)),
                "--output",
                f"{out_dir}/{name}-{s}.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for s in services
    ]


def stop_profiles(recorders) -> None:
    for recorder in recorders:
        recorder.send_signal(2)  # SIGINT: py-spy writes what it recorded
    for recorder in recorders:
        recorder.wait(timeout=60)


def policy_storm(args, run: int, admin, databases) -> dict:
    platform = Platform(admin, databases, dict(args.extra_env))
    inbox = None
    try:
        ids = returnee_ids(args.returnees)
        rng = random.Random(20261128)
        at = datetime.now(UTC) - timedelta(days=1)
        started = time.time()
        load(
            platform.urls["consulting"],
            "INSERT INTO returnees (id, facts, profile_time) VALUES %s",
            [(rid, to_json(facts_of(synthetic_profile(rng))), at) for rid in ids],
        )
        load_directory(platform.urls["notify"], ids, at)
        print(f"run {run}  policy: {len(ids):,} returnees loaded in {time.time() - started:.0f} s")
        # The reference policies' publications (the seed's) are left out: otherwise each would
        # re-assess the caseload too, a storm of its own in the figures.
        unpublished(platform.urls["consulting"], "policy.published")
        port = platform.start("consulting")
        platform.start("notify")
        platform.wait_ready(["consulting", "notify"])
        inbox = InApp(platform.urls["notify"], "policies_eligible")
        load_before = load_average()
        recorders = profiled(platform, ["consulting", "notify"], args.profile, f"policy{run}")
        started = time.time()
        policy = post(port, "/policies", POLICY, "admin")
        answered = time.time() - started
        consulting = platform.urls["consulting"]

        seen = []

        def expected():
            """The newly eligible, once the re-assessment was queued and has finished."""
            under_way = query(consulting, "SELECT 1 FROM reassessments WHERE policy_id = %s",
                              (policy["id"],))  # fmt: skip
            eligible = query(consulting, "SELECT count(*) FROM eligibilities"
                             " WHERE policy_id = %s", (policy["id"],))[0][0]  # fmt: skip
            if under_way or eligible:
                seen.append(True)
            progress[:] = [eligible]
            return eligible if seen and not under_way else None

        progress = [0]
        seconds = inbox.wait(
            expected,
            started,
            f"run {run} policy",
            detail=lambda: f" ({progress[0]:,} eligible so far in consulting)",
        )
        stop_profiles(recorders)
        eligible = expected()
        print(
            f"run {run}  policy over {len(ids):,} returnees: {eligible:,} newly eligible, every"
            f" in-app notification after {seconds:.1f} s (POST answered in {answered:.2f} s;"
            f" load average before {load_before}, after {load_average()})",
            flush=True,
        )
        return {"seconds": seconds, "eligible": eligible}
    finally:
        if inbox is not None:
            inbox.close()
        platform.close()


def activity_storm(args, run: int, admin, databases, relay: str) -> dict:
    env = {**dict(args.extra_env), "NOTIFY_SMTP_RATE_LIMITS": relay}
    platform = Platform(admin, databases, env)
    inbox = None
    try:
        ids = returnee_ids(args.audience)
        at = datetime.now(UTC) - timedelta(days=1)
        load(
            platform.urls["activities"],
            "INSERT INTO returnees (id, name, industry, startup_stage, needs,"
            " notifications_consent, consent_at, profile_time) VALUES %s",
            [
                (rid, f"Returnee {i}", "ai", "idea", ["financing"], True, at, at)
                for i, rid in enumerate(ids)
            ],  # fmt: skip
        )
        load_directory(platform.urls["notify"], ids, at)
        unpublished(platform.urls["activities"], "activity.published")  # the seed's, as above
        port = platform.start("activities")
        platform.start("notify")
        platform.wait_ready(["activities", "notify"])
        inbox = InApp(platform.urls["notify"], "activity_invitation")
        label = "paced" if relay else "unpaced"
        load_before = load_average()
        recorders = profiled(platform, ["activities", "notify"], args.profile,
                             f"activity{run}-{label}")  # fmt: skip
        starts = datetime.now(UTC) + timedelta(days=10)
        body = {
            "kind": "exchange",
            "title": {"zh-CN": "海归人才交流会", "en": "Returnee exchange session"},
            "summary": {"zh-CN": "交流", "en": "Exchange"},
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "venue": {"name": "Service station", "address": "Changning"},
            "capacity": 500,
        }
        started = time.time()
        post(port, "/activities", body, "advisor")
        seconds = inbox.wait(lambda: len(ids), started, f"run {run} activity ({label})")
        in_app_done = time.time()
        time.sleep(max(0.0, args.email_seconds - (in_app_done - started)))
        stop_profiles(recorders)
        sends = [
            r[0]
            for r in query(
                platform.urls["notify"],
                "SELECT extract(epoch FROM sent_at)::float8 FROM notifications"
                " WHERE template = 'activity_invitation' AND channel = 'email'"
                " AND status = 'sent' ORDER BY sent_at",
            )
        ]
        per_second: dict[int, int] = {}
        for sent in sends:
            per_second[int(sent)] = per_second.get(int(sent), 0) + 1
        span = sends[-1] - sends[0] if len(sends) > 1 else 0.0
        rate = (len(sends) - 1) / span if span else 0.0
        busiest = max(per_second.values(), default=0)
        print(
            f"run {run}  activity to {len(ids):,} ({label}, SMTP_RATE_LIMITS={relay or 'none'}):"
            f" every invitation in-app after {seconds:.1f} s; emails: {len(sends):,} sent in the"
            f" first {time.time() - started:.0f} s, {rate:.1f}/s from first to last, at most"
            f" {busiest} in one second (load average before {load_before}, after"
            f" {load_average()})",
            flush=True,
        )
        return {"seconds": seconds, "emails": len(sends), "rate": rate, "busiest": busiest}
    finally:
        if inbox is not None:
            inbox.close()
        platform.close()


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storms")
    parser.add_argument("--returnees", type=int, default=100_000)
    parser.add_argument("--audience", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--relay", default="100/1", help="SMTP_RATE_LIMITS of the paced runs")
    parser.add_argument("--email-seconds", type=float, default=30.0)
    parser.add_argument("--only", choices=("policy", "activity"))
    parser.add_argument("--profile", help="directory for py-spy's raw stacks")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    args.extra_env = [tuple(e.split("=", 1)) for e in args.env]
    admin, databases = RabbitAdmin(), Databases()
    policy_runs, paced, unpaced = [], [], []
    try:
        for run in range(1, args.runs + 1):
            if args.only != "activity":
                policy_runs.append(policy_storm(args, run, admin, databases))
            if args.only != "policy":
                paced.append(activity_storm(args, run, admin, databases, args.relay))
                unpaced.append(activity_storm(args, run, admin, databases, ""))
    finally:
        databases.drop_templates()
    day = f"{datetime.now(UTC):%Y-%m-%d}"
    print(f"medians of {args.runs} runs ({day}), target {TARGET_SECONDS:.0f} s:")
    if policy_runs:
        print(
            f"  policy over {args.returnees:,}: last in-app after"
            f" {median(policy_runs, 'seconds'):.1f} s ({median(policy_runs, 'eligible'):,.0f}"
            " newly eligible)"
        )
    if paced:
        print(
            f"  activity to {args.audience:,}: last in-app after {median(paced, 'seconds'):.1f} s"
            f" paced ({args.relay}), {median(unpaced, 'seconds'):.1f} s unpaced; emails"
            f" {median(paced, 'rate'):.1f}/s paced (at most {median(paced, 'busiest'):.0f} in a"
            f" second), {median(unpaced, 'rate'):.1f}/s unpaced"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
