"""A provider learns a returnee's contact only through an intention that returnee expressed to
the provider's organization (PIPL art. 23; docs/privacy.md). Every way a provider reads
anything is held here: the APIs a provider's token may call and what their answers hold, the
portal's /partner pages (which call those APIs with the provider's token, and nothing else),
and the notifications a provider is sent."""

import ast
import re
import uuid
from pathlib import Path

import pytest

from chassis.auth import Caller
from chassis.loader import service_class
from chassis.openapi import openapi_document, routes
from chassis.settings import SERVICES
from contracts.examples import ICBC, PROVIDER, RETURNEE, example
from services.notify import handlers as notify
from tests.unit.test_notify_handlers import SETTINGS, received, registered

# Property names of an answer that can hold a person's data.
PERSONAL = {"name", "email", "phone", "birth_date", "company", "education", "returnee_name",
            "message", "body", "html", "subject", "address", "context"}  # fmt: skip

# Every answer a provider's token may get that has such a property, reviewed: what the property
# is, and what keeps it to the provider's own organization.
REVIEWED = {
    ("accounts", "get", "/organizations"): {"name"},  # organizations' names (public)
    # The registrant's own profile, as they sent it (public: the registration itself).
    ("accounts", "post", "/returnees"): {
        "name",
        "email",
        "phone",
        "birth_date",
        "company",
        "company.name",
        "education",
    },  # fmt: skip
    # The intention's message, from the returnee to the organization it is addressed to: a
    # provider lists and decides only its organization's (matching.access, tests below).
    ("matching", "get", "/intentions"): {"message"},
    ("matching", "post", "/intentions/{intention_id}/accept"): {"message"},
    ("matching", "post", "/intentions/{intention_id}/decline"): {"message"},
    # The caller's own notifications (notify.access.may_act_for); what a provider is sent about
    # a returnee is held below.
    ("notify", "get", "/notifications"): {"body", "html", "subject", "address"},
    ("notify", "get", "/topics"): {"name"},  # a topic's name
    # Activities: venues' names and addresses, organizations' names (an agreement's returnee
    # party is shown by its kind alone, activity.party_view); a registration is the registrant's
    # own, and its `name` is given to staff alone (seats.view; a provider reading another's is
    # refused: test_get_registration_shows_the_code_to_the_registrant_only).
    ("activities", "get", "/activities"): {
        "items[].venue.name",
        "items[].venue.address",
        "items[].organizers[].name",
    },  # fmt: skip
    ("activities", "get", "/activities/{activity_id}"): {
        "venue.name",
        "venue.address",
        "organizers[].name",
        "agreements[].parties[].name",
    },
    ("activities", "post", "/activities/{activity_id}/registrations"): {"name"},
    ("activities", "get", "/activities/{activity_id}/registrations/{registration_id}"): {"name"},
}


def _resolve(doc: dict, ref: str) -> dict:
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _paths(doc: dict, schema, prefix: str = "", seen: frozenset = frozenset()) -> set[str]:
    """The dotted paths of the properties an answer of `schema` may hold."""
    found = set()
    if not isinstance(schema, dict):
        return found
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return found
        return _paths(doc, _resolve(doc, schema["$ref"]), prefix, seen | {schema["$ref"]})
    for name, sub in schema.get("properties", {}).items():
        found.add(prefix + name)
        found |= _paths(doc, sub, f"{prefix}{name}.", seen)
    if isinstance(schema.get("items"), dict):
        inner = prefix.removesuffix(".") + "[]." if prefix else ""
        found |= _paths(doc, schema["items"], inner, seen)
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(key, []):
            found |= _paths(doc, sub, prefix, seen)
    return found


def provider_may_call(entrypoint) -> bool:
    if entrypoint.roles is not None:
        return "provider" in entrypoint.roles
    return not entrypoint.owner  # public, or any signed-in caller


