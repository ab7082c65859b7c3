"""Every error is problem+json with a stable code; nothing leaks; bad input changes nothing."""

from __future__ import annotations

import httpx
import orjson
import pytest

from stepcoin.errors import problem_response
from stepcoin.main import create_app


async def test_unknown_path_is_problem_json(client):
    response = await client.get("/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert {"type", "title", "status", "detail", "code"} <= set(body)


async def test_wrong_method_is_problem_json(client):
    response = await client.put("/v1/me")  # DELETE /v1/me exists since issue 12
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    # every method of the path, not only the first route's (Starlette's own 405 said GET, HEAD)
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"


async def test_allow_names_the_methods_of_a_templated_path(client):
    response = await client.delete("/v1/admin/products/7")
    assert response.status_code == 405
    assert response.headers["allow"] == "PATCH"


def test_extra_members_never_replace_the_problem_members():
    """A 409 that names an order's status carries it as `current_status`: `status` stays the
    HTTP status, an integer, as RFC 9457 and API.md say."""
    response = problem_response(409, "x", "Conflict", "d", extra={"status": "shipped", "a": 1})
    body = orjson.loads(response.body)
    assert body["status"] == 409 and body["a"] == 1


async def test_malformed_json(client):
    response = await client.post(
        "/v1/auth/login",
        content=b'{"email": "a@b.c", "password": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "malformed_json"


async def test_wrong_types_name_the_field(client):
    response = await client.post("/v1/auth/login", json={"email": ["a"], "password": 5})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    locations = {".".join(e["loc"]) for e in body["errors"]}
    assert "body.email" in locations and "body.password" in locations


async def test_oversized_body_is_413(client, settings):
    big = b'{"email": "' + b"a" * (settings.max_body_bytes + 10) + b'"}'
    response = await client.post(
        "/v1/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_oversized_chunked_body_is_413(client, settings):
    async def chunks():
        for _ in range(settings.max_body_bytes // 1024 + 5):
            yield b" " * 1024

    response = await client.post(
        "/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_request_id_is_echoed_or_made(client):
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_unexpected_error_is_500_without_traceback(settings, caplog):
    app = create_app(settings, run_worker=False)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
async def test_api_docs_are_served(client, path):
    response = await client.get(path)
    assert response.status_code == 200


async def test_openapi_lists_the_contract_paths(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/auth/google",
        "/v1/auth/apple",
        "/v1/auth/verify-email/request",
        "/v1/auth/verify-email",
        "/v1/auth/password-reset/request",
        "/v1/auth/password-reset",
        "/v1/me",
        "/healthz",
        "/readyz",
    ]:
        assert path in paths


async def test_a_database_out_of_reach_is_503_with_retry_after(settings, caplog):
    """PostgreSQL restarting, failing over or down: every route that needs it answers a
    retryable 503 database_unavailable (never a 500), logged as a warning."""
    import socket
    import uuid

    from stepcoin.auth.tokens import create_access_token

    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = settings.model_copy(
        update={"database_url": f"postgresql://postgres@127.0.0.1:{port}/nowhere"}
    )
    app = create_app(gone, run_worker=False)
    token = create_access_token(gone, uuid.uuid4(), "user")
    auth = {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            answers = [
                await c.get("/v1/me", headers=auth),  # a fast path, then its route
                await c.get("/v1/leaderboards/weekly", headers=auth),
                await c.post(
                    "/v1/steps",
                    json={"records": [{"date": "2026-01-01", "steps": 10, "source": "healthkit"}]},
                    headers=auth,
                ),
                await c.post("/v1/auth/login", json={"email": "a@b.example", "password": "x" * 12}),
                await c.get("/v1/admin/validations", headers=auth),
            ]
    for answer in answers:
        assert answer.status_code == 503, (answer.request.url, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["code"] == "database_unavailable"
    assert not [r for r in caplog.records if r.levelname == "ERROR" and "unhandled" in r.message]
