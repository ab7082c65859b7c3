"""Issue 15 item 4: a prize table per period, paid once when a board's final snapshot is
taken; ties share a rank (each gets its prize); a walker with a day in review waits and is
paid after the review; staff win nothing; a re-run of the close pays nobody twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from stepcoin.leaderboards import service
from tests.achievements.helpers import set_days
from tests.admin.helpers import count, ledger_report, make_staff
from tests.leaderboards.helpers import utc, walker
from tests.steps.helpers import today

TABLE = [
    {"from_rank": 2, "to_rank": 4, "coins": 50},
    {"from_rank": 1, "to_rank": 1, "coins": 100},
]


async def prize_rows(engine) -> dict[str, tuple[int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT user_id, amount, note, reference_id FROM coin_transactions "
                "WHERE transaction_type = 'prize_reward'"
            )
        )
        return {str(r.user_id): (r.amount, r.reference_id) for r in rows}


async def test_prizes_pay_once_per_final_board_ties_share_and_reviews_wait(app, client, engine):
    admin = await make_staff(client, engine)
    put = await client.put(
        "/v1/admin/leaderboards/daily/prizes", json=TABLE, headers=admin["headers"]
    )
    assert put.status_code == 200, put.text
    assert put.json()["prizes"] == sorted(TABLE, key=lambda line: line["from_rank"])

    yesterday = today() - timedelta(days=1)
    staff = await make_staff(client, engine, role="support")
    a = await walker(client, engine, "Ada First")
    f = await walker(client, engine, "Flo Flagged")
    b = await walker(client, engine, "Bea Tied")
    c = await walker(client, engine, "Cy Tied")
    d = await walker(client, engine, "Dee Fifth")
    for who, steps in (
        (staff["user"]["id"], 20_000),  # rank 1 on the board, but staff win nothing
        (a["id"], 9_000),  # rank 2
        (f["id"], 8_000),  # rank 3, with a day in review
        (b["id"], 7_000),  # rank 4
        (c["id"], 7_000),  # rank 4 too: a tie shares the rank and its prize
        (d["id"], 5_000),  # rank 6: no prize
    ):
        await set_days(engine, who, {yesterday: steps})
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO step_records (user_id, recorded_date, source, steps, status, "
                "is_manual) VALUES (:u, :d, 'manual', 3000, 'flagged', true)"
            ),
            {"u": f["id"], "d": yesterday},
        )

    database = app.state.database
    await service.rebuild_if_due(database, now=utc(today(), 6))  # live: no round yet
    assert await count(engine, "SELECT count(*) FROM leaderboard_prize_rounds") == 0
    await service.rebuild_if_due(database, now=utc(today(), 12, 1))  # the final snapshot
    [jobs] = [
        await count(
            engine,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'leaderboards:pay_prizes'",
        )
    ]
    assert jobs == 1  # queued with the final build
    async with engine.connect() as conn:
        awards = {
            str(r.user_id): (r.rank, r.coins, r.status)
            for r in await conn.execute(
                text("SELECT user_id, rank, coins, status FROM leaderboard_prize_awards")
            )
        }
    assert awards == {
        a["id"]: (2, 50, "waiting"),
        f["id"]: (3, 50, "waiting"),
        b["id"]: (4, 50, "waiting"),
        c["id"]: (4, 50, "waiting"),
    }

    assert await service.pay_prizes(database) == (3, 150)
    paid = await prize_rows(engine)
    assert set(paid) == {a["id"], b["id"], c["id"]}
    assert paid[a["id"]] == (50, f"prize:daily:{yesterday.isoformat()}:{a['id']}")

    # a re-run of the close: the board made final again, the payout run again
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE leaderboard_builds SET is_final = false"))
    await service.rebuild_if_due(database, now=utc(today(), 12, 2))
    assert await service.pay_prizes(database) == (0, 0)
    assert await count(engine, "SELECT count(*) FROM leaderboard_prize_rounds") == 1
    assert len(await prize_rows(engine)) == 3

    # the review settles: the waiting walker is paid by the next run
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE step_records SET status = 'approved' WHERE user_id = :u"), {"u": f["id"]}
        )
    assert await service.pay_prizes(database) == (1, 50)
    assert await service.pay_prizes(database) == (0, 0)
    paid = await prize_rows(engine)
    assert set(paid) == {a["id"], b["id"], c["id"], f["id"]}
    assert (await ledger_report(engine)).ok
    wallet = await client.get(
        "/v1/wallet/transactions", headers={"Authorization": f"Bearer {f['token']}"}
    )
    [row] = wallet.json()["items"]
    assert row["transaction_type"] == "prize_reward" and row["amount"] == 50
    assert row["note"] == f"Leaderboard prize: rank 3 of the daily board of {yesterday.isoformat()}"
    exported = await client.get("/v1/me/export", headers={"Authorization": f"Bearer {f['token']}"})
    [prize] = exported.json()["leaderboard_prizes"]
    assert (prize["period"], prize["period_start"], prize["rank"], prize["coins"]) == (
        "daily",
        yesterday.isoformat(),
        3,
        50,
    )
    assert prize["status"] == "paid"


async def test_a_period_without_a_table_pays_nothing(app, client, engine):
    me = await walker(client, engine, "Solo Walker")
    yesterday = today() - timedelta(days=1)
    await set_days(engine, me["id"], {yesterday: 9000})
    await service.rebuild_if_due(app.state.database, now=utc(today(), 12, 1))
    assert await count(engine, "SELECT count(*) FROM leaderboard_prize_rounds") == 0
    assert await service.pay_prizes(app.state.database) == (0, 0)


async def test_the_prize_table_api(client, engine):
    admin = await make_staff(client, engine)
    support = await make_staff(client, engine, role="support")
    url = "/v1/admin/leaderboards/weekly/prizes"
    empty = await client.get(url, headers=support["headers"])
    assert empty.status_code == 200 and empty.json() == {"period": "weekly", "prizes": []}
    assert (await client.put(url, json=TABLE, headers=support["headers"])).status_code == 403
    assert (await client.get(url)).status_code == 401
    overlap = [
        {"from_rank": 1, "to_rank": 3, "coins": 10},
        {"from_rank": 3, "to_rank": 5, "coins": 5},
    ]
    bad = await client.put(url, json=overlap, headers=admin["headers"])
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_prizes"
    reversed_range = [{"from_rank": 5, "to_rank": 3, "coins": 10}]
    bad = await client.put(url, json=reversed_range, headers=admin["headers"])
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_prizes"
    for wrong in (
        [{"from_rank": 0, "to_rank": 1, "coins": 1}],
        [{"from_rank": 1, "to_rank": 1, "coins": 0}],
    ):
        assert (await client.put(url, json=wrong, headers=admin["headers"])).status_code == 422
    all_time = await client.put(
        "/v1/admin/leaderboards/all_time/prizes", json=TABLE, headers=admin["headers"]
    )
    assert all_time.status_code == 422
    assert (await client.put(url, json=TABLE, headers=admin["headers"])).status_code == 200
    cleared = await client.put(url, json=[], headers=admin["headers"])
    assert cleared.status_code == 200 and cleared.json()["prizes"] == []
    assert (
        await count(
            engine,
            "SELECT count(*) FROM admin_logs WHERE action = 'leaderboard.prizes_set' "
            "AND entity_id = 'weekly'",
        )
        == 2
    )


async def test_a_prizes_budget_holds_an_award_and_its_release_marks_it_paid(app, client, engine):
    """Issue 15, item 2: prizes pay under the prizes' issuance budget; an award beyond the cap
    is `held` (pending for the walker) and shown paid once the release has paid it."""
    from stepcoin.db import session_scope
    from stepcoin.wallet import budgets

    admin = await make_staff(client, engine)
    table = [{"from_rank": 1, "to_rank": 2, "coins": 60}]
    put = await client.put(
        "/v1/admin/leaderboards/daily/prizes", json=table, headers=admin["headers"]
    )
    assert put.status_code == 200, put.text
    capped = await client.put(
        "/v1/admin/economy/budgets/prizes/day",
        json={"cap_coins": 100, "alert_percent": 90},
        headers=admin["headers"],
    )
    assert capped.status_code == 200, capped.text
    yesterday = today() - timedelta(days=1)
    first = await walker(client, engine, "Ann One")
    second = await walker(client, engine, "Bob Two")
    await set_days(engine, first["id"], {yesterday: 9_000})
    await set_days(engine, second["id"], {yesterday: 8_000})
    database = app.state.database
    await service.rebuild_if_due(database, now=utc(today(), 12, 1))
    assert await service.pay_prizes(database) == (1, 60)  # the second 60 does not fit
    async with engine.connect() as conn:
        statuses = sorted(
            r.status
            for r in await conn.execute(text("SELECT status FROM leaderboard_prize_awards"))
        )
    assert statuses == ["held", "paid"]
    assert await count(engine, "SELECT sum(pending_coins) FROM wallets") == 60
    assert (await ledger_report(engine)).ok

    await client.delete("/v1/admin/economy/budgets/prizes/day", headers=admin["headers"])
    async with session_scope(database) as session:
        assert await budgets.release_held(session) == 1
    assert await service.pay_prizes(database) == (0, 0)  # nothing new to pay: it marks it
    async with engine.connect() as conn:
        statuses = sorted(
            r.status
            for r in await conn.execute(text("SELECT status FROM leaderboard_prize_awards"))
        )
    assert statuses == ["paid", "paid"]
    assert len(await prize_rows(engine)) == 2
    assert (await ledger_report(engine)).ok
