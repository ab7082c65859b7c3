"""stepcoin_apply_sync directly: every branch of the day settlement, the clawback floor, and the
optimistic-version conflict (in SQL, and the service's retry and its 409)."""

from __future__ import annotations

import uuid
from datetime import date

import psycopg
from sqlalchemy import text

from stepcoin.steps import service
from stepcoin.steps.payload import ApplyOutcome, DayRow, SyncPayload, parse_outcome
from tests.admin.helpers import adjust, ledger_report, make_staff
from tests.conftest import register
from tests.steps.helpers import ledger_ok, rec, sync, wallet

D1 = date(2026, 1, 5)
D2 = date(2026, 1, 6)


async def _version(engine, user: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT version FROM wallets WHERE user_id = :u"), {"u": user}
                )
            ).scalar_one()
        )


async def _apply(engine, user: uuid.UUID, *days: DayRow, version: int | None = None):
    """One call with a days-only payload (what a review sends); returns the parsed answer."""
    if version is None:
        version = await _version(engine, user)
    async with engine.begin() as conn:
        raw = (
            await conn.execute(
                text("SELECT stepcoin_apply_sync(:u, :v, CAST(:p AS jsonb))"),
                {"u": user, "v": version, "p": SyncPayload(days=list(days)).to_json()},
            )
        ).scalar_one()
    return parse_outcome(raw)


def _day(day: date, paid: int, pending: int = 0, source: str | None = "healthkit") -> DayRow:
    return DayRow(day, source, paid * 100, paid, pending)


async def _state(engine, user: uuid.UUID):
    async with engine.connect() as conn:
        days = {
            r.recorded_date: (r.coins_paid, r.coins_pending, r.version)
            for r in (
                await conn.execute(
                    text(
                        "SELECT recorded_date, coins_paid, coins_pending, version FROM step_days "
                        "WHERE user_id = :u"
                    ),
                    {"u": user},
                )
            ).all()
        }
        ledger = [
            (r.amount, r.transaction_type, r.reference_id, r.balance_after)
            for r in (
                await conn.execute(
                    text(
                        "SELECT amount, transaction_type, reference_id, balance_after "
                        "FROM coin_transactions WHERE user_id = :u ORDER BY id"
                    ),
                    {"u": user},
                )
            ).all()
        ]
        w = (
            await conn.execute(
                text("SELECT available_coins, pending_coins FROM wallets WHERE user_id = :u"),
                {"u": user},
            )
        ).one()
    return days, ledger, (w.available_coins, w.pending_coins)


async def _walker(client) -> uuid.UUID:
    return uuid.UUID((await register(client))["user"]["id"])


async def test_a_new_day_pays_and_holds(client, engine):
    user = await _walker(client)
    outcome = await _apply(engine, user, _day(D1, 80, pending=40))
    assert [(d.coins_delta, d.pending_delta, d.coins_paid) for d in outcome.days] == [(80, 40, 80)]
    days, ledger, wallet_ = await _state(engine, user)
    assert days == {D1: (80, 40, 1)}
    assert ledger == [(80, "step_reward", f"steps:{user}:{D1}:1", 80)]
    assert wallet_ == (80, 40)
    await ledger_ok(engine)


async def test_a_higher_day_pays_the_difference_under_a_new_reference(client, engine):
    user = await _walker(client)
    await _apply(engine, user, _day(D1, 50))
    outcome = await _apply(engine, user, _day(D1, 90))
    assert outcome.days[0].coins_delta == 40
    days, ledger, wallet_ = await _state(engine, user)
    assert days[D1] == (90, 0, 2)
    assert [(a, r) for a, _, r, _ in ledger] == [
        (50, f"steps:{user}:{D1}:1"),
        (40, f"steps:{user}:{D1}:2"),
    ]
    assert wallet_ == (90, 0)


