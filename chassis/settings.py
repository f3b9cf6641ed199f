"""Configuration from the environment, with local defaults.

Each setting is read as `<SERVICE>_<NAME>` first (for example `ACCOUNTS_DATABASE_URL`), then
`<NAME>`, then the default, so one environment can describe all services or a single one.

`PLATFORM_ENV` is `development` (what `make run`, `make demo` and the tests set) or `production`
(the default): only in development do development keys and accounts exist, and only in
production does a service refuse to start on unsafe secrets (`chassis.secrets`).
"""

import ipaddress
import os
from collections.abc import Mapping

SERVICES = ("accounts", "consulting", "matching", "notify", "activities", "insights")
# The one service that signs bearer tokens; every other one holds public keys only.
TOKEN_ISSUER = "accounts"
ENVIRONMENTS = ("development", "production")
# Access tokens live at most this long: revocation is immediate, but a stolen token that
# escapes it (a service unreachable by the broker) dies soon by itself.
MAX_ACCESS_TOKEN_SECONDS = 15 * 60
# Web fronts: HTTP only, no database of their own and no broker consumers, so migrations and
# topology (which iterate SERVICES) pass them by; the runner starts them with the services.
FRONTS = ("portal",)
PORTS = {
    "accounts": 8001,
    "consulting": 8002,
    "matching": 8003,
    "notify": 8004,
    "activities": 8005,
    "insights": 8006,
    "portal": 8080,
}

DEFAULTS = {
    "AMQP_URI": "amqp://guest:guest@localhost:5672/",
    "HTTP_HOST": "127.0.0.1",
    # The operations port: `/metrics` and the detailed `/health/ready`, for Prometheus and the
    # kubelet, never for the public (chassis.web). Empty port: in production the HTTP port plus
    # OPERATIONS_PORT_OFFSET; in development none, and they stay on the HTTP port.
    "OPERATIONS_HOST": "127.0.0.1",
    "OPERATIONS_PORT": "",
    # "true": processes may listen on one port together and share its connections (SO_REUSEPORT);
    # otherwise a port another process serves stops the service at start.
    "HTTP_REUSE_PORT": "false",
    "MAX_WORKERS": "10",
    "HTTP_RESERVED_WORKERS": "2",  # workers events never take: HTTP and probes stay answered
    "DB_POOL_SIZE": "",  # empty: MAX_WORKERS + 4
    # Events an `on_event` subscriber applies in one transaction at most, and how long the first
    # of a batch waits for others (ms) while every batch slot is free. 1: one event at a time.
    "EVENT_BATCH_SIZE": "20",
    "EVENT_BATCH_LINGER_MS": "2",
    # The same wait for a subscriber declared `background` (chassis.events.on_event): work
    # nobody waits on at that moment gathers into larger batches, cheaper per event.
    "BACKGROUND_BATCH_LINGER_MS": "500",
    "RETRY_ATTEMPTS": "5",
    "RETRY_BASE_DELAY_MS": "1000",
    "RETRY_MAX_DELAY_MS": "60000",
    "OUTBOX_SWEEP_SECONDS": "1.0",
    "OUTBOX_BATCH_SIZE": "500",
    "OUTBOX_RETENTION_HOURS": "168",
    "INBOX_RETENTION_HOURS": "720",
    "UNROUTED_RETENTION_HOURS": "168",
    # "quorum" on a RabbitMQ cluster: every platform queue is declared a replicated quorum queue.
    # A queue keeps the type it was created with (docs/deploying.md, quorum queues).
    "QUEUE_TYPE": "classic",
    "SHUTDOWN_TIMEOUT_SECONDS": "20",
    # The process's CPU priority on a machine it shares with the other services (Unix nice, 0 to
    # 19; it only lowers the one the process was started with): under contention a service at
    # 10 gets about a tenth of the time of one at 0. For background consumers on one machine;
    # docs/deploying.md says where it weighs (one scheduling group) and where it does not.
    "CPU_NICENESS": "0",
    # Networks of the reverse proxies in front of the services (an ingress, a load balancer),
    # comma-separated CIDRs: only a request from one of them is believed about its client's
    # address (X-Forwarded-For). Empty: the connection's own address counts.
    "TRUSTED_PROXIES": "",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",  # or "json"
    # A request body longer than this is answered 413 before it is read.
    "HTTP_MAX_BODY_BYTES": "65536",
    # Bearer tokens (chassis.auth): accounts signs with JWT_PRIVATE_KEY_FILE (Ed25519, or RSA of
    # 2048 bits and more) and, during a key rollover, still publishes JWT_PREVIOUS_KEY_FILE's
    # public key; every other service verifies with the public keys at JWT_JWKS_URL (accounts'
    # /.well-known/jwks.json) or in JWT_JWKS_FILE. Development: keys of the checkout's own.
    "JWT_PRIVATE_KEY_FILE": "",
    "JWT_PREVIOUS_KEY_FILE": "",
    "JWT_JWKS_URL": "",
    "JWT_JWKS_FILE": "",
    "JWT_ISSUER": "returnee-platform-accounts",
    "JWT_AUDIENCE": "returnee-platform",
    "JWT_TTL_SECONDS": "900",
}

