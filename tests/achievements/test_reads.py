"""GET /v1/achievements in one statement on the read pool (issue 13): the same items as the
transactional list_for_user it replaced, for every kind of criteria, locked and unlocked,
streaks alive and broken, invalid stored criteria, edits of the catalogue; and the bytes the
response model would write."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from stepcoin.achievements import repository, service
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


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    days=st.dictionaries(
        st.integers(min_value=0, max_value=40),
        st.sampled_from([0, 50, 99, 100, 101, 500, 5000, 12000]),
        max_size=30,
    ),
    thresholds=st.sets(st.sampled_from([1, 100, 101, 500, 5000, 20000]), max_size=4).map(sorted),
)
async def test_the_facts_from_the_days_equal_the_set_based_facts(app, engine, days, thresholds):
    """The read computes streak runs and totals in Python from the days (facts_from_days); the
    achievements batch computes them in SQL (_FACTS): both agree on any calendar. (Distinct
    thresholds, as streak_thresholds gives them: _FACTS counts a repeated one twice.)"""
    user = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO users (id, email, full_name) VALUES (:u, :e, 'Facts Walker')"),
            {"u": user, "e": f"{user}@example.com"},
        )
    first = today() - timedelta(days=40)
    await set_days(engine, user, {first + timedelta(days=k): n for k, n in days.items()})
    async with session_scope(app.state.database) as session:
        expected = (await repository.user_facts(session, [uuid.UUID(user)], thresholds))[
            uuid.UUID(user)
        ]
    async with (await app.state.database.fast_pool()).acquire() as driver:
        row = await repository.mine(driver, uuid.UUID(user))
    assert repository.facts_from_days(uuid.UUID(user), row, thresholds) == expected
