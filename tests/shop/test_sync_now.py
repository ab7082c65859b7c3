"""POST /v1/admin/shopify/sync?wait=true: Shopify is called with no transaction of ours open,
and the audit row with the outcome is written afterwards (a failure too)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text

from stepcoin.shop import runtime
from stepcoin.shop.shopify import ShopifyUnavailable
from tests.conftest import bearer
from tests.steps.helpers import make_admin

OPEN_TRANSACTIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND application_name = 'stepcoin' AND state LIKE 'idle in transaction%'"
)


class WatchingClient:
    """A Shopify client with an empty catalogue that, when asked for it, counts StepCoin's
    connections left idle in a transaction (or fails like an unreachable Shopify)."""

    def __init__(self, engine: Any, seen: list[int], *, fail: bool = False) -> None:
        self.engine, self.seen, self.fail = engine, seen, fail

    async def __aenter__(self) -> WatchingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def iter_products(self) -> AsyncIterator[Any]:
        async with self.engine.connect() as conn:
            self.seen.append(int((await conn.execute(OPEN_TRANSACTIONS)).scalar_one()))
        if self.fail:
            raise ShopifyUnavailable("Shopify stayed unreachable (test)")
        for product in ():
            yield product


async def audit_rows(engine: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT changes FROM admin_logs WHERE action = 'shop.sync' ORDER BY id")
        )
        return [row.changes["after"] for row in rows]


async def last_run(engine: Any) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT id, status, error FROM shop_sync_runs ORDER BY id DESC LIMIT 1")
            )
        ).one()


async def test_waiting_sync_calls_shopify_outside_any_transaction(client, engine):
    admin = await make_admin(client, engine)
    seen: list[int] = []
    runtime.override_client_factory(lambda: WatchingClient(engine, seen))
    try:
        response = await client.post("/v1/admin/shopify/sync?wait=true", headers=bearer(admin))
    finally:
        runtime.override_client_factory(None)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded" and body["products_seen"] == 0
    assert seen == [0]  # the request's own session had no transaction open during the call
    assert await audit_rows(engine) == [
        {"wait": True, "status": "succeeded", "sync_run_id": body["id"]}
    ]


async def test_waiting_sync_that_fails_is_a_502_audited_with_the_failure(client, engine):
    admin = await make_admin(client, engine)
    seen: list[int] = []
    runtime.override_client_factory(lambda: WatchingClient(engine, seen, fail=True))
    try:
        response = await client.post("/v1/admin/shopify/sync?wait=true", headers=bearer(admin))
    finally:
        runtime.override_client_factory(None)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "shopify_unavailable"
    run = await last_run(engine)
    assert run.status == "failed" and "unreachable" in run.error
    [after] = await audit_rows(engine)
    assert after["wait"] is True and after["status"] == "failed"


async def test_support_cannot_sync_and_nothing_is_audited(client, engine):
    support = await make_admin(client, engine, role="support")
    response = await client.post("/v1/admin/shopify/sync?wait=true", headers=bearer(support))
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    anonymous = await client.post("/v1/admin/shopify/sync?wait=true")
    assert anonymous.status_code == 401
    assert await audit_rows(engine) == []
