"""`make run` as an integrator sees it: four processes, health probes, a clean stop."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from chassis.settings import PORTS, SERVICES
from tests.support import ROOT, database_uri, postgres_cluster, wait_until


@pytest.fixture
def platform_env(vhost, amqp_uri, databases):
    """Each service on this test's vhost and on databases the runner must create and migrate."""
    env = {**os.environ, "AMQP_URI": amqp_uri}
    names = []
    for service in SERVICES:
        name = f"test_run_{service}_{os.getpid()}_{int(time.time())}"
        env[f"{service.upper()}_DATABASE_URL"] = database_uri(name)
        names.append(name)
    yield env
    databases.drop(names)


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


@pytest.mark.slow
def test_make_run_serves_four_processes_whose_readiness_follows_postgres(platform_env):
    for port in PORTS.values():
        assert status(port, "/health/live") is None, f"port {port} is taken by something else"
    runner = start_runner(platform_env)
    try:
        started = time.monotonic()
        for port in PORTS.values():
            wait_until(lambda p=port: status(p, "/health/live") == 200, 30, 0.2, f"live on {port}")
        assert time.monotonic() - started < 30
        for port in PORTS.values():
            assert status(port, "/health/ready") == 200

        if not os.path.isdir("/etc/postgresql"):
            pytest.skip("no local PostgreSQL cluster to stop")
        postgres_cluster("stop")
        try:
            for port in PORTS.values():
                wait_until(lambda p=port: status(p, "/health/ready") == 503, 30, 0.2)
            assert status(PORTS["accounts"], "/health/live") == 200  # alive, just not ready
        finally:
            postgres_cluster("start")
        for port in PORTS.values():
            wait_until(lambda p=port: status(p, "/health/ready") == 200, 30, 0.2, f"ready {port}")
    finally:
        code, output = stop_runner(runner)
    assert code == 0, output
    for service in SERVICES:
        assert f"{service} INFO chassis.run: {service} stopped" in output
    for port in PORTS.values():
        assert status(port, "/health/live") is None


@pytest.mark.slow
def test_make_run_with_services_runs_only_those(platform_env):
    runner = start_runner(platform_env, ["notify", "matching"])
    try:
        for service in ("notify", "matching"):
            port = PORTS[service]
            wait_until(lambda p=port: status(p, "/health/ready") == 200, 30, 0.2, service)
        assert status(PORTS["accounts"], "/health/live") is None
        assert status(PORTS["consulting"], "/health/live") is None
    finally:
        code, output = stop_runner(runner)
    assert code == 0, output
    assert "accounts |" not in output and "consulting|" not in output
