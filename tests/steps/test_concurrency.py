"""Many clients syncing, re-syncing and withdrawing overlapping days at once: money stays exact."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from stepcoin.wallet.service import check_ledger
from tests.conftest import bearer, register
from tests.steps.helpers import ledger_ok, make_admin, rec

USERS = 20
CLIENTS = 50
ROUNDS = 6
SOURCES = ["healthkit", "google_fit", "health_connect"]


def random_batch(rng: random.Random) -> list[dict]:
    batch = []
    for offset in rng.sample(range(7), rng.randint(1, 7)):
        source = rng.choice(SOURCES)
        if rng.random() < 0.1:
            batch.append(rec(offset, 0, source, deleted=True))
        else:
            batch.append(
                rec(
                    offset,
                    rng.choice([3000, 6000, 9000, 12000, 30000]),
                    source,
                    manual=rng.random() < 0.1,
                )
            )
    return batch


async def test_fifty_clients_twenty_users_wallets_equal_ledgers(client, engine, app):
    accounts = [await register(client) for _ in range(USERS)]
    rng = random.Random(20261125)
    fixed = [random_batch(rng) for _ in range(5)]  # identical batches sent again and again
    admin = await make_admin(client, engine)

    async def worker(n: int) -> list[int]:
        local = random.Random(n)
        statuses = []
        for _ in range(ROUNDS):
            account = local.choice(accounts)
            batch = local.choice(fixed) if local.random() < 0.4 else random_batch(local)
            response = await client.post(
                "/v1/steps", json={"records": batch}, headers=bearer(account["access_token"])
            )
            statuses.append(response.status_code)
            if local.random() < 0.15:  # reviewers work the queue at the same time
                queue = await client.get("/v1/admin/validations", headers=bearer(admin))
                for item in queue.json()["items"][:2]:
                    verb = local.choice(["approve", "reject"])
                    await client.post(
                        f"/v1/admin/validations/{item['id']}/{verb}", headers=bearer(admin)
                    )
        return statuses

    results = await asyncio.gather(*[worker(n) for n in range(CLIENTS)])
    statuses = [s for r in results for s in r]
    assert statuses.count(200) == len(statuses), sorted(set(statuses))

    await ledger_ok(engine)
    async with app.state.database.sessionmaker() as session:
        report = await check_ledger(session)
    assert report.ok, report
    async with engine.connect() as conn:
        # every day's paid coins add up to the wallet's step income, and never exceed the cap
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT w.user_id, w.available_coins,
                           coalesce((SELECT sum(coins_paid) FROM step_days d
                                     WHERE d.user_id = w.user_id), 0) AS paid
                    FROM wallets w
                    """
                )
            )
        ).all()
        over_cap = (
            await conn.execute(text("SELECT count(*) FROM step_days WHERE coins_paid > 200"))
        ).scalar_one()
    assert over_cap == 0
    for row in rows:
        assert row.available_coins == row.paid, row
