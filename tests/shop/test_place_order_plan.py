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


def test_v7_is_v6_with_the_first_redemption_test():
    """v7 (migration 0047) changes only whether the walker is marked for the achievements batch:
    on a first redemption (tests/shop/test_orders_one_trip.py tests the behaviour)."""
    v6 = load("stepcoin.shop", "place_order.v6.sql")
    v7 = load("stepcoin.shop", "place_order.v7.sql")
    mark = (
        "        INSERT INTO achievements_dirty AS a (user_id, since) VALUES (p_user, now())\n"
        "        ON CONFLICT (user_id) DO UPDATE SET claimed_at = NULL\n"
        "        WHERE a.claimed_at IS NOT NULL;\n"
    )
    body6 = v6[v6.index("CREATE OR REPLACE FUNCTION") :]
    body7 = v7[v7.index("CREATE OR REPLACE FUNCTION") :]
    assert body6.count(mark) == 1
    start = body7.index("        -- a first redemption may unlock an achievement")
    end = body7.index("        END IF;\n", start) + len("        END IF;\n")
    guarded = body7[start:end]
    assert "IF NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = p_user" in guarded
    assert "".join("    " + line + "\n" for line in mark.splitlines()) in guarded
    before = body6[: body6.index("        -- a first redemption may unlock an achievement")]
    after = body6[body6.index(mark) + len(mark) :]
    assert body7[:start] == before and body7[end:] == after
