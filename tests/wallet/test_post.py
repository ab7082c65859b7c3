"""The wallet's one door: stepcoin_wallet_post / wallet.service.post, and the books' guards."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from stepcoin.db import session_scope
from stepcoin.errors import NotFound
from stepcoin.wallet import service as wallet
from stepcoin.wallet.service import Entry, InsufficientCoins
from tests.admin.helpers import count, ledger_report, wallet_row
from tests.conftest import register


async def _walker(client) -> uuid.UUID:
    return uuid.UUID((await register(client))["user"]["id"])


async def _post(app, user: uuid.UUID, *entries: Entry, pending: int = 0) -> list[Any]:
    async with session_scope(app.state.database) as session:
        return await wallet.post(session, user, list(entries), pending_delta=pending)


async def _wallet(engine, user: uuid.UUID) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT available_coins, pending_coins, lifetime_earned, lifetime_spent, "
                    "version FROM wallets WHERE user_id = :u"
                ),
                {"u": user},
            )
        ).one()
    return dict(row._mapping)


async def test_entries_post_in_order_with_a_balance_chain_and_one_counter_rule(app, client, engine):
    user = await _walker(client)
    posted = await _post(
        app,
        user,
        Entry(100, wallet.STEP_REWARD, f"t:{user}:1"),
        Entry(50, wallet.ACHIEVEMENT_REWARD, f"t:{user}:2", "badge"),
        Entry(-120, wallet.REDEMPTION, f"t:{user}:3"),
        Entry(20, wallet.REFUND, f"t:{user}:4"),
        Entry(-10, wallet.REVERSAL, f"t:{user}:5"),
    )
    assert [p.balance_after for p in posted] == [100, 150, 30, 50, 40]
    assert [p.replayed for p in posted] == [False] * 5
    assert posted[1].note == "badge"
    assert [p.created_at for p in posted] == sorted(p.created_at for p in posted)
    state = await _wallet(engine, user)
    # shop movements count as spent (net of refunds); everything else as earned (net)
    assert state["lifetime_spent"] == 100
    assert state["lifetime_earned"] == 140
    assert state["available_coins"] == 40 == state["lifetime_earned"] - state["lifetime_spent"]
    assert (await ledger_report(engine)).ok


async def test_a_reference_posts_once_and_a_retry_is_a_replay(app, client, engine):
    user = await _walker(client)
    first = await _post(app, user, Entry(70, wallet.STEP_REWARD, f"once:{user}"))
    again = await _post(
        app,
        user,
        Entry(70, wallet.STEP_REWARD, f"once:{user}"),
        Entry(5, wallet.STEP_REWARD, f"new:{user}"),
    )
    assert [(p.id, p.replayed) for p in again if p.replayed] == [(first[0].id, True)]
    assert [p.balance_after for p in again if not p.replayed] == [75]
    assert (await _wallet(engine, user))["available_coins"] == 75
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 2


async def test_a_debit_below_zero_is_refused_and_writes_nothing(app, client, engine):
    user = await _walker(client)
    await _post(app, user, Entry(30, wallet.STEP_REWARD, f"c:{user}"))
    before = await _wallet(engine, user)
    with pytest.raises(InsufficientCoins) as refused:
        # the credit first, then a debit that overdraws even with it: all or nothing
        await _post(
            app,
            user,
            Entry(10, wallet.STEP_REWARD, f"c2:{user}"),
            Entry(-41, wallet.REDEMPTION, f"d:{user}"),
        )
    assert refused.value.code == "insufficient_coins"
    assert refused.value.extra["available_coins"] == 30
    assert await _wallet(engine, user) == before
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 1


async def test_a_missing_wallet_is_not_found(app):
    with pytest.raises(NotFound):
        await _post(app, uuid.uuid4(), Entry(1, wallet.STEP_REWARD, "ghost"))


async def test_pending_coins_move_without_a_ledger_row_and_never_below_zero(app, client, engine):
    user = await _walker(client)
    await _post(app, user, pending=40)
    assert (await _wallet(engine, user))["pending_coins"] == 40
    await _post(app, user, pending=-40)
    assert (await _wallet(engine, user))["pending_coins"] == 0
    with pytest.raises(DBAPIError):  # CHECK (pending_coins >= 0)
        await _post(app, user, pending=-1)
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 0


async def test_every_post_bumps_the_wallet_version(app, client, engine):
    user = await _walker(client)
    start = (await _wallet(engine, user))["version"]
    await _post(app, user, Entry(5, wallet.STEP_REWARD, f"v:{user}"))
    await _post(app, user)
    assert (await _wallet(engine, user))["version"] == start + 2


async def test_concurrent_posts_never_overdraw_and_keep_wallet_equal_to_ledger(app, client, engine):
    user = await _walker(client)
    await _post(app, user, Entry(100, wallet.STEP_REWARD, f"seed:{user}"))

    async def spend(i: int) -> bool:
        try:
            await _post(app, user, Entry(-30, wallet.REDEMPTION, f"spend:{user}:{i}"))
            return True
        except InsufficientCoins:
            return False

    outcomes = await asyncio.gather(*[spend(i) for i in range(8)])
    assert outcomes.count(True) == 3  # 100 coins buy three 30-coin debits, never four
    row = await wallet_row(engine, str(user))
    assert row.available_coins == 10
    assert (await ledger_report(engine)).ok


MOVES = st.lists(
    st.tuples(
        st.sampled_from(
            [wallet.STEP_REWARD, wallet.REVERSAL, wallet.REDEMPTION, wallet.ADMIN_ADJUSTMENT]
        ),
        st.integers(-80, 80).filter(bool),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moves=MOVES)
async def test_any_sequence_keeps_the_books(app, client, engine, moves):
    """Whatever is posted, one by one: refused debits change nothing, the balance never goes
    below zero, wallet = ledger, and available = earned - spent."""
    user = await _walker(client)
    expected = 0
    for i, (kind, amount) in enumerate(moves):
        if kind == wallet.REDEMPTION:
            amount = -abs(amount)
        try:
            await _post(app, user, Entry(amount, kind, f"p:{user}:{i}"))
            expected += amount
        except InsufficientCoins:
            assert expected + amount < 0
    state = await _wallet(engine, user)
    assert state["available_coins"] == expected >= 0
    assert state["available_coins"] == state["lifetime_earned"] - state["lifetime_spent"]
    assert (await ledger_report(engine)).ok


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("coin_transactions", "UPDATE coin_transactions SET amount = amount + 1"),
        ("coin_transactions", "DELETE FROM coin_transactions"),
        ("admin_logs", "UPDATE admin_logs SET action = 'rewritten'"),
        ("admin_logs", "DELETE FROM admin_logs"),
        ("coin_transactions", "TRUNCATE coin_transactions"),
        ("admin_logs", "TRUNCATE admin_logs"),
    ],
)
async def test_the_ledger_and_the_audit_log_are_append_only(app, client, engine, table, statement):
    user = await _walker(client)
    await _post(app, user, Entry(9, wallet.STEP_REWARD, f"a:{user}"))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO admin_logs (admin_id, action, entity_type, entity_id, changes) "
                "VALUES (NULL, 'test.seed', 'wallet', :u, '{}')"
            ),
            {"u": str(user)},
        )
    with pytest.raises(DBAPIError) as refused:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    assert getattr(refused.value.orig, "sqlstate", None) == "SC004"
    assert await count(engine, f"SELECT count(*) FROM {table}") == 1


async def test_check_ledger_reconciles_pending_coins_and_counters(app, client, engine):
    user = await _walker(client)
    await _post(app, user, Entry(40, wallet.STEP_REWARD, f"r:{user}"))
    assert (await ledger_report(engine)).ok
    async with engine.begin() as conn:  # corrupt the books behind the wallet's back
        await conn.execute(
            text("UPDATE wallets SET pending_coins = 7, lifetime_spent = 3 WHERE user_id = :u"),
            {"u": user},
        )
    report = await ledger_report(engine)
    assert not report.ok
    assert [
        (r["user_id"], r["pending_coins"], r["days_pending"]) for r in report.pending_mismatches
    ] == [(user, 7, 0)]
    assert [
        (r["user_id"], r["ledger_earned"], r["ledger_spent"]) for r in report.counter_mismatches
    ] == [(user, 40, 0)]
    assert report.mismatches == []  # available still equals the ledger


async def test_post_many_is_post_for_each_walker_in_one_call(app, client, engine):
    """stepcoin_wallet_post_many: each walker's entries through the one door (same balance
    chain, counters and replay as post()), in one round trip; a refused walker refuses all."""
    a, b, c = sorted([await _walker(client) for _ in range(3)])
    await _post(app, b, Entry(10, wallet.STEP_REWARD, f"m:{b}:0"))
    async with session_scope(app.state.database) as session:
        posted = await wallet.post_many(
            session,
            {
                c: [Entry(7, wallet.ACHIEVEMENT_REWARD, f"m:{c}:1", "badge")],
                a: [
                    Entry(5, wallet.ACHIEVEMENT_REWARD, f"m:{a}:1"),
                    Entry(6, wallet.ACHIEVEMENT_REWARD, f"m:{a}:2"),
                ],
                b: [
                    Entry(10, wallet.STEP_REWARD, f"m:{b}:0"),  # already posted: a replay
                    Entry(-3, wallet.REDEMPTION, f"m:{b}:2"),
                ],
            },
        )
    assert {
        u: [(p.amount, p.balance_after, p.replayed) for p in rows] for u, rows in posted.items()
    } == {
        a: [(5, 5, False), (6, 11, False)],
        b: [(10, 10, True), (-3, 7, False)],
        c: [(7, 7, False)],
    }
    assert posted[c][0].note == "badge"
    assert [(await _wallet(engine, u))["available_coins"] for u in (a, b, c)] == [11, 7, 7]
    assert (await _wallet(engine, b))["lifetime_spent"] == 3
    before = await count(engine, "SELECT count(*) FROM coin_transactions")
    with pytest.raises(InsufficientCoins):
        async with session_scope(app.state.database) as session:
            await wallet.post_many(
                session,
                {
                    a: [Entry(1, wallet.ACHIEVEMENT_REWARD, f"m:{a}:3")],
                    c: [Entry(-8, wallet.REDEMPTION, f"m:{c}:2")],  # 7 available
                },
            )
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == before
    assert [(await _wallet(engine, u))["available_coins"] for u in (a, b, c)] == [11, 7, 7]
    async with session_scope(app.state.database) as session:
        assert await wallet.post_many(session, {a: []}) == {}
    assert (await ledger_report(engine)).ok


async def test_a_reference_is_unique_per_walker_and_replays_only_the_walkers_own_row(
    app, client, engine
):
    """The ledger's key is (transaction_type, reference_id, user_id) (issue 19 item 4): the
    same reference pays two walkers once each, and a retry replays only the caller's own row.
    No caller writes a reference shared by two walkers (docs/scale-out.md, "Ledger references
    per user"); where one relied on the old global key, its own guard refuses (tests/admin)."""
    a, b = await _walker(client), await _walker(client)
    shared = Entry(40, wallet.ACHIEVEMENT_REWARD, "shared:1")
    (first_a,) = await _post(app, a, shared)
    (first_b,) = await _post(app, b, shared)
    assert (first_a.replayed, first_b.replayed) == (False, False)
    assert first_a.id != first_b.id
    (again_a,) = await _post(app, a, shared)
    async with session_scope(app.state.database) as session:
        many = await wallet.post_many(session, {a: [shared], b: [shared]})
    assert (again_a.id, again_a.replayed) == (first_a.id, True)
    assert {u: [(p.id, p.replayed) for p in rows] for u, rows in many.items()} == {
        a: [(first_a.id, True)],
        b: [(first_b.id, True)],
    }
    assert [(await _wallet(engine, u))["available_coins"] for u in (a, b)] == [40, 40]
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 2
    with pytest.raises(DBAPIError, match="uq_coin_transactions"):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO coin_transactions (user_id, amount, transaction_type, "
                    "reference_id, balance_after) VALUES (:u, 1, 'achievement_reward', "
                    "'shared:1', 41)"
                ),
                {"u": a},
            )
    assert (await ledger_report(engine)).ok
