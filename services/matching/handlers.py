"""matching's use cases: one function per command and per event, each in one unit of work.

Commands take what the entrypoint loaded (path ids, the body or query as `command`, the verified
`caller`, the caller's `locale`) and answer what the entrypoint sends back; events take the
event. Both reach the tables through `uow.store` and publish with `uow.publish`. Those that
compute matches take the service's `policy` (weights, top K, diversity: `configuration.py`).
Refusals are the chassis' HTTP errors, their texts in `messages.py`. Rules live in the domain
modules: `engine` (filters, scores, reasons, top K, and the reverse), `reasons` (their words),
`events` (the data published) and `access` (who acts for which organization).

Every rewrite of a returnee's matches locks them first (`store.lock_matches`) and only then
reads the catalog: of two concurrent re-matches of one returnee the later sees at least what the
earlier saw, so a stale list never overwrites a fresher one. Many returnees at once (a resource
published, withdrawn or full) go through the re-match queue (`rematch_batch`).
"""

import uuid
from uuid import UUID

from marshmallow import ValidationError

from chassis import access as staff_access
from chassis import batches
from chassis.auth import Caller
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.paging import Keyset, Page
from contracts import Event
from services.matching import access, imports
from services.matching.engine import MatchPolicy, diff, match_resources
from services.matching.engine import returnees_fitting as fitting
from services.matching.events import intention_event, proposed_data, published_data
from services.matching.messages import MESSAGES  # noqa: F401  (registers the catalog)
from services.matching.reasons import explained
from services.matching.schemas import (
    BELOW_PLACES_TAKEN,
    MUST_NOT_BE_PAST,
    MUST_NOT_PRECEDE_VALID_FROM,
    RETURNEE_WHO_ATTENDED,
    UNKNOWN_ORGANIZATION,
)
from services.matching.store import as_resource

WRITE_EVERY = 10  # returnees computed between two writes of a re-match (about 30 ms of work)

# ---------------------------------------------------------------- the resource catalog


def publish_resource(command: dict, caller: Caller, uow) -> dict:
    """A resource of an organization, on offer at once; reverse matching follows from its
    `resource.published` (`rematch_for_resource`)."""
    if not access.may_publish_for(caller, command["organization_id"]):
        raise Forbidden("Providers publish only their own organization's resources.")
    if command["valid_until"] and command["valid_until"] < uow.today():
        raise Unprocessable(fields={"valid_until": [MUST_NOT_BE_PAST]})
    if uow.store.organization(command["organization_id"]) is None:
        raise Unprocessable(fields={"organization_id": [UNKNOWN_ORGANIZATION]})
    row = uow.store.insert_resource(str(uuid.uuid4()), command)
    uow.publish("resource.published", published_data(row), subject=row["id"])
    return row


def import_resources(command: dict, caller: Caller, uow) -> dict:
    """A batch of resources from a spreadsheet: each row under the rules of `publish_resource`
    (an organization known, a provider's own, `valid_until` not past), one result per row, all
    in this unit of work. A resource on offer with the row's organization and title is the
    row's: importing a file again creates nothing twice. `resource.published` for each one
    created."""
    results, valid, today = [], [], uow.today()
    for index, row in enumerate(command["rows"]):
        try:
            resource = imports.ROW.load(row)
        except ValidationError as error:
            results.append(batches.refused(index, error.messages))
            continue
        if resource["valid_until"] and resource["valid_until"] < today:
            results.append(batches.refused(index, {"valid_until": [MUST_NOT_BE_PAST]}))
            continue
        valid.append((index, resource))
    names = uow.store.organizations_named(
        {r["organization_name"] for _, r in valid if not r["organization_id"]}
    )
    ids = uow.store.organizations_known(
        {str(r["organization_id"]) for _, r in valid if r["organization_id"]}
    )
    placed = []
    for index, resource in valid:
        if resource["organization_id"]:
            field, organization_id = "organization_id", str(resource["organization_id"])
            known = organization_id in ids
        else:
            field, organization_id = "organization_name", names.get(resource["organization_name"])
            known = organization_id is not None
        if not known:
            results.append(batches.refused(index, {field: [UNKNOWN_ORGANIZATION]}))
        elif not access.may_publish_for(caller, organization_id):
            results.append(batches.refused(index, {field: [imports.OWN_ORGANIZATION_ONLY]}))
        else:
            placed.append((index, {**resource, "organization_id": organization_id}))
    existing = uow.store.resources_titled({(r["organization_id"], r["title"]) for _, r in placed})
    for index, resource in placed:
        key = (resource["organization_id"], resource["title"])
        if key in existing:
            results.append(batches.existing(index, existing[key]))
            continue
        data = {k: v for k, v in resource.items() if k != "organization_name"}
        row = uow.store.insert_resource(str(uuid.uuid4()), data)
        uow.publish("resource.published", published_data(row), subject=row["id"])
        existing[key] = row["id"]
        results.append(batches.created(index, row["id"]))
    return batches.outcome(results)