def personal_answers_to_providers() -> dict:
    found = {}
    for service in SERVICES:
        cls = service_class(service)
        doc = openapi_document(cls)
        for _, entrypoint in routes(cls):
            if not provider_may_call(entrypoint):
                continue
            path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", entrypoint.url)
            for method in entrypoint.method.lower().split(","):
                operation = doc["paths"][path][method.strip()]
                held = set()
                for status, answer in operation["responses"].items():
                    if status.startswith("2"):
                        for content in answer.get("content", {}).values():
                            held |= _paths(doc, content.get("schema"))
                personal = {p for p in held if p.rsplit(".", 1)[-1].removesuffix("[]") in PERSONAL}
                if personal:
                    found[(service, method.strip(), path)] = personal
    return found


def test_no_answer_a_provider_may_get_holds_personal_data_but_what_was_reviewed():
    found = personal_answers_to_providers()
    # A returnee's profile (name, email, phone...) is for the returnee, advisors and admins:
    # were a provider allowed at GET /returnees/{id}, it would appear here.
    unreviewed = {k: sorted(v) for k, v in found.items() if not v <= REVIEWED.get(k, set())}
    assert unreviewed == {}, "a provider may read these: review them (REVIEWED)"
    assert not any(k[2].startswith(("/returnees/", "/search/")) for k in found)


def test_the_review_would_see_a_profile_opened_to_providers(monkeypatch):
    cls = service_class("accounts")
    (entrypoint,) = [e for _, e in routes(cls) if e.url == "/returnees/<returnee_id>"
                     and e.method == "GET"]  # fmt: skip
    monkeypatch.setattr(entrypoint, "roles", (*entrypoint.roles, "provider"))
    found = personal_answers_to_providers()
    assert {"email", "phone", "name"} <= found[("accounts", "get", "/returnees/{returnee_id}")]


PORTAL_CALL = re.compile(r"^(get|post|put|patch|delete)$")


def test_the_partner_pages_call_only_apis_reviewed_for_providers():
    """services/portal/partner.py calls the services with the provider's own token
    (`acting_for`): it shows nothing those answers do not hold."""
    tree = ast.parse(Path("services/portal/partner.py").read_text())
    calls = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and PORTAL_CALL.match(node.func.attr) and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "api"):  # fmt: skip
            service = node.args[0].value
            target = node.args[1]
            path = (
                target.value
                if isinstance(target, ast.Constant)
                else "".join(
                    v.value if isinstance(v, ast.Constant) else "{id}" for v in target.values
                )
            )
            calls.add((service, node.func.attr, re.sub(r"\{[^}]*\}", "{id}", path)))
    assert calls, "the partner pages call the services through `api`"

    def matching(call):  # a formatted segment stands for any segment
        pattern = re.escape(call[2]).replace(re.escape("{id}"), "[^/]+")
        return {
            (s, m, p)
            for s, m, p in provider_routes()
            if (s, m) == call[:2] and re.fullmatch(pattern, re.sub(r"\{[^}]*\}", "x", p))
        }

    with_personal = personal_answers_to_providers()
    for call in calls:
        reached = matching(call)
        assert reached, f"{call}: no API a provider may call"
        assert {r for r in reached if r in with_personal} <= set(REVIEWED), call


def provider_routes() -> set[tuple[str, str, str]]:
    found = set()
    for service in SERVICES:
        for _, entrypoint in routes(service_class(service)):
            if provider_may_call(entrypoint):
                path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", entrypoint.url)
                for method in entrypoint.method.lower().split(","):
                    found.add((service, method.strip(), path))
    return found


# --- notify: what a provider is sent --------------------------------------------------------

OTHER_ORGANIZATION = str(uuid.uuid4())
ELSEWHERE = str(uuid.uuid4())  # a provider of another organization
NOWHERE = str(uuid.uuid4())  # a provider whose organization is not (yet) recorded


