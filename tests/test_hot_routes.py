"""main.HotRoutes (issue 13): the hottest GETs without FastAPI's routing answer exactly what the
FastAPI routes answer, and everything but a success falls through to those routes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from stepcoin import main
from stepcoin.db import session_scope
from stepcoin.leaderboards import service as boards
from stepcoin.users.service import set_active
from stepcoin.wallet import service as wallet
from stepcoin.wallet.service import Entry
from tests.achievements.helpers import achievement, set_days
from tests.conftest import bearer, register
from tests.steps.helpers import today
from tests.test_metrics import _me_count

HOT = (
    "/v1/me",
    "/v1/wallet",
    "/v1/wallet/transactions",
    "/v1/achievements",
    "/v1/leaderboards/daily",
    "/v1/leaderboards/weekly",
    "/v1/leaderboards/monthly",
    "/v1/leaderboards/all_time",
)


@pytest.fixture
def hot_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(path, answered here) for every request that reached HotRoutes._answer."""
    calls: list[tuple[str, bool]] = []
    real = main.HotRoutes._answer

    async def counting(self: Any, scope: Any, answer: Any) -> bytes | None:
        body = await real(self, scope, answer)
        calls.append((scope["path"], body is not None))
        return body

    monkeypatch.setattr(main.HotRoutes, "_answer", counting)
    return calls


def _fall_through(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(self: Any, scope: Any, answer: Any) -> None:
        return None

    monkeypatch.setattr(main.HotRoutes, "_answer", never)


async def _walker(app: Any, client: Any) -> dict[str, Any]:
    account = await register(client)
    user = uuid.UUID(account["user"]["id"])
    async with session_scope(app.state.database) as session:
        await wallet.post(
            session, user, [Entry(10 + i, wallet.STEP_REWARD, f"hot:{user}:{i}") for i in range(5)]
        )
    await achievement(app.state.database.engine, "hot_day", {"kind": "approved_days", "days": 1})
    await set_days(app.state.database.engine, str(user), {today(): 4321})
    for i in range(3):
        other = await register(client, full_name=f"Other Walker{i}")
        await set_days(app.state.database.engine, other["user"]["id"], {today(): 1000 * i + 1})
    async with session_scope(app.state.database) as session:
        await boards.rebuild_open(session)
    return account


async def test_hot_answers_are_byte_for_byte_the_routes_answers(
    app, client, hot_calls, monkeypatch
):
    account = await _walker(app, client)
    headers = bearer(account["access_token"])
    urls = [
        *HOT,
        "/v1/wallet/transactions?limit=2",
        "/v1/wallet/transactions?limit=200",
        "/v1/leaderboards/weekly?limit=2",
        "/v1/leaderboards/daily?limit=100",
    ]
    fast = {url: await client.get(url, headers=headers) for url in urls}
    cursor = fast["/v1/wallet/transactions?limit=2"].json()["next_cursor"]
    urls.append(f"/v1/wallet/transactions?limit=2&cursor={cursor}")
    fast[urls[-1]] = await client.get(urls[-1], headers=headers)
    assert hot_calls == [(url.split("?")[0], True) for url in urls]
    _fall_through(monkeypatch)
    for url in urls:
        routed = await client.get(url, headers=headers)
        assert routed.status_code == fast[url].status_code == 200
        assert routed.content == fast[url].content, url
        for name in ("content-type", "content-length"):
            assert routed.headers[name] == fast[url].headers[name]
        assert len(fast[url].headers["x-request-id"]) == 32


async def test_request_id_and_metrics_are_kept_on_the_hot_path(client, scraper, hot_calls):
    account = await register(client)
    before = _me_count((await scraper.get("/metrics")).text)
    answer = await client.get(
        "/v1/me", headers={**bearer(account["access_token"]), "X-Request-ID": "hot-123"}
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "hot-123"
    assert hot_calls == [("/v1/me", True)]
    assert _me_count((await scraper.get("/metrics")).text) == before + 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_token"),
        ({"Authorization": "Bearer"}, "missing_token"),
        ({"Authorization": "Bearer not.a.token"}, "invalid_token"),
    ],
)
async def test_without_a_valid_token_the_route_answers(client, hot_calls, headers, code):
    for path in HOT:
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code
    assert all(not answered for _, answered in hot_calls)


async def test_a_forged_token_for_a_real_user_is_refused(client, hot_calls):
    account = await register(client)
    header, payload, signature = account["access_token"].split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    for path in HOT:
        assert (await client.get(path, headers=bearer(forged))).status_code == 401
    assert all(not answered for _, answered in hot_calls)


