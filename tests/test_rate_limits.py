"""Rate limits (issue 14, item 4; stepcoin.ratelimit): per account and per client address,
429 with Retry-After and the IETF RateLimit fields, limits in runtime settings, counts shared
by every API process and taken atomically on all of a request's keys."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from stepcoin.main import create_app
from stepcoin.queue import JobRuntime
from stepcoin.queue_tasks import prune_rate_limits
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.worker import open_jobs
from tests.conftest import bearer, register
from tests.shop.helpers import order, product, walker_with_coins
from tests.steps.helpers import make_admin, rec, wallet

pytestmark = pytest.mark.usefixtures("fresh_limits")


@pytest.fixture
async def fresh_limits(engine):
    """Every test starts with full buckets and the default limits."""
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM rate_limit_buckets"))
    runtime_settings.invalidate()
    yield
    runtime_settings.invalidate()


async def limit(engine, key: str, value: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = to_jsonb(CAST(:v AS text)) WHERE key = :k"),
            {"k": f"ratelimit.{key}", "v": value},
        )
    runtime_settings.invalidate()


def client_from(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test")


def fields(response: httpx.Response) -> dict[str, Any]:
    """The RateLimit fields, parsed: policy name, q, w, r, t."""
    policy = re.fullmatch(r'"([a-z_]+)";q=(\d+);w=(\d+)', response.headers["RateLimit-Policy"])
    left = re.fullmatch(r'"([a-z_]+)";r=(\d+);t=(\d+)', response.headers["RateLimit"])
    assert policy and left, response.headers
    assert policy.group(1) == left.group(1)
    return {
        "policy": policy.group(1),
        "q": int(policy.group(2)),
        "w": int(policy.group(3)),
        "r": int(left.group(2)),
        "t": int(left.group(3)),
    }


async def sync_once(client, token: str, steps: int):
    return await client.post("/v1/steps", json={"records": [rec(1, steps)]}, headers=bearer(token))


async def test_syncs_beyond_an_accounts_limit_get_429_and_change_nothing(client, engine):
    await limit(engine, "sync_per_account", "3/minute")
    me = await register(client)
    token = me["access_token"]
    left = []
    for steps in (1000, 2000, 3000):
        answer = await sync_once(client, token, steps)
        assert answer.status_code == 200
        left.append(fields(answer))
    assert [f["r"] for f in left] == [2, 1, 0]
    assert {(f["policy"], f["q"], f["w"]) for f in left} == {("sync_per_account", 3, 60)}
    coins = await wallet(client, token)

    refused = await sync_once(client, token, 9000)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "rate_limited"
    assert problem["policy"] == "sync_per_account"
    retry_after = int(refused.headers["Retry-After"])
    assert 15 <= retry_after <= 20  # one request's worth of a 3/minute bucket
    assert problem["retry_after"] == retry_after
    assert fields(refused) == {"policy": "sync_per_account", "q": 3, "w": 60, "r": 0, "t": 60}
    assert await wallet(client, token) == coins  # the refused sync paid nothing
    days = (await client.get("/v1/steps", headers=bearer(token))).json()
    assert [d["steps"] for d in days["items"]] == [3000]

    other = await register(client)  # another account behind the same address still syncs
    assert (await sync_once(client, other["access_token"], 500)).status_code == 200


async def test_an_address_limit_counts_every_account_behind_it(app, client, engine):
    await limit(engine, "sync_per_address", "2/minute")
    first, second, third = [await register(client) for _ in range(3)]
    assert (await sync_once(client, first["access_token"], 100)).status_code == 200
    assert (await sync_once(client, second["access_token"], 100)).status_code == 200
    refused = await sync_once(client, third["access_token"], 100)
    assert refused.status_code == 429
    assert refused.json()["policy"] == "sync_per_address"
    async with client_from(app, "198.51.100.9") as elsewhere:  # another address: its own count
        assert (await sync_once(elsewhere, third["access_token"], 100)).status_code == 200


async def test_a_refusal_on_one_key_takes_nothing_from_the_others(client, engine):
    """The account's limit refuses: the address keeps the request it did not serve."""
    await limit(engine, "sync_per_account", "1/minute")
    await limit(engine, "sync_per_address", "2/minute")
    first, second = await register(client), await register(client)
    assert (await sync_once(client, first["access_token"], 100)).status_code == 200
    for _ in range(3):  # refused by the account's limit, again and again
        answer = await sync_once(client, first["access_token"], 200)
        assert answer.json()["policy"] == "sync_per_account"
    # the address has served one request: one is left for another walker, then no more
    assert (await sync_once(client, second["access_token"], 100)).status_code == 200
    refused = await sync_once(client, second["access_token"], 200)
    assert refused.status_code == 429
    assert refused.json()["policy"] in {"sync_per_account", "sync_per_address"}


