"""The endpoints every service serves for probes, Prometheus and integrators."""

import eventlet
from marshmallow import Schema, fields, validate
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from chassis.dead_letters import DeadLetterQueue
from chassis.erasure import ErasedMessages
from chassis.errors import NotFound
from chassis.events import on_event, subscribe
from chassis.logs import LogContext
from chassis.metrics import OUTBOX_OLDEST, OUTBOX_PENDING, exposition
from chassis.openapi import openapi_document
from chassis.paging import Keyset
from chassis.revocation import record_revocation
from chassis.web import OPERATIONS_PORT, http

# The subscribers every service has from the chassis, beside its own routing table.
CHASSIS_HANDLERS = ("keep_revocation", "forget_in_queues")


class Liveness(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["live"]))
    service = fields.String(required=True)


WITHHELD = "withheld"
CHECKS_SAID = (
    '"ok" or why it is not; on the public port of a service with an operations port '
    '(production), "ok" when ready and "withheld" otherwise: the operations port tells why'
)


class Readiness(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "not_ready"]))
    database = fields.String(required=True, metadata={"description": CHECKS_SAID})
    broker = fields.String(required=True, metadata={"description": CHECKS_SAID})
    held = fields.String(
        metadata={
            "description": "Only from a service whose replicas hold data in memory (matching's"
            ' catalog of resources and its returnees): "ok" once built at the start, or why'
            " not yet; " + CHECKS_SAID
        }
    )


# Oldest first; one event may be dead-lettered by several of the service's handlers (queues).
DEAD_LETTERS = Keyset("dead_lettered_at", "queue", "event_id", types=(str, str, str))


class DeadLetterOut(Schema):
    event_id = fields.String(required=True)
    type = fields.String(required=True, metadata={"description": "The event's type."})
    queue = fields.String(required=True, metadata={"description": "The handler's queue."})
    attempts = fields.Integer(required=True)
    error = fields.String(required=True, metadata={"description": "Why it was dead-lettered."})
    dead_lettered_at = fields.String(required=True)
    origin = fields.String(required=True, metadata={"description": "Exchange and routing key."})


class DeadLetterShown(DeadLetterOut):
    traceback = fields.String(required=True)
    body = fields.String(required=True, metadata={"description": "The event as it arrived."})


class DeadLetterDone(Schema):
    event_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["replayed", "discarded"]))


NO_DEAD_LETTER = "No such dead letter."


class DeadLetters(DependencyProvider):
    """This service's dead-letter queue (`chassis.dead_letters`), for its admin endpoints."""

    def setup(self):
        config = self.container.config
        self.queue = DeadLetterQueue(
            config["AMQP_URI"], self.container.service_name, config.get("QUEUE_TYPE", "classic")
        )

    def get_dependency(self, worker_ctx):
        return self.queue


OPENAPI_DOCUMENT = {
    "type": "object",
    "description": "An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0).",
    "required": ["openapi", "info", "paths"],
    "properties": {
        "openapi": {"type": "string", "pattern": "^3\\.1\\."},
        "info": {"type": "object"},
        "paths": {"type": "object"},
    },
}


