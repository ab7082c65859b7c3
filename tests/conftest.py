"""Shared fixtures: one migrated real PostgreSQL per session, an app, an HTTP client, factories."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepcoin import migrate
from stepcoin.config import Settings
from stepcoin.main import create_app
from stepcoin.runtime_settings.registry import SPECS
from stepcoin.runtime_settings.service import runtime_settings
from tests.fixtures.database import APP_TABLES, QUEUE_TABLES, test_database
from tests.fixtures.oidc import KeySet, jwks_server

TEST_PASSWORD = "correct horse battery staple"
GOOGLE_CLIENT_ID = "test-google-client.apps.googleusercontent.com"
APPLE_CLIENT_ID = "app.stepcoin.test"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with test_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def keyset() -> Iterator[KeySet]:
    with jwks_server() as keys:
        yield keys


@pytest.fixture(scope="session")
def settings(database_url: str, keyset: KeySet) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        access_log=False,
        jwt_secret="test-secret-that-is-long-enough-for-hs256-0123456789",
        google_client_ids=[GOOGLE_CLIENT_ID],
        google_jwks_url=keyset.url,
        apple_client_ids=[APPLE_CLIENT_ID],
        apple_jwks_url=keyset.url,
        max_body_bytes=256 * 1024,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings, run_worker=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def engine(app: Any) -> AsyncEngine:
    engine: AsyncEngine = app.state.database.engine
    return engine


@pytest.fixture(autouse=True)
async def clean_database(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test that touches the database starts from empty tables and default settings."""
    if "app" not in request.fixturenames and "engine" not in request.fixturenames:
        yield
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE"))
        await conn.execute(text(f"TRUNCATE {', '.join(QUEUE_TABLES)} CASCADE"))
        for spec in SPECS.values():
            await conn.execute(
                text("INSERT INTO settings (key, value, description) VALUES (:k, :v, :d)"),
                {"k": spec.key, "v": _json(spec.default), "d": spec.description},
            )
    runtime_settings.invalidate()
    yield


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
        yield c


def unique_email(prefix: str = "walker") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = TEST_PASSWORD, **extra: Any
) -> dict[str, Any]:
    """Factory: a registered walker; returns the token answer (with `user`)."""
    body = {"email": email or unique_email(), "password": password, "full_name": "Test Walker"}
    body.update(extra)
    response = await client.post("/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    data["password"] = password
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
