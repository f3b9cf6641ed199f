"""consulting service entrypoints: policy catalog with dated versions and impact previews,
explained eligibility and what is still missing, applications from checklist to award,
consultations with working-time SLAs, station appointments. Each entrypoint runs one use case
of `handlers.py` in a unit of work; the `on_event` lines are the routing table of the events
consulting handles."""

import time

from nameko.timer import timer

from chassis.access import CASE_EVENTS, keep_case_link
from chassis.db import Database
from chassis.events import on_event
from chassis.loops import Alarm, loop
from chassis.operable import Operable
from chassis.paging import CURSOR_RULE
from chassis.settings import service_settings
from chassis.web import http
from services.consulting import handlers
from services.consulting.schemas import (
    ApplicationIn,
    ApplicationOut,
    ApplicationPage,
    ApplicationQuery,
    AppointmentIn,
    AppointmentOut,
    AssignIn,
    AwardIn,
    CannedReplyIn,
    CannedReplyOut,
    CannedReplyQuery,
    ChecklistMarkIn,
    ConsultationIn,
    ConsultationOut,
    ConsultationQuery,
    EligibilityOut,
    EligibilityQuery,
    MessageIn,
    MissingFactsOut,
    Note,
    PolicyIn,
    PolicyOut,
    PolicyQuery,
    PolicyVersionOut,
    PreviewOut,
    RatingIn,
    RejectIn,
    SlotIn,
    SlotOut,
)
from services.consulting.settings import DECLARED
from services.consulting.store import ConsultingStore

SLA_CHECK_SECONDS = float(service_settings("consulting", DECLARED)["SLA_CHECK_SECONDS"])
STAFF = ["advisor", "admin"]
POLICY_RULES = (
    "effective_to is not before effective_from",
    "criteria in one list (the policy's, a tier's, a group's) have different ids",
)
# The re-assessment loop also runs this often without being woken: after a restart, what was
# under way carries on.
REASSESS_SWEEP_SECONDS = 5.0
PARTIES = ["returnee", *STAFF]  # of a consultation: its returnee (checked on it) and staff


