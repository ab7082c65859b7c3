"""stepcoin_wallet_post v3 (issue 13, migration 0052) keeps generic plans for its statements:
with custom plans its replay probe over the entries' arrays was planned on every call that
probes (a custom plan counts the entries, a generic one guesses, so custom always looked
cheaper): 0.13 ms of planning for 0.04 ms of execution, per walker of an achievements payout.
The body is v2's, which the wallet's tests exercise; this holds the setting that was the change."""

from __future__ import annotations

from sqlalchemy import text

from stepcoin.sqlfiles import load


async def test_the_one_door_runs_its_statements_with_generic_plans(engine):
    async with engine.connect() as conn:
        config = (
            await conn.execute(
                text("SELECT proconfig FROM pg_proc WHERE proname = 'stepcoin_wallet_post'")
            )
        ).scalar_one()
    assert config == ["plan_cache_mode=force_generic_plan"]


def test_v3_is_v2_with_the_setting():
    v2 = load("stepcoin.wallet", "post.v2.sql")
    v3 = load("stepcoin.wallet", "post.v3.sql")
    body = v3[v3.index("CREATE OR REPLACE FUNCTION") :]
    assert body.count("SET plan_cache_mode = force_generic_plan\n") == 1
    assert body.replace("SET plan_cache_mode = force_generic_plan\n", "") == v2[
        v2.index("CREATE OR REPLACE FUNCTION") :
    ].replace("LANGUAGE plpgsql AS $fn$", "LANGUAGE plpgsql\nAS $fn$")
