"""Configuration from the environment, with local defaults.

Each setting is read as `<SERVICE>_<NAME>` first (for example `ACCOUNTS_DATABASE_URL`), then
`<NAME>`, then the default, so one environment can describe all services or a single one.
"""

import ipaddress
import os
from collections.abc import Mapping

SERVICES = ("accounts", "consulting", "matching", "notify", "activities", "insights")
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
    # "true": processes may listen on one port together and share its connections (SO_REUSEPORT);
    # otherwise a port another process serves stops the service at start.
    "HTTP_REUSE_PORT": "false",
    "MAX_WORKERS": "10",
    "HTTP_RESERVED_WORKERS": "2",  # workers events never take: HTTP and probes stay answered
    "DB_POOL_SIZE": "",  # empty: MAX_WORKERS + 4
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
    # Networks of the reverse proxies in front of the services (an ingress, a load balancer),
    # comma-separated CIDRs: only a request from one of them is believed about its client's
    # address (X-Forwarded-For). Empty: the connection's own address counts.
    "TRUSTED_PROXIES": "",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",  # or "json"
    # Bearer tokens: issued by accounts, verified by every service. HS256 with a shared secret,
    # or RS256/ES256/EdDSA with JWT_PUBLIC_KEY_FILE (verifiers) and JWT_PRIVATE_KEY_FILE (accounts).
    "JWT_ALGORITHM": "HS256",
    "JWT_SECRET": "",
    "JWT_PUBLIC_KEY_FILE": "",
    "JWT_PRIVATE_KEY_FILE": "",
    "JWT_ISSUER": "returnee-platform-accounts",
    "JWT_AUDIENCE": "returnee-platform",
    "JWT_TTL_SECONDS": "3600",
}

QUEUE_TYPES = ("classic", "quorum")

# Used only when JWT_SECRET is unset, so `make run` works out of the box; never in production.
DEVELOPMENT_JWT_SECRET = "development-only-secret-set-JWT_SECRET-in-production"


# Every variable the chassis reads. A service's own variables are declared by the service
# (`services/<name>/settings.py`, `DECLARED`) and read with `service_settings`.
# RUNNER_PID is set by the local runner alone: its children stop when it dies (chassis.lifetime).
ENVIRONMENT = frozenset({*DEFAULTS, "DATABASE_URL", "HTTP_PORT", "RUNNER_PID"})


def setting(service: str, name: str, default: str | None = None) -> str | None:
    prefixed = f"{service.upper()}_{name}"
    if prefixed in os.environ:
        return os.environ[prefixed]
    if name in os.environ:
        return os.environ[name]
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


def queue_type(service: str) -> str:
    value = setting(service, "QUEUE_TYPE")
    if value not in QUEUE_TYPES:
        raise ValueError(f"QUEUE_TYPE is {value!r}; it must be one of {', '.join(QUEUE_TYPES)}")
    return value


def trusted_proxies(service: str) -> list[str]:
    networks = [n.strip() for n in setting(service, "TRUSTED_PROXIES").split(",") if n.strip()]
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # a typo fails at start, not per request
    return networks


def nameko_config(service: str, **overrides) -> dict:
    """The container config of one service: nameko's own keys plus the chassis' settings."""
    max_workers = int(setting(service, "MAX_WORKERS"))
    config = {
        "AMQP_URI": setting(service, "AMQP_URI"),
        "WEB_SERVER_ADDRESS": f"{setting(service, 'HTTP_HOST')}:{http_port(service)}",
        "HTTP_REUSE_PORT": setting(service, "HTTP_REUSE_PORT").lower()
        in ("1", "true", "yes", "on"),
        "max_workers": max_workers,
        "HTTP_RESERVED_WORKERS": int(setting(service, "HTTP_RESERVED_WORKERS")),
        "parent_calls_tracked": 1,
        "DATABASE_URL": database_url(service),
        "DB_POOL_SIZE": int(setting(service, "DB_POOL_SIZE") or max_workers + 4),
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
        "TRUSTED_PROXIES": trusted_proxies(service),
        "JWT": {
            "algorithm": setting(service, "JWT_ALGORITHM"),
            "secret": setting(service, "JWT_SECRET") or DEVELOPMENT_JWT_SECRET,
            "public_key_file": setting(service, "JWT_PUBLIC_KEY_FILE"),
            "private_key_file": setting(service, "JWT_PRIVATE_KEY_FILE"),
            "issuer": setting(service, "JWT_ISSUER"),
            "audience": setting(service, "JWT_AUDIENCE"),
            "ttl_seconds": int(setting(service, "JWT_TTL_SECONDS")),
        },
    }
    config.update(overrides)
    return config