class ConsultingService(Operable):
    """Policy catalog (rules as code), explained eligibility, consultations, appointments."""

    name = "consulting"
    db = Database(store=ConsultingStore)

    # ------------------------------------------------------------------ events

    # Eligibility is nobody's wait (a notice follows it): background, in larger batches.
    assess_returnee = on_event(
        "accounts",
        "returnee.registered",
        "returnee.updated",
        use=handlers.assess_returnee,
        background=True,
    )
    erase_returnee = on_event("accounts", "returnee.erased", use=handlers.erase_returnee)
    wake_reassessment = Alarm("reassess_queued")
    reassess_for_policy = on_event(
        "consulting",
        "policy.published",
        use=handlers.reassess_for_policy,
        units=True,
        needs=("wake_reassessment",),
    )

    @loop(interval=REASSESS_SWEEP_SECONDS)
    def reassess_queued(self):
        """The re-assessments under way, a batch of returnees per unit of work, for up to a
        second per run (then the next run), so a stop waits for one batch only."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            with self.db.unit_of_work() as uow:
                if not handlers.reassess_batch(uow):
                    return
        self.wake_reassessment()

    register_advisor = on_event("accounts", "staff.registered", use=handlers.register_advisor)
    # Whose activity registration is whose, for advisors reading through one (`chassis.access`).
    keep_activities_cases = on_event("activities", *CASE_EVENTS["activities"], use=keep_case_link)

    # ------------------------------------------------------------------ policies

    @http(
        "GET",
        "/policies",
        query=PolicyQuery,
        response=PolicyOut(many=True),
        paged=True,
        summary="The policy catalog, by code (public)",
    )
    def list_policies(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_policies(query, uow)

    @http(
        "GET",
        "/policies/<uuid:policy_id>",
        response=PolicyOut(),
        summary="One policy with its rules",
    )
    def get_policy(self, request, policy_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_policy(str(policy_id), uow)

    @http(
        "POST",
        "/policies",
        body=PolicyIn,
        response=PolicyOut(),
        status=201,
        roles=["admin"],
        rules=POLICY_RULES,
        summary="Publish a policy (admin); emits policy.published",
    )
    def publish_policy(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.publish_policy(body, uow)

    @http(
        "POST",
        "/policies/<uuid:policy_id>/versions",
        body=PolicyIn,
        response=PolicyOut(),
        status=201,
        roles=["admin"],
        rules=(*POLICY_RULES, "code is the policy's code"),
        summary="Publish a new version of a policy's rules, in force from today (admin); the "
        "older versions are kept; emits policy.published",
    )
    def publish_version(self, request, policy_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.publish_version(str(policy_id), body, uow)

    @http(
        "GET",
        "/policies/<uuid:policy_id>/versions",
        response=PolicyVersionOut(many=True),
        paged=True,
        summary="Every version of a policy's rules, with the day each came into force (public)",
    )
    def list_policy_versions(self, request, policy_id, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_policy_versions(str(policy_id), query, uow)

    @http(
        "POST",
        "/policies/preview",
        response=PreviewOut(),
        body=PolicyIn,
        roles=["admin"],
        rules=POLICY_RULES,
        summary="Impact of a draft policy or new version over the consenting caseload, by tier, "
        "industry, stage and district, with the budget; stores and announces nothing (admin)",
    )
    def preview_policy(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.preview_policy(body, uow)

    # ------------------------------------------------------------------ eligibility

    @http(
        "GET",
        "/returnees/<returnee_id>/eligibility",
        response=EligibilityOut(many=True),
        query=EligibilityQuery,
        paged=True,
        roles=STAFF,
        owner="returnee_id",
        access=True,
        summary="Every policy with every criterion explained (self; advisors through a case or "
        "with a reason; admins)",
    )
    def eligibility(self, request, returnee_id, query):
        with self.db.unit_of_work() as uow:
            return handlers.eligibility(returnee_id, query, request.locale, uow, request.access)

    @http(
        "GET",
        "/returnees/<returnee_id>/missing-facts",
        response=MissingFactsOut(),
        roles=STAFF,
        owner="returnee_id",
        access=True,
        summary="What is still missing: the facts that decide the policies a returnee is "
        "undetermined for, to tell or bring (self; advisors through a case or with a reason; "
        "admins)",
    )
    def missing_facts(self, request, returnee_id):
        with self.db.unit_of_work() as uow:
            return handlers.missing_facts(returnee_id, request.locale, uow, request.access)

    # ------------------------------------------------------------------ applications

    @http(
        "POST",
        "/applications",
        response=ApplicationOut(),
        body=ApplicationIn,
        status=201,
        roles=["returnee"],
        rules=(
            "policy_id names a policy of the catalog",
            "tier, when given, is a tier of that policy; a policy with tiers needs one when the"
            " profile reaches none",
        ),
        summary="Start an application for a policy one is eligible or undetermined for "
        "(returnee): a draft with its document checklist",
    )
    def start_application(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.start_application(body, request.caller, request.locale, uow)

    @http(
        "GET",
        "/applications",
        response=ApplicationPage(),
        query=ApplicationQuery,
        roles=PARTIES,
        rules=(CURSOR_RULE,),
        access=True,
        summary="Applications, newest first, paginated: a returnee's own; staff see all (each "
        "in its returnee's access log)",
    )
    def list_applications(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_applications(query, request.caller, uow, request.access)

    @http(
        "GET",
        "/applications/<application_id>",
        response=ApplicationOut(),
        roles=PARTIES,
        access=True,
        summary="An application with its checklist and history (its returnee, advisor, admin)",
    )
    def get_application(self, request, application_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_application(
                application_id, request.caller, request.locale, uow, request.access
            )

    @http(
        "PUT",
        "/applications/<application_id>/checklist/<document_id>",
        response=ApplicationOut(),
        body=ChecklistMarkIn,
        roles=["returnee"],
        summary="Mark a document of a draft's checklist provided, with a reference (returnee)",
    )
    def mark_document(self, request, application_id, document_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.mark_document(
                application_id, document_id, body, request.caller, request.locale, uow
            )

    @http(
        "POST",
        "/applications/<application_id>/submit",
        response=ApplicationOut(),
        body=Note,
        roles=["returnee"],
        summary="Submit a draft with every document provided (returnee); emits "
        "application.submitted",
    )
    def submit_application(self, request, application_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.submit_application(
                application_id, body, request.caller, request.locale, uow
            )

    @http(
        "POST",
        "/applications/<application_id>/withdraw",
        response=ApplicationOut(),
        body=Note,
        roles=["returnee"],
        summary="Withdraw an open application (returnee); emits application.withdrawn",
    )
    def withdraw_application(self, request, application_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.withdraw_application(
                application_id, body, request.caller, request.locale, uow
            )

    @http(
        "POST",
        "/applications/<application_id>/review",
        response=ApplicationOut(),
        body=Note,
        roles=STAFF,
        summary="Take a submitted application into review (advisor, admin)",
    )
    def review_application(self, request, application_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.review_application(
                application_id, body, request.caller, request.locale, uow
            )

    @http(
        "POST",
        "/applications/<application_id>/approve",
        response=ApplicationOut(),
        body=Note,
        roles=STAFF,
        summary="Approve an application under review (advisor, admin); emits application.approved",
    )
    def approve_application(self, request, application_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.approve_application(
                application_id, body, request.caller, request.locale, uow
            )

    @http(
        "POST",
        "/applications/<application_id>/reject",
        response=ApplicationOut(),
        body=RejectIn,
        roles=STAFF,
        summary="Reject an application under review, with a reason (advisor, admin); emits "
        "application.rejected",
    )
    def reject_application(self, request, application_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.reject_application(
                application_id, body, request.caller, request.locale, uow
            )

    @http(
        "POST",
        "/applications/<application_id>/award",
        response=ApplicationOut(),
        body=AwardIn,
        roles=STAFF,
        summary="Award an approved application: amount and day (advisor, admin); emits "
        "application.awarded",
    )
    def award_application(self, request, application_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.award_application(
                application_id, body, request.caller, request.locale, uow
            )

    # ------------------------------------------------------------------ consultations

    @http(
        "POST",
        "/consultations",
        response=ConsultationOut(),
        body=ConsultationIn,
        status=201,
        roles=["returnee"],
        rules=("policy_id, when given, names a policy of the catalog",),
        summary="Ask a question (returnee); emits consultation.requested",
    )
    def request_consultation(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.request_consultation(body, request.caller, uow)

    @http(
        "GET",
        "/consultations",
        response=ConsultationOut(many=True),
        query=ConsultationQuery,
        paged=True,
        roles=PARTIES,
        access=True,
        summary="Consultations: a returnee's own; advisors and admins see all (each in its "
        "returnee's access log)",
    )
    def list_consultations(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_consultations(query, request.caller, uow, request.access)

    @http(
        "GET",
        "/consultations/<consultation_id>",
        response=ConsultationOut(),
        roles=PARTIES,
        access=True,
        summary="A consultation with its message thread",
    )
    def get_consultation(self, request, consultation_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_consultation(consultation_id, request.caller, uow, request.access)

    @http(
        "POST",
        "/consultations/<consultation_id>/messages",
        response=ConsultationOut(),
        body=MessageIn,
        status=201,
        roles=PARTIES,
        summary="Write in the thread (returnee owner, advisor, admin)",
    )
    def post_message(self, request, consultation_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.post_message(consultation_id, body, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/assign",
        response=ConsultationOut(),
        body=AssignIn,
        roles=STAFF,
        rules=("advisor_id, when given, names an advisor of the station",),
        summary="Assign to an advisor, or round-robin when none is named (advisor, admin)",
    )
    def assign_consultation(self, request, consultation_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.assign_consultation(consultation_id, body, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/close",
        response=ConsultationOut(),
        roles=PARTIES,
        summary="Close (returnee owner, advisor, admin); emits consultation.closed",
    )
    def close_consultation(self, request, consultation_id):
        with self.db.unit_of_work() as uow:
            return handlers.close_consultation(consultation_id, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/reopen",
        response=ConsultationOut(),
        roles=PARTIES,
        summary="Reopen a closed consultation; emits consultation.reopened",
    )
    def reopen_consultation(self, request, consultation_id):
        with self.db.unit_of_work() as uow:
            return handlers.reopen_consultation(consultation_id, request.caller, uow)

    @http(
        "POST",
        "/consultations/<consultation_id>/rating",
        response=ConsultationOut(),
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

    # ------------------------------------------------------------------ canned replies

    @http(
        "GET",
        "/canned-replies",
        query=CannedReplyQuery,
        response=CannedReplyOut(many=True),
        roles=STAFF,
        paged=True,
        summary="The canned replies of a topic (or every topic), in both languages (advisor, "
        "admin)",
    )
    def list_canned_replies(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_canned_replies(query, uow)

    @http(
        "POST",
        "/canned-replies",
        body=CannedReplyIn,
        response=CannedReplyOut(),
        status=201,
        roles=["admin"],
        summary="Add a canned reply to a topic, in Chinese and English (admins)",
    )
    def create_canned_reply(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.create_canned_reply(body, request.caller, uow)

    @http(
        "PUT",
        "/canned-replies/<reply_id>",
        body=CannedReplyIn,
        response=CannedReplyOut(),
        roles=["admin"],
        summary="Replace a canned reply's topic, titles and texts (admins)",
    )
    def change_canned_reply(self, request, reply_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.change_canned_reply(reply_id, body, uow)

    @http(
        "DELETE",
        "/canned-replies/<reply_id>",
        status=204,
        roles=["admin"],
        summary="Delete a canned reply (admins)",
    )
    def delete_canned_reply(self, request, reply_id):
        with self.db.unit_of_work() as uow:
            handlers.delete_canned_reply(reply_id, uow)

    # ------------------------------------------------------------------ appointments

    @http(
        "POST",
        "/slots",
        body=SlotIn,
        response=SlotOut(),
        status=201,
        roles=STAFF,
        rules=("ends_at is after starts_at",),
        summary="Publish a station time slot with a capacity (advisor, admin)",
    )
    def publish_slot(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.publish_slot(body, request.caller, uow)

    @http("GET", "/slots", response=SlotOut(many=True), auth=True, paged=True,
          summary="Upcoming station slots, soonest first")  # fmt: skip
    def list_slots(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_slots(query, uow)

    @http(
        "GET",
        "/slots/<slot_id>/appointments",
        response=AppointmentOut(many=True),
        roles=STAFF,
        paged=True,
        access=True,
        summary="Who booked a slot, booked and cancelled, in order of booking (advisor, admin)",
    )
    def list_slot_appointments(self, request, slot_id, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_slot_appointments(slot_id, query, uow, request.access)

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
            return handlers.book_appointment(body, request.caller, request.locale, uow)

    @http(
        "GET",
        "/returnees/<returnee_id>/appointments",
        response=AppointmentOut(many=True),
        roles=STAFF,
        owner="returnee_id",
        paged=True,
        access=True,
        summary="A returnee's appointments, soonest first (self; advisors through a case or with a "
        "reason; admins)",
    )
    def list_appointments(self, request, returnee_id, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_appointments(returnee_id, query, request.locale, uow,
                                              request.access)  # fmt: skip

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
