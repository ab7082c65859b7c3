"""Hostile input is refused with 422 problem+json and changes nothing (issue 12, hole 11).

A class of test, not five cases: `test_every_route_refuses_hostile_values` walks the app's
OpenAPI document and, for every operation with path parameters, query parameters or a JSON
body, substitutes one hostile value at a time into a request that is otherwise valid:

- integers beyond 64 bits (2**63, -2**63-1, 2**70) in every integer field or parameter: 422;
- NUL and lone surrogates in every string field or parameter: 422;
- extreme dates and datetimes in every date field: never a 5xx, and a refusal changes nothing;
- a deeply nested body and, where a list has no maximum, a huge list: refused, nothing changed.

Walker routes are called as a walker, /v1/admin routes as an admin, so each request gets past
authentication into validation and handling. The request body comes from the operation's
schema (required fields, typed values; FIELD_EXAMPLES for values a type cannot say, such as a
password the policy accepts), so a new route is covered without editing this file. A route
the builder cannot make a valid request for fails the test with "add an example for ...";
a path id the world does not hold (a uuid or an integer) is a well-formed id naming nothing.

Every case collects its failures; the test reports them all in one readable message.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.admin.helpers import make_staff
from tests.conftest import TEST_PASSWORD, bearer, register, unique_email
from tests.console.helpers import browser_client, sign_in
from tests.console.helpers import make_staff as make_console_staff
from tests.shop.helpers import ADDRESS, order, product, walker_with_coins

INT64_MAX = 2**63 - 1
HOSTILE_INTS = [INT64_MAX + 1, -(2**63) - 1, 2**70]
HOSTILE_STRINGS = ["walker\x00name", "\ud800", "a\udfffb"]
HOSTILE_DATES = ["0001-01-01", "9999-12-31"]
HOSTILE_DATETIMES = [
    "0001-01-01T00:00:00+01:00",  # its UTC instant is before year 1
    "9999-12-31T23:59:59-01:00",  # its UTC instant is after year 9999
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
]
NESTING_DEPTH = 5000  # far beyond Python's recursion limit, far below the body-size limit
HUGE_LIST = 20_000

# Operations that carry no parameters and no JSON body a schema describes.
RAW_BODY_ROUTES = {("POST", "/v1/webhooks/shopify")}  # Shopify's signed raw delivery

# Values a field's type cannot say; keyed by the field's name, used wherever it appears.
FIELD_EXAMPLES: dict[str, Any] = {
    "password": TEST_PASSWORD,
    "current_password": TEST_PASSWORD,
    "new_password": "another correct horse battery",
    "full_name": "Probe Walker",
    "phone": "+49 30 1234567",
    "postal_code": "10115",
    "country": "DE",
    "timezone": "Europe/Berlin",
    "reason": "bad input probe",
    "amount": 5,
    "status": None,  # the enum's first value (see _generate)
}

# Operations whose valid request cannot pass validation from a static example (a token that
# only a mail carries, say): their hostile cases still run; say why, so a reader can judge.
VALID_REQUEST_MAY_FAIL: dict[tuple[str, str], str] = {
    # a walker's challenge invites friends; the walk's walker has none (422 not_friends)
    ("POST", "/v1/challenges"): "needs a friend of the caller",
}

# Whole bodies for operations whose valid body depends on the path (path template, method).
ROUTE_EXAMPLES: dict[tuple[str, str], Any] = {
    ("PUT", "/v1/admin/settings/{key}"): {"value": 10},  # the key is shop.max_quantity_per_item
    ("DELETE", "/v1/me"): {"password": TEST_PASSWORD},  # one proof: a password or an id_token
    ("POST", "/v1/admin/earn-rules"): {  # a day that has not begun anywhere
        "effective_from": "2099-01-01",
        "coins_per_1000_steps": 5,
        "daily_step_cap": None,
        "daily_coin_cap": 200,
    },
    ("POST", "/v1/challenges"): {  # a first day after today in its timezone
        "template": "total_steps",
        "name": "Probe challenge",
        "starts_on": "2099-01-01",
        "ends_on": "2099-01-03",
        "timezone": "UTC",
        "invitees": ["3ea8e6d0-9d28-4e04-b711-808ea1b7451b"],
    },
    ("POST", "/v1/admin/campaigns"): {  # a segment names at least one criterion
        "name": "Probe campaign",
        "message": "Thanks for walking",
        "coins_per_walker": 5,
        "segment": {"all_walkers": True},
    },
    ("POST", "/v1/admin/broadcasts"): {  # a segment names at least one criterion
        "title": "Probe broadcast",
        "body": "News for walkers",
        "segment": {"all_walkers": True},
        "draft": True,
    },
    ("PUT", "/v1/me/devices"): {  # a token of the platform's own form
        "platform": "ios",
        "environment": "production",
        "token": "ab" * 32,
        "app_version": "3.1.0",
        "timezone": "Europe/Berlin",
    },
}


@dataclass
class World:
    walker: dict[str, Any]
    admin: dict[str, Any]
    path_values: dict[str, Any]
    named: dict[str, Any]  # values of named fields that point at the world (product_id...)


async def build_world(client: httpx.AsyncClient, engine: AsyncEngine) -> World:
    walker = await walker_with_coins(client, engine, 10_000)
    admin = await make_staff(client, engine)
    target = await register(client)  # the account the admin routes act on
    product_id = await product(engine, price=10, stock=1000)
    placed = await order(client, walker["access_token"], [(product_id, 1)])
    assert placed.status_code == 201, placed.text
    today = datetime.now(UTC).date().isoformat()
    synced = await client.post(
        "/v1/steps",
        json={"records": [{"date": today, "steps": 4000, "source": "manual", "manual": True}]},
        headers=bearer(walker["access_token"]),
    )
    assert synced.status_code == 200, synced.text
    async with engine.begin() as conn:
        validation_id = (
            await conn.execute(text("SELECT max(id) FROM step_validations"))
        ).scalar_one()
        achievement_id = (
            await conn.execute(
                text(
                    "INSERT INTO achievements (code, name, unlock_criteria) VALUES "
                    "('probe', 'Probe', CAST(:k AS jsonb)) RETURNING id"
                ),
                {"k": json.dumps({"kind": "first_redemption"})},
            )
        ).scalar_one()
    assert validation_id is not None
    return World(
        walker=walker,
        admin=admin,
        path_values={
            "product_id": product_id,
            "order_id": placed.json()["id"],
            "validation_id": validation_id,
            "achievement_id": achievement_id,
            "user_id": target["user"]["id"],
            "key": "shop.max_quantity_per_item",
            "period": "daily",
            "source": "campaigns",  # an issuance budget's (PUT/DELETE one: a month's cap)
            "budget_period": "month",
            "date": today,  # the walker's flagged day: an appeal of it is 409 not_rejected
            "code": "ABCDEFGHJKMN",  # a friend invitation code no invitation has: 404
        },
        named={
            "product_id": product_id,
            "email": None,  # a fresh address each time (see _generate)
            "refresh_token": walker["refresh_token"],
            "login": {"email": walker["user"]["email"], "password": TEST_PASSWORD},
        },
    )


# --- reading the OpenAPI document --------------------------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref, and take the first non-null branch of anyOf/oneOf (Optional[...])."""
    while True:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = spec["components"]["schemas"][name]
        elif "anyOf" in schema or "oneOf" in schema:
            branches = schema.get("anyOf") or schema.get("oneOf")
            real = [b for b in branches if b.get("type") != "null"]
            schema = real[0]
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if kind == "string" and schema.get("format") in ("date", "date-time"):
        return str(schema["format"])
    if kind is None:
        return "any"
    return str(kind)