def list_resources(query: dict, uow) -> Page:
    return uow.store.resources(query, uow.today())


def get_resource(resource_id, uow) -> dict:
    found = uow.store.resource(resource_id)
    if found is None:
        raise NotFound("No such resource.")
    return found


def withdraw_resource(resource_id, caller: Caller, uow) -> None:
    found = uow.store.resource(resource_id, lock=True)
    if found is None:
        raise NotFound("No such resource.")
    if not access.acts_for(caller, found["organization_id"]):
        raise Forbidden("This belongs to another organization.")
    if not uow.store.withdraw_resource(resource_id):
        raise Conflict("The resource is withdrawn already.")
    uow.publish(
        "resource.withdrawn",
        {"resource_id": found["id"], "organization_id": found["organization_id"]},
        subject=found["id"],
    )


def change_resource(resource_id, command: dict, caller: Caller, uow) -> dict:
    """A resource's places or validity changed by its organization's provider (or an admin):
    only the fields given, every broken rule named at once (places not below those taken,
    `valid_until` not past nor before `valid_from`, the stored one where it is not given).
    The row's catalog version moves (the trigger of every write), so each replica's catalog
    takes the change; `resource.published` again with its current terms re-matches those it
    was matched to and those it fits now."""
    found = uow.store.resource(resource_id, lock=True)
    if found is None:
        raise NotFound("No such resource.")
    if not access.acts_for(caller, found["organization_id"]):
        raise Forbidden("This belongs to another organization.")
    if found["withdrawn_at"] is not None:
        raise Conflict("The resource is withdrawn already.")
    changes = {k: v for k, v in command.items() if v != found[k]}
    if not changes:
        return found
    after = {**found, **changes}
    taken = found["capacity"] - found["capacity_left"]
    problems: dict[str, list[str]] = {}
    if "capacity" in changes and changes["capacity"] < taken:
        problems["capacity"] = [BELOW_PLACES_TAKEN]
    end, start = after["valid_until"], after["valid_from"]
    if "valid_until" in changes and end is not None and end < uow.today():
        problems.setdefault("valid_until", []).append(MUST_NOT_BE_PAST)
    if end is not None and start is not None and end < start:
        problems.setdefault("valid_until", []).append(MUST_NOT_PRECEDE_VALID_FROM)
    if problems:
        raise Unprocessable(fields=problems)
    row = uow.store.change_resource(resource_id, changes)
    uow.publish("resource.published", published_data(row), subject=row["id"])
    return row


def seed_reference(organizations, resources: list[dict], uow) -> dict:
    """The reference organizations and resources not stored yet; each new resource is
    published, so reverse matching and subscribers see it. Returns how many were added."""
    added = {"organizations": 0, "resources": 0}
    for organization_id, name, kind, district in organizations:
        added["organizations"] += uow.store.add_organization(organization_id, name, kind, district)
    for resource in resources:
        if uow.store.resource(resource["id"]) is not None:
            continue
        row = uow.store.insert_resource(resource["id"], resource)
        uow.publish("resource.published", published_data(row), subject=row["id"])
        added["resources"] += 1
    return added


# ---------------------------------------------------------------- matches


# A returnee's matches, read whole (they are the best few the matcher kept) and paged by rank.
MATCHES = Keyset("rank", "resource_id", types=(int, UUID))


def list_matches(returnee_id, query: dict, locale: str, uow, access: dict | None = None) -> Page:
    """The returnee's matches still on offer today, best first, reasons in `locale`. Staff
    read them through a case or a reason (`chassis.access`), recorded."""
    staff_access.require_link(access, returnee_id, uow.store.case_returnee)
    staff_access.record(uow, returnee_id, access, "matches")
    rows = MATCHES.slice(uow.store.matches_of(returnee_id, uow.today()), query)
    for row in rows:
        row["reasons"] = explained(row["reasons"], locale)
    return rows


