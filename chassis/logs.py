"""Log lines that say which service wrote them, and for which request or event.

`LOG_FORMAT=json` (compose, Kubernetes) writes one JSON object per line with `service`,
`correlation_id` and `event_id`; the default text format is for people at a terminal.

Log lines name ids and event types, never what a person wrote or who they are: the web
server's access lines keep a request's path and leave out its query string (a search for a
name, an email in a link), `WITHOUT_QUERY`.
"""

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

from nameko.extensions import DependencyProvider

from chassis.settings import setting

# Per greenthread: greenlets each run in their own contextvars context.
CORRELATION_ID = contextvars.ContextVar("correlation_id", default=None)
EVENT_ID = contextvars.ContextVar("event_id", default=None)


class LogContext(DependencyProvider):
    """Puts the worker's correlation id and event id where every log record finds them."""

    def worker_setup(self, worker_ctx):
        CORRELATION_ID.set(worker_ctx.data.get("correlation_id"))
        EVENT_ID.set(worker_ctx.data.get("event_id"))


class _Context(logging.Filter):
    def filter(self, record):
        record.correlation_id = CORRELATION_ID.get()
        record.event_id = EVENT_ID.get()
        context = [f"correlation={record.correlation_id}"] if record.correlation_id else []
        context += [f"event={record.event_id}"] if record.event_id else []
        record.context = f" [{' '.join(context)}]" if context else ""
        return True


# "GET /search/returnees?q=... HTTP/1.1" in an access line: the query goes, the path stays.
_REQUEST_QUERY = re.compile(r"(\b[A-Z]+ [^ ?\"]*)\?[^ \"]*( HTTP/)")
# The loggers the web servers write access lines and request errors to (nameko's, eventlet's).
ACCESS_LOGGERS = ("nameko.web.server", "eventlet.wsgi.server")


class WithoutQuery(logging.Filter):
    """Access lines without the request's query string."""

    def filter(self, record):
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = _REQUEST_QUERY.sub(r"\1\2", message), None
        return True


WITHOUT_QUERY = WithoutQuery()


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None),
            "event_id": getattr(record, "event_id", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(service: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_Context())
    if (setting(service, "LOG_FORMAT") or "text") == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s%(context)s"
            )
        )
    logging.basicConfig(level=setting(service, "LOG_LEVEL"), handlers=[handler], force=True)
    for noisy in ("amqp", "kombu", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for access in ACCESS_LOGGERS:
        logging.getLogger(access).addFilter(WITHOUT_QUERY)