async def test_two_processes_share_the_counts_under_a_burst(app, settings, engine):
    """Twenty syncs at once, split over two app instances (two API processes with their own
    pools): exactly the limit gets through."""
    await limit(engine, "sync_per_account", "5/minute")
    other_app = create_app(settings, run_worker=False)
    async with (
        other_app.router.lifespan_context(other_app),
        client_from(app, "203.0.113.20") as one,
        client_from(other_app, "203.0.113.21") as two,
    ):
        me = await register(one)
        token = me["access_token"]
        answers = await asyncio.gather(
            *(sync_once(c, token, 1000 + i) for i, c in enumerate([one, two] * 10))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 5
    assert statuses.count(429) == 15


async def test_orders_beyond_the_limit_get_429_and_move_no_coins(client, engine):
    await limit(engine, "orders_per_account", "2/minute")
    bottle = await product(engine, price=10)
    me = await walker_with_coins(client, engine, 100)
    token = me["access_token"]
    for _ in range(2):
        assert (await order(client, token, [(bottle, 1)])).status_code == 201
    refused = await order(client, token, [(bottle, 1)])
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["policy"] == "orders_per_account"
    assert (await wallet(client, token))["available_coins"] == 80
    listed = (await client.get("/v1/orders", headers=bearer(token))).json()
    assert len(listed["items"]) == 2
    # cancelling is an order action too: the same bucket
    first = listed["items"][0]["id"]
    assert (
        await client.post(f"/v1/orders/{first}/cancel", headers=bearer(token))
    ).status_code == 429


async def test_exports_are_limited_per_account(client, engine):
    await limit(engine, "exports_per_account", "1/hour")
    me = await register(client)
    first = await client.get("/v1/me/export", headers=bearer(me["access_token"]))
    assert first.status_code == 200
    assert fields(first)["policy"] in {"exports_per_account", "exports_per_address"}
    refused = await client.get("/v1/me/export", headers=bearer(me["access_token"]))
    assert refused.status_code == 429
    assert refused.json()["policy"] == "exports_per_account"
    assert int(refused.headers["Retry-After"]) > 3000  # a whole hour's step


async def test_mail_requests_keep_their_codes(client, engine):
    await limit(engine, "mails_per_account", "2/hour")
    await limit(engine, "mails_per_address", "3/hour")
    me = await register(client, verified=False)
    headers = bearer(me["access_token"])
    for _ in range(2):
        assert (
            await client.post("/v1/auth/verify-email/request", headers=headers)
        ).status_code == 202
    refused = await client.post("/v1/auth/verify-email/request", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_verification_mails"
    # the reset request counts per address only (an email's count would tell nothing new)
    reset = await client.post("/v1/auth/password-reset/request", json={"email": "a@example.com"})
    assert reset.status_code == 202  # the address's third mail request this hour
    refused = await client.post("/v1/auth/password-reset/request", json={"email": "b@example.com"})
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_reset_requests"
    assert refused.json()["policy"] == "mails_per_address"


async def test_token_refreshes_are_limited_per_address(client, engine):
    await limit(engine, "sessions_per_address", "1/minute")
    me = await register(client)
    first = await client.post("/v1/auth/refresh", json={"refresh_token": me["refresh_token"]})
    assert first.status_code == 200
    again = await client.post("/v1/auth/refresh", json={"refresh_token": "not-a-token"})
    assert again.status_code == 429
    assert again.json()["policy"] == "sessions_per_address"


async def test_routes_without_a_limit_carry_no_fields(client):
    me = await register(client)
    answer = await client.get("/v1/wallet", headers=bearer(me["access_token"]))
    assert answer.status_code == 200
    assert "RateLimit" not in answer.headers


async def test_a_bucket_refills_at_its_rate(client, engine):
    await limit(engine, "sync_per_account", "1/second")
    me = await register(client)
    assert (await sync_once(client, me["access_token"], 100)).status_code == 200
    refused = await sync_once(client, me["access_token"], 200)
    assert refused.status_code == 429
    await asyncio.sleep(1.05)
    assert (await sync_once(client, me["access_token"], 300)).status_code == 200


async def test_limits_are_settings_an_admin_changes_and_bad_ones_are_refused(client, engine):
    token = await make_admin(client, engine)
    key = "/v1/admin/settings/ratelimit.sync_per_account"
    bad = await client.put(key, json={"value": "lots"}, headers=bearer(token))
    assert bad.status_code == 422
    good = await client.put(key, json={"value": "2/minute"}, headers=bearer(token))
    assert good.status_code == 200
    runtime_settings.invalidate()
    me = await register(client)
    assert fields(await sync_once(client, me["access_token"], 100))["q"] == 2


async def test_prune_deletes_only_full_buckets(client, app, engine):
    await limit(engine, "sync_per_account", "1/second")
    await limit(engine, "sync_per_address", "1000/hour")
    me = await register(client)
    assert (await sync_once(client, me["access_token"], 100)).status_code == 200
    await asyncio.sleep(1.05)  # the account's bucket is full again; the address's is not
    JobRuntime.database = app.state.database
    assert await prune_rate_limits(timestamp=0) == 1  # the periodic job (every 10 minutes)
    async with engine.connect() as conn:
        keys = (await conn.execute(text("SELECT key FROM rate_limit_buckets"))).scalars().all()
    assert keys == ["sync:address:203.0.113.7"]
    async with open_jobs(app.state.database) as jobs:
        periodic = {name for name, _ in jobs.periodic_registry.periodic_tasks}
    assert "queue:prune_rate_limits" in periodic


async def test_the_buckets_table_writes_no_wal(engine):
    async with engine.connect() as conn:
        persistence = (
            await conn.execute(
                text(
                    "SELECT relpersistence::text FROM pg_class WHERE relname = 'rate_limit_buckets'"
                )
            )
        ).scalar_one()
    assert persistence == "u"  # unlogged


def test_the_openapi_document_names_the_limits(app):
    document = app.openapi()
    sync = document["paths"]["/v1/steps"]["post"]["responses"]["429"]
    assert "rate_limited" in json.dumps(sync)
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(sync["headers"])


async def test_a_request_without_a_valid_token_is_not_counted(client, engine):
    """A signed-in route counts signed-in callers only: without a token the route's 401
    answers (it costs no work), even from an address at its limit."""
    await limit(engine, "sync_per_address", "1/minute")
    me = await register(client)
    assert (await sync_once(client, me["access_token"], 100)).status_code == 200
    assert (await sync_once(client, me["access_token"], 200)).status_code == 429
    anonymous = await client.post("/v1/steps", json={"records": [rec(1, 100)]})
    assert anonymous.status_code == 401
    forged = await sync_once(client, "not-a-token", 100)
    assert forged.status_code == 401


def test_an_address_counts_as_itself_or_its_ipv6_network_every_time():
    """address_bucket is cached: each address still gets its own answer, asked again and again
    and among others (an IPv6 address by its /64, an IPv4-mapped one as the IPv4 address)."""
    from stepcoin.ratelimit import address_bucket

    expected = {
        "203.0.113.7": "203.0.113.7",
        "203.0.113.8": "203.0.113.8",
        "2001:db8:1:2:aaaa::1": "2001:db8:1:2::/64",
        "2001:db8:1:2:bbbb::2": "2001:db8:1:2::/64",
        "2001:db8:1:3::1": "2001:db8:1:3::/64",
        "::ffff:198.51.100.4": "198.51.100.4",
        "not an address": "not an address",
        "": "unknown",
        None: "unknown",
    }
    for _ in range(3):
        for address, bucket in expected.items():
            assert address_bucket(address) == bucket
