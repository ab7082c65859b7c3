"""The hourly ledger check (wallet:check_ledger): the walkers whose ledger moved lately and one
slice of all walkers a run, each check reading only their rows (service.check_recent_ledger);
the whole check stays `stepcoin check-ledger`."""

from __future__ import annotations

import itertools
import uuid

from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from stepcoin.wallet import service as wallet
from stepcoin.wallet.service import (
    SLICES_A_DAY,
    Entry,
    check_ledger,
    check_recent_ledger,
    slice_bounds,
)
from stepcoin.wallet.tasks import check_ledger_job
from tests.conftest import register
from tests.fixtures.plans import plan_of, rows_of_walkers


async def _walker(client) -> uuid.UUID:
    return uuid.UUID((await register(client))["user"]["id"])


def _slice_of(user: uuid.UUID) -> int:
    return next(n for n in range(SLICES_A_DAY) if slice_bounds(n)[0] <= user <= slice_bounds(n)[1])


async def _corrupt(engine, user: uuid.UUID) -> None:
    async with engine.begin() as conn:  # the books changed behind the wallet's back
        await conn.execute(
            text("UPDATE wallets SET pending_coins = pending_coins + 7 WHERE user_id = :u"),
            {"u": user},
        )


async def _pending_found(app, slice_: int) -> set[uuid.UUID]:
    async with session_scope(app.state.database) as session:
        report = await check_recent_ledger(session, slice_=slice_)
    return {r["user_id"] for r in report.pending_mismatches}


def test_the_slices_cover_the_key_space_once():
    bounds = [slice_bounds(n) for n in range(SLICES_A_DAY)]
    assert bounds[0][0].int == 0 and bounds[-1][1].int == 2**128 - 1
    assert all(a[1].int + 1 == b[0].int for a, b in itertools.pairwise(bounds))
    assert slice_bounds(SLICES_A_DAY + 3) == bounds[3]  # the hour of any day


async def test_the_hourly_check_reads_the_walkers_who_moved_and_the_hours_slice(
    app, client, engine, monkeypatch
):
    # this database's walkers nearly all moved within the hour (the other tests'): scoped all
    # the same, as a database of many walkers would be
    monkeypatch.setattr(wallet, "WHOLE_FROM_SHARE", 2.0)
    moved, idle = await _walker(client), await _walker(client)
    async with session_scope(app.state.database) as session:
        await wallet.post(session, moved, [Entry(30, wallet.STEP_REWARD, f"r:{moved}")])
    await _corrupt(engine, moved)
    await _corrupt(engine, idle)  # no ledger row: found only in its own slice
    own, other = _slice_of(idle), (_slice_of(idle) + 1) % SLICES_A_DAY
    if _slice_of(moved) == other:
        other = (other + 1) % SLICES_A_DAY
    assert {moved, idle} <= await _pending_found(app, own)
    found_elsewhere = await _pending_found(app, other)
    assert moved in found_elsewhere and idle not in found_elsewhere
    async with session_scope(app.state.database) as session:  # the whole check finds both
        whole = await check_ledger(session)
    assert {moved, idle} <= {r["user_id"] for r in whole.pending_mismatches}
    # the job checks the slice of its hour, and reports
    monkeypatch.setattr(JobRuntime, "database", app.state.database)
    assert await check_ledger_job(own * 3600) is False
    async with engine.begin() as conn:  # mend the books for the tests that follow
        await conn.execute(
            text("UPDATE wallets SET pending_coins = pending_coins - 7 WHERE user_id = ANY(:u)"),
            {"u": [moved, idle]},
        )


async def test_the_hourly_check_is_the_whole_one_when_most_walkers_moved(
    app, client, engine, monkeypatch
):
    idle = await _walker(client)
    await _corrupt(engine, idle)
    other = (_slice_of(idle) + 1) % SLICES_A_DAY
    monkeypatch.setattr(wallet, "WHOLE_FROM_SHARE", 2.0)
    assert idle not in await _pending_found(app, other)
    monkeypatch.setattr(wallet, "WHOLE_FROM_SHARE", 0.0)  # any scope is "most": the whole check
    assert idle in await _pending_found(app, other)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE wallets SET pending_coins = pending_coins - 7 WHERE user_id = :u"),
            {"u": idle},
        )


async def test_the_hourly_check_reads_only_its_walkers_ledger_rows(app, client, engine):
    """With a big ledger, each of the scoped checks reads the walkers' rows by the ledger's
    user_id index: none reads the whole ledger (the hourly whole check did, five times)."""
    from stepcoin.wallet.service import _CHECKS_OF_SCOPE

    mine = await _walker(client)
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(
            text(
                rows_of_walkers(
                    "coin_transactions (user_id, amount, transaction_type, reference_id, "
                    "balance_after)",
                    "walker, 5, 'step_reward', 'big-' || n, 5 * (n / 100 + 1)",
                    walkers=100,
                    rows=30000,
                    label="ledger",
                )
            )
        )
        await conn.execute(text("ANALYZE coin_transactions"))
        await conn.execute(text("CREATE TEMP TABLE ledger_scope (user_id uuid PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO ledger_scope VALUES (:u)"), {"u": mine})
        await conn.execute(text("ANALYZE ledger_scope"))
        params = {"limit": 100, "shop": sorted(wallet.SHOP_TYPES)}
        plans = {
            name: await plan_of(conn, str(statement), params)
            for name, statement in _CHECKS_OF_SCOPE.items()
        }
        await transaction.rollback()
    for name, plan in plans.items():
        assert "Seq Scan on coin_transactions" not in plan, (name, plan)