def _generate(spec: dict[str, Any], schema: dict[str, Any], name: str, world: World) -> Any:
    """A valid value for `schema`: required properties only, typed, examples by field name."""
    schema = _resolve(spec, schema)
    if name == "email" and schema.get("type") == "string":
        return unique_email("probe")
    if name in world.named and world.named[name] is not None:
        return world.named[name]
    if FIELD_EXAMPLES.get(name) is not None:
        return FIELD_EXAMPLES[name]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = _kind(schema)
    if kind == "object":
        required = schema.get("required", [])
        return {
            field: _generate(spec, schema["properties"][field], field, world) for field in required
        }
    if kind == "array":
        return [_generate(spec, schema["items"], name, world)]
    if kind == "integer":
        return int(max(schema.get("minimum", 1), 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "date":
        return datetime.now(UTC).date().isoformat()
    if kind == "date-time":
        offset = timedelta(hours=-1) if name == "start" else timedelta()
        return (datetime.now(UTC) + offset).isoformat()
    if kind == "string":
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        if "pattern" in schema:
            return f"probe-{uuid.uuid4().hex[:8]}"  # fits slug-like patterns; else add an example
        return "p" * max(int(schema.get("minLength", 1)), 5)
    raise LookupError(f"no value for a {kind!r} field named {name!r}")


Path = tuple[str | int, ...]


def _leaves(
    spec: dict[str, Any], schema: dict[str, Any], at: Path = ()
) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """Every field under `schema` (optional ones too; a list's first item): kind, schema."""
    schema = _resolve(spec, schema)
    kind = _kind(schema)
    if kind == "object" and "properties" in schema:
        for field, sub in schema["properties"].items():
            yield from _leaves(spec, sub, (*at, field))
        return
    if kind == "array":
        if "maxItems" not in schema:
            yield at, "unbounded-array", schema
        yield from _leaves(spec, schema["items"], (*at, 0))
        return
    yield at, kind, schema


def _with(
    spec: dict[str, Any], schema: dict[str, Any], body: Any, at: Path, value: Any, world: World
) -> Any:
    """`body` with the field at `at` set to `value`, its missing parents made valid."""
    body = copy.deepcopy(body)
    if not at:
        return value
    container, sub = body, _resolve(spec, schema)
    for index, step in enumerate(at):
        last = index == len(at) - 1
        if isinstance(step, int):
            sub = _resolve(spec, sub["items"])
        else:
            sub = _resolve(spec, sub["properties"][step])
        if last:
            container[step] = value
        else:
            missing = isinstance(step, int) and len(container) <= step
            if not missing and isinstance(step, str):
                missing = step not in container or container[step] is None
            if missing:
                made = _generate(spec, sub, str(step), world)
                if isinstance(step, int):
                    container.append(made)
                else:
                    container[step] = made
            container = container[step]
    return body


# --- the cases ----------------------------------------------------------------------------


@dataclass
class Case:
    label: str  # what was substituted where, for the failure message
    path: str  # the request path with its query string, already encoded
    body: bytes | None
    must_refuse: bool  # True: refused (422, or `refuse_with`) and nothing changed; False: no
    # 5xx, and a refusal changes nothing
    refuse_with: tuple[int, ...] = (422,)


def _url_text(value: str) -> str:
    """Percent-encode as a client would; a lone surrogate goes out as its 3 (invalid) bytes."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _hostile(kind: str) -> list[tuple[Any, bool]]:
    """(value, must_refuse) for a field of `kind`."""
    ints = [(v, True) for v in HOSTILE_INTS]
    strings = [(v, True) for v in HOSTILE_STRINGS]
    if kind == "integer":
        return ints
    if kind == "number":
        return [(v, False) for v in HOSTILE_INTS]
    if kind == "string":
        return strings
    if kind == "date":
        return [(v, False) for v in HOSTILE_DATES] + strings
    if kind == "date-time":
        return [(v, False) for v in HOSTILE_DATETIMES] + strings
    if kind == "any":
        return ints + strings
    return []  # booleans: the type refuses anything else


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()  # ensure_ascii: lone surrogates travel as \\udXXX escapes


def route_cases(
    spec: dict[str, Any], method: str, template: str, operation: dict[str, Any], world: World
) -> tuple[list[Case], Case]:
    """The hostile cases of one operation, and its valid request (sent last)."""
    params = operation.get("parameters", [])
    path_values = {}
    for param in params:
        if param["in"] == "path":
            if param["name"] not in world.path_values:
                # An id of a kind the world does not hold yet: a well-formed one that names
                # nothing still carries every hostile value through validation (the valid
                # request then answers 404). A text parameter needs a real example.
                kind = _resolve(spec, param["schema"])
                if kind.get("format") == "uuid":
                    path_values[param["name"]] = str(uuid.uuid4())
                    continue
                if kind.get("type") == "integer":
                    path_values[param["name"]] = 1
                    continue
                raise LookupError(
                    f"add an example for {method} {template}: path parameter {param['name']!r} "
                    "(World.path_values in tests/test_bad_input.py)"
                )
            path_values[param["name"]] = world.path_values[param["name"]]
    queries = [p for p in params if p["in"] == "query"]
    required_queries = {
        p["name"]: _generate(spec, p["schema"], p["name"], world)
        for p in queries
        if p.get("required")
    }

    def url(
        path_over: dict[str, str] | None = None, query_over: dict[str, str] | None = None
    ) -> str:
        parts = {k: quote(str(v), safe="") for k, v in path_values.items()}
        parts.update(path_over or {})
        query = {k: quote(str(v), safe="") for k, v in required_queries.items()}
        query.update(query_over or {})
        built = template.format(**parts)
        if query:
            built += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return built

    body_schema = None
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body_schema = content["application/json"].get("schema", {})
    base_body: Any = None
    if body_schema is not None:
        if (method, template) in ROUTE_EXAMPLES:
            base_body = ROUTE_EXAMPLES[(method, template)]
        elif template == "/v1/auth/login":
            base_body = dict(world.named["login"])
        else:
            base_body = _generate(spec, body_schema, "", world)

    def encoded(body: Any) -> bytes | None:
        return None if body_schema is None else _json(body)

    cases: list[Case] = []
    for param in params:
        if param["in"] not in ("path", "query"):
            continue
        kind = _kind(_resolve(spec, param["schema"]))
        for value, refuse in _hostile(kind):
            text_value = _url_text(str(value))
            over = {param["name"]: text_value}
            where = f"{param['in']} {param['name']}={value!r}"
            link = url(path_over=over) if param["in"] == "path" else url(query_over=over)
            cases.append(Case(where, link, encoded(base_body), refuse))
    if body_schema is not None:
        for at, kind, leaf in _leaves(spec, body_schema):
            field = ".".join(str(p) for p in at) or "(body)"
            if kind == "unbounded-array":
                item = _generate(spec, leaf["items"], str(at[-1]) if at else "", world)
                huge = _with(spec, body_schema, base_body, at, [item] * HUGE_LIST, world)
                cases.append(Case(f"body {field}: {HUGE_LIST} items", url(), _json(huge), False))
                continue
            for value, refuse in _hostile(kind):
                mutated = _with(spec, body_schema, base_body, at, value, world)
                cases.append(Case(f"body {field}={value!r}", url(), _json(mutated), refuse))
        nested = b'{"a":' + b"[" * NESTING_DEPTH + b"]" * NESTING_DEPTH + b"}"
        # FastAPI's body parser answers 400 for JSON its parser cannot hold.
        cases.append(Case(f"body nested {NESTING_DEPTH} deep", url(), nested, True, (400, 422)))
    return cases, Case("the valid request", url(), encoded(base_body), False)


# --- the database snapshot ----------------------------------------------------------------


# A refused request is still counted by the rate limits (stepcoin.ratelimit): it was made and
# it cost work. That count is not data the request changed.
COUNTERS = frozenset({"rate_limit_buckets"})


async def snapshot_sql(engine: AsyncEngine, skip: frozenset[str] = frozenset()) -> str:
    skip = skip | COUNTERS
    async with engine.connect() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
                    "AND NOT c.relispartition ORDER BY 1"
                )
            )
        ).scalars()
        names = [t for t in tables if t not in skip]
    return " UNION ALL ".join(
        f"SELECT '{t}' AS name, (SELECT count(*) || ':' || "
        f"coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM \"{t}\" x) AS digest"
        for t in names
    )


async def snapshot(engine: AsyncEngine, sql: str) -> dict[str, str]:
    async with engine.connect() as conn:
        return {name: digest for name, digest in (await conn.execute(text(sql))).all()}


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(t for t in before if before[t] != after.get(t))


def problem_fault(response: httpx.Response) -> str | None:
    """Why a 4xx answer is not problem+json with a code (None when it is)."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return f"content-type {response.headers.get('content-type')!r}"
    try:
        code = response.json().get("code")
    except ValueError:
        return "a body that is not JSON"
    return None if code else "no `code`"


# --- the tests ----------------------------------------------------------------------------


@pytest.fixture
async def probe(app: Any) -> Any:
    """A client that receives a 500 as an answer instead of the app's exception."""
    transport = httpx.ASGITransport(
        app=app, client=("203.0.113.9", 50000), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
        yield c


@pytest.mark.usefixtures("no_rate_limits")  # one walker sends hundreds of requests
async def test_every_route_refuses_hostile_values(app, probe, engine):
    client = probe
    world = await build_world(client, engine)
    spec = app.openapi()
    sql = await snapshot_sql(engine)
    failures: list[str] = []
    walked = 0
    operations = [
        (method.upper(), template, operation)
        for template, item in spec["paths"].items()
        for method, operation in item.items()
    ]
    # Deleting operations go last: their valid request may remove what the others need.
    operations.sort(key=lambda op: op[0] == "DELETE")
    for method, template, operation in operations:
        if (method, template) in RAW_BODY_ROUTES:
            continue
        if not operation.get("parameters") and "requestBody" not in operation:
            continue
        try:
            cases, valid = route_cases(spec, method, template, operation, world)
        except LookupError as exc:
            failures.append(f"{method} {template}: {exc}")
            continue
        walked += 1
        admin_route = template.startswith("/v1/admin")
        headers = dict(
            world.admin["headers"] if admin_route else bearer(world.walker["access_token"])
        )
        if valid.body is not None:
            headers["Content-Type"] = "application/json"
        if "Idempotency-Key" in {p["name"] for p in operation.get("parameters", [])}:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        before = await snapshot(engine, sql)
        for case in cases:
            response = await client.request(method, case.path, content=case.body, headers=headers)
            where = f"{method} {template} with {case.label}"
            status = response.status_code
            if status >= 500:
                failures.append(f"{where}: {status} {response.text[:200]}")
            elif status >= 400 and (fault := problem_fault(response)):
                failures.append(f"{where}: {status} with {fault}")
            elif case.must_refuse and status not in case.refuse_with:
                failures.append(
                    f"{where}: {status}, expected {case.refuse_with} ({response.text[:160]})"
                )
            after = await snapshot(engine, sql)
            if (status >= 400 or case.must_refuse) and (moved := changed(before, after)):
                failures.append(f"{where}: answered {status} but changed {', '.join(moved)}")
            before = after
        response = await client.request(method, valid.path, content=valid.body, headers=headers)
        may_fail = (method, template) in VALID_REQUEST_MAY_FAIL and response.status_code < 500
        if not may_fail and (response.status_code == 422 or response.status_code >= 500):
            failures.append(
                f"{method} {template}: the valid request answered {response.status_code}: add an "
                f"example for {method} {template} (FIELD_EXAMPLES or ROUTE_EXAMPLES in "
                "tests/test_bad_input.py; VALID_REQUEST_MAY_FAIL with a reason if no static "
                f"example can pass): {response.text[:200]}"
            )
    assert walked >= 30, f"the walk found only {walked} operations to try"
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


def test_a_route_the_walk_cannot_call_says_which_example_to_add():
    """New routes are walked without edits; one it cannot build a request for fails loudly."""
    world = World(walker={}, admin={}, path_values={}, named={})
    operation = {"parameters": [{"name": "slug", "in": "path", "schema": {"type": "string"}}]}
    with pytest.raises(LookupError, match=r"add an example for GET /v1/things/\{slug\}"):
        route_cases({}, "GET", "/v1/things/{slug}", operation, world)
    operation = {"parameters": [{"name": "thing_id", "in": "path", "schema": {"type": "integer"}}]}
    cases, valid = route_cases({}, "GET", "/v1/things/{thing_id}", operation, world)
    assert valid.path == "/v1/things/1"
    assert {c.path for c in cases} == {f"/v1/things/{v}" for v in HOSTILE_INTS}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/auth/register", {"email": "a\x00b@example.com"}),
        ("POST", "/v1/auth/register", {"full_name": "Ada\x00"}),
        ("PATCH", "/v1/me", {"full_name": "Ada\x00"}),
        ("POST", "/v1/orders", {"product_id": 2**70}),
        ("GET", "/v1/products/9223372036854775808", None),
        ("POST", "/v1/steps", {"date": "0001-01-01"}),
        ("POST", "/v1/steps", {"client_record_version": 2**70}),
    ],
)
@pytest.mark.usefixtures("no_rate_limits")
async def test_the_reported_cases_answer_422(probe, engine, method, path, body):
    client = probe
    """The five inputs the review found answering 500 (issue 12, hole 11)."""
    walker = await walker_with_coins(client, engine, 1000)
    headers = bearer(walker["access_token"])
    payload: Any = None
    if path == "/v1/auth/register":
        payload = {"email": unique_email(), "password": TEST_PASSWORD, "full_name": "Ada"} | body
    elif path == "/v1/me":
        payload = body
    elif path == "/v1/orders":
        payload = {"items": [{"product_id": body["product_id"], "quantity": 1}]}
        payload["shipping_address"] = ADDRESS
        headers["Idempotency-Key"] = str(uuid.uuid4())
    elif path == "/v1/steps":
        today = datetime.now(UTC).date().isoformat()
        payload = {"records": [{"date": today, "steps": 100, "source": "healthkit"} | body]}
    sql = await snapshot_sql(engine)
    before = await snapshot(engine, sql)
    response = await client.request(
        method,
        path,
        content=None if payload is None else _json(payload),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"
    assert changed(before, await snapshot(engine, sql)) == []


async def test_a_step_date_outside_the_plausible_range_is_refused(client, engine):
    """Step days before 2000-01-01 or more than a day ahead are refused at the door (422);
    a day just ahead still gets its per-record `future_day` decision."""
    walker = await register(client)
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    far = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    for day, status in [("1999-12-31", 422), (far, 422), (tomorrow, 200)]:
        response = await client.post(
            "/v1/steps",
            json={"records": [{"date": day, "steps": 100, "source": "healthkit"}]},
            headers=bearer(walker["access_token"]),
        )
        assert response.status_code == status, (day, response.text)
    assert response.json()["results"][0]["reasons"] == ["future_day"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/steps?to=0001-01-01",  # answered 500: the default `from` is 6 days earlier
        "/v1/steps?from=9999-12-31",
        "/v1/leaderboards/daily?period_start=0001-01-01",
        "/v1/leaderboards/weekly?period_start=9999-12-27",
    ],
)
async def test_query_days_outside_the_calendar_are_422(probe, path):
    """Days before 2000-01-01 or after 2100-12-31 mean nothing here: refused before any date
    arithmetic can overflow."""
    walker = await register(probe)
    response = await probe.get(path, headers=bearer(walker["access_token"]))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_console_forms_refuse_nul(app, engine):
    """Every form on every console page, each field in turn given a NUL: never a 5xx, and
    nothing changes."""
    async with browser_client(app) as browser:
        admin = await make_console_staff(browser, engine)
        signed = await sign_in(browser, admin["email"])
        assert signed.status_code == 303, signed.text
        walker = await register(browser)
        product_id = await product(engine)
        pages = ["/admin/", "/admin/users", f"/admin/users/{walker['user']['id']}"]
        pages += ["/admin/products", f"/admin/products/{product_id}", "/admin/review"]
        pages += ["/admin/achievements", "/admin/achievements/new", "/admin/settings"]
        pages += ["/admin/settings/shop.max_quantity_per_item", "/admin/orders", "/admin/account"]
        sql = await snapshot_sql(engine, skip=frozenset({"admin_sessions"}))
        failures: list[str] = []
        forms_tried = 0
        for page_url in pages:
            page = await browser.get(page_url)
            assert page.status_code == 200, (page_url, page.status_code)
            for action, fields in _forms(page.text):
                names = [n for n in fields if n != "csrf_token"]
                for name in names:
                    forms_tried += 1
                    data = {**fields, name: "probe\x00value"}
                    before = await snapshot(engine, sql)
                    response = await browser.post(action, data=data)
                    where = f"form {action} (on {page_url}) with NUL in {name}"
                    if response.status_code >= 500:
                        failures.append(f"{where}: {response.status_code}")
                    elif response.status_code < 400:
                        failures.append(f"{where}: accepted with {response.status_code}")
                    if moved := changed(before, await snapshot(engine, sql)):
                        failures.append(f"{where}: changed {', '.join(moved)}")
        assert forms_tried >= 10, f"only {forms_tried} console form fields found"
        assert not failures, "\n".join(failures)


def _forms(html: str) -> list[tuple[str, dict[str, str]]]:
    """(action, {field: default value}) of each POST form on a page."""
    from html.parser import HTMLParser

    found: list[tuple[str, dict[str, str]]] = []

    class Forms(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = {k: v or "" for k, v in attrs}
            if tag == "form" and a.get("method", "get").lower() == "post":
                found.append((a.get("action", ""), {}))
            elif tag in ("input", "select", "textarea") and found and a.get("name"):
                if a.get("type") in ("submit", "button"):
                    return
                found[-1][1].setdefault(a["name"], a.get("value", ""))

    Forms().feed(html)
    return [(action, fields) for action, fields in found if action.startswith("/admin")]


# --- the two central defences on their own ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'{"name": "a\\u0000b"}', "string_nul"),
        (b'{"name": "\\uD800"}', "string_surrogate"),
        (b'{"na\\u0000me": "x"}', "string_nul"),  # keys too
        (b'{"ids": [1, 9223372036854775808]}', "int64_range"),
        (b'{"ids": [-9223372036854775809]}', "int64_range"),
        (b'{"name": "a\\\\u0000b"}', None),  # an escaped backslash: the text "\u0000"
        (b'{"name": "\\ud83d\\ude00"}', None),  # a surrogate pair is one emoji
        (b'{"big": 9223372036854775807, "small": -9223372036854775808}', None),
        (b'{"price": 12345678901234567890.5}', None),  # a float, not an integer
        (b"not json \\u0000", None),  # malformed: the route answers malformed_json
    ],
)
def test_the_guard_reads_json_precisely(body, refused):
    from stepcoin.validation import _Refused, check_json_body

    if refused is None:
        check_json_body(body)
        return
    with pytest.raises(_Refused) as caught:
        check_json_body(body)
    assert caught.value.error["type"] == refused


