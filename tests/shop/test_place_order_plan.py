"""stepcoin_place_order v6 (issue 13, migration 0045) keeps generic plans for its statements:
with custom plans (a custom plan counts the lines of the order's arrays, a generic one
guesses, so custom always looked cheaper) its statements were planned on every order. The
body is v5's, which the shop's tests exercise; this holds the setting that was the change."""

from __future__ import annotations

from sqlalchemy import text

from stepcoin.sqlfiles import load


async def test_the_placement_runs_its_statements_with_generic_plans(engine):
    async with engine.connect() as conn:
        config = (
            await conn.execute(
                text("SELECT proconfig FROM pg_proc WHERE proname = 'stepcoin_place_order'")
            )
        ).scalar_one()
    assert config == ["plan_cache_mode=force_generic_plan"]


def test_v6_is_v5_with_the_setting():
    v5 = load("stepcoin.shop", "place_order.v5.sql")
    v6 = load("stepcoin.shop", "place_order.v6.sql")
    body = v6[v6.index("CREATE OR REPLACE FUNCTION") :]
    assert body.replace("SET plan_cache_mode = force_generic_plan\n", "") == v5[
        v5.index("CREATE OR REPLACE FUNCTION") :
    ].replace("LANGUAGE plpgsql AS $fn$", "LANGUAGE plpgsql\nAS $fn$")
