"""Log lines that say which service wrote them."""

import logging
import sys

from chassis.settings import setting


def configure_logging(service: str) -> None:
    logging.basicConfig(
        level=setting(service, "LOG_LEVEL"),
        stream=sys.stdout,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("amqp", "kombu", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