def give_feedback(match_id, command: dict, caller: Caller, locale: str, uow,
                  policy: MatchPolicy) -> dict:  # fmt: skip
    """`interested` marks the match; `not_interested` dismisses its resource for good and
    re-matches the returnee. Another returnee's match is not found."""
    uow.store.lock_matches([caller.id])  # before the match row: the order `_rematch` uses
    found = uow.store.match(match_id, lock=True)
    if found is None or found["returnee_id"] != caller.id:
        raise NotFound("No such match.")
    if command["interest"] == "interested":
        uow.store.set_match_status(caller.id, found["resource_id"], "interested")
        row = next(
            (
                m
                for m in uow.store.matches_of(caller.id, uow.today())
                if m["match_id"] == found["match_id"]
            ),
            None,
        )
        if row is None:
            raise Conflict("The resource is no longer on offer.")
        row["reasons"] = explained(row["reasons"], locale)
        return row
    uow.store.dismiss(caller.id, found["resource_id"])
    _rematch(uow, [caller.id], policy)
    return {**found, "status": "not_interested", "reasons": []}


# ---------------------------------------------------------------- cooperation intentions


def express_intention(command: dict, caller: Caller, uow) -> dict:
    """On a resource matched to the returnee and on offer; or (no `resource_id`) toward an
    organization met at an activity the returnee attended, which an advisor or an admin may
    record for them (`returnee_id`) at the door. An erased returnee's token, valid for the
    seconds its revocation takes, is refused (403 erased)."""
    if access.is_staff(caller):
        if command["returnee_id"] is None:
            raise Unprocessable(fields={"returnee_id": [RETURNEE_WHO_ATTENDED]})
        returnee_id = str(command["returnee_id"])
        if uow.store.is_erased(returnee_id):
            raise Conflict("This returnee's account was erased.")
        return _express_at_activity(command, returnee_id, uow)
    if command["returnee_id"] is not None and str(command["returnee_id"]) != caller.id:
        raise Forbidden("Returnees express only their own intentions.")
    if uow.store.is_erased(caller.id):
        raise Forbidden("This account was erased.", code="erased")
    if command["resource_id"] is None:
        return _express_at_activity(command, caller.id, uow)
    today = uow.today()
    resource = uow.store.resource(command["resource_id"])
    if resource is None:
        raise NotFound("No such resource.")
    matched = {m["resource_id"] for m in uow.store.matches_of(caller.id, today)}
    if resource["id"] not in matched:
        if not _on_offer(resource, today):
            raise Conflict("The resource is no longer on offer (withdrawn, expired or full).")
        raise Conflict("You can express interest only in resources matched to you.")
    row = uow.store.insert_intention(uuid.uuid4(), caller.id, resource, command["message"])
    if row is None:
        raise Conflict("You have expressed interest in this resource already.")
    uow.store.set_match_status(caller.id, resource["id"], "interested")
    version, data = intention_event(row)
    uow.publish("intention.expressed", data, subject=row["intention_id"], version=version)
    return row


def accept_intention(intention_id, command: dict, caller: Caller, uow) -> dict:
    """Takes one place of the resource; the last place taken queues everyone it was matched
    to for the re-match loop (it leaves their matches)."""
    row = _decide(uow, caller, intention_id, "accepted", command["message"])
    if row["resource_id"] is not None:  # met at an activity: no place to take
        left = uow.store.take_place(row["resource_id"])
        if left is None:
            # Raising rolls the decision back: the intention stays open.
            raise Conflict("The resource has no place left.")
        if left == 0:
            uow.store.queue_rematch(uow.store.returnees_matched_to(row["resource_id"]))
    return _announce(uow, row, "accepted", command["message"])


def decline_intention(intention_id, command: dict, caller: Caller, uow,
                      policy: MatchPolicy) -> dict:  # fmt: skip
    """A declined returnee is not proposed the same resource again."""
    row = _decide(uow, caller, intention_id, "declined", command["message"])
    if row["resource_id"] is not None:  # met at an activity: no resource to dismiss
        uow.store.dismiss(row["returnee_id"], row["resource_id"])
        _rematch(uow, [row["returnee_id"]], policy)
    return _announce(uow, row, "declined", command["message"])


def list_intentions(query: dict, caller: Caller, uow, seen: dict | None = None) -> Page:
    """A returnee's own, a provider's organization's, every one for advisors and admins: each
    a staff read of its returnee's data (name, message), recorded."""
    scope = access.intention_scope(caller)
    if scope is None:
        raise Forbidden("Your account has no organization.")
    rows = uow.store.intentions(
        **scope, status=query.get("status"), cursor=query["cursor"], limit=query["limit"]
    )
    staff_access.record_each(uow, rows, seen, "intentions")
    return rows


def intention_statistics(uow) -> dict:
    rows = uow.store.intention_statistics()
    return {"accepted": sum(r["accepted"] for r in rows), "organizations": rows}