QUEUE_TYPES = ("classic", "quorum")


# Every variable the chassis reads. A service's own variables are declared by the service
# (`services/<name>/settings.py`, `DECLARED`) and read with `service_settings`.
# RUNNER_PID is set by the local runner alone: its children stop when it dies (chassis.lifetime).
# A folder of files named after settings (`DATABASE_URL`, `<SERVICE>_<NAME>`...), each holding
# its value: how Kubernetes mounts a Secret. A setting the environment does not set is read from
# there, so secrets need not be environment variables (seen by every process of the container
# and in `kubectl describe`).
SECRETS_DIR = "SECRETS_DIR"
ENVIRONMENT = frozenset(
    {*DEFAULTS, "DATABASE_URL", "HTTP_PORT", "RUNNER_PID", "PLATFORM_ENV", SECRETS_DIR}
)


class SettingError(ValueError):
    """A setting a service cannot start with: `name` and what is wrong with it, said in one
    line ("AMQP_URI is missing")."""

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"{name} {problem}")


def environment() -> str:
    """`development` or `production` (the default: a deployment that forgets to say is treated
    as the one that matters)."""
    value = os.environ.get("PLATFORM_ENV", "production").strip().lower() or "production"
    if value not in ENVIRONMENTS:
        raise SettingError(
            "PLATFORM_ENV", f"is {value!r}; it must be one of {', '.join(ENVIRONMENTS)}"
        )
    return value


def development() -> bool:
    return environment() == "development"


def _secret_file(name: str) -> str | None:
    """The value of `name` in `SECRETS_DIR`'s file of that name, when there is one (a trailing
    newline is not part of it)."""
    folder = os.environ.get(SECRETS_DIR)
    if not folder or "/" in name or name.startswith("."):
        return None
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as file:
            return file.read().removesuffix("\n")
    except (FileNotFoundError, NotADirectoryError):
        return None


def configured(service: str, name: str) -> bool:
    """Whether the environment (or `SECRETS_DIR`) sets `name` for `service`, rather than a
    default applying."""
    prefixed = f"{service.upper()}_{name}"
    return bool(
        os.environ.get(prefixed) or os.environ.get(name) or _secret_file(prefixed)
        or _secret_file(name)
    )  # fmt: skip


def setting(service: str, name: str, default: str | None = None) -> str | None:
    """`<SERVICE>_<NAME>`, else `<NAME>`, from the environment, else from `SECRETS_DIR`; else
    `default`, else the chassis default."""
    prefixed = f"{service.upper()}_{name}"
    if prefixed in os.environ:
        return os.environ[prefixed]
    if name in os.environ:
        return os.environ[name]
    for candidate in (prefixed, name):
        value = _secret_file(candidate)
        if value is not None:
            return value
    if default is not None:
        return default
    return DEFAULTS.get(name)


def service_settings(service: str, declared: Mapping[str, str], config: Mapping | None = None
                     ) -> dict[str, str]:  # fmt: skip
    """A service's own settings as text, each from the container config when it names it (tests
    do), else `<SERVICE>_<NAME>`, else `<NAME>`, else the service's declared default."""
    config = config or {}
    return {
        name: str(config[name]) if name in config else setting(service, name, default)
        for name, default in declared.items()
    }


def database_url(service: str) -> str:
    return setting(service, "DATABASE_URL", f"postgresql://postgres@localhost:5432/{service}")


def http_port(service: str) -> int:
    return int(setting(service, "HTTP_PORT", str(PORTS.get(service, 8000))))


OPERATIONS_PORT_OFFSET = 1000


def operations_address(service: str) -> str:
    """`host:port` of the service's operations port, or "" when its HTTP port serves everything
    (development without OPERATIONS_PORT; a web front, which has neither metrics nor details)."""
    if service not in SERVICES:
        return ""
    port = setting(service, "OPERATIONS_PORT")
    if not port:
        if development():
            return ""
        port = str(http_port(service) + OPERATIONS_PORT_OFFSET)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingError("OPERATIONS_PORT", f"is {port!r}; it must be a port number")
    if int(port) == http_port(service) != 0:
        raise SettingError("OPERATIONS_PORT", f"is {port}, the HTTP port; it must be another")
    return f"{setting(service, 'OPERATIONS_HOST')}:{int(port)}"


def queue_type(service: str) -> str:
    value = setting(service, "QUEUE_TYPE")
    if value not in QUEUE_TYPES:
        raise SettingError(
            "QUEUE_TYPE", f"is {value!r}; it must be one of {', '.join(QUEUE_TYPES)}"
        )
    return value


def cpu_niceness(service: str) -> int:
    value = setting(service, "CPU_NICENESS").strip()
    if not value.isdigit() or not 0 <= int(value) <= 19:
        raise SettingError(
            "CPU_NICENESS", f"is {value!r}; it must be a whole number from 0 (the default) to 19"
        )
    return int(value)


MAX_LINGER_MS = 10_000  # a batch's wait longer than this holds events unacked for no gain