@pytest.fixture
def db():
    from chassis.clock import FrozenClock
    from chassis.uow import MemoryDatabase
    from services.notify.memory import MemoryStore
    from tests.unit.test_notify_handlers import NOW

    clock = FrozenClock(NOW)
    return MemoryDatabase("notify", MemoryStore(clock), clock=clock)


def _staff(db, staff_id, organization_id, name):
    data = {**example("staff.registered").data, "staff_id": staff_id, "name": name,
            "email": f"{name.lower()}@example.org", "organization_id": organization_id}  # fmt: skip
    db.handle(notify.take_staff, received("staff.registered", **data), settings=SETTINGS)


def test_a_provider_is_told_of_a_returnee_only_by_an_intention_to_its_organization(db):
    returnee = example("returnee.registered").data
    contact = [returnee["name"], returnee["email"], returnee["phone"]]
    for type_ in ("organization.registered", "resource.published", "activity.published"):
        db.handle(notify.EVENT_HANDLERS[type_], received(type_), settings=SETTINGS)
    db.handle(notify.take_staff, received("staff.registered"), settings=SETTINGS)  # ICBC's
    _staff(db, ELSEWHERE, OTHER_ORGANIZATION, "Zhao")
    _staff(db, NOWHERE, None, "Qian")
    registered(db)
    # Every event notify takes that concerns the returnee, once each.
    for type_, take in notify.EVENT_HANDLERS.items():
        if type_ in ("returnee.erased", "returnee.registered", "staff.registered",
                     "staff.updated", "account.link_issued"):  # fmt: skip
            continue
        event = received(type_)
        if "returnee_id" in event.data or type_.startswith(("registration.", "activity.")):
            db.handle(take, event, settings=SETTINGS)
    # The intention was ICBC's; the same returnee's intention to another organization.
    to_other = {**example("intention.expressed").data, "intention_id": str(uuid.uuid4()),
                "organization_id": OTHER_ORGANIZATION}  # fmt: skip
    db.handle(notify.announce_event, received("intention.expressed", **to_other),
              settings=SETTINGS)  # fmt: skip

    def quoting(recipient):
        return [n for n in db.store.notifications.values() if n["recipient_id"] == recipient
                and any(c in " ".join(str(n[k] or "") for k in ("subject", "body", "html"))
                        for c in contact)]  # fmt: skip

    told = quoting(PROVIDER)
    assert told and {n["template"] for n in told} == {"intention_update"}
    assert {n["context"]["intention_id"] for n in told} == {example("intention.expressed")
                                                           .data["intention_id"]}  # fmt: skip
    for n in told:  # the name only: the email and the phone are never sent to a provider
        text = " ".join(str(n[k] or "") for k in ("subject", "body", "html"))
        assert returnee["email"] not in text and returnee["phone"] not in text
    elsewhere = quoting(ELSEWHERE)  # its own organization's intention, and nothing else
    assert {n["context"]["intention_id"] for n in elsewhere} == {to_other["intention_id"]}
    assert quoting(NOWHERE) == []
    assert quoting(ICBC) and all(n["template"] == "intention_update" for n in quoting(ICBC))


def test_a_provider_reads_only_its_own_notifications(db):
    from chassis.errors import Forbidden
    from services.notify.handlers import list_notifications

    registered(db)
    db.handle(notify.take_staff, received("staff.registered"), settings=SETTINGS)
    db.handle(notify.announce_event, received("eligibility.assessed"), settings=SETTINGS)
    query = {"recipient_id": RETURNEE, "channel": None, "limit": 50}
    chen = Caller(PROVIDER, "provider", ICBC)
    with db.unit_of_work() as uow:
        assert list_notifications(query, Caller(RETURNEE, "returnee"), uow)  # theirs exist
        with pytest.raises(Forbidden):
            list_notifications(query, chen, uow)
        assert list_notifications({**query, "recipient_id": PROVIDER}, chen, uow) == []
