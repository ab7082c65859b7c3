"""Hot GETs answer orjson bytes without running the response model (issue 13): the bytes must
be exactly what FastAPI would have written through `response_model`, and the OpenAPI schema
must still name the models."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.users import repository as users_repository
from stepcoin.users.schemas import ProfileOut
from stepcoin.wallet import service as wallet
from stepcoin.wallet.schemas import TransactionPage, WalletOut
from stepcoin.wallet.service import Entry
from tests.conftest import bearer, register


async def _walker(app, client, **fields: str) -> tuple[dict, dict]:
    account = await register(client, **fields)
    user = uuid.UUID(account["user"]["id"])
    async with session_scope(app.state.database) as session:
        await wallet.post(
            session,
            user,
            [
                Entry(120, wallet.STEP_REWARD, f"fast:{user}:1"),
                Entry(7, wallet.ACHIEVEMENT_REWARD, f"fast:{user}:2", 'Zoë\'s first 🚶 "km"'),
                Entry(-20, wallet.REDEMPTION, f"fast:{user}:3"),
            ],
        )
    return account, bearer(account["access_token"])


async def test_profile_bytes_are_the_response_models_own(app, client):
    account, headers = await _walker(app, client, full_name='Zoë "the walker" 🚶 \\ é')
    user = uuid.UUID(account["user"]["id"])
    answer = await client.get("/v1/me", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    async with (await app.state.database.fast_pool()).acquire() as conn:
        row = await users_repository.fetch_profile(conn, user)
    assert row is not None
    expected = ProfileOut.model_validate(users_repository.profile_to_response(row))
    assert answer.content == expected.model_dump_json().encode()
    assert answer.json()["wallet"]["available_coins"] == 107
    assert answer.json()["phone"] is None


async def test_profile_with_a_whole_second_created_at_and_a_phone(app, client):
    account, headers = await _walker(app, client, phone="+4915112345678")
    user = uuid.UUID(account["user"]["id"])
    async with session_scope(app.state.database) as session:
        await session.execute(
            text("UPDATE users SET created_at = '2026-01-02 03:04:05+00' WHERE id = :id"),
            {"id": user},
        )
    answer = await client.get("/v1/me", headers=headers)
    assert answer.json()["created_at"] == "2026-01-02T03:04:05Z"
    assert answer.json()["phone"] == "+4915112345678"
    assert ProfileOut.model_validate_json(answer.content).model_dump_json().encode() == (
        answer.content
    )


async def test_wallet_and_ledger_bytes_are_the_response_models_own(app, client):
    _, headers = await _walker(app, client)
    answer = await client.get("/v1/wallet", headers=headers)
    assert answer.status_code == 200
    assert (
        answer.content == WalletOut.model_validate_json(answer.content).model_dump_json().encode()
    )
    assert answer.json() == {
        "available_coins": 107,
        "pending_coins": 0,
        "lifetime_earned": 127,
        "lifetime_spent": 20,
    }
    first = await client.get("/v1/wallet/transactions", params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    page = first.json()
    assert [item["amount"] for item in page["items"]] == [-20, 7]
    assert page["items"][1]["note"] == 'Zoë\'s first 🚶 "km"'
    assert first.content == (
        TransactionPage.model_validate_json(first.content).model_dump_json().encode()
    )
    second = await client.get(
        "/v1/wallet/transactions",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=headers,
    )
    assert [item["amount"] for item in second.json()["items"]] == [120]
    assert second.json()["next_cursor"] is None
    assert second.content == (
        TransactionPage.model_validate_json(second.content).model_dump_json().encode()
    )


async def test_the_openapi_schema_still_names_the_models(client):
    schema = (await client.get("/openapi.json")).json()

    def ok(path: str) -> str:
        content = schema["paths"][path]["get"]["responses"]["200"]["content"]
        ref: str = content["application/json"]["schema"]["$ref"]
        return ref.rsplit("/", 1)[1]

    assert ok("/v1/me") == "ProfileOut"
    assert ok("/v1/wallet") == "WalletOut"
    assert ok("/v1/wallet/transactions") == "TransactionPage"
