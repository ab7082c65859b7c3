"""App version gating (API.md): X-App-Version / X-App-Platform; an app older than its
platform's lowest supported version gets 426 app_update_required before any route runs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from stepcoin.app_versions import parse_version
from stepcoin.runtime_settings.service import runtime_settings
from tests.conftest import bearer, register


async def set_minimum(engine: Any, platform: str, version: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO settings (key, value) VALUES (:k, to_jsonb(CAST(:v AS text))) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            {"k": f"app.min_version_{platform}", "v": version},
        )
    runtime_settings.invalidate()


def app(version: str, platform: str = "ios") -> dict[str, str]:
    return {"X-App-Version": version, "X-App-Platform": platform}


@pytest.mark.parametrize(
    ("older", "newer"),
    [("1.9", "1.10"), ("2.3.9", "2.4"), ("2", "2.0.1"), ("0.9.99", "1"), ("10.0", "10.0.0.1")],
)
def test_versions_compare_part_by_part(older, newer):
    assert parse_version(older) < parse_version(newer)  # type: ignore[operator]


def test_trailing_zeros_do_not_count_and_garbage_is_no_version():
    assert parse_version("2") == parse_version("2.0.0") == (2,)
    assert parse_version(" 3.1 ") == (3, 1)
    for garbage in ("", "v2", "2.x", "1..2", "1.2.3.4.5", "-1", "1e3"):
        assert parse_version(garbage) is None, garbage


async def test_an_app_older_than_supported_gets_426_and_nothing_runs(client, engine):
    me = await register(client)
    await set_minimum(engine, "ios", "2.4.0")
    headers = bearer(me["access_token"])
    old = await client.get("/v1/me", headers={**headers, **app("2.3.9")})  # a hot path too
    assert old.status_code == 426
    assert old.headers["content-type"].startswith("application/problem+json")
    body = old.json()
    assert body["code"] == "app_update_required" and body["status"] == 426
    assert body["minimum_version"] == "2.4.0" and body["platform"] == "ios"
    assert "2.4.0" in body["detail"]
    sync = await client.post(
        "/v1/steps",
        headers={**headers, **app("1.0", "IOS")},
        json={"records": [{"date": "2026-12-01", "steps": 5000, "source": "healthkit"}]},
    )
    assert sync.status_code == 426
    async with engine.connect() as conn:
        stored = await conn.scalar(text("SELECT count(*) FROM step_records"))
    assert stored == 0  # refused before the route: nothing written


@pytest.mark.parametrize(
    "sent",
    [
        app("2.4.0"),
        app("2.10"),
        app("3"),
        app("1.0", "android"),  # android's minimum is still 0
        app("1.0", "web"),  # not a gated platform
        app("banana"),  # not a version: not judged
        {"X-App-Version": "1.0"},  # no platform
        {},
    ],
)
async def test_a_supported_or_unjudged_client_passes(client, engine, sent):
    me = await register(client)
    await set_minimum(engine, "ios", "2.4.0")
    answer = await client.get("/v1/me", headers={**bearer(me["access_token"]), **sent})
    assert answer.status_code == 200, answer.text


async def test_by_default_every_version_is_supported(client):
    me = await register(client)
    answer = await client.get("/v1/me", headers={**bearer(me["access_token"]), **app("0.0.1")})
    assert answer.status_code == 200


async def test_the_document_says_so(client):
    document = (await client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            response = operation["responses"].get("426")
            assert response is not None, f"{method} {path}"
            schema = response["content"]["application/problem+json"]["schema"]
            assert "app_update_required" in str(schema), f"{method} {path}"
    assert "X-App-Version" in document["info"]["description"]
