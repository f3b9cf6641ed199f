"""`make run` as an integrator sees it: a process per service, health probes, a clean stop, and
nothing left behind however the runner ends."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from chassis.ports import holders
from chassis.settings import FRONTS, SERVICES
from deploy.mail_sink import SmtpSink
from tests.support import ROOT, alive, database_uri, free_port, postgres_cluster, wait_until


@pytest.fixture
def platform_env(vhost, amqp_uri, databases):
    """Each service on this test's vhost, on a free port, and on databases the runner must create
    and migrate; notify mails a sink of the test's own, so the runner starts none on 1025."""
    sink = SmtpSink().start()
    env = {
        **os.environ,
        "AMQP_URI": amqp_uri,
        "NOTIFY_SMTP_HOST": sink.host,
        "NOTIFY_SMTP_PORT": str(sink.port),
    }
    names = []
    for service in SERVICES:
        name = f"test_run_{service}_{os.getpid()}_{int(time.time())}"
        env[f"{service.upper()}_DATABASE_URL"] = database_uri(name)
        env[f"{service.upper()}_HTTP_PORT"] = str(free_port())
        names.append(name)
    for front in FRONTS:  # no database: a port of its own only
        env[f"{front.upper()}_HTTP_PORT"] = str(free_port())
    yield env
    sink.stop()
    databases.drop(names)


def port(env, service: str) -> int:
    return int(env[f"{service.upper()}_HTTP_PORT"])


def start_runner(env, services=()):
    return subprocess.Popen(
        [sys.executable, "-m", "deploy.local", "run", *services],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def status(port: int, path: str) -> int | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=6).status_code
    except requests.RequestException:
        return None


def stop_runner(runner) -> tuple[int, str]:
    if runner.poll() is None:
        runner.send_signal(signal.SIGTERM)
    try:
        output, _ = runner.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        runner.kill()
        output, _ = runner.communicate()
    return runner.returncode, output


def serving(env, services) -> dict[str, int]:
    """The pid of the one process serving each service's port, once each answers."""
    pids = {}
    for service in services:
        p = port(env, service)
        wait_until(lambda p=p: status(p, "/health/live") == 200, 60, 0.2, f"{service} live")
        [(pids[service], command)] = holders(p)
        assert command.endswith(f"-m chassis.run {service}"), command
    return pids


def assert_nothing_left(env, pids: dict[str, int], within: float) -> float:
    """Every service process gone and its port free within `within` seconds; how long it took."""
    started = time.monotonic()
    for service, pid in pids.items():
        wait_until(lambda pid=pid: not alive(pid), within, 0.1, f"{service} (pid {pid}) gone")
        assert holders(port(env, service)) == []
        assert status(port(env, service), "/health/live") is None
    return time.monotonic() - started


@pytest.mark.slow
def test_make_run_serves_four_processes_whose_readiness_follows_postgres(platform_env):
    ports = [port(platform_env, s) for s in SERVICES]
    can_stop_postgres = os.path.isdir("/etc/postgresql")
    runner = start_runner(platform_env)
    try:
        started = time.monotonic()
        for p in ports:
            wait_until(lambda p=p: status(p, "/health/live") == 200, 30, 0.2, f"live on {p}")
        assert time.monotonic() - started < 30
        for p in ports:
            assert status(p, "/health/ready") == 200

        if can_stop_postgres:
            postgres_cluster("stop")
            try:
                for p in ports:
                    wait_until(lambda p=p: status(p, "/health/ready") == 503, 30, 0.2)
                assert status(port(platform_env, "accounts"), "/health/live") == 200  # not ready
            finally:
                postgres_cluster("start")
            for p in ports:
                wait_until(lambda p=p: status(p, "/health/ready") == 200, 30, 0.2, f"ready {p}")
    finally:
        code, output = stop_runner(runner)
    assert code == 0, output
    for service in (*SERVICES, *FRONTS):
        assert f"{service} INFO chassis.run: {service} stopped" in output
    for p in ports:
        assert status(p, "/health/live") is None
    if not can_stop_postgres:  # after the clean-stop checks, which hold either way
        pytest.skip("no local PostgreSQL cluster to stop: readiness across an outage unchecked")


