"""activities service entrypoints: exchange sessions, site visits, briefings and trainings; who
registered and who came; agreements signed on site; closing reports. Each entrypoint runs one
use case of `handlers.py` in a unit of work; the `on_event` lines are the routing table of the
events activities handles."""

from chassis.db import Database
from chassis.events import on_event
from chassis.operable import Operable
from chassis.web import http
from services.activities import handlers
from services.activities.schemas import (
    AGREEMENT_RULES,
    PUBLICATION_RULES,
    ActivityIn,
    ActivityOut,
    ActivityPage,
    ActivityQuery,
    AgreementIn,
    AgreementOut,
    CheckInIn,
    CheckInOut,
    CloseIn,
    RegistrationOut,
    RegistrationPage,
    RegistrationQuery,
    ReportOut,
)
from services.activities.store import ActivitiesStore

STAFF = ["advisor", "admin"]
REGISTRANTS = ["returnee", "provider"]


class ActivitiesService(Operable):
    """Activities of the returnee service station and what happened at them."""

    name = "activities"
    db = Database(store=ActivitiesStore)

    # ------------------------------------------------------------------ events

    remember_organization = on_event(
        "accounts", "organization.registered", use=handlers.remember_organization
    )
    remember_provider = on_event("accounts", "staff.registered", use=handlers.remember_provider)
    # Not background: a returnee who registers at the door is seated, checked in and named in an
    # agreement the next moment, by their own account.
    take_returnee = on_event(
        "accounts", "returnee.registered", "returnee.updated", use=handlers.take_returnee
    )
    follow_consent = on_event("accounts", "consent.changed", use=handlers.follow_consent)
    erase_returnee = on_event("accounts", "returnee.erased", use=handlers.erase_returnee)
    invite_audience = on_event(
        "activities", "activity.published", use=handlers.invite_audience, background=True
    )
    record_intention = on_event(
        "matching",
        "intention.expressed",
        "intention.accepted",
        "intention.declined",
        use=handlers.record_intention,
    )

    # ------------------------------------------------------------------ activities

    @http(
        "POST",
        "/activities",
        body=ActivityIn,
        response=ActivityOut(),
        status=201,
        roles=STAFF,
        rules=PUBLICATION_RULES,
        summary="Publish an activity (advisor, admin); emits activity.published",
    )
    def publish_activity(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.publish_activity(body, request.caller, uow)

    @http(
        "GET",
        "/activities",
        query=ActivityQuery,
        response=ActivityPage(),
        rules=("next, when given, is the next of a page this listing answered",),
        summary="Activities on and to come, soonest first, a page at a time (public)",
    )
    def list_activities(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_activities(query, uow)

    @http(
        "GET",
        "/activities/<activity_id>",
        response=ActivityOut(),
        summary="One activity with its seats left and agreements (public)",
    )
    def get_activity(self, request, activity_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_activity(activity_id, request.caller, uow)

    @http(
        "POST",
        "/activities/<activity_id>/cancel",
        response=ActivityOut(),
        roles=STAFF,
        summary="Cancel an activity (advisor, admin); emits activity.cancelled",
    )
    def cancel_activity(self, request, activity_id):
        with self.db.unit_of_work() as uow:
            return handlers.cancel_activity(activity_id, request.caller, uow)

    @http(
        "POST",
        "/activities/<activity_id>/close",
        body=CloseIn,
        response=ReportOut(),
        roles=STAFF,
        summary="Close an activity that took place, with its report (advisor, admin)",
    )
    def close_activity(self, request, activity_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.close_activity(activity_id, body, uow)

    @http(
        "GET",
        "/activities/<activity_id>/report",
        response=ReportOut(),
        roles=STAFF,
        summary="Registered, attended, organizations, agreements, intentions (advisor, admin)",
    )
    def activity_report(self, request, activity_id):
        with self.db.unit_of_work() as uow:
            return handlers.activity_report(activity_id, uow)

    # ------------------------------------------------------------------ registrations

    @http(
        "POST",
        "/activities/<activity_id>/registrations",
        response=RegistrationOut(),
        status=201,
        roles=REGISTRANTS,
        summary="Register: a returnee themself, a provider for their organization",
    )
    def register(self, request, activity_id):
        with self.db.unit_of_work() as uow:
            return handlers.register(activity_id, request.caller, uow)

    @http(
        "GET",
        "/activities/<activity_id>/registrations",
        query=RegistrationQuery,
        response=RegistrationPage(),
        roles=STAFF,
        access=True,
        summary="The activity's registrations in order of arrival (advisor, admin)",
    )
    def list_registrations(self, request, activity_id, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_registrations(
                activity_id, query, request.caller, uow, request.access
            )

    @http(
        "GET",
        "/activities/<activity_id>/registrations/<registration_id>",
        response=RegistrationOut(),
        auth=True,
        access=True,
        summary="A registration (registrant, advisor, admin); its code to the registrant only",
    )
    def get_registration(self, request, activity_id, registration_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_registration(
                activity_id, registration_id, request.caller, uow, request.access
            )

    @http(
        "DELETE",
        "/activities/<activity_id>/registrations/<registration_id>",
        status=204,
        auth=True,
        summary="Cancel a registration (registrant, advisor, admin); the waitlist moves up",
    )
    def cancel_registration(self, request, activity_id, registration_id):
        with self.db.unit_of_work() as uow:
            handlers.cancel_registration(activity_id, registration_id, request.caller, uow)
        return 204, None

    @http(
        "POST",
        "/activities/<activity_id>/check-ins",
        body=CheckInIn,
        response=CheckInOut(),
        roles=STAFF,
        rules=("code is the check-in code of a registration for this activity",),
        access=True,
        summary="Check a registrant in by their code (advisor, admin); emits attendance.recorded",
    )
    def check_in(self, request, activity_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.check_in(activity_id, body, uow, request.access)

    # ------------------------------------------------------------------ agreements

    @http(
        "POST",
        "/activities/<activity_id>/agreements",
        body=AgreementIn,
        response=AgreementOut(),
        status=201,
        roles=STAFF,
        rules=AGREEMENT_RULES,
        summary="Record an agreement signed at the activity (advisor, admin)",
    )
    def record_agreement(self, request, activity_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.record_agreement(activity_id, body, request.caller, uow)
