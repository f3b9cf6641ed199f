"""matching service entrypoints: the resource catalog, explainable matches, and cooperation
intentions. Each entrypoint runs one use case of `handlers.py` in a unit of work; the `on_event`
lines are the routing table of the events matching handles."""

import time

from nameko.dependency_providers import Config

from chassis.access import CASE_EVENTS, keep_case_link
from chassis.batches import BatchOut, batch_of
from chassis.db import Database
from chassis.events import on_event
from chassis.loops import Alarm, loop
from chassis.operable import Operable
from chassis.web import http
from services.matching import handlers, imports
from services.matching.configuration import MatchingSettings, load_settings
from services.matching.schemas import (
    Decision,
    Feedback,
    IntentionIn,
    IntentionOut,
    IntentionQuery,
    IntentionStatistics,
    MatchOut,
    ResourceChange,
    ResourceIn,
    ResourceOut,
    ResourceQuery,
)
from services.matching.store import MatchingStore, Replica

# The re-match loop also runs this often without being woken: after a restart, what was queued
# before it is re-matched.
REMATCH_SWEEP_SECONDS = 5.0
PROVIDERS = ["provider", "admin"]


class MatchingService(Operable):
    """Resource matching for returnee entrepreneurs: a catalog of partner resources (finance,
    office space, incubation, mentorship, cooperation), matches with reasons, and cooperation
    intentions between returnees and providers."""

    name = "matching"
    db = Database(store=MatchingStore, replica=Replica)  # catalog and returnees held in memory
    config = Config()
    wake_rematch = Alarm("rematch_queued")

    @property
    def settings(self) -> MatchingSettings:
        """`matching.yml`, the environment, then the container config (`configuration.py`)."""
        return load_settings(self.config)

    @property
    def policy(self):
        return self.settings.policy

    # ------------------------------------------------------------------ events

    remember_organization = on_event(
        "accounts", "organization.registered", use=handlers.remember_organization
    )
    match_returnee = on_event(
        "accounts",
        "returnee.registered",
        "returnee.updated",
        use=handlers.match_returnee,
        needs=("policy",),
        background=True,  # nobody's wait: a notice follows the matches
    )
    follow_consent = on_event("accounts", "consent.changed", use=handlers.follow_consent)
    erase_returnee = on_event("accounts", "returnee.erased", use=handlers.erase_returnee)
    # Whose case is whose, for advisors reading a returnee's matches through one.
    keep_consulting_cases = on_event("consulting", *CASE_EVENTS["consulting"], use=keep_case_link)
    keep_activities_cases = on_event("activities", *CASE_EVENTS["activities"], use=keep_case_link)
    remember_activity = on_event("activities", "activity.published", use=handlers.remember_activity)
    record_attendance = on_event(
        "activities", "attendance.recorded", use=handlers.record_attendance
    )
    rematch_for_resource = on_event(
        "matching",
        "resource.published",
        "resource.withdrawn",
        use=handlers.rematch_for_resource,
        units=True,
        needs=("wake_rematch", "policy"),
    )

    @loop(interval=REMATCH_SWEEP_SECONDS)
    def rematch_queued(self):
        """The queued returnees re-matched, a batch per unit of work, for up to a second per run
        (then the next run), so a stop waits for one batch, not for the whole queue."""
        settings = self.settings
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            with self.db.unit_of_work() as uow:
                if not handlers.rematch_batch(uow, settings.rematch_batch, settings.policy):
                    return
        self.wake_rematch()

    # ------------------------------------------------------------------ resource catalog

    @http(
        "POST",
        "/resources",
        body=ResourceIn,
        response=ResourceOut(),
        status=201,
        roles=PROVIDERS,
        rules=(
            "valid_until is not before valid_from",
            "valid_until is not in the past (a Shanghai calendar day)",
            "organization_id names an organization registered with the platform",
        ),
        summary="Publish a resource of an organization (its provider, or an admin)",
    )
    def publish_resource(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.publish_resource(body, request.caller, uow)

    @http(
        "POST",
        "/imports/resources",
        body=batch_of(imports.ImportedResource),
        response=BatchOut(),
        roles=PROVIDERS,
        summary="Import resources (a provider its organization's, an admin any): one "
        "transaction, one result per row (created, exists by organization and title, or "
        "invalid with its fields)",
    )
    def import_resources(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.import_resources(body, request.caller, uow)

    @http(
        "GET",
        "/resources",
        query=ResourceQuery,
        response=ResourceOut(many=True),
        paged=True,
        summary="The resources on offer (public), filtered",
    )
    def list_resources(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_resources(query, uow)

    @http("GET", "/resources/<uuid:resource_id>", response=ResourceOut(), summary="One resource")
    def show_resource(self, request, resource_id):
        with self.db.unit_of_work() as uow:
            return handlers.get_resource(resource_id, uow)

    @http(
        "PATCH",
        "/resources/<uuid:resource_id>",
        body=ResourceChange,
        response=ResourceOut(),
        roles=PROVIDERS,
        rules=(
            "capacity is not below the places already taken",
            "valid_until is not in the past (a Shanghai calendar day) when it is changed",
            "valid_until is not before valid_from (the stored one where it is not given)",
        ),
        summary="Change a resource's places or validity, only the fields given (its "
        "organization's provider, or an admin); re-published with its current terms",
    )
    def change_resource(self, request, resource_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.change_resource(resource_id, body, request.caller, uow)

    @http(
        "DELETE",
        "/resources/<uuid:resource_id>",
        status=204,
        roles=PROVIDERS,
        summary="Withdraw a resource (its organization's provider, or an admin)",
    )
    def withdraw_resource(self, request, resource_id):
        with self.db.unit_of_work() as uow:
            handlers.withdraw_resource(resource_id, request.caller, uow)

    # ------------------------------------------------------------------ matches

    @http(
        "GET",
        "/returnees/<uuid:returnee_id>/matches",
        response=MatchOut(many=True),
        roles=["advisor", "admin"],
        owner="returnee_id",
        paged=True,
        access=True,
        summary="A returnee's matches, best first, with reasons (self; advisors through a case "
        "or with a reason; admins)",
    )
    def matches(self, request, returnee_id, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_matches(returnee_id, query, request.locale, uow, request.access)

    @http(
        "POST",
        "/matches/<uuid:match_id>/feedback",
        body=Feedback,
        response=MatchOut(),
        roles=["returnee"],
        summary="The returnee's interest in a match",
    )
    def feedback(self, request, match_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.give_feedback(
                match_id, body, request.caller, request.locale, uow, policy=self.policy
            )

    # ------------------------------------------------------------------ cooperation intentions

    @http(
        "POST",
        "/intentions",
        body=IntentionIn,
        response=IntentionOut(),
        status=201,
        roles=["returnee", "advisor", "admin"],
        rules=(
            "resource_id, or organization_id and activity_id (not both ways)",
            "organization_id names an organization registered with the platform",
            "an advisor or an admin names the returnee_id (an intention met at an activity only)",
        ),
        summary="Express interest in a matched resource, or toward an organization met at an "
        "activity attended (returnee); an advisor or an admin records one met at an activity "
        "for the returnee who attended",
    )
    def express_intention(self, request, body):
        with self.db.unit_of_work() as uow:
            return handlers.express_intention(body, request.caller, uow)

    @http(
        "POST",
        "/intentions/<uuid:intention_id>/accept",
        body=Decision,
        optional_body=True,
        response=IntentionOut(),
        roles=["provider"],
        summary="Accept an intention: takes one place of the resource (provider)",
    )
    def accept_intention(self, request, intention_id, body):
        with self.db.unit_of_work() as uow:
            row = handlers.accept_intention(intention_id, body, request.caller, uow)
        self.wake_rematch()  # the last place taken queued those it was matched to
        return row

    @http(
        "POST",
        "/intentions/<uuid:intention_id>/decline",
        body=Decision,
        optional_body=True,
        response=IntentionOut(),
        roles=["provider"],
        summary="Decline an intention (provider)",
    )
    def decline_intention(self, request, intention_id, body):
        with self.db.unit_of_work() as uow:
            return handlers.decline_intention(
                intention_id, body, request.caller, uow, policy=self.policy
            )

    @http(
        "GET",
        "/intentions",
        query=IntentionQuery,
        response=IntentionOut(many=True),
        paged=True,
        roles=["returnee", "provider", "advisor", "admin"],
        summary="The caller's intentions: a returnee's own, a provider's organization's, "
        "every one for advisors and admins",
        access=True,
    )
    def list_intentions(self, request, query):
        with self.db.unit_of_work() as uow:
            return handlers.list_intentions(query, request.caller, uow, request.access)

    @http(
        "GET",
        "/statistics/intentions",
        response=IntentionStatistics(),
        roles=["admin", "advisor"],
        summary="Cooperation intentions per organization (admin, advisor)",
    )
    def intention_statistics(self, request):
        with self.db.unit_of_work() as uow:
            return handlers.intention_statistics(uow)
