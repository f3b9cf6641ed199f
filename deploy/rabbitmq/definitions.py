"""The broker's security definitions, derived from the code: vhost, users, permissions, policies.

    python -m deploy.rabbitmq.definitions --write
        write deploy/rabbitmq/definitions.json and definitions-quorum.json (no passwords)
    python -m deploy.rabbitmq.definitions [--quorum] --passwords-from-env > secret.json
        the same with each user's password hashed from RABBITMQ_PASSWORD_<USER>
        (RABBITMQ_PASSWORD_ACCOUNTS, ..., RABBITMQ_PASSWORD_DISTRICT_SUBSCRIBER), for the
        secret store; never commit its output

Names follow chassis/topology.py. Per service `<s>`, with `P` the producers it consumes from:
  configure  its own `<s>.*` names, and `<p>.events` / `<p>.unrouted` of every p in P: at start a
             consumer declares the exchanges it binds to, so an event is never published before
             its queue exists (declaring needs configure even when they exist)
  write      its own names (publish to `<s>.events` and `<s>.retry`; bind its queues), the
             `<p>.unrouted` queues it declares, and `amq.default` (dead letters go to
             `<s>.dead-letters` through the default exchange)
  read       its own names (consume; bind from `<s>.retry`), `<p>.events` and `<p>.unrouted`
             (bind from them)
No service can publish to another service's exchange. The service that publishes the partner
views (notify, `services.notify.partners`) also owns `partners.events` and `partners.unrouted`.
`district-subscriber` creates and binds only `district.*` queues and exchanges and reads
`partners.events` alone: never a producer's internal `<p>.events` (whole events whatever the
returnee consented to); it has no write on any platform exchange nor on `amq.default`.
`deployer` runs `python -m deploy.topology` (every platform name, and write on `amq.default`,
the dead-letter exchange of the retry queues it declares).

The committed files carry no password: `password_hash` is empty, which RabbitMQ refuses at log in,
so nobody can use a user until its password is set (`--passwords-from-env`, or
`rabbitmqctl change_password <user> <password>`). See docs/deploying.md.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFINITIONS_PATH = HERE / "definitions.json"
QUORUM_PATH = HERE / "definitions-quorum.json"
REGENERATE = "python -m deploy.rabbitmq.definitions --write"

VHOST = "returnee-platform"
SUBSCRIBER = "district-subscriber"
DEPLOYER = "deployer"
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"

# Redeliveries (not retries: the chassis republishes a retry as a new message) after which a
# quorum queue dead-letters a message, e.g. one that crashes its consumer every time.
DELIVERY_LIMIT = 20

# A handler's name is a Python method name; the other names of a service are fixed.
_HANDLER = "[a-z_][a-z0-9_]*"


def own_names(service: str) -> str:
    """Every exchange and queue chassis/topology.py names after `service`."""
    return rf"{service}\.({_HANDLER}|retry\.[0-9]+ms|dead-letters)"


def _anchored(alternatives: list[str]) -> str:
    return "^(" + "|".join(alternatives) + ")$"


PARTNER_NAMES = r"partners\.(events|unrouted)"


def service_permissions(service: str, producers: list[str], partners: bool = False) -> dict:
    others = [p for p in sorted(producers) if p != service]
    own = [own_names(service), *([PARTNER_NAMES] if partners else [])]
    return {
        "user": service,
        "vhost": VHOST,
        "configure": _anchored([*own, *(rf"{p}\.(events|unrouted)" for p in others)]),
        "write": _anchored([*own, *(rf"{p}\.unrouted" for p in others), r"amq\.default"]),
        "read": _anchored([*own, *(rf"{p}\.(events|unrouted)" for p in others)]),
    }


def subscriber_permissions(producers: list[str]) -> dict:
    """District systems read the partner exchange only (`producers` is kept for callers)."""
    return {
        "user": SUBSCRIBER,
        "vhost": VHOST,
        "configure": r"^district\.[a-z0-9_.-]+$",
        "write": r"^district\.[a-z0-9_.-]+$",
        "read": r"^(district\.[a-z0-9_.-]+|partners\.events)$",
    }


def deployer_permissions(services: list[str]) -> dict:
    names = [*(own_names(s) for s in sorted(services)), PARTNER_NAMES]
    return {
        "user": DEPLOYER,
        "vhost": VHOST,
        "configure": _anchored(names),
        # Declaring a retry queue names the default exchange as its dead-letter exchange, which
        # RabbitMQ allows only to who may write to it.
        "write": _anchored([*names, r"amq\.default"]),
        "read": _anchored(names),
    }


def handler_queues(service: str) -> str:
    """The pattern of `service`'s handler queues: not its retry, dead-letter or unrouted ones."""
    return rf"^{service}\.(?!unrouted$){_HANDLER}$"


