"""Test scaffolding against the real broker and database: isolated vhosts and databases."""

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
import psycopg2.extras
import requests
from psycopg2 import sql

from chassis.migrate import migrate
from chassis.settings import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@localhost:15672")
# As the services declare it: queue arguments must match on every declaration.
UNROUTED_RETENTION_HOURS = float(DEFAULTS["UNROUTED_RETENTION_HOURS"])
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@localhost:5432/postgres")


def service_environment(service: str) -> frozenset[str]:
    """The variables a service reads beyond the chassis' (its `settings.DECLARED`)."""
    return frozenset(importlib.import_module(f"services.{service}.settings").DECLARED)


def postgres_cluster(action: str) -> None:
    """Stop, start or restart the local PostgreSQL server, as an outage would."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True
    )


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = ""):
    """Poll `predicate` until it returns a truthy value; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {message or predicate}")
        time.sleep(interval)


class RabbitAdmin:
    """The RabbitMQ management HTTP API, for vhosts and for looking into queues."""

    def __init__(self, url: str = MANAGEMENT_URL):
        parts = urlsplit(url)
        self.base = urlunsplit(parts._replace(netloc=f"{parts.hostname}:{parts.port or 15672}"))
        self.auth = (parts.username or "guest", parts.password or "guest")
        self.session = requests.Session()

    def _call(self, method: str, path: str, **kwargs):
        response = self.session.request(
            method, f"{self.base}/api/{path}", auth=self.auth, timeout=10, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def create_vhost(self, name: str) -> None:
        self._call("PUT", f"vhosts/{quote(name, safe='')}")
        self._call(
            "PUT",
            f"permissions/{quote(name, safe='')}/{self.auth[0]}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        )

    def delete_vhost(self, name: str) -> None:
        self._call("DELETE", f"vhosts/{quote(name, safe='')}")

    def consumers(self, vhost: str) -> dict[str, int]:
        """{queue: consumers} of the vhost's queues that have any, as the broker counts them
        right now (the management API's own counts lag by its statistics interval)."""
        names = [q["name"] for q in self._call("GET", f"queues/{quote(vhost, safe='')}")]
        counts = {}
        with _amqp_channel(vhost) as channel:
            for name in names:
                _, _, consumers = channel.queue_declare(name, passive=True)
                if consumers:
                    counts[name] = consumers
        return counts

    def queues(self, vhost: str) -> list[str]:
        """The vhost's queues but the exclusive ones (a test's spies, readable by it alone)."""
        listed = self._call("GET", f"queues/{quote(vhost, safe='')}")
        return [q["name"] for q in listed if not q.get("exclusive")]

    def messages(self, vhost: str) -> list[dict]:
        """Every message waiting in every queue of the vhost, `{queue, body, headers}`, taken
        without ack: each goes back to its queue, in its place, when the channel closes."""
        found = []
        with _amqp_channel(vhost) as channel:
            for name in self.queues(vhost):
                _, ready, _ = channel.queue_declare(name, passive=True)
                for _ in range(ready):
                    message = channel.basic_get(queue=name, no_ack=False)
                    if message is None:
                        break
                    found.append({"queue": name, "body": bytes(message.body),
                                  "headers": dict(message.headers or {})})  # fmt: skip
        return found

    def depth(self, vhost: str, name: str) -> int | None:
        """Messages ready in the queue as the broker counts them right now; None if no queue."""
        from amqp.exceptions import NotFound

        with _amqp_channel(vhost) as channel:
            try:
                _, ready, _ = channel.queue_declare(name, passive=True)
            except NotFound:
                return None
        return ready


@contextmanager
def _amqp_channel(vhost: str):
    from kombu import Connection

    with Connection(vhost_uri(vhost)) as connection:
        yield connection.default_channel


def vhost_uri(vhost: str) -> str:
    base = AMQP_URI.rstrip("/")
    return f"{base}/{quote(vhost, safe='')}"


def database_uri(name: str) -> str:
    return urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))


