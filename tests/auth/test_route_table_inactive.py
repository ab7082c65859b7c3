"""Issue 12 hole 6: every route that takes a bearer token refuses a deactivated account's
still-valid access token (401/403: never 2xx, never 404/409/422, never 5xx).

The test walks the app's WHOLE route table, so routes added later are covered without editing
it: a route needs a bearer token when `auth.dependencies.current_claims` is somewhere in its
dependency tree. Each is called with a minimal valid request built from the OpenAPI document
(path, query and header parameters and a JSON body), so that input validation is not what
refuses. A body the builder cannot make fails the test with "no body example for <route>":
add one to BODY_EXAMPLES.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import text

from stepcoin.auth.dependencies import current_claims
from tests.conftest import bearer, register

# "METHOD /path" -> a JSON body, for bodies the schema-driven builder cannot make.
BODY_EXAMPLES: dict[str, Any] = {
    "POST /v1/orders": {  # the country is checked against ISO 3166-1, beyond the schema
        "items": [{"product_id": 1, "quantity": 1}],
        "shipping_address": {
            "name": "Ada Walker",
            "line1": "1 Step Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
    },
}


def _needs_bearer(dependant: Dependant) -> bool:
    return any(dep.call is current_claims or _needs_bearer(dep) for dep in dependant.dependencies)


@dataclass(frozen=True)
class Route:
    path_format: str
    methods: set[str]
    dependant: Dependant


def all_routes(app: Any) -> list[Route]:
    """Every API route of the app with its full path, however routers were included (FastAPI
    0.16x keeps included routers lazy: app.routes holds the routers, not their routes)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI flattens included routers into app.routes
        return [
            Route(r.path_format, set(r.methods), r.dependant)
            for r in app.routes
            if isinstance(r, APIRoute)
        ]
    found = []
    for context in iter_route_contexts(app.routes):
        dependant = getattr(context, "dependant", None)
        if dependant is not None and context.path_format and context.methods:
            found.append(Route(context.path_format, set(context.methods), dependant))
    return found


def bearer_routes(app: Any) -> list[Route]:
    routes = all_routes(app)
    assert len(routes) >= 50, f"the route table looks truncated: {len(routes)} routes"
    return [r for r in routes if _needs_bearer(r.dependant)]


# Strings tried, in order, against a schema's pattern.
PATTERN_CANDIDATES = ["abcdefgh", "ABCD1234", "10115", "a", "1", "2026-01-01", "ab-cd", "A"]


class NoExample(Exception):
    pass


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def example(schema: dict[str, Any], spec: dict[str, Any], *, depth: int = 0) -> Any:
    """A minimal value valid for a JSON schema (the subset pydantic emits)."""
    if depth > 12:
        raise NoExample("schema too deep")
    schema = _resolve(schema, spec)
    if schema.get("examples"):
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, spec).get("type") != "null"]
            return example(options[0] if options else schema[key][0], spec, depth=depth + 1)
    if "allOf" in schema:
        return example(schema["allOf"][0], spec, depth=depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {
            name: example(props[name], spec, depth=depth + 1) for name in schema.get("required", [])
        }
    if kind == "array":
        count = max(1, schema.get("minItems", 0))
        return [example(schema.get("items", {}), spec, depth=depth + 1) for _ in range(count)]
    if kind == "integer":
        return max(1, schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        return float(max(1, schema.get("minimum", 1)))
    if kind == "boolean":
        return True
    if kind == "string":
        if "pattern" in schema:
            low, high = schema.get("minLength", 0), schema.get("maxLength", 10_000)
            for candidate in PATTERN_CANDIDATES:
                if low <= len(candidate) <= high and re.search(schema["pattern"], candidate):
                    return candidate
            raise NoExample(f"a string with the pattern {schema['pattern']!r}")
        fmt = schema.get("format")
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "date":
            return "2026-01-01"
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt == "email":
            return "someone@example.com"
        return "x" * max(8, schema.get("minLength", 0))
    if kind is None:  # "any value" (a field typed Any)
        return 1
    raise NoExample(f"unsupported schema {schema!r}")


def build_request(route: Route, method: str, spec: dict[str, Any]) -> dict[str, Any]:
    operation = spec["paths"][route.path_format][method.lower()]
    path = route.path_format
    params: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for parameter in operation.get("parameters", []):
        # required parameters, and every header (an optional Idempotency-Key may be checked
        # in the route's code)
        if parameter["in"] not in ("path", "header") and not parameter.get("required"):
            continue
        value = example(parameter.get("schema", {}), spec)
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", str(value))
        elif parameter["in"] == "query":
            params[parameter["name"]] = value
        elif parameter["in"] == "header":
            headers[parameter["name"]] = str(value)
    body = None
    content = operation.get("requestBody", {}).get("content", {})
    if content:
        key = f"{method} {route.path_format}"
        if key in BODY_EXAMPLES:
            body = BODY_EXAMPLES[key]
        elif "application/json" in content:
            try:
                body = example(content["application/json"]["schema"], spec)
            except NoExample as exc:
                raise AssertionError(f"no body example for {key} ({exc})") from exc
        else:
            raise AssertionError(f"no body example for {key} (content {sorted(content)})")
    return {"url": path, "params": params, "headers": headers, "json": body}


async def _deactivated(client, engine, role: str) -> str:
    account = await register(client)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET role = :r, is_active = false WHERE id = :id"),
            {"r": role, "id": account["user"]["id"]},
        )
    return account["access_token"]


def test_the_walk_finds_the_bearer_routes(app):
    paths = {(m, r.path_format) for r in bearer_routes(app) for m in r.methods}
    # a sample of what must be in it: if these vanish, the detection is broken
    assert ("GET", "/v1/me") in paths
    assert ("POST", "/v1/steps") in paths
    assert ("GET", "/v1/orders") in paths
    assert ("POST", "/v1/admin/users/{user_id}/adjustments") in paths
    assert len(paths) >= 30


async def test_every_bearer_route_refuses_a_deactivated_account(app, client, engine):
    walker = await _deactivated(client, engine, "user")
    admin = await _deactivated(client, engine, "admin")
    spec = app.openapi()
    let_through: list[str] = []
    calls = 0
    for route in bearer_routes(app):
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            request = build_request(route, method, spec)
            for who, token in (("walker", walker), ("admin", admin)):
                response = await client.request(
                    method,
                    request["url"],
                    params=request["params"],
                    headers={**request["headers"], **bearer(token)},
                    json=request["json"],
                )
                calls += 1
                if response.status_code not in (401, 403):
                    let_through.append(
                        f"{method} {route.path_format} as a deactivated {who}: "
                        f"{response.status_code} {response.text[:200]}"
                    )
    assert not let_through, "\n".join(let_through)
    assert calls >= 60, f"only {calls} calls: the walk missed routes"
