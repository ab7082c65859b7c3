"""POST /v1/admin/users/{id}/adjustments: one transaction for wallet, ledger and audit row."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from sqlalchemy import text

from tests.admin.helpers import adjust, count, ledger_report, make_staff, wallet_row
from tests.conftest import bearer, register


async def test_anonymous_gets_401(client):
    response = await client.post(
        f"/v1/admin/users/{uuid.uuid4()}/adjustments", json={"amount": 5, "reason": "why not"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("role", ["user", "support"])
async def test_only_admins_adjust(client, engine, role):
    caller = await make_staff(client, engine, role=role)
    walker = await register(client)
    response = await adjust(client, caller, walker["user"]["id"], 100)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 0
    assert (await wallet_row(engine, walker["user"]["id"])).available_coins == 0


@pytest.mark.parametrize("user_id", [pytest.param(str(uuid.uuid4()), id="unknown"), "nope"])
async def test_unknown_user_is_404(client, engine, user_id):
    admin = await make_staff(client, engine)
    response = await adjust(client, admin, user_id, 100)
    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 0


async def test_credit_then_debit_chain_lifetimes_and_audit(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    user_id = walker["user"]["id"]

    credit = await adjust(client, admin, user_id, 250, "lost steps from the outage")
    assert credit.status_code == 201, credit.text
    body = credit.json()
    assert body["amount"] == 250
    assert body["transaction_type"] == "admin_adjustment"
    assert body["balance_after"] == 250
    assert body["note"] == "lost steps from the outage"
    assert body["reference_id"].startswith("adj:")
    assert set(body) == {
        "id",
        "amount",
        "transaction_type",
        "reference_id",
        "balance_after",
        "created_at",
        "note",
    }

    debit = await adjust(client, admin, user_id, -100, "duplicate credit")
    assert debit.status_code == 201
    assert debit.json()["balance_after"] == 150
    assert debit.json()["reference_id"] != body["reference_id"]

    wallet = await wallet_row(engine, user_id)
    # one rule for the counters: only the shop's movements count as spent
    assert (wallet.available_coins, wallet.lifetime_earned, wallet.lifetime_spent) == (
        150,
        150,
        0,
    )
    assert (await ledger_report(engine)).ok

    async with engine.connect() as conn:
        logs = (
            await conn.execute(
                text(
                    "SELECT admin_id::text, entity_type, entity_id, changes FROM admin_logs "
                    "WHERE action = 'wallet.adjust' ORDER BY id"
                )
            )
        ).all()
    assert len(logs) == 2
    assert all(log.admin_id == admin["user"]["id"] for log in logs)
    assert all((log.entity_type, log.entity_id) == ("wallet", user_id) for log in logs)
    assert logs[1].changes["before"] == {"available_coins": 250}
    assert logs[1].changes["after"] == {"available_coins": 150}
    assert logs[1].changes["amount"] == -100
    assert logs[1].changes["reason"] == "duplicate credit"
    assert logs[1].changes["transaction_id"] == debit.json()["id"]

    ledger = await client.get("/v1/wallet/transactions", headers=bearer(walker["access_token"]))
    assert [t["id"] for t in ledger.json()["items"]] == [debit.json()["id"], body["id"]]


async def test_debit_beyond_the_balance_is_409_and_changes_nothing(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    user_id = walker["user"]["id"]
    await adjust(client, admin, user_id, 50)
    response = await adjust(client, admin, user_id, -51, "too much")
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_coins"
    assert response.json()["available_coins"] == 50
    wallet = await wallet_row(engine, user_id)
    assert (wallet.available_coins, wallet.lifetime_earned, wallet.lifetime_spent) == (50, 50, 0)
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 1
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 1
    exact = await adjust(client, admin, user_id, -50, "to zero")
    assert exact.status_code == 201
    assert exact.json()["balance_after"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "reason": "nothing"},
        {"amount": 1_000_001, "reason": "too much"},
        {"amount": -1_000_001, "reason": "too much"},
        {"amount": "10", "reason": "a string"},
        {"amount": 10.5, "reason": "a fraction"},
        {"amount": True, "reason": "a boolean"},
        {"amount": 10, "reason": "no"},
        {"amount": 10, "reason": "   "},
        {"amount": 10, "reason": "x" * 501},
        {"amount": 10},
        {"amount": 10, "reason": "fine", "user_id": str(uuid.uuid4())},
    ],
)
async def test_bad_bodies_are_422_and_change_nothing(client, engine, body):
    admin = await make_staff(client, engine)
    walker = await register(client)
    response = await client.post(
        f"/v1/admin/users/{walker['user']['id']}/adjustments", json=body, headers=admin["headers"]
    )
    assert response.status_code == 422, response.text
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 0


async def test_the_largest_adjustment_is_accepted(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    response = await adjust(client, admin, walker["user"]["id"], 1_000_000)
    # accepted as a request: above the approval threshold a second admin decides (hole 7)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"


async def test_same_idempotency_key_returns_the_first_row(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    user_id = walker["user"]["id"]
    first = await adjust(client, admin, user_id, 75, key="retry-me-1")
    again = await adjust(client, admin, user_id, 75, key="retry-me-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 1
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 1
    assert (await wallet_row(engine, user_id)).available_coins == 75

    # another admin's key lives in its own namespace
    other_admin = await make_staff(client, engine)
    theirs = await adjust(client, other_admin, user_id, 75, key="retry-me-1")
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]
    assert (await wallet_row(engine, user_id)).available_coins == 150


@pytest.mark.parametrize("change", ["amount", "user"])
async def test_reusing_a_key_for_another_adjustment_is_422(client, engine, change):
    admin = await make_staff(client, engine)
    walker, other = await register(client), await register(client)
    await adjust(client, admin, walker["user"]["id"], 75, key="k-1")
    target = other["user"]["id"] if change == "user" else walker["user"]["id"]
    amount = 76 if change == "amount" else 75
    response = await adjust(client, admin, target, amount, key="k-1")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 1
    assert (await wallet_row(engine, target)).available_coins == (
        75 if target == walker["user"]["id"] else 0
    )


@pytest.mark.parametrize("key", ["", "x" * 129, "has space", "ümlaut"])
async def test_malformed_idempotency_key_is_422(client, engine, key):
    admin = await make_staff(client, engine)
    walker = await register(client)
    headers = {**admin["headers"], "Idempotency-Key": key}
    response = await client.post(
        f"/v1/admin/users/{walker['user']['id']}/adjustments",
        json={"amount": 5, "reason": "test key"},
        headers={k: v.encode() if k == "Idempotency-Key" else v for k, v in headers.items()},
    )
    assert response.status_code == 422
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 0


async def test_concurrent_retries_with_one_key_adjust_once(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    responses = await asyncio.gather(
        *[adjust(client, admin, walker["user"]["id"], 30, key="double-click") for _ in range(6)]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 1
    assert (await wallet_row(engine, walker["user"]["id"])).available_coins == 30


async def test_twenty_concurrent_adjustments_keep_wallet_equal_to_ledger(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    user_id = walker["user"]["id"]
    assert (await adjust(client, admin, user_id, 100)).status_code == 201
    rng = random.Random(7)
    amounts = [rng.choice([-60, -35, -20, 15, 25, 40]) for _ in range(20)]
    responses = await asyncio.gather(*[adjust(client, admin, user_id, a) for a in amounts])
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    applied = [a for a, r in zip(amounts, responses, strict=True) if r.status_code == 201]
    # more debits than the wallet can hold: some are refused, credits and debits both land
    assert statuses.count(409) > 0
    assert any(a < 0 for a in applied) and any(a > 0 for a in applied)

    wallet = await wallet_row(engine, user_id)
    assert wallet.available_coins == 100 + sum(applied)
    assert wallet.available_coins >= 0
    assert wallet.lifetime_earned == 100 + sum(applied)
    assert wallet.lifetime_spent == 0
    assert wallet.available_coins == wallet.lifetime_earned - wallet.lifetime_spent
    report = await ledger_report(engine)
    assert report.ok, report
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT amount, balance_after FROM coin_transactions "
                    "WHERE user_id = :id ORDER BY created_at, id"
                ),
                {"id": user_id},
            )
        ).all()
    assert len(rows) == 1 + len(applied)
    running = 0
    for row in rows:  # the chain holds in (created_at, id) order, and never dips below zero
        running += row.amount
        assert row.balance_after == running >= 0
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 1 + len(applied)