def policies(services: list[str], quorum: bool) -> list[dict]:
    """Handler queues dead-letter what the broker itself gives up on (a message rejected without
    requeue, or, on quorum queues, past its delivery limit) to the service's dead-letter queue,
    next to what the chassis dead-letters. Retry queues keep their own `x-dead-letter-exchange`
    (back to the handler's queue), so they are left out; a dead-letter queue gets no delivery
    limit, as browsing it (`python -m chassis.dead_letters`) returns every message unacked.
    A quorum queue dead-letters at most once unless told otherwise (the message is lost if the
    dead-letter queue cannot take it then); at least once needs `reject-publish` overflow, which
    without a length limit rejects nothing."""
    found = []
    for service in sorted(services):
        definition = {
            "dead-letter-exchange": "",
            "dead-letter-routing-key": f"{service}.dead-letters",
        }
        if quorum:
            definition |= {
                "delivery-limit": DELIVERY_LIMIT,
                "dead-letter-strategy": "at-least-once",
                "overflow": "reject-publish",
            }
        found.append(
            {
                "vhost": VHOST,
                "name": f"{service}-handler-queues",
                "pattern": handler_queues(service),
                "apply-to": "queues",
                "priority": 10,
                "definition": definition,
            }
        )
    return found


def _user(name: str, password: str | None = None) -> dict:
    return {
        "name": name,
        "password_hash": "" if password is None else password_hash(password),
        "hashing_algorithm": HASHING_ALGORITHM,
        "tags": [],
        "limits": {},
    }


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(
    consumes: dict[str, list[str]],
    producers: list[str],
    quorum: bool = False,
    passwords: dict[str, str] | None = None,
    partner_publishers: tuple[str, ...] = ("notify",),
) -> dict:
    """`consumes`: service -> the producers it subscribes to; `producers`: who publishes events;
    `partner_publishers`: who publishes the partner views."""
    services = sorted(consumes)
    passwords = passwords or {}
    users = [*services, SUBSCRIBER, DEPLOYER]
    vhost = {
        "name": VHOST,
        "description": "Returnee Entrepreneur Service Platform",
        "tags": [],
        "metadata": {"description": "Returnee Entrepreneur Service Platform", "tags": []},
    }
    if quorum:
        # The services declare their queues quorum themselves (QUEUE_TYPE=quorum, RabbitMQ 3.10
        # and later). The vhost's default type makes the queues others declare without a type
        # (district subscribers') quorum too; RabbitMQ 3.13 honours it, 3.10 does not.
        vhost["default_queue_type"] = "quorum"
        vhost["metadata"]["default_queue_type"] = "quorum"
    return {
        "rabbit_version": "3.13.7",
        "users": [_user(name, passwords.get(name)) for name in users],
        "vhosts": [vhost],
        "permissions": [
            *(service_permissions(s, consumes[s], s in partner_publishers) for s in services),
            subscriber_permissions(producers),
            deployer_permissions(services),
        ],
        "topic_permissions": [],
        "parameters": [],
        "global_parameters": [],
        "policies": policies(services, quorum),
        "queues": [],
        "exchanges": [],
        "bindings": [],
    }


def platform_definitions(quorum: bool = False, passwords: dict[str, str] | None = None) -> dict:
    """The definitions of the platform as the code stands: services and their subscriptions."""
    from chassis.loader import service_class
    from chassis.settings import SERVICES
    from chassis.topology import subscriptions_of
    from contracts import CATALOG

    consumes = {
        service: sorted({s.producer for s in subscriptions_of(service_class(service))})
        for service in SERVICES
    }
    producers = sorted({event_type.producer for event_type in CATALOG})
    partner_publishers = tuple(
        s for s in SERVICES if getattr(service_class(s), "publishes_partner_views", False)
    )
    return definitions(consumes, producers, quorum, passwords, partner_publishers)


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2) + "\n"


def passwords_from_env(users: list[str]) -> dict[str, str]:
    found, missing = {}, []
    for user in users:
        variable = "RABBITMQ_PASSWORD_" + user.upper().replace("-", "_")
        if os.environ.get(variable):
            found[user] = os.environ[variable]
        else:
            missing.append(variable)
    if missing:
        raise SystemExit(f"set {', '.join(missing)}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.rabbitmq.definitions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--write", action="store_true", help="write the two committed files")
    parser.add_argument("--quorum", action="store_true", help="the quorum-queue variant")
    parser.add_argument("--passwords-from-env", action="store_true")
    args = parser.parse_args(argv)
    if args.write:
        DEFINITIONS_PATH.write_text(render(platform_definitions()))
        QUORUM_PATH.write_text(render(platform_definitions(quorum=True)))
        print(f"wrote {DEFINITIONS_PATH} and {QUORUM_PATH}", file=sys.stderr)
        return 0
    passwords = None
    if args.passwords_from_env:
        users = [user["name"] for user in platform_definitions()["users"]]
        passwords = passwords_from_env(users)
    sys.stdout.write(render(platform_definitions(args.quorum, passwords)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