async def test_an_unchanged_day_moves_no_coin_and_writes_no_ledger_row(client, engine):
    user = await _walker(client)
    await _apply(engine, user, _day(D1, 50, pending=10))
    outcome = await _apply(engine, user, _day(D1, 50, pending=10))
    assert (outcome.days[0].coins_delta, outcome.days[0].pending_delta) == (0, 0)
    days, ledger, wallet_ = await _state(engine, user)
    assert len(ledger) == 1 and wallet_ == (50, 10)
    assert days[D1][2] == 2  # the day's version still moves: a later payment gets a new ref


async def test_a_lower_day_claws_back_as_a_reversal(client, engine):
    user = await _walker(client)
    await _apply(engine, user, _day(D1, 80))
    outcome = await _apply(engine, user, _day(D1, 20))
    assert outcome.days[0].coins_delta == -60
    days, ledger, wallet_ = await _state(engine, user)
    assert ledger[-1] == (-60, "reversal", f"steps:{user}:{D1}:2", 20)
    assert days[D1][0] == 20 and wallet_ == (20, 0)


async def test_a_clawback_never_takes_the_balance_below_zero(client, engine):
    """The floor: the walker spent most coins; a lower re-sync takes only what is there, and
    the day records what was really taken (the rest is written off)."""
    user = await _walker(client)
    await _apply(engine, user, _day(D1, 80))
    async with engine.begin() as conn:  # 70 coins leave through the wallet (a purchase)
        await conn.execute(
            text(
                "SELECT * FROM stepcoin_wallet_post(:u, ARRAY[-70::bigint], "
                "ARRAY['redemption'], ARRAY['floor-test'])"
            ),
            {"u": user},
        )
    outcome = await _apply(engine, user, _day(D1, 20))
    assert outcome.days[0].coins_delta == -10  # asked -60, 10 were there
    assert outcome.available == 0
    days, ledger, wallet_ = await _state(engine, user)
    assert days[D1][0] == 70  # 80 paid - 10 taken back
    assert ledger[-1] == (-10, "reversal", f"steps:{user}:{D1}:2", 0)
    assert wallet_ == (0, 0)
    # the day going back up pays only what it is owed beyond what it kept
    again = await _apply(engine, user, _day(D1, 80))
    assert again.days[0].coins_delta == 10
    assert (await ledger_report(engine)).ok


async def test_a_clawback_on_an_empty_wallet_moves_nothing(client, engine):
    user = await _walker(client)
    await _apply(engine, user, _day(D1, 30))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "SELECT * FROM stepcoin_wallet_post(:u, ARRAY[-30::bigint], "
                "ARRAY['redemption'], ARRAY['spent-all'])"
            ),
            {"u": user},
        )
    outcome = await _apply(engine, user, _day(D1, 0, source=None))
    assert outcome.days[0].coins_delta == 0
    days, ledger, _ = await _state(engine, user)
    assert days[D1][0] == 30 and len(ledger) == 2  # no zero-amount row


async def test_held_coins_rise_and_fall_with_the_review(client, engine):
    user = await _walker(client)
    await _apply(engine, user, _day(D1, 0, pending=120, source=None))
    assert (await _state(engine, user))[2] == (0, 120)
    outcome = await _apply(engine, user, _day(D1, 120, pending=0))  # approved: paid, released
    assert (outcome.days[0].coins_delta, outcome.days[0].pending_delta) == (120, -120)
    assert (await _state(engine, user))[2] == (120, 0)
    await ledger_ok(engine)


async def test_several_days_settle_in_day_order_with_one_balance_chain(client, engine):
    user = await _walker(client)
    outcome = await _apply(engine, user, _day(D2, 30), _day(D1, 50))
    assert [d.day for d in outcome.days] == [D1, D2]
    _, ledger, wallet_ = await _state(engine, user)
    assert [(a, b) for a, _, _, b in ledger] == [(50, 50), (30, 80)]
    assert wallet_ == (80, 0)


async def test_a_stale_version_is_a_conflict_and_writes_nothing(client, engine):
    user = await _walker(client)
    version = await _version(engine, user)
    await _apply(engine, user, _day(D1, 10))  # someone else changed the user meanwhile
    outcome = await _apply(engine, user, _day(D2, 99), version=version)
    assert outcome == ApplyOutcome(conflict=True, days=[])
    days, ledger, wallet_ = await _state(engine, user)
    assert D2 not in days and len(ledger) == 1 and wallet_ == (10, 0)


