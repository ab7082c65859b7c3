"""The trust score's inputs as the database counts them: exact for staff, capped where only the
score is needed (the order sweep). (Which index the 90-day counts take depends on the table's
size; BENCHMARKS.md, run 16, measures it on a generated database.)"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.fairplay import trust
from tests.conftest import register

TODAY = date.today()


async def _history(engine: Any, user_id: uuid.UUID, approved_days: int) -> None:
    """`approved_days` paid days and their clean approvals, and one decision of each kind that
    counts (and some that do not)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO step_days (user_id, recorded_date, credited_steps, coins_paid) "
                "SELECT :u, CAST(:today AS date) - n, 5000, 0 "
                "FROM generate_series(1, :n) n"
            ),
            {"u": user_id, "today": TODAY, "n": approved_days},
        )
        await conn.execute(  # one day walked with no credited steps: not an approved day
            text(
                "INSERT INTO step_days (user_id, recorded_date, credited_steps, coins_paid) "
                "VALUES (:u, CAST(:today AS date) - CAST(:before AS integer), 0, 0)"
            ),
            {"u": user_id, "today": TODAY, "before": approved_days + 30},
        )
        decisions = [
            # (days ago recorded, days ago decided, status, reviewed, hits)
            *[(n, n, "approved", False, "[]") for n in range(1, approved_days + 1)],
            (3, 3, "flagged", False, '[{"code": "spike"}]'),  # waiting: a flagged day
            (4, 4, "approved", True, '[{"code": "spike"}]'),  # re-approved: a flagged day
            (3, 2, "flagged", False, '[{"code": "spike"}]'),  # the same day again: one day
            (5, 5, "rejected", False, '[{"code": "impossible"}]'),  # a rejected day
            (6, 6, "flagged", False, '[{"code": "issuance_budget"}]'),  # not their doing
            (7, 100, "rejected", False, "[]"),  # decided 100 days ago: out of the window
        ]
        for recorded, decided, status, reviewed, hits in decisions:
            await conn.execute(
                text(
                    "INSERT INTO step_validations (user_id, recorded_date, source, steps, status, "
                    "rule_hits, reviewed_at, created_at) VALUES (:u, CAST(:today AS date) - "
                    "CAST(:recorded AS integer), 'healthkit', 5000, :status, CAST(:hits AS jsonb), "
                    "CASE WHEN :reviewed THEN now() END, now() - make_interval(days => :decided))"
                ),
                {
                    "u": user_id,
                    "today": TODAY,
                    "recorded": recorded,
                    "decided": decided,
                    "status": status,
                    "hits": hits,
                    "reviewed": reviewed,
                },
            )


async def test_staff_see_every_approved_day_the_sweep_counts_to_the_cap(client, app, engine):
    walker = uuid.UUID((await register(client))["user"]["id"])
    await _history(engine, walker, trust.FULL_CREDIT_DAYS + 10)
    database = app.state.database
    async with session_scope(database) as session:
        exact = await trust.inputs_of(session, walker)
        swept = (await trust.compute_many(session, [walker]))[walker]
    assert exact.approved_days == trust.FULL_CREDIT_DAYS + 10
    assert (exact.flagged_days, exact.rejected_days) == (2, 1)
    value, capped = swept
    assert capped.approved_days == trust.FULL_CREDIT_DAYS
    assert (capped.flagged_days, capped.rejected_days) == (2, 1)
    assert value == trust.score(exact) == trust.score(capped)
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT score, inputs FROM trust_scores WHERE user_id = :u"), {"u": walker}
            )
        ).one()
    assert stored.score == value and stored.inputs["approved_days"] == trust.FULL_CREDIT_DAYS


async def test_below_the_cap_the_sweep_counts_exactly(client, app, engine):
    walker = uuid.UUID((await register(client))["user"]["id"])
    await _history(engine, walker, 12)
    async with session_scope(app.state.database) as session:
        exact = await trust.inputs_of(session, walker)
        _, swept = (await trust.compute_many(session, [walker]))[walker]
    assert exact == swept and exact.approved_days == 12
