"""matching: the resource catalog, explainable matches, and cooperation intentions."""

import time
import uuid
from datetime import datetime, timedelta, timezone

from nameko.dependency_providers import Config

from chassis.auth import Authenticator
from chassis.batches import BatchOut, batch_of
from chassis.db import Database
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.events import subscribe
from chassis.loops import Alarm, loop
from chassis.operable import Operable
from chassis.web import http
from services.matching import imports, store
from services.matching.configuration import load_settings
from services.matching.engine import Catalog, ReturneeTable, diff, match_resources
from services.matching.engine import returnees_fitting as fitting
from services.matching.events import intention_data, intention_event, proposed_data, published_data
from services.matching.reasons import explained
from services.matching.schemas import (
    MUST_NOT_BE_PAST,
    UNKNOWN_ORGANIZATION,
    Decision,
    Feedback,
    IntentionIn,
    IntentionOut,
    IntentionQuery,
    IntentionStatistics,
    MatchOut,
    ResourceIn,
    ResourceOut,
    ResourceQuery,
)

SHANGHAI = timezone(timedelta(hours=8))
# The re-match loop also runs this often without being woken: after a restart, what was queued
# before it is re-matched.
REMATCH_SWEEP_SECONDS = 5.0
PROFILE_PAGE = 2000  # profiles per round trip when a new resource looks for the returnees it fits
WRITE_EVERY = 10  # returnees computed between two writes of a re-match (about 30 ms of work)


def today():
    """Validity dates are Shanghai calendar days."""
    return datetime.now(SHANGHAI).date()


