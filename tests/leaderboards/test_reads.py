"""GET /v1/leaderboards/{period} with the top of each board cached per process (issue 13): the
answer is always the one the whole board read in one statement gives, whatever changed between
two reads (a refresh, a rebuild, a renamed, deactivated, erased or deleted walker), and its
bytes are what FastAPI would write through LeaderboardOut."""

from __future__ import annotations

import uuid
from datetime import UTC, date, timedelta
from typing import Any

import orjson
from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.leaderboards import repository, service
from stepcoin.leaderboards.periods import PERIODS, display_name, period_start, utc_today
from stepcoin.leaderboards.schemas import LeaderboardOut
from stepcoin.users.service import set_active
from tests.achievements.helpers import set_days
from tests.conftest import bearer
from tests.leaderboards.helpers import board, rebuild, walker
from tests.steps.helpers import today


async def _one_statement(app, period: str, user: str, limit: int = 100) -> dict[str, Any]:
    """The answer as the route gave it before the cache: the whole board in one statement."""
    start = period_start(period, utc_today())
    async with (await app.state.database.fast_pool()).acquire() as driver:
        rows = await repository.read_board(driver, period, start, uuid.UUID(user), limit)
    parts: dict[str, list[Any]] = {p: [] for p in ("me", "build", "generation", "top")}
    parts |= {"above": [], "below": []}
    for row in rows:
        parts[row["part"]].append(row)

    def entry(r: Any) -> dict[str, Any]:
        name = display_name(r["full_name"])
        return {"rank": r["rank"], "user_id": str(r["user_id"]), "display_name": name,
                "total_steps": r["total_steps"]}  # fmt: skip

    def ordered(rs: list[Any]) -> list[dict[str, Any]]:
        return [entry(r) for r in sorted(rs, key=lambda r: (r["rank"], r["user_id"]))]

    build, me = (parts["build"] or [None])[0], parts["me"][0]
    return {
        "period": period,
        "period_start": start.isoformat(),
        "computed_at": build["at"].astimezone(UTC).isoformat().replace("+00:00", "Z")
        if build
        else None,
        "final": bool(build["flag"]) if build else False,
        "entries": ordered(parts["top"]),
        "me": None
        if me["rank"] is None
        else {"rank": me["rank"], "total_steps": me["total_steps"]},
        "neighbours": ordered(parts["above"] + parts["below"]),
    }


async def _same_on_every_board(app, client, walkers: list[dict[str, Any]], limit=100) -> None:
    for who in walkers:
        for period in PERIODS:
            answer = await board(client, who["token"], period, limit=limit)
            assert answer == await _one_statement(app, period, who["id"], limit), (period, who)


async def _refresh(app) -> None:
    async with session_scope(app.state.database) as session:
        await service.refresh(session)


async def test_the_cached_top_follows_every_change_of_the_board_and_its_names(app, client, engine):
    walkers = [
        await walker(client, engine, f"Walker{i} Number{i}", 1000 * (i % 4)) for i in range(9)
    ]
    await rebuild(app)
    await _same_on_every_board(app, client, walkers)
    await _same_on_every_board(app, client, walkers, limit=3)  # a prefix of the cached top
    # a sync, then the refresh: computed_at moves, the cached top is read again
    await set_days(engine, walkers[0]["id"], {today(): 9000, today() - timedelta(days=1): 10})
    await _same_on_every_board(app, client, walkers[:2])  # not refreshed yet: as before
    await _refresh(app)
    await _same_on_every_board(app, client, walkers)
    assert (await board(client, walkers[1]["token"]))["entries"][0]["display_name"] == "Walker0 N."
    # a walker renames themselves: the board shows the new name at once, as it always did
    renamed = await client.patch(
        "/v1/me", json={"full_name": "Renamed Person"}, headers=bearer(walkers[0]["token"])
    )
    assert renamed.status_code == 200
    await _same_on_every_board(app, client, walkers[1:3])
    assert (await board(client, walkers[1]["token"]))["entries"][0]["display_name"] == "Renamed P."
    # erased (the account deletion's tombstone): the old name is gone from the cached top too
    async with session_scope(app.state.database) as session:
        await session.execute(
            text("UPDATE users SET full_name = 'Deleted walker', is_active = false WHERE id = :u"),
            {"u": walkers[0]["id"]},
        )
    await _same_on_every_board(app, client, walkers[1:3])
    assert "Renamed" not in str(await board(client, walkers[1]["token"]))
    await _refresh(app)  # and off the board
    await _same_on_every_board(app, client, walkers[1:])
    # deactivated by an admin, and a walker deleted outright (the cascade, no refresh)
    async with session_scope(app.state.database) as session:
        await set_active(session, uuid.UUID(walkers[3]["id"]), False, admin_id=None)
        await session.execute(text("DELETE FROM users WHERE id = :u"), {"u": walkers[7]["id"]})
    await _same_on_every_board(app, client, [walkers[1], walkers[2], walkers[5]])
    top = await board(client, walkers[1]["token"])
    assert walkers[7]["id"] not in {e["user_id"] for e in top["entries"]}
    await rebuild(app)
    await _same_on_every_board(app, client, [walkers[1], walkers[2], walkers[5]])