# ---------------------------------------------------------------- events of others


def remember_organization(event: Event, uow) -> None:
    """organization.registered: the organization is known (seeded ones keep their ids)."""
    data = event.data
    uow.store.save_organization(
        data["organization_id"], data["name"], data["kind"], data["district"]
    )


def match_returnee(event: Event, uow, policy: MatchPolicy) -> None:
    """returnee.registered / updated: with consent to matching, the minimum kept and the
    returnee re-matched (`matches.proposed` when the set changed); without, as a withdrawal.
    An older profile than the stored one is ignored."""
    data = event.data
    returnee_id = str(data["returnee_id"])
    uow.store.lock_matches([returnee_id])  # serializes with erasure and re-matches
    if not data["consents"]["matching"]:
        if not uow.store.is_erased(returnee_id):
            _forget(uow, returnee_id, event.time)
        return
    profile = {
        "locale": data["locale"],
        "industry": data["industry"],
        "startup_stage": data["startup_stage"],
        "needs": sorted(set(data["needs"])),
        "district": (data["company"] or {}).get("registered_district"),
    }
    saved = uow.store.save_returnee(returnee_id, profile, event.time)  # None: erased, or later
    if saved is not None:
        _rematch(uow, [returnee_id], policy, saved={returnee_id: saved})


def follow_consent(event: Event, uow) -> None:
    """consent.changed: a withdrawal of consent to matching forgets the returnee. Granting again
    needs the profile, which comes with the `returnee.updated` accounts publishes for the same
    change; only a withdrawal is acted on here."""
    data = event.data
    if data["purpose"] != "matching" or data["granted"]:
        return
    _forget(uow, str(data["returnee_id"]), data["changed_at"])


def erase_returnee(event: Event, uow) -> None:
    returnee_id = str(event.data["returnee_id"])
    uow.store.lock_matches([returnee_id])
    intention_ids = uow.store.erase_returnee(returnee_id)
    # Published events kept for retention name the person (and quote their messages).
    for subject in (returnee_id, *intention_ids):
        uow.forget_published(subject)


def remember_activity(event: Event, uow) -> None:
    """activity.published: its organizers; intentions met at the activity may go to them."""
    data = event.data
    uow.store.record_activity_organizations(data["activity_id"], data["organizer_ids"])


def record_attendance(event: Event, uow) -> None:
    """attendance.recorded: a returnee who attended may express intentions there; an
    organization whose representative attended may receive them."""
    data = event.data
    if data["returnee_id"] is not None and not uow.store.is_erased(data["returnee_id"]):
        uow.store.record_attendance(data["activity_id"], data["returnee_id"])
    if data["organization_id"] is not None:
        uow.store.record_activity_organizations(data["activity_id"], [data["organization_id"]])


# ---------------------------------------------------------------- reverse matching


def rematch_for_resource(event: Event, db, wake_rematch, policy: MatchPolicy) -> int:
    """resource.published / withdrawn: the returnees a new resource fits, or those a withdrawn
    one was matched to, are queued for the re-match loop (`rematch_batch`), in the unit of
    work that records the inbox; the loop is woken once it commits. No lock is taken on
    anyone's matches. Returns how many were queued."""
    resource_id = str(event.data["resource_id"])
    with db.unit_of_work() as uow:
        affected = set(uow.store.returnees_matched_to(resource_id))
        if event.type == "resource.published":
            found = uow.store.resource(resource_id)
            if found is not None and found["withdrawn_at"] is None:
                affected.update(_fitting(uow, as_resource(found), policy))
        queued = uow.store.queue_rematch(affected)
    wake_rematch()
    return queued


def rematch_batch(uow, batch_size: int, policy: MatchPolicy) -> bool:
    """The next `batch_size` queued returnees (replicas share the queue) re-matched, their
    `matches.proposed` published where the set changed, and taken off the queue, in this unit
    of work. False: nobody is queued."""
    batch = uow.store.claim_rematch(batch_size)
    if not batch:
        return False
    _rematch(uow, batch, policy)
    uow.store.rematched(batch)
    return True


# ---------------------------------------------------------------- shared steps


