"""The HTTP chassis as a client sees it: JSON errors in the caller's language, schemas, tokens."""

import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import eventlet
import pytest
import requests
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from chassis.auth import TokenIssuer
from chassis.db import Database
from chassis.errors import Conflict, add_rules
from chassis.operable import Operable
from chassis.paging import Keyset
from chassis.settings import nameko_config
from chassis.web import MAX_LIST_ITEMS, http
from contracts import CATALOG
from tests.support import free_port, publish_events, service_url, wait_until


class Greeting(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=20))
    age = fields.Integer(required=True, validate=validate.Range(min=0, max=150))
    shy = fields.Boolean(load_default=False)


ENDS_FIRST = "Must be after starts."
add_rules(ENDS_FIRST)


class Meeting(Schema):
    starts = fields.AwareDateTime(required=True)
    ends = fields.AwareDateTime(required=True)
    day = fields.Date(load_default=None)
    note = fields.String(load_default="")

    @validates_schema
    def _in_order(self, data, **kwargs):
        if data["ends"] <= data["starts"]:
            raise ValidationError(ENDS_FIRST, "ends")


class Listing(Schema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


BUSY = eventlet.event.Event()  # what /busy waits for
JSON = {"Content-Type": "application/json"}


class Number(Schema):
    n = fields.Integer()


NUMBERS: list[dict] = []  # what /numbers lists; a test adds to it between pages
BY_N = Keyset("n", types=(int,))


class Tags(Schema):
    tags = fields.List(fields.String(), required=True)  # no maximum of its own


class Hello(Operable):
    """A service answering greetings, to exercise the chassis."""

    name = "accounts"
    db = Database()

    @http("POST", "/greetings", body=Greeting, status=201)
    def greet(self, request, body):
        if body["name"] == "taken":
            raise Conflict("That name is taken.", zh="该名称已被占用。")
        return {"hello": body["name"], "locale": request.locale}

    @http("POST", "/meetings", body=Meeting, optional_body=True, rules=("ends is after starts",))
    def meet(self, request, body):
        return {"note": body["note"]}

    @http("GET", "/greetings", query=Listing)
    def list_greetings(self, request, query):
        return {"limit": query["limit"]}

    @http("GET", "/greetings/<greeting_id>", roles=["admin"], owner="greeting_id")
    def read(self, request, greeting_id):
        return {"id": greeting_id, "caller": request.caller.role}

    @http("DELETE", "/greetings/<uuid:greeting_id>", status=204, roles=["advisor", "admin"])
    def forget(self, request, greeting_id):
        return 204, None

    @http("GET", "/busy")
    def busy(self, request):
        BUSY.wait()
        return {"done": True}

    @http("GET", "/boom")
    def boom(self, request):
        raise RuntimeError("a bug")

    @http("POST", "/tags", body=Tags)
    def tag(self, request, body):
        return {"tags": len(body["tags"])}

    @http("GET", "/numbers", response=Number(many=True), paged=True)
    def numbers(self, request, query):
        return BY_N.slice(NUMBERS, query)


@pytest.fixture
def base_url(container_factory, config_for):
    container = container_factory(Hello, config_for("accounts"))
    container.start()
    return service_url(container)


def test_field_errors_come_back_as_400_in_the_callers_language(base_url):
    en = requests.post(f"{base_url}/greetings", json={"name": "", "age": 200})
    assert en.status_code == 400
    assert en.json() == {
        "error": "invalid",
        "message": "The request has invalid fields.",
        "fields": {
            "name": ["Length must be between 1 and 20."],
            "age": ["Must be greater than or equal to 0 and less than or equal to 150."],
        },
    }
    zh = requests.post(
        f"{base_url}/greetings",
        json={"age": "old"},
        headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"},
    )
    assert zh.status_code == 400
    assert zh.json()["message"] == "请求中有无效字段。"
    assert zh.json()["fields"] == {"name": ["缺少必填字段。"], "age": ["不是有效的整数。"]}


def test_bodies_that_are_not_json_objects_are_rejected_with_4xx(base_url):
    assert requests.post(f"{base_url}/greetings", data="{oops", headers={
        "Content-Type": "application/json"}).status_code == 400  # fmt: skip
    assert requests.post(f"{base_url}/greetings", json=[1, 2]).status_code == 400
    assert requests.post(f"{base_url}/greetings", data="name=x").status_code == 415


def test_bodies_take_json_types_and_no_text_with_nul(base_url):
    wrong = [
        ({"age": "30"}, "age"),
        ({"age": 30.5}, "age"),
        ({"age": True}, "age"),
        ({"shy": 0}, "shy"),
        ({"shy": "yes"}, "shy"),
    ]
    for change, field in wrong:  # marshmallow alone takes these: "30" -> 30, 30.5 -> 30, 0 -> False
        response = requests.post(f"{base_url}/greetings", json={"name": "Li", "age": 30, **change})
        assert response.status_code == 400 and set(response.json()["fields"]) == {field}, change
    shy = requests.post(f"{base_url}/greetings", json={"name": "Li", "age": 30, "shy": True})
    assert shy.status_code == 201
    # JSON has one number type: 30.0 is the integer 30, as JSON Schema's `integer` has it
    whole = requests.post(f"{base_url}/greetings", json={"name": "Li", "age": 30.0})
    assert whole.status_code == 201, whole.text
    too_big = requests.post(
        f"{base_url}/greetings", data='{"name": "Li", "age": 1e400}', headers=JSON
    )
    assert too_big.status_code == 400  # beyond a double: no number any column stores
    # dates and times as RFC 3339 says (the document's `format`), not all Python reads
    meeting = {"starts": "2026-12-01T09:00:00+08:00", "ends": "2026-12-01T10:00:00+08:00"}
    for change in ({"day": "20261201"}, {"day": "2026-W49-2"}, {"ends": "2026-12-01T10:00+08:00"},
                   {"ends": "2026-12-01 10:00:00+08:00"}):  # fmt: skip
        response = requests.post(f"{base_url}/meetings", json={**meeting, **change})
        assert response.status_code == 400, change
        assert set(response.json()["fields"]) == set(change), change
    assert requests.post(f"{base_url}/meetings", json={**meeting, "day": "2026-12-01"}).ok
    # PostgreSQL stores no U+0000 in text: refused up front, in the caller's language
    nul = requests.post(f"{base_url}/greetings", json={"name": "L\x00i", "age": 30})
    assert nul.status_code == 400
    assert nul.json()["message"] == "Text must not contain NUL characters."
    zh = requests.get(f"{base_url}/greetings?limit=%00", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 400 and zh.json()["message"] == "文本不能包含 NUL 字符。"


def test_a_body_breaking_only_a_stated_rule_is_a_422_and_alongside_others_a_400(base_url):
    meeting = {"starts": "2026-12-01T10:00:00+08:00", "ends": "2026-12-01T09:00:00+08:00"}
    rule = requests.post(f"{base_url}/meetings", json=meeting, headers={"Accept-Language": "en"})
    assert rule.status_code == 422
    assert rule.json() == {
        "error": "invalid",
        "message": "The request has invalid fields.",
        "fields": {"ends": ["Must be after starts."]},
    }
    both = requests.post(f"{base_url}/meetings", json={**meeting, "note": 5})
    assert both.status_code == 400 and set(both.json()["fields"]) == {"note"}
    # an optional body: none at all is the schema's defaults (here: missing fields)
    empty = requests.post(f"{base_url}/meetings")
    assert empty.status_code == 400 and set(empty.json()["fields"]) == {"starts", "ends"}


def test_a_204_has_no_body_and_no_content_type(base_url, token_for):
    gone = requests.delete(f"{base_url}/greetings/{uuid.uuid4()}", headers=token_for("admin"))
    assert gone.status_code == 204
    assert gone.content == b"" and "Content-Type" not in gone.headers


def test_success_conflict_query_and_unknown_routes(base_url):
    created = requests.post(f"{base_url}/greetings", json={"name": "Li", "age": 30})
    assert created.status_code == 201 and created.json() == {"hello": "Li", "locale": "en"}
    assert created.headers["X-Correlation-Id"]
    conflict = requests.post(
        f"{base_url}/greetings", json={"name": "taken", "age": 1}, headers={"Accept-Language": "zh"}
    )
    assert conflict.status_code == 409 and conflict.json()["message"] == "该名称已被占用。"
    assert requests.get(f"{base_url}/greetings?limit=5").json() == {"limit": 5}
    assert requests.get(f"{base_url}/greetings?limit=500").status_code == 400
    missing = requests.get(f"{base_url}/nowhere")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert requests.delete(f"{base_url}/greetings").status_code == 405


def test_a_bug_is_a_logged_500_without_details(base_url):
    response = requests.get(f"{base_url}/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal",
        "message": "Internal error; it has been logged.",
    }


def test_tokens_are_required_and_objects_are_guarded(base_url, token_for):
    assert requests.get(f"{base_url}/greetings/g1").status_code == 401
    assert (
        requests.get(f"{base_url}/greetings/g1", headers=token_for("returnee", "g2")).status_code
        == 403
    )
    assert (
        requests.get(f"{base_url}/greetings/g1", headers=token_for("returnee", "g1")).status_code
        == 200
    )
    assert (
        requests.get(f"{base_url}/greetings/g1", headers=token_for("admin")).json()["caller"]
        == "admin"
    )


def test_auth_errors_come_back_in_the_callers_language(base_url, token_for):
    issuer = TokenIssuer.from_config(nameko_config("accounts"))
    expired = issuer.issue("g1", "returnee", at=datetime.now(UTC) - timedelta(hours=1))
    greeting = f"{base_url}/greetings/g1"
    forget = f"{base_url}/greetings/{uuid.uuid4()}"
    cases = [  # method, url, headers, status, English, Chinese
        ("GET", greeting, {}, 401, "A bearer token is required.", "需要提供访问令牌。"),
        ("GET", greeting, {"Authorization": f"Bearer {expired}"}, 401,
         "The token has expired.", "访问令牌已过期。"),
        ("GET", greeting, {"Authorization": "Bearer not-a-token"}, 401,
         "The token is not valid: Not enough segments", "访问令牌无效：Not enough segments"),
        ("GET", greeting, {"Authorization": f"Bearer {issuer.issue('g1', 'superuser')}"}, 401,
         "The token names an unknown role.", "访问令牌中的角色未知。"),
        ("GET", greeting, token_for("returnee", "g2"), 403,
         "You may act only on your own data.", "您只能操作自己的数据。"),
        ("DELETE", forget, token_for("returnee"), 403,
         "This needs the role advisor or admin.", "此操作需要顾问或管理员角色。"),
    ]  # fmt: skip
    for method, url, headers, status, english, chinese in cases:
        for language, message in ((None, english), ("zh-CN", chinese), ("en-GB,zh;q=0.5", english)):
            language_header = {"Accept-Language": language} if language else {}
            response = requests.request(method, url, headers={**headers, **language_header})
            assert response.status_code == status, (url, headers, language)
            assert response.json()["message"] == message, (url, headers, language)


def test_a_body_over_the_maximum_is_413_before_it_is_read_or_authenticated(base_url):
    limit = nameko_config("accounts")["HTTP_MAX_BODY_BYTES"]
    assert limit == 64 * 1024
    small = requests.post(f"{base_url}/greetings", json={"name": "Li", "age": 30})
    assert small.status_code == 201
    padded = {"name": "Li", "age": 30, "pad": "x" * limit}
    for path in ("/greetings", f"/greetings/{uuid.uuid4()}"):  # public, and behind a token
        response = requests.post(f"{base_url}{path}", json=padded)
        if path != "/greetings":
            assert response.status_code in (405, 413)
            continue
        assert response.status_code == 413
        assert response.json() == {
            "error": "request_entity_too_large",
            "message": "The request body is too large.",
        }
    zh = requests.post(f"{base_url}/greetings", json=padded, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 413 and zh.json()["message"] == "请求体过大。"


def test_a_list_without_a_maximum_of_its_own_gets_the_chassis_one(base_url):
    allowed = requests.post(f"{base_url}/tags", json={"tags": ["a"] * MAX_LIST_ITEMS})
    assert allowed.status_code == 200, allowed.text
    too_many = requests.post(f"{base_url}/tags", json={"tags": ["a"] * (MAX_LIST_ITEMS + 1)})
    assert too_many.status_code == 400
    assert too_many.json()["fields"] == {"tags": [f"Longer than maximum length {MAX_LIST_ITEMS}."]}
    document = requests.get(f"{base_url}/openapi.json").json()
    body = document["paths"]["/tags"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["tags"]["maxItems"] == MAX_LIST_ITEMS


def test_revoked_credentials_stop_a_token_within_seconds(base_url, amqp_uri, token_for):
    subject = str(uuid.uuid4())
    url = f"{base_url}/greetings/{subject}"
    before = token_for("returnee", subject)
    assert requests.get(url, headers=before).status_code == 200
    time.sleep(0.01)  # the revocation is later than the token's issue
    revoked = CATALOG.create("accounts", "credentials.revoked", {
        "subject": subject, "not_before": datetime.now(UTC), "reason": "password_changed",
    }, subject=subject)  # fmt: skip
    published = time.monotonic()
    publish_events(amqp_uri, [revoked])
    wait_until(lambda: requests.get(url, headers=before).status_code == 401, 5, 0.05,
               "the revoked token refused")  # fmt: skip
    took = time.monotonic() - published
    response = requests.get(url, headers={**before, "Accept-Language": "zh-CN"})
    assert response.json() == {"error": "token_revoked", "message": "访问令牌已撤销，请重新登录。"}
    time.sleep(0.01)
    assert requests.get(url, headers=token_for("returnee", subject)).status_code == 200  # new one
    assert requests.get(url, headers=token_for("returnee")).status_code == 403  # others: as ever
    assert took < 5


class Unsubscribed(Hello):
    """Hello without the revocation subscriber every Operable service has: a service with a
    subscriber waits for the broker at start (nameko's consumer does), one without serves."""

    keep_revocation = None
    forget_in_queues = None


def test_readiness_names_the_broker_when_it_is_down(container_factory, config_for):
    closed_port = free_port()  # bound and closed again: nothing listens there
    config = config_for("accounts")
    config["AMQP_URI"] = f"amqp://guest:guest@127.0.0.1:{closed_port}/"
    container = container_factory(Unsubscribed, config)
    container.start()
    url = service_url(container)
    ready = requests.get(f"{url}/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready" and ready.json()["database"] == "ok"
    assert ready.json()["broker"].startswith("unavailable: ")
    assert "refused" in ready.json()["broker"].lower(), ready.json()
    live = requests.get(f"{url}/health/live")
    assert live.status_code == 200 and live.json() == {"status": "live", "service": "accounts"}


class SlowToBuild:
    """What a replica holds in memory, built at start until the test lets it finish."""

    release = None  # an eventlet Event, set by the test

    def start(self, uow):
        uow.one("SELECT 1 AS one")
        SlowToBuild.release.wait()


class HeldStore:
    def __init__(self, uow, replica):
        self.uow, self.replica = uow, replica


class Holding(Unsubscribed):
    db = Database(store=HeldStore, replica=SlowToBuild)


def test_a_replica_is_ready_once_what_it_holds_is_built(container_factory, config_for):
    SlowToBuild.release = eventlet.event.Event()
    container = container_factory(Holding, config_for("accounts"))
    container.start()
    url = service_url(container)
    building = requests.get(f"{url}/health/ready")
    assert building.status_code == 503, building.text
    assert building.json()["database"] == "ok" and building.json()["broker"] == "ok"
    assert building.json()["held"] == (
        "unavailable: what the replica holds in memory is still being built"
    )
    SlowToBuild.release.send(True)
    wait_until(lambda: requests.get(f"{url}/health/ready").status_code == 200, 10, 0.05, "ready")
    assert requests.get(f"{url}/health/ready").json() == {
        "status": "ready", "database": "ok", "broker": "ok", "held": "ok"
    }  # fmt: skip
    # A service holding nothing says nothing of it.
    plain = container_factory(Unsubscribed, config_for("accounts"))
    plain.start()
    assert "held" not in requests.get(f"{service_url(plain)}/health/ready").json()


def test_probes_are_answered_while_every_worker_is_busy(container_factory, config_for):
    global BUSY
    BUSY = eventlet.event.Event()
    container = container_factory(Hello, config_for("accounts", max_workers=2))
    container.start()
    url = service_url(container)
    waiting = [eventlet.spawn(requests.get, f"{url}/busy", timeout=30) for _ in range(4)]
    eventlet.sleep(0.3)  # two requests hold the workers, two wait for one
    try:
        for path in ("/health/live", "/health/ready", "/metrics"):
            assert requests.get(f"{url}{path}", timeout=2).status_code == 200, path
        with pytest.raises(requests.Timeout):  # anything else waits for a worker
            requests.get(f"{url}/greetings", timeout=0.5)
    finally:
        BUSY.send()
    assert [w.wait().status_code for w in waiting] == [200] * 4


def test_readiness_reconnects_when_the_broker_closed_the_connection(
    container_factory, config_for, rabbit_admin, vhost
):
    container = container_factory(Hello, config_for("accounts"))
    container.start()
    url = service_url(container)
    assert requests.get(f"{url}/health/ready").status_code == 200
    connections = wait_until(  # the relay's; the management API lists it within seconds
        lambda: rabbit_admin._call("GET", f"vhosts/{quote(vhost, safe='')}/connections"), 15
    )
    for connection in connections:  # as a broker restart, failover or idle timeout would
        rabbit_admin._call("DELETE", f"connections/{quote(connection['name'], safe='')}")
    ready = requests.get(f"{url}/health/ready")
    assert ready.status_code == 200, ready.json()


def test_openapi_document_is_valid_and_describes_the_routes(base_url):
    from openapi_spec_validator import validate as validate_openapi

    document = requests.get(f"{base_url}/openapi.json").json()
    validate_openapi(document)
    assert set(document["paths"]) >= {"/greetings", "/greetings/{greeting_id}", "/health/ready"}
    post = document["paths"]["/greetings"]["post"]
    assert "201" in post["responses"] and "requestBody" in post
    assert document["paths"]["/greetings/{greeting_id}"]["get"]["security"] == [{"bearer": []}]
    forget = document["paths"]["/greetings/{greeting_id}"]["delete"]
    assert forget["responses"]["204"] == {"description": "No Content"}  # no body
    assert forget["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}
    meet = document["paths"]["/meetings"]["post"]
    assert meet["requestBody"]["required"] is False
    assert meet["description"].endswith("\n- ends is after starts")
    assert meet["responses"]["422"]["content"] == post["responses"]["default"]["content"]
    # the chassis refuses U+0000 in any request text: said on every unconstrained string
    note = document["components"]["schemas"]["Meeting"]["properties"]["note"]
    assert note == {"type": "string", "default": "", "pattern": "^[^\\u0000]*$"}
    assert document["paths"]["/greetings/{greeting_id}"]["get"]["parameters"][0]["schema"] == {
        "type": "string", "pattern": "^[^\\u0000]*$"}  # fmt: skip
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]
    assert metrics["content"] == {"text/plain": {"schema": {"type": "string"}}}
    ready = document["paths"]["/health/ready"]["get"]["responses"]
    readiness = {"$ref": "#/components/schemas/Readiness"}
    assert ready["200"]["content"]["application/json"]["schema"] == readiness
    assert ready["503"]["content"]["application/json"]["schema"] == readiness
    assert set(document["components"]["schemas"]["Readiness"]["required"]) == {
        "status", "database", "broker"}  # fmt: skip


def test_metrics_count_requests_by_route_and_status(base_url):
    requests.post(f"{base_url}/greetings", json={"name": "", "age": 1})
    requests.get(f"{base_url}/greetings")
    text = requests.get(f"{base_url}/metrics").text
    assert (
        'http_requests_total{method="POST",route="/greetings",service="accounts",status="400"}'
        in text
    )
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/greetings"' in text
    assert 'outbox_pending{service="accounts"} 0.0' in text


def test_a_paged_list_is_an_array_and_names_its_next_page_in_link_and_x_next_cursor(base_url):
    NUMBERS[:] = [{"n": n} for n in range(0, 250, 2)]  # 125 even numbers
    first = requests.get(f"{base_url}/numbers")
    assert first.status_code == 200 and len(first.json()) == 50  # the default limit
    assert first.json()[:2] == [{"n": 0}, {"n": 2}]
    cursor = first.headers["X-Next-Cursor"]
    assert first.headers["Link"] == f'</numbers?cursor={cursor}>; rel="next"'
    second = requests.get(f"{base_url}/numbers", params={"limit": 3, "cursor": cursor})
    assert [item["n"] for item in second.json()] == [100, 102, 104]
    after = second.headers["X-Next-Cursor"]
    assert second.headers["Link"] == f'</numbers?limit=3&cursor={after}>; rel="next"'
    seen, url = [], f"{base_url}/numbers?limit=40"
    while True:
        page = requests.get(url)
        assert page.status_code == 200
        seen.extend(item["n"] for item in page.json())
        NUMBERS.append({"n": seen[-1] - 1})  # before the boundary: never listed
        NUMBERS.append({"n": 1000 + len(seen)})  # after it: listed on a later page
        if "Link" not in page.headers:
            assert "X-Next-Cursor" not in page.headers
            break
        url = base_url + page.links["next"]["url"]  # requests parses RFC 8288 Link headers
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    assert set(range(0, 250, 2)) <= set(seen)
    assert any(n > 1000 for n in seen)

    too_many = requests.get(f"{base_url}/numbers?limit=101")
    assert too_many.status_code == 400 and set(too_many.json()["fields"]) == {"limit"}
    # not base64url: breaks the document; {}, a key of two values: break the stated rule
    for bad, status in (("nonsense!", 400), ("e30", 422), ("WyJhIiwiYiJd", 422)):
        refused = requests.get(f"{base_url}/numbers", params={"cursor": bad})
        assert refused.status_code == status, bad
        assert set(refused.json()["fields"]) == {"cursor"}
    document = requests.get(f"{base_url}/openapi.json").json()
    listed = document["paths"]["/numbers"]["get"]
    assert set(listed["responses"]["200"]["headers"]) == {"Link", "X-Next-Cursor"}
    assert "cursor, when given, is the next cursor" in listed["responses"]["422"]["description"]
    assert {p["name"] for p in listed["parameters"]} == {"limit", "cursor"}


def test_the_portal_reads_a_paged_list_whole_unless_it_names_a_limit(base_url):
    from types import SimpleNamespace

    from services.portal.upstream import Platform

    NUMBERS[:] = [{"n": n} for n in range(230)]
    services = SimpleNamespace(
        settings=SimpleNamespace(urls={"accounts": base_url}, timeout=10), http=requests.Session()
    )
    api = Platform(services, SimpleNamespace(signed_in=False), "en", str(uuid.uuid4()))
    assert api.get("accounts", "/numbers", auth=False) == NUMBERS  # 50, then 100 a page
    assert api.get("accounts", "/numbers", params={"limit": 5}, auth=False) == NUMBERS[:5]
