"""GET /v1/wallet and /v1/wallet/transactions: the caller's balances and ledger, paged."""

from __future__ import annotations

import base64

import pytest

from stepcoin.db import session_scope
from stepcoin.users.service import set_active
from tests.admin.helpers import adjust, make_staff
from tests.conftest import bearer, register


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/v1/wallet", "/v1/wallet/transactions"])
async def test_anonymous_gets_401(client, path):
    response = await client.get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


async def test_new_wallet_is_empty(client):
    account = await register(client)
    headers = bearer(account["access_token"])
    wallet = await client.get("/v1/wallet", headers=headers)
    assert wallet.status_code == 200
    assert wallet.json() == {
        "available_coins": 0,
        "pending_coins": 0,
        "lifetime_earned": 0,
        "lifetime_spent": 0,
    }
    ledger = await client.get("/v1/wallet/transactions", headers=headers)
    assert ledger.status_code == 200
    assert ledger.json() == {"items": [], "next_cursor": None}


async def test_wallet_shows_the_callers_balances(client, engine):
    admin = await make_staff(client, engine)
    account = await register(client)
    user_id = account["user"]["id"]
    assert (await adjust(client, admin, user_id, 500)).status_code == 201
    assert (await adjust(client, admin, user_id, -120, "correction")).status_code == 201
    wallet = await client.get("/v1/wallet", headers=bearer(account["access_token"]))
    assert wallet.json() == {
        "available_coins": 380,
        "pending_coins": 0,
        "lifetime_earned": 380,  # a debit adjustment takes an earning back (not a purchase)
        "lifetime_spent": 0,
    }
    # the admin's own wallet is untouched
    mine = await client.get("/v1/wallet", headers=admin["headers"])
    assert mine.json()["available_coins"] == 0


@pytest.mark.parametrize("path", ["/v1/wallet", "/v1/wallet/transactions"])
async def test_deactivated_users_token_is_refused(client, app, path):
    account = await register(client)
    headers = bearer(account["access_token"])
    assert (await client.get(path, headers=headers)).status_code == 200
    async with session_scope(app.state.database) as session:
        await set_active(session, account["user"]["id"], False, admin_id=None)
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_transactions_page_newest_first_without_gaps(client, engine):
    admin = await make_staff(client, engine)
    account = await register(client)
    other = await register(client)
    user_id = account["user"]["id"]
    amounts = [10, 20, 30, -5, 40, 50, -15]
    for amount in amounts:
        response = await adjust(client, admin, user_id, amount, f"step {amount}")
        assert response.status_code == 201, response.text
        # interleave another user's rows: they must never show up
        assert (await adjust(client, admin, other["user"]["id"], 1)).status_code == 201

    headers = bearer(account["access_token"])
    pages, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/v1/wallet/transactions", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10
    assert [len(p) for p in pages] == [3, 3, 1]
    items = [item for p in pages for item in p]
    assert [item["amount"] for item in items] == list(reversed(amounts))
    assert len({item["id"] for item in items}) == 7
    ids = [item["id"] for item in items]
    assert ids == sorted(ids, reverse=True)
    # balance_after chains from the oldest row to the newest
    running, expected = 0, []
    for amount in amounts:
        running += amount
        expected.append(running)
    assert [item["balance_after"] for item in items] == list(reversed(expected))
    assert all(item["transaction_type"] == "admin_adjustment" for item in items)
    assert items[0]["note"] == "step -15"
    assert set(items[0]) == {
        "id",
        "amount",
        "transaction_type",
        "reference_id",
        "balance_after",
        "created_at",
        "note",
    }

    theirs = await client.get(
        "/v1/wallet/transactions", headers=bearer(other["access_token"]), params={"limit": 200}
    )
    assert [item["amount"] for item in theirs.json()["items"]] == [1] * 7
    assert not {item["id"] for item in theirs.json()["items"]} & set(ids)


async def test_limit_outside_1_to_200_is_422(client):
    account = await register(client)
    headers = bearer(account["access_token"])
    for limit in (0, 201, "many"):
        response = await client.get(
            "/v1/wallet/transactions", params={"limit": limit}, headers=headers
        )
        assert response.status_code == 422, limit
        assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "abc",
        _b64("no separator"),
        _b64("2024-01-01T00:00:00+00:00|not-a-number"),
        _b64("2024-01-01T00:00:00|5"),  # no time zone
        _b64("yesterday|5"),
        _b64(f"2024-01-01T00:00:00+00:00|{2**63}"),  # beyond BIGINT
        _b64("2024-01-01T00:00:00+00:00|5|6"),
        base64.urlsafe_b64encode(b"\xff\xfe|1").decode(),
    ],
)
async def test_malformed_cursor_is_422(client, cursor):
    account = await register(client)
    response = await client.get(
        "/v1/wallet/transactions",
        params={"cursor": cursor},
        headers=bearer(account["access_token"]),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_cursor"


async def test_a_cursor_never_reaches_another_users_rows(client, engine):
    admin = await make_staff(client, engine)
    mine, theirs = await register(client), await register(client)
    for _ in range(2):
        await adjust(client, admin, mine["user"]["id"], 5)
        await adjust(client, admin, theirs["user"]["id"], 7)
    first = await client.get(
        "/v1/wallet/transactions",
        params={"limit": 1},
        headers=bearer(theirs["access_token"]),
    )
    cursor = first.json()["next_cursor"]
    assert cursor
    # their cursor used with my token pages through my ledger only
    response = await client.get(
        "/v1/wallet/transactions",
        params={"cursor": cursor},
        headers=bearer(mine["access_token"]),
    )
    assert response.status_code == 200
    assert {item["amount"] for item in response.json()["items"]} <= {5}