class MatchingService(Operable):
    """Resource matching for returnee entrepreneurs: a catalog of partner resources (finance,
    office space, incubation, mentorship, cooperation), matches with reasons, and cooperation
    intentions between returnees and providers."""

    name = "matching"
    db = Database()
    auth = Authenticator()
    config = Config()
    wake_rematch = Alarm("rematch_queued")

    # --- resource catalog ----------------------------------------------------------------------

    @http(
        "POST",
        "/resources",
        body=ResourceIn,
        response=ResourceOut(),
        status=201,
        roles=("provider", "admin"),
        rules=(
            "valid_until is not before valid_from",
            "valid_until is not in the past (a Shanghai calendar day)",
            "organization_id names an organization registered with the platform",
        ),
        summary="Publish a resource of an organization (its provider, or an admin)",
    )
    def publish_resource(self, request, body):
        caller = self.auth.caller(request)
        if caller.role == "provider" and caller.organization_id != str(body["organization_id"]):
            raise Forbidden(
                "Providers publish only their own organization's resources.",
                zh="机构用户只能发布本机构的资源。",
            )
        if body["valid_until"] and body["valid_until"] < today():
            raise Unprocessable(fields={"valid_until": [MUST_NOT_BE_PAST]})
        with self.db.transaction() as tx:
            if store.organization(tx, body["organization_id"]) is None:
                raise Unprocessable(fields={"organization_id": [UNKNOWN_ORGANIZATION]})
            row = store.insert_resource(tx, str(uuid.uuid4()), body)
            tx.publish("resource.published", published_data(row), subject=row["id"])
        return row

    @http(
        "POST",
        "/imports/resources",
        body=batch_of(imports.ImportedResource),
        response=BatchOut(),
        roles=("provider", "admin"),
        summary="Import resources (a provider its organization's, an admin any): one "
        "transaction, one result per row (created, exists by organization and title, or "
        "invalid with its fields)",
    )
    def import_resources(self, request, body):
        caller = self.auth.caller(request)
        with self.db.transaction() as tx:
            return imports.import_resources(body, caller, tx, today())

    @http(
        "GET",
        "/resources",
        query=ResourceQuery,
        response=ResourceOut(many=True),
        summary="The resources on offer (public), filtered",
    )
    def list_resources(self, request, query):
        with self.db.transaction() as tx:
            return store.list_resources(tx, query, today())

    @http("GET", "/resources/<uuid:resource_id>", response=ResourceOut(), summary="One resource")
    def show_resource(self, request, resource_id):
        with self.db.transaction() as tx:
            row = store.resource(tx, resource_id)
        if row is None:
            raise NotFound("No such resource.", zh="资源不存在。")
        return row

    @http(
        "DELETE",
        "/resources/<uuid:resource_id>",
        status=204,
        roles=("provider", "admin"),
        summary="Withdraw a resource (its organization's provider, or an admin)",
    )
    def withdraw_resource(self, request, resource_id):
        caller = self.auth.caller(request)
        with self.db.transaction() as tx:
            row = store.resource(tx, resource_id, lock=True)
            if row is None:
                raise NotFound("No such resource.", zh="资源不存在。")
            _require_owner(caller, row["organization_id"])
            if row["withdrawn_at"] is not None:
                raise Conflict("The resource is withdrawn already.", zh="该资源已撤回。")
            store.withdraw_resource(tx, resource_id)
            tx.publish(
                "resource.withdrawn",
                {"resource_id": row["id"], "organization_id": row["organization_id"]},
                subject=row["id"],
            )

    # --- workflows -----------------------------------------------------------------------------

    @subscribe("accounts", "organization.registered")
    def remember_organization(self, event):
        data = event.data
        with self.db.transaction() as tx:
            store.save_organization(
                tx, data["organization_id"], data["name"], data["kind"], data["district"]
            )

    @subscribe("accounts", "returnee.registered", "returnee.updated")
    def match_returnee(self, event):
        data = event.data
        returnee_id = str(data["returnee_id"])
        with self.db.transaction() as tx:
            store.lock_matches(tx, [returnee_id])  # serializes with erasure and re-matches
            if store.is_erased(tx, returnee_id):
                return
            if not data["consents"]["matching"]:
                self._forget(tx, returnee_id, event.time)
                return
            profile = {
                "locale": data["locale"],
                "industry": data["industry"],
                "startup_stage": data["startup_stage"],
                "needs": sorted(set(data["needs"])),
                "district": (data["company"] or {}).get("registered_district"),
            }
            if store.save_returnee(tx, returnee_id, profile, event.time):
                self._rematch(tx, [returnee_id])

    @subscribe("accounts", "consent.changed")
    def follow_consent(self, event):
        # Granting again needs the profile, which comes with the `returnee.updated` accounts
        # publishes for the same change; only a withdrawal is acted on here.
        data = event.data
        if data["purpose"] != "matching" or data["granted"]:
            return
        with self.db.transaction() as tx:
            self._forget(tx, str(data["returnee_id"]), data["changed_at"])

    @subscribe("accounts", "returnee.erased")
    def erase_returnee(self, event):
        returnee_id = str(event.data["returnee_id"])
        with self.db.transaction() as tx:
            store.lock_matches(tx, [returnee_id])
            intention_ids = store.erase_returnee(tx, returnee_id)
            # Published events kept for retention name the person (and quote their messages).
            for subject in (returnee_id, *intention_ids):
                tx.forget_published(subject)

    @subscribe("activities", "activity.published")
    def remember_activity(self, event):
        """Its organizers: intentions met at the activity may go to them."""
        data = event.data
        with self.db.transaction() as tx:
            store.record_activity_organizations(tx, data["activity_id"], data["organizer_ids"])

    @subscribe("activities", "attendance.recorded")
    def record_attendance(self, event):
        """A returnee who attended may express intentions there; an organization whose
        representative attended may receive them."""
        data = event.data
        with self.db.transaction() as tx:
            if data["returnee_id"] is not None and not store.is_erased(tx, data["returnee_id"]):
                store.record_attendance(tx, data["activity_id"], data["returnee_id"])
            if data["organization_id"] is not None:
                store.record_activity_organizations(
                    tx, data["activity_id"], [data["organization_id"]]
                )

    @subscribe("matching", "resource.published", "resource.withdrawn")
    def rematch_for_resource(self, event):
        """Reverse matching: queue the returnees a new resource fits, or the returnees a
        withdrawn one was matched to; the re-match loop re-matches them and publishes what
        changed for each. This transaction takes no lock on anyone's matches."""
        resource_id = str(event.data["resource_id"])
        with self.db.transaction() as tx:
            affected = set(store.returnees_matched_to(tx, resource_id))
            if event.type == "resource.published":
                row = store.resource(tx, resource_id)
                if row is not None and row["withdrawn_at"] is None:
                    affected.update(self._fitting(tx, store.as_resource(row)))
            store.queue_rematch(tx, affected)
        self.wake_rematch()

    @loop(interval=REMATCH_SWEEP_SECONDS)
    def rematch_queued(self):
        """Re-match the queued returnees, a batch per transaction, for up to a second per run
        (then the next run), so a stop waits for one batch, not for the whole queue."""
        batch_size = load_settings(self.config).rematch_batch
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            with self.db.transaction() as tx:
                batch = store.claim_rematch(tx, batch_size)
                if not batch:
                    return
                self._rematch(tx, batch)
                store.rematched(tx, batch)
        self.wake_rematch()

    # --- matches -------------------------------------------------------------------------------

    @http(
        "GET",
        "/returnees/<uuid:returnee_id>/matches",
        response=MatchOut(many=True),
        roles=("returnee", "advisor", "admin"),
        summary="A returnee's matches, best first, with reasons (self, advisor, admin)",
    )
    def matches(self, request, returnee_id):
        self.auth.caller(request).require_self_or("advisor", "admin", owner=returnee_id)
        with self.db.transaction() as tx:
            rows = store.matches_of(tx, returnee_id, today())
        for row in rows:
            row["reasons"] = explained(row["reasons"], request.locale)
        return rows

    @http(
        "POST",
        "/matches/<uuid:match_id>/feedback",
        body=Feedback,
        response=MatchOut(),
        roles=("returnee",),
        summary="The returnee's interest in a match",
    )
    def feedback(self, request, match_id, body):
        caller = self.auth.caller(request)
        with self.db.transaction() as tx:
            store.lock_matches(tx, [caller.id])  # before the match row: the order _rematch uses
            found = store.match(tx, match_id, lock=True)
            if found is None or found["returnee_id"] != caller.id:
                raise NotFound("No such match.", zh="匹配不存在。")
            if body["interest"] == "interested":
                store.set_match_status(tx, caller.id, found["resource_id"], "interested")
                row = next(
                    (
                        m
                        for m in store.matches_of(tx, caller.id, today())
                        if m["match_id"] == found["match_id"]
                    ),
                    None,
                )
                if row is None:
                    raise Conflict("The resource is no longer on offer.", zh="该资源已不再提供。")
                row["reasons"] = explained(row["reasons"], request.locale)
                return row
            store.dismiss(tx, caller.id, found["resource_id"])
            self._rematch(tx, [caller.id])
        return 200, {**found, "status": "not_interested", "reasons": []}

    # --- cooperation intentions ----------------------------------------------------------------

    @http(
        "POST",
        "/intentions",
        body=IntentionIn,
        response=IntentionOut(),
        status=201,
        roles=("returnee",),
        rules=(
            "resource_id, or organization_id and activity_id (not both ways)",
            "organization_id names an organization registered with the platform",
        ),
        summary="Express interest in a matched resource, or toward an organization met at an "
        "activity attended (returnee)",
    )
    def express_intention(self, request, body):
        caller = self.auth.caller(request)
        with self.db.transaction() as tx:
            if store.is_erased(tx, caller.id):  # a token outliving its erasure by seconds
                raise Forbidden("This account was erased.", zh="该账户已注销。", code="erased")
        if body["resource_id"] is None:
            return self._express_at_activity(caller, body)
        day = today()
        with self.db.transaction() as tx:
            resource = store.resource(tx, body["resource_id"])
            if resource is None:
                raise NotFound("No such resource.", zh="资源不存在。")
            matched = {m["resource_id"] for m in store.matches_of(tx, caller.id, day)}
            if resource["id"] not in matched:
                if not _on_offer(resource, day):
                    raise Conflict(
                        "The resource is no longer on offer (withdrawn, expired or full).",
                        zh="该资源已不再提供（已撤回、已过期或名额已满）。",
                    )
                raise Conflict(
                    "You can express interest only in resources matched to you.",
                    zh="只能对与您匹配的资源表达合作意向。",
                )
            row = store.insert_intention(tx, uuid.uuid4(), caller.id, resource, body["message"])
            if row is None:
                raise Conflict(
                    "You have expressed interest in this resource already.",
                    zh="您已对该资源表达过合作意向。",
                )
            store.set_match_status(tx, caller.id, resource["id"], "interested")
            tx.publish("intention.expressed", intention_data(row), subject=row["intention_id"])
        return row

    def _express_at_activity(self, caller, body):
        """Toward an organization that organized or attended an activity the returnee
        attended (both learnt from activities' events); one lifecycle with the others."""
        activity_id, organization_id = body["activity_id"], body["organization_id"]
        with self.db.transaction() as tx:
            if store.organization(tx, organization_id) is None:
                raise Unprocessable(fields={"organization_id": [UNKNOWN_ORGANIZATION]})
            if not store.attended(tx, activity_id, caller.id):
                raise Conflict(
                    "You can express an intention at an activity only after attending it.",
                    zh="只有参加活动后才能在该活动上表达合作意向。",
                )
            if not store.took_part(tx, activity_id, organization_id):
                raise Conflict(
                    "The organization neither organized nor attended this activity.",
                    zh="该机构未组织也未参加此活动。",
                )
            row = store.insert_activity_intention(
                tx, uuid.uuid4(), caller.id, activity_id, organization_id, body["message"]
            )
            if row is None:
                raise Conflict(
                    "You have expressed interest in this organization at this activity already.",
                    zh="您已在该活动上向该机构表达过合作意向。",
                )
            version, data = intention_event(row)
            tx.publish("intention.expressed", data, subject=row["intention_id"], version=version)
        return row

    @http(
        "POST",
        "/intentions/<uuid:intention_id>/accept",
        body=Decision,
        optional_body=True,
        response=IntentionOut(),
        roles=("provider",),
        summary="Accept an intention: takes one place of the resource (provider)",
    )
    def accept_intention(self, request, intention_id, body):
        return self._decide(request, intention_id, "accepted", body["message"])

    @http(
        "POST",
        "/intentions/<uuid:intention_id>/decline",
        body=Decision,
        optional_body=True,
        response=IntentionOut(),
        roles=("provider",),
        summary="Decline an intention (provider)",
    )
    def decline_intention(self, request, intention_id, body):
        return self._decide(request, intention_id, "declined", body["message"])

    @http(
        "GET",
        "/intentions",
        query=IntentionQuery,
        response=IntentionOut(many=True),
        roles=("returnee", "provider", "advisor", "admin"),
        summary="The caller's intentions: a returnee's own, a provider's organization's, "
        "every one for advisors and admins",
    )
    def list_intentions(self, request, query):
        caller = self.auth.caller(request)
        scope = {"status": query.get("status")}
        if caller.role == "returnee":
            scope["returnee_id"] = caller.id
        elif caller.role == "provider":
            if not caller.organization_id:
                raise Forbidden("Your account has no organization.", zh="您的账号未关联机构。")
            scope["organization_id"] = caller.organization_id
        with self.db.transaction() as tx:
            return store.intentions(tx, **scope)

    @http(
        "GET",
        "/statistics/intentions",
        response=IntentionStatistics(),
        roles=("admin", "advisor"),
        summary="Cooperation intentions per organization (admin, advisor)",
    )
    def intention_statistics(self, request):
        with self.db.transaction() as tx:
            rows = store.intention_statistics(tx)
        return {"accepted": sum(r["accepted"] for r in rows), "organizations": rows}

    # --- internals -----------------------------------------------------------------------------

    def _decide(self, request, intention_id, status, message):
        caller = self.auth.caller(request)
        with self.db.transaction() as tx:
            found = store.intention(tx, intention_id)
            if found is None:
                raise NotFound("No such intention.", zh="合作意向不存在。")
            _require_owner(caller, found["organization_id"])
            row = store.decide_intention(tx, intention_id, status, message)
            if row is None:
                raise Conflict("The intention has been decided already.", zh="该合作意向已处理。")
            if row["resource_id"] is None:
                pass  # met at an activity: no resource's places or matches to change
            elif status == "accepted":
                place = store.take_place(tx, row["resource_id"])
                if place is None:
                    # Raising rolls the decision back: the intention stays open.
                    raise Conflict("The resource has no place left.", zh="该资源已无剩余名额。")
                if place["capacity_left"] == 0:
                    # Full: it leaves the matches of everyone it was proposed to.
                    store.queue_rematch(tx, store.returnees_matched_to(tx, row["resource_id"]))
            else:
                # A declined returnee is not proposed the same resource again.
                store.dismiss(tx, row["returnee_id"], row["resource_id"])
                self._rematch(tx, [row["returnee_id"]])
            version, data = intention_event(row)
            event = {**data, "message": message}
            tx.publish(f"intention.{status}", event, subject=row["intention_id"], version=version)
        self.wake_rematch()
        return row

    def _fitting(self, tx, resource) -> list[str]:
        """The stored returnees the resource passes the hard filters for, read a page at a
        time: each page is a round trip, so requests are served between pages."""
        policy = load_settings(self.config).policy
        dismissed = store.dismissed_by(tx, resource.id)
        found, after, day = [], None, today()
        while True:
            page = store.profile_page(tx, after, PROFILE_PAGE)
            if not page:
                return found
            after = page[-1].returnee_id
            found.extend(
                r for r, _ in fitting(resource, ReturneeTable(page), policy, day, dismissed)
            )

    def _rematch(self, tx, returnee_ids):
        """Recompute and store the matches of these few returnees (a batch at most); publish
        `matches.proposed` for each whose set of matched resources changed.

        It first locks the returnees' matches (`store.lock_matches`), then reads the
        catalog: a concurrent re-match of the same returnee waits and then reads a catalog at
        least as new, so a stale list never overwrites a fresher one. The work is written a
        few returnees at a time: each write is a round trip, during which the process serves
        requests, so no stretch of computing holds the process longer than a few of them."""
        if not returnee_ids:
            return
        policy = load_settings(self.config).policy
        returnee_ids = sorted(returnee_ids)
        store.lock_matches(tx, returnee_ids)
        day = today()
        catalog = Catalog(store.live_resources(tx))  # read after the locks: see __doc__
        previous = store.matched_resource_ids(tx, returnee_ids)
        profiles = {p.returnee_id: p for p in store.profiles(tx, returnee_ids)}
        for start in range(0, len(returnee_ids), WRITE_EVERY):
            chunk = returnee_ids[start : start + WRITE_EVERY]
            computed = {
                # no profile any more (consent withdrawn, erased): no matches
                rid: match_resources(profiles[rid], catalog, policy, day) if rid in profiles else []
                for rid in chunk
            }
            store.replace_matches(tx, computed)
            proposals = []
            for returnee_id, matches in computed.items():
                added, removed = diff(previous[returnee_id], [m.resource_id for m in matches])
                if added or removed:
                    data = proposed_data(returnee_id, matches, added, removed)
                    proposals.append((data, returnee_id))
            tx.publish_many("matches.proposed", proposals)

    def _forget(self, tx, returnee_id, withdrawn_at):
        store.lock_matches(tx, [returnee_id])
        store.record_withdrawal(tx, returnee_id, withdrawn_at)
        removed = store.forget_returnee(tx, returnee_id)
        if removed:
            tx.publish(
                "matches.proposed",
                proposed_data(returnee_id, [], [], removed),
                subject=returnee_id,
            )


def _require_owner(caller, organization_id) -> None:
    if caller.role == "admin":
        return
    if caller.organization_id != str(organization_id):
        raise Forbidden("This belongs to another organization.", zh="该资源属于其他机构。")


def _on_offer(resource: dict, day) -> bool:
    return (
        resource["withdrawn_at"] is None
        and resource["capacity_left"] > 0
        and (resource["valid_from"] is None or resource["valid_from"] <= day)
        and (resource["valid_until"] is None or resource["valid_until"] >= day)
    )
