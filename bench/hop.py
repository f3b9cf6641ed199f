"""One hop through the platform against raw kombu, measured in the same run.

    python -m bench.hop [--events 3000] [--runs 3] [--rate 200]

Each run measures both sides twice: at saturation (throughput; latency there is mostly queueing)
and paced at `--rate` events/s (latency of one hop when the system keeps up).

Platform hop: a producer commits one `organization.registered` per transaction into the outbox
(10 concurrent writers, as 10 HTTP workers would), the outbox relay publishes with pipelined
confirms, and a consumer service in its own process applies each event with a DB write and an
inbox record per event, taking up to `EVENT_BATCH_SIZE` events in one transaction. Latency: the
event's `time` (set inside the producer's transaction) to the consumer's COMMIT (the time the
consumer writes once the commit returned).

The same platform hop with `EVENT_BATCH_SIZE=1` (one event a transaction) runs beside it. Each
platform phase also prints the consumer's CPU per event: its process, all threads, from the
first write to the last event's row.

Baseline: raw kombu, the same durability (durable queue, persistent messages, publisher
confirms, manual acks): a publisher waiting for each confirm, and a consumer in its own process
acking each message (prefetch 100). Latency: publish call to consume. Beside it, the strongest
raw kombu a user could write, at saturation only: as many publishers as the platform's writers,
each with pipelined confirms, and a consumer with prefetch 1,000 acking 100 at a time.

Both consumers run as separate processes; the producers run in this process.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from chassis import green

green.patch()

import amqp  # noqa: E402
import eventlet  # noqa: E402
from kombu import Connection, Queue  # noqa: E402

from bench.hop_sink import SINK_TABLE  # noqa: E402
from chassis.outbox import OutboxRelay  # noqa: E402
from chassis.pool import ConnectionPool  # noqa: E402
from chassis.settings import nameko_config  # noqa: E402
from chassis.topology import declare_service  # noqa: E402
from chassis.uow import SqlUnitOfWork  # noqa: E402
from tests.support import ROOT, Databases, RabbitAdmin, query, vhost_uri  # noqa: E402

WRITERS = 10


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(name, count, seconds, latencies_ms):
    return {
        "name": name,
        "events": count,
        "per_second": count / seconds,
        "p50_ms": percentile(latencies_ms, 50),
        "p99_ms": percentile(latencies_ms, 99),
    }


# --- baseline: raw kombu --------------------------------------------------------------------


def baseline_consumer(amqp_uri: str, queue_name: str, count: int) -> None:
    """Runs in its own process; prints latencies (ms) and the time of the last ack as JSON."""
    latencies = []
    with Connection(amqp_uri) as connection:
        queue = Queue(queue_name, durable=True)

        def on_message(body, message):
            latencies.append((time.time() - body["sent"]) * 1000)
            message.ack()

        with connection.Consumer(queue, callbacks=[on_message], prefetch_count=100):
            print("ready", flush=True)
            while len(latencies) < count:
                connection.drain_events(timeout=60)
    print(json.dumps({"latencies": latencies, "done": time.time()}), flush=True)


def paced(count: int, rate: float | None):
    """Indices 0..count-1, each yielded no earlier than its slot when a rate is given."""
    started = time.monotonic()
    for i in range(count):
        if rate:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                eventlet.sleep(delay)
        yield i


def _start_consumer(amqp_uri: str, kind: str, count: int):
    """A fresh durable queue and the raw consumer (`--baseline-consumer` or `--strong-consumer`)
    reading it in its own process, ready once it says so."""
    queue_name = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    with Connection(amqp_uri) as connection:
        Queue(queue_name, durable=True)(connection.default_channel).declare()
    consumer = subprocess.Popen(
        [sys.executable, "-m", "bench.hop", f"--{kind}-consumer", amqp_uri, queue_name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BENCH_EVENTS": str(count)},
    )
    assert consumer.stdout.readline().strip() == "ready"
    return queue_name, consumer


def run_baseline(amqp_uri: str, count: int, rate: float | None = None) -> dict:
    queue_name, consumer = _start_consumer(amqp_uri, "baseline", count)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer(serializer="json")
        started = time.time()
        for i in paced(count, rate):
            producer.publish(
                {"sent": time.time(), "i": i},
                routing_key=queue_name,
                delivery_mode=2,
            )
    result = json.loads(consumer.stdout.readline())
    consumer.wait()
    name = "raw kombu" if rate is None else f"raw kombu @{rate:g}/s"
    return summary(name, count, result["done"] - started, result["latencies"])


# --- the strongest raw kombu a user could write -----------------------------------------------


def strong_consumer(amqp_uri: str, queue_name: str, count: int) -> None:
    """Prefetch 1,000 and one multiple-ack per 100 messages (or when the queue runs dry)."""
    latencies = []
    unacked = []
    with Connection(amqp_uri) as connection:
        queue = Queue(queue_name, durable=True)

        def on_message(body, message):
            latencies.append((time.time() - body["sent"]) * 1000)
            unacked.append(message)
            if len(unacked) >= 100:
                unacked.pop().ack(multiple=True)
                unacked.clear()

        with connection.Consumer(queue, callbacks=[on_message], prefetch_count=1000):
            print("ready", flush=True)
            while len(latencies) < count:
                try:
                    connection.drain_events(timeout=0.005)
                except TimeoutError:
                    if unacked:
                        unacked.pop().ack(multiple=True)
                        unacked.clear()
            if unacked:
                unacked.pop().ack(multiple=True)
    print(json.dumps({"latencies": latencies, "done": time.time()}), flush=True)


def run_strong_baseline(amqp_uri: str, count: int) -> dict:
    """As many publishers as the platform has writers, each on its own connection sending
    windows of 50 persistent messages with pipelined confirms; the consumer above."""
    queue_name, consumer = _start_consumer(amqp_uri, "strong", count)

    def publish(indices):
        indices = list(indices)
        with Connection(amqp_uri) as connection:
            channel = connection.channel()
            channel.confirm_select()
            confirmed = []
            channel.events["basic_ack"].add(lambda tag, multiple: confirmed.append(tag))
            published = 0
            for start in range(0, len(indices), 50):
                window = indices[start : start + 50]
                for i in window:
                    channel.basic_publish(
                        amqp.Message(
                            json.dumps({"sent": time.time(), "i": i}),
                            content_type="application/json",
                            delivery_mode=2,
                        ),
                        exchange="",
                        routing_key=queue_name,
                    )
                published += len(window)
                while not confirmed or max(confirmed) < published:
                    connection.drain_events(timeout=10)

    started = time.time()
    publishers = [eventlet.spawn(publish, range(w, count, WRITERS)) for w in range(WRITERS)]
    for publisher in publishers:
        publisher.wait()
    result = json.loads(consumer.stdout.readline())
    consumer.wait()
    return summary("strongest raw kombu", count, result["done"] - started, result["latencies"])


# --- the platform hop ------------------------------------------------------------------------


def run_platform(
    amqp_uri: str,
    databases: Databases,
    count: int,
    rate: float | None = None,
    env: dict | None = None,
    label: str = "platform",
) -> dict:
    """The platform hop; `env`: settings of the consumer (`MATCHING_EVENT_BATCH_SIZE=1`)."""
    producer_url = databases.create("accounts")
    sink_url = databases.create("matching")
    query(sink_url, SINK_TABLE)
    commits_file = tempfile.NamedTemporaryFile(prefix="hop-commits-", delete=False)  # noqa: SIM115
    commits_file.close()
    config = nameko_config("matching", AMQP_URI=amqp_uri, DATABASE_URL=sink_url)
    from bench.hop_sink import HopSink

    with Connection(amqp_uri) as connection:
        declare_service(connection.default_channel, HopSink, config)
    sink = subprocess.Popen(
        [sys.executable, "-m", "chassis.run", "matching", "bench.hop_sink:HopSink"],
        cwd=ROOT,
        env={
            **os.environ,
            "MATCHING_AMQP_URI": amqp_uri,
            "MATCHING_DATABASE_URL": sink_url,
            "MATCHING_HTTP_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "HOP_COMMITS_FILE": commits_file.name,
            **(env or {}),
        },
    )
    pool = ConnectionPool(producer_url, WRITERS + 2)
    relay = OutboxRelay(pool, amqp_uri, "accounts", sweep_seconds=1.0)
    try:
        _wait_for_consumer(amqp_uri, "matching.record")
        relay.start(eventlet.spawn)
        started, sink_cpu = time.time(), cpu_seconds(sink.pid)

        def write(indices):
            for i in indices:
                with pool.cursor() as cur:
                    tx = SqlUnitOfWork(cur, "accounts", None, None)
                    org_id = str(uuid.uuid4())
                    tx.publish(
                        "organization.registered",
                        {"organization_id": org_id, "name": f"org {i}", "kind": "bank"},
                        subject=org_id,
                    )
                relay.wake()

        if rate is None:
            writers = [eventlet.spawn(write, range(w, count, WRITERS)) for w in range(WRITERS)]
        else:
            writers = [eventlet.spawn(write, paced(count, rate))]
        for writer in writers:
            writer.wait()
        written = time.time()
        while query(sink_url, "SELECT count(*) AS n FROM hops")[0]["n"] < count:
            time.sleep(0.05)
        sent = {
            str(r["event_id"]): float(r["sent"])
            for r in query(
                sink_url, "SELECT event_id, extract(epoch FROM sent_at) AS sent FROM hops"
            )
        }
        sink_cpu = cpu_seconds(sink.pid) - sink_cpu
        committed = _commit_times(commits_file.name, count)
        finished = max(committed.values())
        latencies = [(committed[event_id] - sent[event_id]) * 1000 for event_id in sent]
        name = label if rate is None else f"{label} @{rate:g}/s"
        result = summary(name, count, finished - started, latencies)
        result["written_per_second"] = count / (written - started)
        result["consumer_cpu_ms"] = sink_cpu / count * 1000
        return result
    finally:
        relay.stop()
        pool.clear()
        sink.terminate()
        sink.wait()
        os.unlink(commits_file.name)


def _commit_times(path: str, count: int) -> dict[str, float]:
    """The consumer's commit time of each event (`bench/hop_sink.py` writes them after the
    commit returned, so the last few may trail the rows being visible by a moment)."""
    deadline = time.time() + 10
    while True:
        with open(path) as lines:
            committed = {}
            for line in lines:
                event_id, _, at = line.strip().partition(" ")
                if at:
                    committed.setdefault(event_id, float(at))
        if len(committed) >= count or time.time() > deadline:
            return committed
        time.sleep(0.05)


def _wait_for_consumer(amqp_uri: str, queue_name: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        with Connection(amqp_uri) as connection:
            _, _, consumers = connection.default_channel.queue_declare(queue_name, passive=True)
        if consumers:
            return
        time.sleep(0.2)
    raise RuntimeError(f"no consumer on {queue_name}")


ONE = {"MATCHING_EVENT_BATCH_SIZE": "1"}
UNBATCHED = "platform unbatched"


def _run_ratios(results: dict, ours: str, theirs: str) -> str:
    pairs = zip(results[ours], results[theirs], strict=True)
    return ", ".join(f"{a['per_second'] / b['per_second']:.2f}" for a, b in pairs)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline-consumer":
        baseline_consumer(sys.argv[2], sys.argv[3], int(os.environ["BENCH_EVENTS"]))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "--strong-consumer":
        strong_consumer(sys.argv[2], sys.argv[3], int(os.environ["BENCH_EVENTS"]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()

    admin, databases = RabbitAdmin(), Databases()
    vhost = f"bench-{uuid.uuid4().hex[:8]}"
    admin.create_vhost(vhost)
    amqp_uri = vhost_uri(vhost)
    results = {}
    paced_events = min(args.events, int(args.rate * 10))
    try:
        for run in range(1, args.runs + 1):
            for result in (
                run_baseline(amqp_uri, args.events),
                run_platform(amqp_uri, databases, args.events),
                run_platform(amqp_uri, databases, args.events, env=ONE, label=UNBATCHED),
                run_strong_baseline(amqp_uri, args.events),
                run_baseline(amqp_uri, paced_events, args.rate),
                run_platform(amqp_uri, databases, paced_events, args.rate),
                run_platform(amqp_uri, databases, paced_events, args.rate, ONE, UNBATCHED),
            ):
                results.setdefault(result["name"], []).append(result)
                written = result.get("written_per_second")
                platform = written and (
                    f"  (producers wrote {written:.0f}/s,"
                    f" consumer CPU {result['consumer_cpu_ms']:.2f} ms/event)"
                )
                print(
                    f"run {run} {result['name']:<26} {result['per_second']:8.0f} events/s"
                    f"  p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms"
                    + (platform or ""),
                    flush=True,
                )
            databases.drop_created()
    finally:
        admin.delete_vhost(vhost)
        databases.drop_created()
        databases.drop_templates()

    medians = {
        name: {k: statistics.median(r[k] for r in runs) for k in ("per_second", "p50_ms", "p99_ms")}
        for name, runs in results.items()
    }
    base, ours = medians["raw kombu"], medians["platform"]
    print(
        f"\nmedians of {args.runs} runs ({args.events} events at saturation, {paced_events} paced)"
    )
    for name, m in medians.items():
        print(
            f"  {name:<26} {m['per_second']:8.0f} events/s"
            f"  p50 {m['p50_ms']:7.1f} ms  p99 {m['p99_ms']:7.1f} ms"
        )
    strong, single = medians["strongest raw kombu"], medians[UNBATCHED]
    print(
        f"  throughput ratio platform / raw kombu: {ours['per_second'] / base['per_second']:.2f}x"
        f" (runs: {_run_ratios(results, 'platform', 'raw kombu')})"
    )
    print(
        f"  platform one event a transaction / raw kombu:"
        f" {single['per_second'] / base['per_second']:.2f}x"
    )
    print(
        f"  platform / the strongest raw kombu (10 publishers, pipelined confirms, prefetch"
        f" 1000, multiple acks): {ours['per_second'] / strong['per_second']:.2f}x"
        f" (runs: {_run_ratios(results, 'platform', 'strongest raw kombu')})"
    )
    base_paced = medians[f"raw kombu @{args.rate:g}/s"]
    ours_paced = medians[f"platform @{args.rate:g}/s"]
    added_p50 = ours_paced["p50_ms"] - base_paced["p50_ms"]
    added_p99 = ours_paced["p99_ms"] - base_paced["p99_ms"]
    print(f"  at {args.rate:g}/s the hop adds {added_p50:.1f} ms at p50, {added_p99:.1f} ms at p99")
    return 0


if __name__ == "__main__":
    sys.exit(main())