def _admin_connection():
    conn = psycopg2.connect(POSTGRES_URL, connect_timeout=5)
    conn.autocommit = True
    return conn


class Databases:
    """Fresh databases for a test: copies of a migrated template, one template per service."""

    def __init__(self):
        self.templates: dict[str, str] = {}
        self.created: list[str] = []

    def template(self, service: str) -> str:
        if service not in self.templates:
            name = f"test_tmpl_{service}_{uuid.uuid4().hex[:8]}"
            migrate(service, database_uri(name))
            self.templates[service] = name
        return self.templates[service]

    def create(self, service: str) -> str:
        """A new, migrated database for `service`; returns its URL."""
        template = self.template(service)
        name = f"test_{service}_{uuid.uuid4().hex[:10]}"
        conn = _admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
        finally:
            conn.close()
        self.created.append(name)
        return database_uri(name)

    def drop(self, names) -> None:
        conn = _admin_connection()
        try:
            with conn.cursor() as cur:
                for name in names:
                    cur.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
        finally:
            conn.close()

    def drop_created(self) -> None:
        self.drop(self.created)
        self.created = []

    def drop_templates(self) -> None:
        self.drop(self.templates.values())
        self.templates = {}


def query(url: str, statement: str, params=None) -> list[dict]:
    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


class ServiceProcess:
    """A service running as its own OS process, as in production, for kill and restart tests."""

    def __init__(
        self, name: str, env: dict, service_class: str | None = None, new_session: bool = False
    ):
        self.name = name
        self.new_session = new_session  # its own session, as the local runner starts each
        # Ends with the test process however it ends (chassis.lifetime): a killed or timed-out
        # test run leaves no service consuming and holding database connections.
        self.env = {**os.environ, "RUNNER_PID": str(os.getpid()), **env}
        self.service_class = service_class
        self.process: subprocess.Popen | None = None
        self._terminating = False
        self.log_path = Path(tempfile.gettempdir()) / f"{name}-{uuid.uuid4().hex[:8]}.log"

    def start(self) -> "ServiceProcess":
        args = [sys.executable, "-m", "chassis.run", self.name]
        if self.service_class:
            args.append(self.service_class)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._terminating = False
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=self.new_session,
        )
        return self

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM, once) without waiting: `stop` then waits."""
        if self.process and self.process.poll() is None and not self._terminating:
            self.process.terminate()
            self._terminating = True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served_port(reuse_port: bool):
    """A local port this process listens on while the block runs, with SO_REUSEPORT (as
    eventlet.listen sets it) or without."""
    import socket

    with socket.socket() as sock:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@contextmanager
def refused_port():
    """A local port that refuses connections while the block runs: bound, never listening."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def prepare_locally(*args: str, path: str, **urls: str) -> subprocess.CompletedProcess:
    """`python -m deploy.local prepare <args>` as `make run`/`make test` call it, with the
    broker and database URLs given here instead of the environment's, and `path` as PATH."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith(("DATABASE_URL", "AMQP_URI"))
    }
    return subprocess.run(
        [sys.executable, "-m", "deploy.local", "prepare", *args],
        cwd=ROOT,
        env={**environment, **urls, "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


def service_url(container) -> str:
    """Base URL of a running container's HTTP server (tests bind it to port 0)."""
    from chassis.web import JsonWebServer

    for extension in container.extensions:
        if isinstance(extension, JsonWebServer):
            return f"http://127.0.0.1:{extension._sock.getsockname()[1]}"
    raise LookupError("the container serves no HTTP")