async def test_the_guard_covers_query_strings_forms_and_unknown_routes(probe):
    """NUL or non-UTF-8 in a query string, a form post or a route nobody wrote yet: 422."""
    for method, url, kwargs in [
        ("GET", "/v1/products?category=a%00b", {}),
        ("GET", "/v1/products?category=%ED%A0%80", {}),
        ("GET", "/v1/no-such-route/a%00b", {}),
        ("POST", "/admin/login", {"data": {"email": "a\x00b", "password": "x"}}),
        ("POST", "/v1/webhooks/shopify", {"content": b'{"id": 99999999999999999999}'}),
    ]:
        response = await probe.request(method, url, **kwargs)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["code"] == "validation_error"
        assert response.json()["errors"][0]["type"] in {
            "string_nul",
            "string_unicode",
            "int64_range",
        }


async def test_the_last_line_maps_data_errors_to_422_and_nothing_else(settings, engine):
    """A value the database refuses (SQLSTATE class 22) or an overflow in date arithmetic
    answers 422 problem+json; any other database error is still a 500."""
    from datetime import date

    from fastapi import FastAPI

    from stepcoin.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/smallint")
    async def smallint() -> Any:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT CAST(:v AS smallint)"), {"v": 99999})).all()

    @app.get("/driver")
    async def driver() -> Any:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            return await raw.driver_connection.fetchval("SELECT $1::bigint", 2**70)

    @app.get("/date")
    async def far_date() -> Any:
        return date(1, 1, 1) - timedelta(days=1)

    @app.get("/syntax")
    async def syntax() -> Any:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELEC 1"))).all()

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for path in ("/smallint", "/driver", "/date"):
            response = await c.get(path)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["code"] == "validation_error"
        assert (await c.get("/syntax")).status_code == 500