async def test_a_refresh_between_the_two_parts_gives_one_board(app, client, engine, monkeypatch):
    walkers = [await walker(client, engine, f"Racer{i} R", 100 * (i + 1)) for i in range(4)]
    await rebuild(app)
    real = repository.read_top
    done = []

    async def refreshed_in_between(driver: Any, period: str, start: date) -> list[Any]:
        if not done:  # the caller's part is read; the board moves before the top is
            done.append(1)
            await set_days(engine, walkers[0]["id"], {today(): 5000})
            await _refresh(app)
        return await real(driver, period, start)

    monkeypatch.setattr(repository, "read_top", refreshed_in_between)
    answer = await board(client, walkers[1]["token"], "daily")
    assert answer == await _one_statement(app, "daily", walkers[1]["id"])
    assert answer["entries"][0]["total_steps"] == 5000
    assert answer["me"] == {"rank": 4, "total_steps": 200}


async def test_the_bytes_are_the_response_models_own(app, client, engine):
    ada = await walker(client, engine, 'Zoë "the walker" 🚶 \\ é', 5000)
    await walker(client, engine, "Grace Hopper", 7000)
    for rebuilt in (False, True):
        if rebuilt:
            await rebuild(app)
        for period in PERIODS:
            answer = await client.get(f"/v1/leaderboards/{period}", headers=bearer(ada["token"]))
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            expected = LeaderboardOut.model_validate(answer.json())
            assert answer.content == expected.model_dump_json().encode()


def test_the_cache_holds_a_bounded_number_of_boards():
    cache = service.TopCache()
    for day in range(service.TOP_CACHE_BOARDS + 5):
        key = ("daily", date(2026, 1, 1) + timedelta(days=day))
        cache.put(key, service._Top((None, day), ()))
        assert cache.get(key, (None, day)) is not None
        assert cache.get(key, (None, day + 1)) is None
    assert len(cache._tops) <= service.TOP_CACHE_BOARDS


def test_the_top_keeps_its_whole_json_and_slices_a_shorter_one():
    entries = tuple(
        {
            "rank": i + 1,
            "user_id": str(uuid.uuid4()),
            "display_name": "Ada L.",
            "total_steps": 9 - i,
        }
        for i in range(3)
    )
    top = service._Top((None, 1), entries)
    whole = top.entries_json(100)
    assert top.entries_json(3) is whole  # made once, on the first read of the whole top
    answer = {"period": "daily", "entries": list(entries), "me": None}
    assert orjson.dumps({**answer, "entries": whole}) == orjson.dumps(answer)
    shorter = {**answer, "entries": list(entries[:2])}
    assert orjson.dumps({**answer, "entries": top.entries_json(2)}) == orjson.dumps(shorter)
    assert top.entries_json(2) is not top.entries_json(2)
    assert orjson.dumps(service._Top((None, 0), ()).entries_json(5)) == b"[]"