def _express_at_activity(command: dict, returnee_id: str, uow) -> dict:
    """Toward an organization that organized or attended an activity the returnee attended
    (both learnt from activities' events); one lifecycle with the others."""
    activity_id, organization_id = command["activity_id"], command["organization_id"]
    if uow.store.organization(organization_id) is None:
        raise Unprocessable(fields={"organization_id": [UNKNOWN_ORGANIZATION]})
    if not uow.store.attended(activity_id, returnee_id):
        raise Conflict("You can express an intention at an activity only after attending it.")
    if not uow.store.took_part(activity_id, organization_id):
        raise Conflict("The organization neither organized nor attended this activity.")
    row = uow.store.insert_activity_intention(
        uuid.uuid4(), returnee_id, activity_id, organization_id, command["message"]
    )
    if row is None:
        raise Conflict("You have expressed interest in this organization at this activity already.")
    version, data = intention_event(row)
    uow.publish("intention.expressed", data, subject=row["intention_id"], version=version)
    return row


def _decide(uow, caller: Caller, intention_id, status: str, message) -> dict:
    found = uow.store.intention(intention_id)
    if found is None:
        raise NotFound("No such intention.")
    if not access.acts_for(caller, found["organization_id"]):
        raise Forbidden("This belongs to another organization.")
    row = uow.store.decide_intention(intention_id, status, message)
    if row is None:
        raise Conflict("The intention has been decided already.")
    return row


def _announce(uow, row: dict, status: str, message) -> dict:
    version, data = intention_event(row)
    event = {**data, "message": message}
    uow.publish(f"intention.{status}", event, subject=row["intention_id"], version=version)
    return row


def _fitting(uow, resource, policy: MatchPolicy) -> list[str]:
    """The stored returnees the resource passes the hard filters for, over the returnees'
    columns the replica holds (brought up to date with the rows changed since it last read)."""
    dismissed = uow.store.dismissed_by(resource.id)
    table = uow.store.returnee_table()
    return [r for r, _ in fitting(resource, table, policy, uow.today(), dismissed)]


def _rematch(uow, returnee_ids, policy: MatchPolicy, saved: dict | None = None) -> None:
    """Recompute and store the matches of these few returnees (a batch at most); publish
    `matches.proposed` for each whose set of matched resources changed. `saved`: what
    `save_returnee` returned of those whose profile this unit of work just stored (under their
    lock), not read again.

    The returnees' matches are locked first, then the catalog is read: a concurrent re-match of
    the same returnee waits and then reads a catalog at least as new. The work is written a few
    returnees at a time: each write is a round trip, during which the process serves requests,
    so no stretch of computing holds the process longer than a few of them."""
    if not returnee_ids:
        return
    returnee_ids = sorted(returnee_ids)
    uow.store.lock_matches(returnee_ids)
    today = uow.today()
    catalog = uow.store.catalog()  # read after the locks: see above
    saved = saved or {}
    unread = [r for r in returnee_ids if r not in saved]
    previous = uow.store.matched_resource_ids(unread) if unread else {}
    profiles = {p.returnee_id: p for p in uow.store.profiles(unread)} if unread else {}
    for returnee_id, known in saved.items():
        previous[returnee_id], profiles[returnee_id] = list(known.matched), known.profile
    for start in range(0, len(returnee_ids), WRITE_EVERY):
        chunk = returnee_ids[start : start + WRITE_EVERY]
        computed = {
            # no profile any more (consent withdrawn, erased): no matches
            rid: match_resources(profiles[rid], catalog, policy, today) if rid in profiles else []
            for rid in chunk
        }
        # The last write goes with the unit's next statement or its commit (`uow.write`): no
        # computing follows it here that its round trip would break up.
        uow.store.replace_matches(computed, held=start + WRITE_EVERY >= len(returnee_ids))
        proposals = []
        for returnee_id, matches in computed.items():
            added, removed = diff(previous[returnee_id], [m.resource_id for m in matches])
            if added or removed:
                proposals.append((proposed_data(returnee_id, matches, added, removed), returnee_id))
        uow.publish_many("matches.proposed", proposals)


def _forget(uow, returnee_id: str, withdrawn_at) -> None:
    """Consent withdrawn: profile, matches and dismissals deleted, the time of the withdrawal
    kept (an older profile event delivered later is ignored), the removal announced."""
    uow.store.lock_matches([returnee_id])
    uow.store.record_withdrawal(returnee_id, withdrawn_at)
    removed = uow.store.forget_returnee(returnee_id)
    if removed:
        uow.publish(
            "matches.proposed", proposed_data(returnee_id, [], [], removed), subject=returnee_id
        )


def _on_offer(resource: dict, today) -> bool:
    return (
        resource["withdrawn_at"] is None
        and resource["capacity_left"] > 0
        and (resource["valid_from"] is None or resource["valid_from"] <= today)
        and (resource["valid_until"] is None or resource["valid_until"] >= today)
    )