def test_make_run_with_services_runs_only_those(platform_env):
    runner = start_runner(platform_env, ["notify", "matching"])
    try:
        for service in ("notify", "matching"):
            p = port(platform_env, service)
            wait_until(lambda p=p: status(p, "/health/ready") == 200, 60, 0.2, service)
        for service in ("accounts", "consulting"):
            assert status(port(platform_env, service), "/health/live") is None
    finally:
        code, output = stop_runner(runner)
    assert code == 0, output
    assert f"{'matching':<10}| " in output and f"{'notify':<10}| " in output  # the prefix
    for service in ("accounts", "consulting"):
        assert f"{service:<10}| " not in output, output


def test_a_second_make_run_is_refused_while_the_first_serves(platform_env):
    first = start_runner(platform_env, ["consulting"])
    try:
        [pid] = serving(platform_env, ["consulting"]).values()
        second = start_runner(platform_env, ["consulting"])
        code, output = stop_runner_when_done(second)
        assert code == 1, output
        p = port(platform_env, "consulting")
        assert (
            f"[platform] consulting not started: 127.0.0.1:{p} is already in use by pid {pid} "
            "(python -m chassis.run consulting); stop that process or set CONSULTING_HTTP_PORT"
            " to a free port\n"
        ) in output
        assert "migrated" not in output  # refused before preparing anything
        assert [holder for holder, _ in holders(p)] == [pid]  # nobody shares the port
        assert status(p, "/health/ready") == 200
    finally:
        code, output = stop_runner(first)
    assert code == 0, output


def stop_runner_when_done(runner, timeout: float = 60) -> tuple[int, str]:
    try:
        output, _ = runner.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return stop_runner(runner)
    return runner.returncode, output


def test_sigkill_of_the_runner_leaves_no_service_behind(platform_env, rabbit_admin, vhost):
    services = ["consulting", "matching"]
    runner = start_runner(platform_env, services)
    try:
        pids = serving(platform_env, services)
        assert rabbit_admin.consumers(vhost)  # the services consume from the broker
        runner.kill()  # as an OOM kill, a CI timeout or a crashed terminal does
        runner.wait(timeout=10)
        took = assert_nothing_left(platform_env, pids, within=15)
        wait_until(lambda: rabbit_admin.consumers(vhost) == {}, 10, 0.2, "no consumer left")
    finally:
        output = stop_runner(runner)[1]
    assert took < 15, output
    print(f"services gone {took:.1f} s after the runner's SIGKILL")


@pytest.mark.parametrize("reader", ["head -1", "tee {log}"])
def test_make_run_into_a_pipe_then_ctrl_c_leaves_nothing_behind(platform_env, reader, tmp_path):
    # Ctrl-C signals the whole foreground process group: the shell, the runner and the reader.
    # head is gone long before (after the first line); tee goes with the Ctrl-C.
    reader = reader.format(log=tmp_path / "run.log")
    errors = tmp_path / "stderr"
    pipeline = subprocess.Popen(
        f"{sys.executable} -m deploy.local run consulting 2>{errors} | {reader}",
        shell=True,
        cwd=ROOT,
        env=platform_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert pipeline.stdout.readline().startswith("[platform] ")
        pids = serving(platform_env, ["consulting"])
        runner = parent(pids["consulting"])
        os.killpg(pipeline.pid, signal.SIGINT)
        pipeline.communicate(timeout=60)
        assert_nothing_left(platform_env, pids, within=30)
        assert not alive(runner)
        assert "Traceback" not in errors.read_text()  # the runner stopped them, it did not crash
    finally:
        if pipeline.poll() is None:
            os.killpg(pipeline.pid, signal.SIGKILL)
            pipeline.wait()


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status_file:
        [ppid] = [line.split()[1] for line in status_file if line.startswith("PPid:")]
    with open(f"/proc/{ppid}/cmdline", "rb") as cmdline:
        assert b"deploy.local\0run" in cmdline.read()
    return int(ppid)