def publish_events(amqp_uri: str, events) -> None:
    """Publish ready-made events (see `contracts.CATALOG.create`) as their producer would:
    to `<producer>.events`, routing key = type, confirmed by the broker."""
    from chassis.broker import BrokerPublisher, Outgoing
    from chassis.topology import declare_producer

    producers = {event.producer for event in events}
    publisher = BrokerPublisher(
        amqp_uri,
        on_connect=lambda channel: [
            declare_producer(channel, p, UNROUTED_RETENTION_HOURS) for p in producers
        ],
    )
    try:
        outcome = publisher.publish(
            [
                Outgoing(
                    message_id=event.id,
                    exchange=f"{event.producer}.events",
                    routing_key=event.type,
                    body=event.to_json(),
                    properties={"type": event.type, "app_id": event.producer},
                )
                for event in events
            ]
        )
    finally:
        publisher.close()
    assert not outcome.failed, outcome.failed


class WebhookReceiver:
    """A district system's endpoint on loopback: records each POST `(headers, body)`."""

    def __init__(self):
        import http.server
        import threading

        receiver = self
        self.received: list[tuple[dict, bytes]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/platform"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        import json

        return [json.loads(body) for _, body in self.received]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class EventSpy:
    """A queue of the test's own bound to a producer's events: what a district system sees."""

    def __init__(self, amqp_uri: str, producer: str, *event_types: str):
        from kombu import Connection, Queue, binding

        from chassis.topology import declare_producer, events_exchange

        self.connection = Connection(amqp_uri)
        channel = self.connection.channel()
        declare_producer(channel, producer, UNROUTED_RETENTION_HOURS)
        exchange = events_exchange(producer)
        self.queue = Queue(
            f"spy-{producer}-{uuid.uuid4().hex[:8]}",
            bindings=[binding(exchange, routing_key=t) for t in event_types or ("#",)],
            exclusive=True,
        )(channel)
        self.queue.declare()
        self.seen = []

    def _drain(self) -> None:
        from contracts import Event

        while True:
            message = self.queue.get(no_ack=True)
            if message is None:
                return
            self.seen.append(Event.from_json(message.body))

    def events(self, event_type: str | None = None, wait: float = 0.0) -> list:
        """Events seen so far (of a type), after waiting `wait` seconds for stragglers."""
        if wait:
            time.sleep(wait)
        self._drain()
        return [e for e in self.seen if event_type is None or e.type == event_type]

    def wait_for(self, event_type: str, predicate=lambda e: True, timeout: float = 15.0):
        """The first event of the type matching `predicate`, waiting up to `timeout`."""

        def found():
            self._drain()
            return next((e for e in self.seen if e.type == event_type and predicate(e)), None)

        return wait_until(found, timeout, 0.05, f"an event {event_type}")

    def close(self) -> None:
        self.connection.release()


def forged_tokens(subject: str) -> dict[str, str]:
    """Tokens no service may take, each with the claims of a valid admin's but for one thing."""
    import json

    import jwt
    from cryptography.hazmat.primitives import serialization

    from chassis.auth import TokenIssuer, TokenVerifier
    from chassis.keys import new_key
    from chassis.settings import nameko_config

    config = nameko_config("accounts")
    issuer = TokenIssuer.from_config(config)  # the development key every service trusts
    key = issuer.keys[0]
    now = int(time.time())
    good = {
        "sub": subject,
        "role": "admin",
        "iss": config["JWT"]["issuer"],
        "aud": config["JWT"]["audience"],
        "iat": now,
        "exp": now + 600,
    }

    def signed(claims, kid=key.kid, private_key=key.private_key, algorithm="EdDSA"):
        return jwt.encode(claims, private_key, algorithm=algorithm, headers={"kid": kid})

    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    stranger = new_key()
    valid = signed(good)
    header, _, signature = valid.split(".")
    payload = jwt.utils.base64url_encode(
        json.dumps({**good, "sub": str(uuid.uuid4())}).encode()
    ).decode()
    assert TokenVerifier.from_config(config).verify(valid).role == "admin"  # the base is valid
    return {
        "HS256 with a development secret": jwt.encode(
            good,
            "development-only-secret-set-JWT_SECRET-in-production",
            "HS256",
            headers={"kid": key.kid},
        ),  # fmt: skip
        "HS256 with the public key as its secret": _hmac_with_public_key(good, key.kid, public_pem),
        "alg none": jwt.encode(good, None, algorithm="none", headers={"kid": key.kid}),
        "unknown kid": signed(good, kid="no-such-key"),
        "no kid": jwt.encode(good, key.private_key, algorithm="EdDSA"),
        "another key under the platform's kid": signed(good, private_key=stranger.private_key),
        "wrong issuer": signed({**good, "iss": "someone-else"}),
        "wrong audience": signed({**good, "aud": "another-system"}),
        "expired": signed({**good, "iat": now - 7200, "exp": now - 3600}),
        "no expiry": signed({k: v for k, v in good.items() if k != "exp"}),
        "unknown role": signed({**good, "role": "superuser"}),
        "tampered payload": f"{header}.{payload}.{signature}",
        "not a token": "not.a.token",
    }


def _hmac_with_public_key(claims: dict, kid: str, public_pem: bytes) -> str:
    """The classic key confusion: HS256 keyed with the verifier's public key. PyJWT refuses to
    make one, so it is signed by hand."""
    import hashlib
    import hmac
    import json

    import jwt

    segments = [
        jwt.utils.base64url_encode(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    ]
    signing_input = b".".join(segments)
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + jwt.utils.base64url_encode(mac)).decode()


def walk_pages(url: str, headers=None, params=None, limit: int = 2, between=None) -> list:
    """Every item of a paged list (chassis.paging) at `url`, `limit` a page, following
    `X-Next-Cursor` and checking `Link` names the same page; `between(n)` runs after page n
    (inserts between pages). Asserts nothing was listed twice."""
    seen, query, pages = [], {**(params or {}), "limit": limit}, 0
    while True:
        response = requests.get(url, headers=headers, params=query, timeout=30)
        assert response.status_code == 200, response.text
        page = response.json()
        assert isinstance(page, list) and len(page) <= limit
        seen.extend(page)
        pages += 1
        if between is not None:
            between(pages)
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            assert "Link" not in response.headers
            break
        assert f"cursor={cursor}" in response.links["next"]["url"]
        query = {**query, "cursor": cursor}
        assert pages < 1000, "the pages do not end"
    keys = [json.dumps(item, sort_keys=True) for item in seen]
    assert len(keys) == len(set(keys)), "an item was listed twice"
    assert pages > 1, "the list fits on one page: the walk proves nothing"
    return seen


def refuses_bad_pages(url: str, headers=None, params=None, accepted: int = 100) -> None:
    """A limit over what the list accepts (100; more for a list published before pages) → 400
    naming `limit`, and one it accepts over 100 is served as a page of 100; a cursor outside the
    document's alphabet → 400 naming `cursor`; one in it that is none of ours, or of another
    list → 422 naming `cursor` (the rule the operation states)."""
    over = {**(params or {}), "limit": accepted + 1}
    too_many = requests.get(url, headers=headers, params=over, timeout=30)
    assert too_many.status_code == 400, too_many.text
    assert set(too_many.json()["fields"]) == {"limit"}
    if accepted > 100:
        most = requests.get(url, headers=headers, params={**(params or {}), "limit": accepted},
                            timeout=30)  # fmt: skip
        assert most.status_code == 200, most.text
        assert len(most.json()) <= 100
    # not the alphabet; {}; a key of 8 numbers
    for bad, status in (("not-a-cursor!", 400), ("e30", 422), ("WzEsMiwzLDQsNSw2LDcsOF0", 422)):
        refused = requests.get(url, headers=headers, params={**(params or {}), "cursor": bad},
                               timeout=30)  # fmt: skip
        assert refused.status_code == status, (bad, refused.text)
        assert set(refused.json()["fields"]) == {"cursor"}, refused.text
