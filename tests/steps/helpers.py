"""Small factories for step tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests.conftest import bearer


def today():
    return datetime.now(UTC).date()


def day(offset: int = 0) -> str:
    return (today() - timedelta(days=offset)).isoformat()


async def sync(client, token: str, *records: dict[str, Any], status: int = 200) -> list[dict]:
    response = await client.post(
        "/v1/steps", json={"records": list(records)}, headers=bearer(token)
    )
    assert response.status_code == status, response.text
    return response.json().get("results", []) if status == 200 else response.json()


def rec(offset: int, steps: int, source: str = "healthkit", **extra: Any) -> dict[str, Any]:
    return {"date": day(offset), "steps": steps, "source": source, **extra}


async def wallet(client, token: str) -> dict[str, int]:
    response = await client.get("/v1/me", headers=bearer(token))
    assert response.status_code == 200
    return response.json()["wallet"]


async def ledger_ok(engine) -> None:
    """Every wallet equals its ledger, no award twice, no negative balance."""
    async with engine.connect() as conn:
        mismatches = (
            await conn.execute(
                text(
                    "SELECT w.user_id FROM wallets w LEFT JOIN (SELECT user_id, sum(amount) s "
                    "FROM coin_transactions GROUP BY user_id) l ON l.user_id = w.user_id "
                    "WHERE w.available_coins <> coalesce(l.s, 0)"
                )
            )
        ).all()
        duplicates = (
            await conn.execute(
                text(
                    "SELECT user_id, transaction_type, reference_id FROM coin_transactions "
                    "GROUP BY 1, 2, 3 HAVING count(*) > 1"
                )
            )
        ).all()
        negative = (
            await conn.execute(
                text("SELECT count(*) FROM wallets WHERE available_coins < 0 OR pending_coins < 0")
            )
        ).scalar_one()
        # the counters' one rule: available = earned - spent (stepcoin_wallet_post)
        counters_off = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM wallets "
                    "WHERE available_coins <> lifetime_earned - lifetime_spent"
                )
            )
        ).scalar_one()
        day_mismatch = (
            await conn.execute(
                text(
                    "SELECT w.user_id FROM wallets w LEFT JOIN (SELECT user_id, "
                    "sum(coins_pending) p FROM step_days GROUP BY user_id) d "
                    "ON d.user_id = w.user_id LEFT JOIN (SELECT user_id, sum(amount) p "
                    "FROM issuance_holds WHERE released_at IS NULL GROUP BY user_id) h "
                    "ON h.user_id = w.user_id "
                    "WHERE w.pending_coins <> coalesce(d.p, 0) + coalesce(h.p, 0)"
                )
            )
        ).all()
    assert mismatches == [] and duplicates == [] and negative == 0 and day_mismatch == []
    assert counters_off == 0


async def make_admin(client, engine, role: str = "admin") -> str:
    from tests.conftest import register

    account = await register(client)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET role = :r WHERE id = :id"),
            {"r": role, "id": account["user"]["id"]},
        )
    return account["access_token"]
