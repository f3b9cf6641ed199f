"""A RabbitMQ cluster of this test's own on this machine: its own node names, ports, Erlang
cookie, configuration and data directories in a temporary folder, no plugins (so no management
port), removed when the block ends, however it ends. The machine's broker (its node name, port,
cookie and data) is never touched; epmd, which every node on the machine shares, is."""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_ONLY = "-kernel inet_dist_use_interface {127,0,0,1}"  # node distribution: this machine
SBIN = Path(os.environ.get("RABBITMQ_SBIN", "/usr/lib/rabbitmq/bin"))


# Watches the test process: when it is gone (a timeout's os._exit, a SIGKILL), it kills the
# cluster's nodes, found by their home folder on their command line, and removes the folder.
WATCHDOG = """
import os, shutil, signal, sys, time
runner, base = int(sys.argv[1]), sys.argv[2]
def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"
while state(runner) not in ("gone", "Z"):
    time.sleep(1)
marker = f"-home\\0{base}\\0".encode()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if marker in cmdline.read():
                os.kill(int(pid), signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
shutil.rmtree(base, ignore_errors=True)
"""


def available() -> bool:
    return (SBIN / "rabbitmq-server").exists() and (SBIN / "rabbitmqctl").exists()


@dataclass
class Node:
    name: str  # rplat1-<run>@localhost
    port: int
    dist_port: int
    home: Path
    process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid_file(self) -> Path:
        return self.home / "rabbit.pid"


class RabbitCluster:
    def __init__(self, size: int, free_port):
        self.base = Path(tempfile.mkdtemp(prefix="rabbit-cluster-"))
        run = uuid.uuid4().hex[:6]
        cookie = self.base / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")  # not the machine's (its node name)
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(self.base)],
            start_new_session=True,
        )
        self.nodes = []
        for n in range(1, size + 1):
            home = self.base / f"node{n}"
            home.mkdir()
            node = Node(f"rplat{n}-{run}@localhost", free_port(), free_port(), home)
            (home / "rabbitmq.conf").write_text(
                f"listeners.tcp.1 = 127.0.0.1:{node.port}\n"
                "loopback_users = none\n"
                "disk_free_limit.absolute = 50MB\n"
                "vm_memory_high_watermark.relative = 0.2\n"
            )
            self.nodes.append(node)

    @property
    def amqp_uri(self) -> str:
        """Every node, as the platform's AMQP_URI names a cluster: `;`-separated URLs."""
        return ";".join(node.uri for node in self.nodes)

    def _env(self, node: Node | None = None) -> dict:
        env = {
            **os.environ,
            "HOME": str(self.base),  # the cookie the nodes and the CLI share
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        if node is not None:
            env |= {
                "RABBITMQ_NODENAME": node.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(node.port),
                "RABBITMQ_DIST_PORT": str(node.dist_port),
                "RABBITMQ_CONFIG_FILE": str(node.home / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.home / "advanced.config"),
                "RABBITMQ_MNESIA_BASE": str(node.home / "mnesia"),
                "RABBITMQ_LOG_BASE": str(node.home / "log"),
                "RABBITMQ_PID_FILE": str(node.pid_file),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": LOOPBACK_ONLY,
            }
        return env

    def ctl(self, node: Node, *args: str, tool: str = "rabbitmqctl", timeout: float = 60) -> str:
        done = subprocess.run(
            [str(SBIN / tool), "-q", "-n", node.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise RuntimeError(f"{tool} {' '.join(args)} on {node.name}: {done.stderr.strip()}")
        return done.stdout

    def start_node(self, node: Node) -> None:
        node.pid_file.unlink(missing_ok=True)
        log = open(node.home / "console.log", "ab")  # noqa: SIM115 - kept by the node's process
        node.process = subprocess.Popen(
            [str(SBIN / "rabbitmq-server")],
            env=self._env(node),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as one, never ours
        )
        log.close()

    def await_node(self, node: Node, timeout: float = 120) -> None:
        """Until the node runs (`await_startup` fails while the node is not yet known to epmd)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl(node, "await_startup", "--timeout", "30", timeout=40)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if node.process.poll() is not None or time.monotonic() > deadline:
                    log = (node.home / "console.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{node.name} did not start:\n{log}") from None
                time.sleep(0.5)

    def launch(self) -> "RabbitCluster":
        """Start every node's process without waiting: other work may go on while they boot."""
        for node in self.nodes:
            self.start_node(node)
        return self

    def start(self) -> "RabbitCluster":
        """Every node started (unless `launch` did), then joined to the first."""
        for node in self.nodes:
            if node.process is None:
                self.start_node(node)
        for node in self.nodes:
            self.await_node(node)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
        return self

    def running_nodes(self, via: Node) -> set[str]:
        import json

        status = json.loads(self.ctl(via, "cluster_status", "--formatter", "json"))
        return set(status["running_nodes"])

    def beam_pid(self, node: Node) -> int:
        """The node's Erlang VM, from its pid file, checked to be one of this cluster's (its home
        is the cluster's folder): never another process."""
        pid = int(node.pid_file.read_text().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if f"-home\0{self.base}\0".encode() not in cmdline.read():
                raise ProcessLookupError(f"{pid} is not {node.name}")
        return pid

    def kill(self, node: Node) -> None:
        """SIGKILL to the node's Erlang VM (its own pid, from its own pid file), as a crash."""
        pid = self.beam_pid(node)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if node.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGTERM)
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait()
            with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                os.kill(self.beam_pid(node), signal.SIGKILL)  # if it left its group
        shutil.rmtree(self.base, ignore_errors=True)
        self.watchdog.kill()
        self.watchdog.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def rabbit_cluster(size: int, free_port, meanwhile=None):
    """A running cluster of `size` nodes; `meanwhile()` runs while the nodes boot."""
    cluster = RabbitCluster(size, free_port)
    try:
        cluster.launch()
        if meanwhile is not None:
            meanwhile()
        yield cluster.start()
    finally:
        cluster.stop()