def linger_ms(service: str, name: str) -> float:
    """`EVENT_BATCH_LINGER_MS` or `BACKGROUND_BATCH_LINGER_MS`: milliseconds, 0 to 10,000."""
    value = setting(service, name).strip()
    try:
        ms = float(value)
    except ValueError:
        ms = -1.0
    if not 0 <= ms <= MAX_LINGER_MS:  # NaN fails too
        raise SettingError(name, f"is {value!r}; it must be a number of milliseconds from 0 to "
                                 f"{MAX_LINGER_MS:,}")  # fmt: skip
    return ms


def trusted_proxies(service: str) -> list[str]:
    networks = [n.strip() for n in setting(service, "TRUSTED_PROXIES").split(",") if n.strip()]
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # a typo fails at start, not per request
    return networks


def jwt_settings(service: str) -> dict:
    """The token settings of `service`: the issuer reads private keys, every other service a
    JWK Set. In development, unset keys are the checkout's development keys."""
    ttl = int(setting(service, "JWT_TTL_SECONDS"))
    if not 0 < ttl <= MAX_ACCESS_TOKEN_SECONDS:
        raise SettingError(
            "JWT_TTL_SECONDS", f"is {ttl}; access tokens live 1 to {MAX_ACCESS_TOKEN_SECONDS} s"
        )
    issuing = service == TOKEN_ISSUER
    values = {
        "issuer": setting(service, "JWT_ISSUER"),
        "audience": setting(service, "JWT_AUDIENCE"),
        "ttl_seconds": ttl,
        "private_key_file": setting(service, "JWT_PRIVATE_KEY_FILE") if issuing else "",
        "previous_key_file": setting(service, "JWT_PREVIOUS_KEY_FILE") if issuing else "",
        "jwks_url": "" if issuing else setting(service, "JWT_JWKS_URL"),
        "jwks_file": "" if issuing else setting(service, "JWT_JWKS_FILE"),
    }
    keys = ("private_key_file", "jwks_url", "jwks_file")
    if development() and not any(values[k] for k in keys):
        from chassis.keys import development_keys

        signing, published = development_keys()
        if issuing:
            values["private_key_file"] = str(signing)
        else:
            values["jwks_file"] = str(published)
    return values


def nameko_config(service: str, **overrides) -> dict:
    """The container config of one service: nameko's own keys plus the chassis' settings."""
    max_workers = int(setting(service, "MAX_WORKERS"))
    config = {
        "AMQP_URI": setting(service, "AMQP_URI"),
        "WEB_SERVER_ADDRESS": f"{setting(service, 'HTTP_HOST')}:{http_port(service)}",
        "OPERATIONS_ADDRESS": operations_address(service),
        "HTTP_REUSE_PORT": setting(service, "HTTP_REUSE_PORT").lower()
        in ("1", "true", "yes", "on"),
        "max_workers": max_workers,
        "HTTP_RESERVED_WORKERS": int(setting(service, "HTTP_RESERVED_WORKERS")),
        "parent_calls_tracked": 1,
        "DATABASE_URL": database_url(service),
        "DB_POOL_SIZE": int(setting(service, "DB_POOL_SIZE") or max_workers + 4),
        "EVENT_BATCH_SIZE": max(1, int(setting(service, "EVENT_BATCH_SIZE"))),
        "EVENT_BATCH_LINGER_MS": linger_ms(service, "EVENT_BATCH_LINGER_MS"),
        "BACKGROUND_BATCH_LINGER_MS": linger_ms(service, "BACKGROUND_BATCH_LINGER_MS"),
        "RETRY_ATTEMPTS": int(setting(service, "RETRY_ATTEMPTS")),
        "RETRY_BASE_DELAY_MS": int(setting(service, "RETRY_BASE_DELAY_MS")),
        "RETRY_MAX_DELAY_MS": int(setting(service, "RETRY_MAX_DELAY_MS")),
        "OUTBOX_SWEEP_SECONDS": float(setting(service, "OUTBOX_SWEEP_SECONDS")),
        "OUTBOX_BATCH_SIZE": int(setting(service, "OUTBOX_BATCH_SIZE")),
        "OUTBOX_RETENTION_HOURS": float(setting(service, "OUTBOX_RETENTION_HOURS")),
        "INBOX_RETENTION_HOURS": float(setting(service, "INBOX_RETENTION_HOURS")),
        "UNROUTED_RETENTION_HOURS": float(setting(service, "UNROUTED_RETENTION_HOURS")),
        "QUEUE_TYPE": queue_type(service),
        "SHUTDOWN_TIMEOUT_SECONDS": float(setting(service, "SHUTDOWN_TIMEOUT_SECONDS")),
        "CPU_NICENESS": cpu_niceness(service),
        "TRUSTED_PROXIES": trusted_proxies(service),
        "HTTP_MAX_BODY_BYTES": int(setting(service, "HTTP_MAX_BODY_BYTES")),
        "PLATFORM_ENV": environment(),
        "JWT": jwt_settings(service),
    }
    config.update(overrides)
    return config
