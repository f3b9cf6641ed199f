"""The deploy step that declares the broker topology of the named services (all by default)
before any of them runs, so no event is published before its queue exists:

    python -m deploy.topology [services...]
"""

import argparse
import sys

from chassis.broker import connect
from chassis.loader import service_class
from chassis.settings import SERVICES, SettingError, nameko_config, setting
from chassis.topology import QueueMismatch, declare_service


def declare_services(amqp_uri: str, services: list[str]) -> None:
    """The deploy step: every exchange and queue of the named services, before any of them runs."""
    configs = {service: nameko_config(service) for service in services}  # settings first
    with connect(amqp_uri) as connection:
        channel = connection.channel()
        for service in services:
            declare_service(channel, service_class(service), configs[service])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.topology", description=declare_services.__doc__
    )
    parser.add_argument("services", nargs="*", default=list(SERVICES))
    args = parser.parse_args(argv)
    try:
        declare_services(setting(args.services[0], "AMQP_URI"), args.services)
    except (QueueMismatch, SettingError) as exc:
        print(f"broker topology not declared: {exc}", file=sys.stderr)
        return 1
    print(f"broker topology declared for {', '.join(args.services)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
