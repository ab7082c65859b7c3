"""A client no one here wrote (issue 14): openapi-python-client generates a Python client
from the live /openapi.json, and that client drives register -> sync -> wallet -> order ->
cancel against a running server, as the mobile team's generated client will."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TEST_PASSWORD, unique_email
from tests.fixtures.live import LiveServer
from tests.shop.helpers import product

GENERATOR = Path(sys.executable).parent / "openapi-python-client"


def _generate(url: str, folder: Path) -> Any:
    output = folder / "stepcoin_generated_client"
    subprocess.run(
        [str(GENERATOR), "generate", "--url", url, "--meta", "none", "--output-path", str(output)],
        check=True,
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
    )
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("stepcoin_generated_client")
    finally:
        sys.path.remove(str(folder))


@pytest.mark.slow
async def test_a_generated_client_walks_register_to_cancel(
    client: httpx.AsyncClient, engine: AsyncEngine, live_server: LiveServer, tmp_path: Path
) -> None:
    generated = await asyncio.to_thread(_generate, f"{live_server.url}/openapi.json", tmp_path)
    api = f"{generated.__name__}.api"
    register = importlib.import_module(f"{api}.auth.register")
    sync_steps = importlib.import_module(f"{api}.steps.sync_steps")
    get_wallet = importlib.import_module(f"{api}.wallet.get_wallet")
    create_order = importlib.import_module(f"{api}.shop.create_order")
    cancel_order = importlib.import_module(f"{api}.shop.cancel_order")
    models = importlib.import_module(f"{generated.__name__}.models")
    anonymous = generated.Client(base_url=live_server.url)

    tokens = await register.asyncio(
        client=anonymous,
        body=models.RegisterIn(
            email=unique_email(), password=TEST_PASSWORD, full_name="Gen Walker"
        ),
    )
    assert isinstance(tokens, models.TokenPair), tokens
    walker = generated.AuthenticatedClient(base_url=live_server.url, token=tokens.access_token)
    user_id = str(tokens.user.id)

    today = dt.datetime.now(dt.UTC).date()
    synced = await sync_steps.asyncio(
        client=walker,
        body=models.StepSyncIn(
            records=[
                models.StepRecordIn(
                    date=today, steps=4000, source=models.StepRecordInSource.HEALTHKIT
                )
            ]
        ),
    )
    assert isinstance(synced, models.StepSyncOut), synced
    assert synced.results[0].date == today

    async with engine.begin() as conn:  # the mail's link, and coins through the wallet's door
        await conn.execute(
            text("UPDATE users SET email_verified_at = now() WHERE id = :id"), {"id": user_id}
        )
        await conn.execute(
            text(
                "SELECT * FROM stepcoin_wallet_post(:u, ARRAY[CAST(500 AS bigint)], "
                "ARRAY['admin_adjustment'], ARRAY[CAST(:ref AS text)])"
            ),
            {"u": user_id, "ref": f"seed:{uuid.uuid4()}"},
        )
    product_id = await product(engine, price=120, stock=5)

    wallet = await get_wallet.asyncio(client=walker)
    assert isinstance(wallet, models.WalletOut), wallet
    before = wallet.available_coins
    assert before >= 500

    order = await create_order.asyncio(
        client=walker,
        idempotency_key=str(uuid.uuid4()),
        body=models.OrderIn(
            items=[models.OrderItemIn(product_id=product_id, quantity=2)],
            shipping_address=models.ShippingAddress(
                name="Gen Walker",
                line1="1 Step Street",
                city="Berlin",
                postal_code="10115",
                country=models.ShippingAddressCountry.DE,
            ),
        ),
    )
    assert isinstance(order, models.OrderOut), order
    assert order.total_coins == 240
    wallet = await get_wallet.asyncio(client=walker)
    assert wallet.available_coins == before - 240

    cancelled = await cancel_order.asyncio(client=walker, order_id=order.id)
    assert isinstance(cancelled, models.OrderOut), cancelled
    assert str(cancelled.status) == "cancelled"
    wallet = await get_wallet.asyncio(client=walker)
    assert wallet.available_coins == before

    # A refusal arrives as the typed problem of its status, its code one of the enum's.
    again = await cancel_order.asyncio(client=walker, order_id=order.id)
    assert type(again).__name__ == "CancelOrderResponse409", again
    assert str(again.code) == "order_not_cancellable"

    # Re-authentication is one of two shapes (password, or an ID token with its provider).
    delete_account = importlib.import_module(f"{api}.me.delete_account")
    response = await delete_account.asyncio_detailed(
        client=walker, body=models.PasswordReauthentication(password=TEST_PASSWORD)
    )
    assert response.status_code == 204, response.content
