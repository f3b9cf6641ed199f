"""insights: the district's statistics, read from the platform's published events only.

A pure consumer: the `on_event` lines below are its routing table, one per kind of step it
counts, every one `background` (figures nobody waits on at that moment, `chassis.events`); the
`@http` entrypoints answer figures to district officials, advisors and admins. It publishes
nothing. Each entrypoint runs one use case of `handlers.py` in a unit of work.
"""

from nameko.timer import timer
from werkzeug.wrappers import Response

from chassis.db import Database
from chassis.events import on_event
from chassis.operable import Operable
from chassis.settings import service_settings
from chassis.topology import subscriptions_of
from chassis.web import http
from services.insights import handlers
from services.insights.export import XLSX
from services.insights.schemas import ExportQuery, OverviewOut, PeriodQuery, SeriesOut, SeriesQuery
from services.insights.settings import DECLARED
from services.insights.store import InsightsStore

SETTINGS = service_settings("insights", DECLARED)
UPKEEP_SECONDS = float(SETTINGS["UPKEEP_SECONDS"])
ERASURE_GRACE_DAYS = float(SETTINGS["ERASURE_GRACE_DAYS"])
READERS = ["official", "advisor", "admin"]
PERIOD_RULES = ("from is not after to", "the period is shorter than 3700 days")


class InsightsService(Operable):
    """District statistics from the event stream: registrations, returnees, eligibility,
    matches, cooperation intentions, consultations and their deadlines, appointments,
    applications and the funnel per programme, activities and agreements, by day, week or
    month; XLSX and CSV export. No personal data."""

    name = "insights"
    db = Database(store=InsightsStore)

    @staticmethod
    def erased(uow, person_id: str) -> bool:
        """The erasure's digest, kept for its grace period (`handlers.erase_returnee`)."""
        return handlers.erased_at(uow, person_id) is not None

    # ------------------------------------------------------------------ events

    count_registration = on_event(
        "accounts", "returnee.registered", use=handlers.count_registration, background=True
    )
    see_returnee = on_event(
        "accounts", "returnee.updated", use=handlers.see_returnee, background=True
    )
    erase_returnee = on_event(
        "accounts", "returnee.erased", use=handlers.erase_returnee, background=True
    )
    learn_policy = on_event(
        "consulting", "policy.published", use=handlers.learn_policy, background=True
    )
    count_eligibility = on_event(
        "consulting", "eligibility.assessed", use=handlers.count_eligibility, background=True
    )
    count_consultation = on_event(
        "consulting",
        "consultation.requested",
        "consultation.answered",
        "consultation.waiting_on_returnee",
        "consultation.closed",
        "consultation.rated",
        "consultation.sla_breached",
        use=handlers.count_consultation,
        background=True,
    )
    count_appointment = on_event(
        "consulting",
        "appointment.booked",
        "appointment.cancelled",
        use=handlers.count_appointment,
        background=True,
    )
    count_application = on_event(
        "consulting",
        "application.submitted",
        "application.approved",
        "application.rejected",
        "application.awarded",
        "application.withdrawn",
        use=handlers.count_application,
        background=True,
    )
    count_matches = on_event(
        "matching", "matches.proposed", use=handlers.count_matches, background=True
    )
    # v1 (on a resource) and v2 (met at an activity) share the routing key; both name the
    # intention by id, which is all it is counted by.
    count_intention = on_event(
        "matching",
        "intention.expressed",
        "intention.accepted",
        "intention.declined",
        use=handlers.count_intention,
        background=True,
    )
    count_activity = on_event(
        "activities",
        "activity.published",
        "activity.cancelled",
        "activity.closed",
        use=handlers.count_activity,
        background=True,
    )
    count_activity_registration = on_event(
        "activities",
        "registration.confirmed",
        "registration.cancelled",
        "attendance.recorded",
        use=handlers.count_activity_registration,
        background=True,
    )
    count_agreement = on_event(
        "activities", "agreement.signed", use=handlers.count_agreement, background=True
    )

    @timer(interval=UPKEEP_SECONDS, eager=True)
    def upkeep(self):
        with self.db.unit_of_work() as uow:
            handlers.upkeep(uow, SOURCES, ERASURE_GRACE_DAYS)

    # ------------------------------------------------------------------ figures

    @http(
        "GET",
        "/statistics/overview",
        query=PeriodQuery,
        response=OverviewOut(),
        rules=PERIOD_RULES,
        roles=READERS,
        summary="The district's figures over a period of Shanghai days (official, advisor, admin)",
    )
    def overview(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.overview(query, uow)

    @http(
        "GET",
        "/statistics/timeseries",
        query=SeriesQuery,
        response=SeriesOut(),
        rules=PERIOD_RULES,
        roles=READERS,
        summary="One figure by day, week or month (official, advisor, admin)",
    )
    def timeseries(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.timeseries(query, uow)

    @http(
        "GET",
        "/statistics/export",
        query=ExportQuery,
        rules=PERIOD_RULES,
        roles=["official", "admin"],
        # The XLSX type, or application/zip for format=csv.
        media_type=(XLSX, "application/zip"),
        summary="The period's tables as XLSX, or format=csv as a zip of CSV (official, admin)",
    )
    def export(self, request, query):
        with self.db.unit_of_work() as uow:
            found = handlers.export(query, uow)
        disposition = f'attachment; filename="{found.filename}"'
        return Response(found.content, mimetype=found.media_type,
                        headers={"Content-Disposition": disposition})  # fmt: skip


# The producers whose events insights counts: the routing table's.
SOURCES = sorted({s.producer for s in subscriptions_of(InsightsService)})