class Operable:
    """Health, metrics and description endpoints for probes, Prometheus and integrators,
    correlation ids in every log line, and revoked credentials kept; mix into a service whose
    `Database` is named `db` (its migrations create `chassis.schema`'s revocation table).

    `/health/live`   200 while the process serves requests
    `/health/ready`  200 only when the database and the broker answer, 503 otherwise
    `/metrics`       Prometheus metrics of the process
    In production these are also served on the operations port (`OPERATIONS_PORT`), which
    alone serves `/metrics` and says why the service is not ready (`chassis.web`); the
    public port keeps `/health/live` and a readiness answer without reasons.
    `/openapi.json`  the service's HTTP API, generated from its entrypoints and schemas
    `/dead-letters`  the events its handlers gave up on: list, show, replay, discard (admins;
                     the same as `python -m chassis.dead_letters`)
    """

    log_context = LogContext()
    dead_letters = DeadLetters()
    keep_revocation = on_event("accounts", "credentials.revoked", use=record_revocation)
    erased_messages = ErasedMessages()

    @staticmethod
    def erased(uow, person_id: str) -> bool:
        """Whether the service keeps `person_id`'s erasure (its store's `is_erased`): a failed
        event naming them is dropped, not parked in a kept queue (`chassis.events`)."""
        is_erased = getattr(uow.store, "is_erased", None)
        return bool(is_erased is not None and is_erased(person_id))

    @subscribe("accounts", "returnee.erased")
    def forget_in_queues(self, event):
        """The service's dead letters, parked and retried events naming the person dropped
        (`chassis.erasure`): redoing it finds nothing more, so no inbox record is needed."""
        self.erased_messages.scrub([str(event.data["returnee_id"])])

    @http("GET", "/metrics", media_type="text/plain", operations=True,
          summary="Prometheus metrics (production: on the operations port alone)")  # fmt: skip
    def metrics(self, request):
        try:
            backlog = self.db.backlog()
        except Exception:  # the database is away: scrape what the process knows
            backlog = None
        if backlog is not None:
            OUTBOX_PENDING.labels(self.name).set(backlog["pending"])
            OUTBOX_OLDEST.labels(self.name).set(backlog["oldest_seconds"])
        body, content_type = exposition()
        return Response(body, content_type=content_type)

    @http("GET", "/health/live", response=Liveness(), probe=True,
          summary="The process serves requests")  # fmt: skip
    def health_live(self, request):
        return {"status": "live", "service": self.name}

    @http("GET", "/health/ready", response=Readiness(), responses={503: Readiness()},
          probe=True, summary="The database and the broker answer (in matching, also: what the"
          " replica holds in memory is built)")  # fmt: skip
    def health_ready(self, request):
        checks = {}
        probes = [("database", self.db.ping), ("broker", self.db.ping_broker)]
        if self.db.holds:
            probes.append(("held", self.db.ping_held))
        for name, check in probes:
            try:
                with eventlet.Timeout(5, TimeoutError(f"{name} did not answer in 5 s")):
                    check()
                checks[name] = "ok"
            except Exception as exc:
                # The underlying error: the check's own name already says what is unavailable.
                checks[name] = f"unavailable: {exc.__cause__ or exc}"
        ready = all(v == "ok" for v in checks.values())
        if request.environ.get(OPERATIONS_PORT) is False:  # the public port of a split service
            checks = {name: "ok" if ready else WITHHELD for name in checks}
        return (200 if ready else 503), {"status": "ready" if ready else "not_ready", **checks}

    @http("GET", "/openapi.json", response=OPENAPI_DOCUMENT,
          summary="This service's HTTP API (OpenAPI 3.1)")  # fmt: skip
    def openapi(self, request):
        return openapi_document(type(self))

    @http("GET", "/dead-letters", response=DeadLetterOut(many=True), roles=["admin"],
          paged=True, summary="The events this service's handlers gave up on, oldest first "
          "(admin)")  # fmt: skip
    def list_dead_letters(self, request, query):
        # The queue is browsed whole (chassis.dead_letters reads every message to answer
        # one), so its page is cut here.
        return DEAD_LETTERS.slice(self.dead_letters.summaries(), query)

    @http("GET", "/dead-letters/<event_id>", response=DeadLetterShown(), roles=["admin"],
          summary="A dead letter, its traceback and the event as it came (admin)")  # fmt: skip
    def show_dead_letter(self, request, event_id):
        found = self.dead_letters.show(event_id)
        if found is None:
            raise NotFound(NO_DEAD_LETTER, zh="没有这条死信。")
        return found

    @http("POST", "/dead-letters/<event_id>/replay", response=DeadLetterDone(), roles=["admin"],
          summary="Send a dead letter back to the handler that failed, its attempts reset "
          "(admin)")  # fmt: skip
    def replay_dead_letter(self, request, event_id):
        if event_id not in self.dead_letters.replay({event_id}):
            raise NotFound(NO_DEAD_LETTER, zh="没有这条死信。")
        return {"event_id": event_id, "status": "replayed"}

    @http("POST", "/dead-letters/<event_id>/discard", response=DeadLetterDone(), roles=["admin"],
          summary="Throw a dead letter away (admin)")  # fmt: skip
    def discard_dead_letter(self, request, event_id):
        if event_id not in self.dead_letters.discard({event_id}):
            raise NotFound(NO_DEAD_LETTER, zh="没有这条死信。")
        return {"event_id": event_id, "status": "discarded"}