async def test_a_deactivated_account_falls_through_and_is_refused(app, client, hot_calls):
    account = await register(client)
    headers = bearer(account["access_token"])
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    async with session_scope(app.state.database) as session:
        await set_active(session, uuid.UUID(account["user"]["id"]), False, admin_id=None)
    hot_calls.clear()
    for path in HOT:
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_token"
    assert hot_calls == [(path, False) for path in HOT]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=0", 422),
        ("limit=201", 422),
        ("limit=", 422),
        ("limit=abc", 422),
        ("limit=%2B5", 200),  # +5: pydantic reads it, the hot path leaves it to the route
        ("limit=1&limit=2", 200),
        ("cursor=bm90LWEtY3Vyc29y", 422),
        ("cursor=" + "A" * 201, 422),
        ("cursor=", 200),
        ("other=1", 200),
    ],
)
async def test_ledger_queries_the_route_must_judge_fall_through(
    client, hot_calls, monkeypatch, query, status
):
    account = await register(client)
    headers = bearer(account["access_token"])
    answer = await client.get(f"/v1/wallet/transactions?{query}", headers=headers)
    assert answer.status_code == status
    assert hot_calls == [("/v1/wallet/transactions", False)]
    if status == 422:
        assert answer.headers["content-type"] == "application/problem+json"
    _fall_through(monkeypatch)
    routed = await client.get(f"/v1/wallet/transactions?{query}", headers=headers)
    assert (routed.status_code, routed.json()) == (answer.status_code, answer.json())


async def test_a_database_failure_on_the_hot_path_falls_through(app, client, monkeypatch):
    account = await register(client)
    database = app.state.database
    real = database.fast_pool
    calls = [0]

    async def failing_once() -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionError("the read pool is gone")
        return await real()

    monkeypatch.setattr(database, "fast_pool", failing_once)
    answer = await client.get("/v1/me", headers=bearer(account["access_token"]))
    assert answer.status_code == 200  # the FastAPI route answered it
    assert calls[0] == 2


async def test_other_methods_and_paths_are_not_taken(client, hot_calls):
    account = await register(client)
    headers = bearer(account["access_token"])
    assert (await client.patch("/v1/me", json={"full_name": "Hot"}, headers=headers)).json()[
        "full_name"
    ] == "Hot"
    assert (await client.get("/v1/me/", headers=headers)).status_code in (200, 307, 404)
    assert (await client.get("/v1/me/sessions", headers=headers)).status_code == 200
    assert (await client.head("/v1/me", headers=headers)).status_code == 405
    assert hot_calls == []


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=0", 422),
        ("limit=101", 422),
        ("limit=", 422),
        ("limit=%2B5", 200),
        ("limit=1&limit=2", 200),
        ("period_start=2026-11-30", 200),  # a Monday: the route judges it (404: never built)
        ("period_start=2026-11-25", 422),
        ("other=1", 200),
    ],
)
async def test_board_queries_the_route_must_judge_fall_through(
    client, hot_calls, monkeypatch, query, status
):
    account = await register(client)
    headers = bearer(account["access_token"])
    answer = await client.get(f"/v1/leaderboards/weekly?{query}", headers=headers)
    if query.startswith("period_start=2026-11-30"):
        status = answer.status_code  # 200 in the week of 2026-11-30, else 404
        assert status in (200, 404)
    assert answer.status_code == status
    assert hot_calls == [("/v1/leaderboards/weekly", False)]
    _fall_through(monkeypatch)
    routed = await client.get(f"/v1/leaderboards/weekly?{query}", headers=headers)
    assert (routed.status_code, routed.json()) == (answer.status_code, answer.json())


async def test_an_unknown_period_is_not_taken(client, hot_calls):
    account = await register(client)
    answer = await client.get("/v1/leaderboards/yearly", headers=bearer(account["access_token"]))
    assert answer.status_code == 422
    assert hot_calls == []


async def test_the_boards_metrics_label_is_the_routes_template(client, scraper, hot_calls):
    account = await register(client)
    pattern = re.compile(
        r'stepcoin_http_requests_total\{method="GET",route="/v1/leaderboards/\{period\}",'
        r'status="200"\} ([0-9.e+]+)'
    )

    def count(body: str) -> float:
        match = pattern.search(body)
        return float(match.group(1)) if match else 0.0

    before = count((await scraper.get("/metrics")).text)
    for period in ("daily", "all_time"):
        answer = await client.get(
            f"/v1/leaderboards/{period}", headers=bearer(account["access_token"])
        )
        assert answer.status_code == 200
    assert hot_calls == [("/v1/leaderboards/daily", True), ("/v1/leaderboards/all_time", True)]
    assert count((await scraper.get("/metrics")).text) == before + 2