async def test_the_sync_judges_again_after_a_conflict(client, engine, database_url, monkeypatch):
    """A change between the snapshot and the apply (here: a credit through the wallet, from
    another connection) makes the first attempt conflict; the service reads a fresh snapshot
    and applies once."""
    walker = await register(client)
    user = walker["user"]["id"]
    calls = 0
    real_plan = service.plan_sync

    def plan_then_interfere(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    "SELECT * FROM stepcoin_wallet_post(%s, ARRAY[5::bigint], "
                    "ARRAY['admin_adjustment'], ARRAY['interfere'])",
                    (user,),
                )
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(service, "plan_sync", plan_then_interfere)
    results = await sync(client, walker["access_token"], rec(0, 8000))
    assert calls == 2  # judged again on a fresh snapshot, applied once
    assert results[0]["coins_awarded"] == 80
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 85
    await ledger_ok(engine)


async def test_a_sync_that_always_conflicts_is_409_and_changes_nothing(client, engine, monkeypatch):
    walker = await register(client)
    # every attempt applies against a version one behind: the snapshot is always stale
    monkeypatch.setattr(service, "APPLY_SQL", "SELECT stepcoin_apply_sync($1, $2 - 1, $3::jsonb)")
    body = await sync(client, walker["access_token"], rec(0, 8000), status=409)
    assert body["code"] == "sync_conflict"
    async with engine.connect() as conn:
        written = (
            await conn.execute(
                text("SELECT count(*) FROM step_records WHERE user_id = :u"),
                {"u": walker["user"]["id"]},
            )
        ).scalar_one()
    assert written == 0
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 0


async def test_a_real_resync_lower_after_spending_floors_through_the_api(client, engine):
    """The floor end to end: paid 80, 70 taken by an admin debit, a lower re-sync claws 10."""
    admin = await make_staff(client, engine)
    walker = await register(client)
    token = walker["access_token"]
    assert (await sync(client, token, rec(0, 8000)))[0]["coins_awarded"] == 80
    assert (await adjust(client, admin, walker["user"]["id"], -70, "spent")).status_code == 201
    lower = await sync(client, token, rec(0, 2000))
    assert lower[0]["coins_awarded"] == -10
    assert (await wallet(client, token))["available_coins"] == 0
    await ledger_ok(engine)


async def test_a_sync_reads_its_own_days_not_the_walkers_whole_history(client, engine):
    """v9 (issue 13): the payload's days are looked up day by day. v8's join read every
    step_days row of the walker (a 7-day sync of a walker with a year of days read the year)."""
    user = await _walker(client)
    year = [date.fromordinal(D1.toordinal() + i) for i in range(365)]
    await _apply(engine, user, *(_day(day, 5) for day in year))
    week = year[-7:]
    version = await _version(engine, user)
    # current statistics, as autovacuum keeps them on a live database: a step_days analyzed
    # while the test database was nearly empty makes a scan of the whole table the cheapest
    # plan for any look-up (CI saw it), whatever the function asks
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE step_days"))
    read = text(
        "SELECT coalesce(sum(seq_tup_read + idx_tup_fetch), 0) FROM pg_stat_xact_user_tables "
        "WHERE relname = 'step_days'"
    )
    async with engine.begin() as conn:
        before = (await conn.execute(read)).scalar_one()
        raw = (
            await conn.execute(
                text("SELECT stepcoin_apply_sync(:u, :v, CAST(:p AS jsonb))"),
                {
                    "u": user,
                    "v": version,
                    "p": SyncPayload(days=[_day(d, 9) for d in week]).to_json(),
                },
            )
        ).scalar_one()
        after = (await conn.execute(read)).scalar_one()
    assert [d.coins_delta for d in parse_outcome(raw).days] == [4] * 7
    # a look-up per day and the upsert's conflict check per day; nothing of the other 358 days
    assert after - before <= 3 * len(week), after - before
    await ledger_ok(engine)
