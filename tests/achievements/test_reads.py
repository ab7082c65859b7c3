"""GET /v1/achievements in one statement on the read pool (issue 13): the same items as the
transactional list_for_user it replaced, for every kind of criteria, locked and unlocked,
streaks alive and broken, invalid stored criteria, edits of the catalogue; and the bytes the
response model would write."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from stepcoin.achievements import history, repository, service
from stepcoin.achievements.criteria import StreakFacts, UserFacts
from stepcoin.achievements.schemas import MyAchievementsOut
from stepcoin.db import session_scope
from stepcoin.users.service import set_active
from tests.achievements.helpers import achievement, evaluate, set_days
from tests.conftest import bearer, register
from tests.steps.helpers import today


async def _both(app, user: str) -> tuple[object, object]:
    async with session_scope(app.state.database) as session:
        old = await service.list_for_user(session, uuid.UUID(user))
    async with (await app.state.database.fast_pool()).acquire() as driver:
        new = await service.my_achievements(driver, uuid.UUID(user))
    return old, new


async def test_the_one_statement_items_equal_the_transactional_ones(app, client, engine):
    await achievement(engine, "first", {"kind": "first_redemption"}, 25)
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    await achievement(engine, "three", {"kind": "streak", "streak_days": 3, "min_steps": 100})
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    await achievement(engine, "total", {"kind": "total_steps", "total_steps": 50000})
    await achievement(engine, "days", {"kind": "approved_days", "days": 4})
    await achievement(engine, "hidden", {"kind": "approved_days", "days": 1}, active=False)
    broken = await achievement(engine, "broken", {"kind": "approved_days", "days": 2})
    async with engine.begin() as conn:  # stored criteria that no longer parse: skipped
        await conn.execute(
            text("UPDATE achievements SET unlock_criteria = CAST(:c AS jsonb) WHERE id = :id"),
            {"c": '{"kind": "streak", "streak_days": 2, "min_steps": 2.5}', "id": broken},
        )
    walkers = [(await register(client))["user"]["id"] for _ in range(4)]
    await set_days(engine, walkers[1], {today() - timedelta(days=k): 12000 for k in range(1, 7)})
    await set_days(engine, walkers[2], {today() - timedelta(days=k): 300 for k in (0, 1, 3, 9)})
    await set_days(engine, walkers[3], {today() - timedelta(days=k): 6000 for k in range(5, 15)})
    for user in walkers:
        await evaluate(app, user)
    for user in walkers:
        old, new = await _both(app, user)
        assert old is not None and new == old, user
    # the catalogue edited: the parsed criteria follow (cached by id and updated_at)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE achievements SET unlock_criteria = CAST(:c AS jsonb), "
                "updated_at = now() WHERE code = 'three'"
            ),
            {"c": '{"kind": "streak", "streak_days": 2, "min_steps": 7000}'},
        )
        await conn.execute(text("UPDATE achievements SET is_active = false WHERE code = 'days'"))
    for user in walkers:
        old, new = await _both(app, user)
        assert new == old, user
    async with session_scope(app.state.database) as session:
        await set_active(session, uuid.UUID(walkers[0]), False, admin_id=None)
    assert await _both(app, walkers[0]) == (None, None)
    assert await _both(app, str(uuid.uuid4())) == (None, None)


async def test_no_active_achievement_is_an_empty_list(app, client, engine):
    user = (await register(client))["user"]["id"]
    assert await _both(app, user) == ([], [])


async def test_the_bytes_are_the_response_models_own(app, client, engine):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE achievements SET description = 'Zoë \"🚶\" \\ é'"))
    account = await register(client)
    await set_days(engine, account["user"]["id"], {today(): 12000})
    await evaluate(app, account["user"]["id"])
    answer = await client.get("/v1/achievements", headers=bearer(account["access_token"]))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    expected = MyAchievementsOut.model_validate(answer.json())
    assert answer.content == expected.model_dump_json().encode()
    assert answer.json()["items"][0]["unlocked_at"].endswith("Z")


# The facts as one set-based statement (the achievements batch's query until issue 13 moved the
# streak runs to Python): the reference the array read plus facts_from_days must equal. One
# pass over the users' credited days; for each threshold the runs of consecutive days (gaps and
# islands: within a run, date - row_number is constant).
_REFERENCE_FACTS = text(
    """
    WITH d AS MATERIALIZED (
        SELECT user_id, recorded_date, credited_steps FROM step_days
        WHERE user_id = ANY(CAST(:users AS uuid[])) AND credited_steps > 0
    ),
    runs AS (
        SELECT d.user_id, t.min_steps, d.recorded_date,
               d.recorded_date - CAST(row_number() OVER (
                   PARTITION BY d.user_id, t.min_steps ORDER BY d.recorded_date) AS integer) AS run
        FROM d JOIN unnest(CAST(:thresholds AS integer[])) AS t(min_steps)
             ON d.credited_steps >= t.min_steps
    ),
    islands AS (
        SELECT user_id, min_steps, count(*) AS length, max(recorded_date) AS last_day
        FROM runs GROUP BY user_id, min_steps, run
    ),
    streaks AS (
        SELECT user_id, min_steps, max(length) AS longest, max(last_day) AS latest_end,
               (array_agg(length ORDER BY last_day DESC))[1] AS latest_length
        FROM islands GROUP BY user_id, min_steps
    ),
    totals AS (
        SELECT user_id, max(credited_steps) AS best_day, sum(credited_steps) AS total_steps,
               count(*) AS approved_days
        FROM d GROUP BY user_id
    )
    SELECT u.id, u.timezone, u.is_active,
           coalesce(t.best_day, 0) AS best_day, coalesce(t.total_steps, 0) AS total_steps,
           coalesce(t.approved_days, 0) AS approved_days,
           EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id
                   AND o.status NOT IN ('cancelled', 'failed')) AS redeemed,
           (SELECT coalesce(jsonb_agg(jsonb_build_array(s.min_steps, s.longest,
                                                        s.latest_length, s.latest_end)), '[]')
            FROM streaks s WHERE s.user_id = u.id) AS runs
    FROM users u LEFT JOIN totals t ON t.user_id = u.id
    WHERE u.id = ANY(CAST(:users AS uuid[]))
    """
)


async def _reference_facts(engine, users: list[str], thresholds: list[int]) -> dict:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(_REFERENCE_FACTS, {"users": users, "thresholds": thresholds})
        ).all()
    return {
        row.id: UserFacts(
            user_id=row.id,
            timezone=row.timezone,
            is_active=row.is_active,
            best_day=int(row.best_day),
            total_steps=int(row.total_steps),
            approved_days=int(row.approved_days),
            redeemed=bool(row.redeemed),
            streaks={
                int(m): StreakFacts(int(longest), int(latest), date.fromisoformat(end))
                for m, longest, latest, end in row.runs
            },
        )
        for row in rows
    }


THRESHOLDS = [1, 100, 101, 500, 5000, 20000]


def history_today() -> date:
    return datetime.now(UTC).date()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    calendars=st.lists(
        st.dictionaries(
            st.integers(min_value=0, max_value=40),
            st.sampled_from([0, 50, 99, 100, 101, 500, 5000, 12000]),
            max_size=30,
        ),
        min_size=1,
        max_size=3,
    ),
    thresholds=st.sets(st.sampled_from(THRESHOLDS), max_size=4).map(sorted),
    cut=st.integers(min_value=0, max_value=45),
)
async def test_the_facts_from_the_days_equal_the_set_based_facts(
    app, engine, calendars, thresholds, cut
):
    """The batch (user_facts, several walkers at once) and the read (_MINE_SQL's row) compute
    streak runs and totals in Python from the days (facts_from_days); a set-based SQL reference
    computes them with window functions: all three agree on any calendars, and again once each
    walker's closed history is summarised (through any day of the calendar: `cut`)."""
    users = [str(uuid.uuid4()) for _ in calendars]
    first = today() - timedelta(days=40)
    async with engine.begin() as conn:
        for user in users:
            await conn.execute(
                text("INSERT INTO users (id, email, full_name) VALUES (:u, :e, 'Facts Walker')"),
                {"u": user, "e": f"{user}@example.com"},
            )
    for user, days in zip(users, calendars, strict=True):
        await set_days(engine, user, {first + timedelta(days=k): n for k, n in days.items()})
    expected = await _reference_facts(engine, users, thresholds)
    assert len(expected) == len(users)
    async with session_scope(app.state.database) as session:
        assert await repository.user_facts(session, [uuid.UUID(u) for u in users], thresholds) == (
            expected
        )
    async with (await app.state.database.fast_pool()).acquire() as driver:
        row = await repository.mine(driver, uuid.UUID(users[0]))
    assert (
        repository.facts_from_days(uuid.UUID(users[0]), row, thresholds)
        == (expected[uuid.UUID(users[0])])
    )
    # the closed history summarised through `cut` days before today - 10
    for threshold in THRESHOLDS:
        await achievement(
            engine,
            f"streak_{threshold}",
            {"kind": "streak", "streak_days": 3, "min_steps": threshold},
            exists_ok=True,
        )
    await history.build(app.state.database, today=history_today() - timedelta(days=cut))
    async with session_scope(app.state.database) as session:
        assert await repository.user_facts(session, [uuid.UUID(u) for u in users], thresholds) == (
            expected
        )
    async with (await app.state.database.fast_pool()).acquire() as driver:
        row = await repository.mine(driver, uuid.UUID(users[0]))
    assert row["h_through"] is not None
    assert (
        repository.facts_from_days(uuid.UUID(users[0]), row, thresholds)
        == (expected[uuid.UUID(users[0])])
    )
