"""consulting service entrypoints: policy catalog, explained eligibility, consultations with SLA,
station appointments. Each entrypoint runs one use case of `handlers.py` in a unit of work;
the `on_event` lines are the routing table of the events consulting handles."""

from nameko.timer import timer

from chassis.db import Database
from chassis.events import on_event
from chassis.settings import service_settings
from chassis.web import Operable, http
from services.consulting import handlers
from services.consulting.schemas import (
    AppointmentIn,
    AppointmentOut,
    AssignIn,
    ConsultationIn,
    ConsultationQuery,
    EligibilityQuery,
    MessageIn,
    PolicyIn,
    PolicyOut,
    PolicyQuery,
    RatingIn,
    SlotIn,
    SlotOut,
)
from services.consulting.settings import DECLARED
from services.consulting.store import ConsultingStore

SLA_CHECK_SECONDS = float(service_settings("consulting", DECLARED)["SLA_CHECK_SECONDS"])
STAFF = ["advisor", "admin"]
PARTIES = ["returnee", *STAFF]  # of a consultation: its returnee (checked on it) and staff


class ConsultingService(Operable):
    """Policy catalog (rules as code), explained eligibility, consultations, appointments."""

    name = "consulting"
    db = Database(store=ConsultingStore)

    # ------------------------------------------------------------------ events

    assess_returnee = on_event(
        "accounts", "returnee.registered", "returnee.updated", use=handlers.assess_returnee
    )
    erase_returnee = on_event("accounts", "returnee.erased", use=handlers.erase_returnee)
    reassess_for_policy = on_event(
        "consulting", "policy.published", use=handlers.reassess_for_policy
    )
    register_advisor = on_event("accounts", "staff.registered", use=handlers.register_advisor)

    # ------------------------------------------------------------------ policies

    @http(
        "GET",
        "/policies",
        query=PolicyQuery,
        response=PolicyOut(many=True),
        summary="The policy catalog (public)",
    )
    def list_policies(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_policies(query, uow)

    @http("GET", "/policies/<policy_id>", response=PolicyOut(), summary="One policy with its rules")
    def get_policy(self, request, policy_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_policy(policy_id, uow)

    @http(
        "POST",
        "/policies",
        body=PolicyIn,
        response=PolicyOut(),
        status=201,
        roles=["admin"],
        summary="Publish a policy (admin); emits policy.published",
    )
    def publish_policy(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.publish_policy(body, uow)

    # ------------------------------------------------------------------ eligibility

    @http(
        "GET",
        "/returnees/<returnee_id>/eligibility",
        query=EligibilityQuery,
        roles=STAFF,
        owner="returnee_id",
        summary="Every policy with every criterion explained (self, advisor, admin)",
    )
    def eligibility(self, request, returnee_id, query):
        with self.db.unit_of_work() as uow:
            return handlers.eligibility(returnee_id, query, request.locale, uow)

    # ------------------------------------------------------------------ consultations

    @http(
        "POST",
        "/consultations",
        body=ConsultationIn,
        status=201,
        roles=["returnee"],
        summary="Ask a question (returnee); emits consultation.requested",
    )
    def request_consultation(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.request_consultation(body, request.caller, uow)

    @http(
        "GET",
        "/consultations",
        query=ConsultationQuery,
        roles=PARTIES,
        summary="Consultations: a returnee's own; advisors and admins see all",
    )
    def list_consultations(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_consultations(query, request.caller, uow)

    @http(
        "GET",
        "/consultations/<consultation_id>",
        auth=True,
        summary="A consultation with its message thread",
    )
    def get_consultation(self, request, consultation_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_consultation(consultation_id, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/messages",
        body=MessageIn,
        status=201,
        auth=True,
        summary="Write in the thread (returnee owner, advisor, admin)",
    )
    def post_message(self, request, consultation_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.post_message(consultation_id, body, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/assign",
        body=AssignIn,
        roles=STAFF,
        summary="Assign to an advisor, or round-robin when none is named (advisor, admin)",
    )
    def assign_consultation(self, request, consultation_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.assign_consultation(consultation_id, body, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/close",
        roles=PARTIES,
        summary="Close (returnee owner, advisor, admin); emits consultation.closed",
    )
    def close_consultation(self, request, consultation_id):
        with self.db.unit_of_work() as uow:
            return handlers.close_consultation(consultation_id, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/reopen",
        roles=PARTIES,
        summary="Reopen a closed consultation; emits consultation.reopened",
    )
    def reopen_consultation(self, request, consultation_id):
        with self.db.unit_of_work() as uow:
            return handlers.reopen_consultation(consultation_id, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/rating",
        body=RatingIn,
        roles=["returnee"],
        summary="Rate a closed consultation 1–5 (returnee owner)",
    )
    def rate_consultation(self, request, consultation_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.rate_consultation(consultation_id, body, request.caller, uow)

    @timer(interval=SLA_CHECK_SECONDS)
    def check_sla(self):
        with self.db.unit_of_work() as uow:
            handlers.check_sla(uow)

    # ------------------------------------------------------------------ appointments

    @http(
        "POST",
        "/slots",
        body=SlotIn,
        response=SlotOut(),
        status=201,
        roles=STAFF,
        summary="Publish a station time slot with a capacity (advisor, admin)",
    )
    def publish_slot(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.publish_slot(body, request.caller, uow)

    @http("GET", "/slots", response=SlotOut(many=True), auth=True, summary="Upcoming station slots")
    def list_slots(self, request):
        with self.db.unit_of_work() as uow:
            return handlers.list_slots(uow)

    @http(
        "POST",
        "/appointments",
        body=AppointmentIn,
        response=AppointmentOut(),
        status=201,
        roles=["returnee"],
        summary="Book a slot (returnee); emits appointment.booked",
    )
    def book_appointment(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.book_appointment(body, request.caller, uow)

    @http(
        "GET",
        "/returnees/<returnee_id>/appointments",
        response=AppointmentOut(many=True),
        roles=STAFF,
        owner="returnee_id",
        summary="A returnee's appointments (self, advisor, admin)",
    )
    def list_appointments(self, request, returnee_id):
        with self.db.unit_of_work() as uow:
            return handlers.list_appointments(returnee_id, uow)

    @http(
        "POST",
        "/appointments/<appointment_id>/cancel",
        response=AppointmentOut(),
        auth=True,
        summary="Cancel (returnee owner, advisor, admin); emits appointment.cancelled",
    )
    def cancel_appointment(self, request, appointment_id):
        with self.db.unit_of_work() as uow:
            return handlers.cancel_appointment(appointment_id, request.caller, uow)
