"""The replicas' routing decisions in memory (no server): LSN markers, the choice of a standby,
read-your-writes positions, the lag measure. tests/test_replicas.py runs them on a real standby."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from stepcoin import replicas as replicas_module
from stepcoin.config import Settings
from stepcoin.main import create_app
from stepcoin.replicas import (
    READ_AFTER_HEADER,
    Replicas,
    display_name,
    format_lsn,
    is_connection_error,
    parse_lsn,
)
from tests.conftest import AddressedTransport, bearer, register


def make(count: int = 2, max_lag_ms: int = 1000) -> Replicas:
    async def no_pool(url: str) -> Any:
        raise AssertionError("no pool in these tests")

    def no_engine(url: str) -> Any:
        raise AssertionError("no engine in these tests")

    return Replicas(
        "postgresql://postgres@primary/db",
        [f"postgresql://user:secret@standby{i}:5432/db" for i in range(count)],
        max_lag_ms=max_lag_ms,
        check_ms=100,
        open_pool=no_pool,
        open_engine=no_engine,
    )


def put_in_rotation(replicas: Replicas, *replay: int) -> None:
    for replica, lsn in zip(replicas.replicas, replay, strict=True):
        replica.replay_lsn, replica.usable, replica.state = lsn, True, "ok"
    replicas._refresh_rotation()


def test_lsn_text_round_trips_and_nonsense_is_no_marker() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("16/B374D848") or 0) == "16/B374D848"
    assert parse_lsn("0/0") == 0
    for bad in (None, "", "16", "x/1", "1/100000000", "1/2/3", "FFFFFFFFF/0", "0/-1"):
        assert not parse_lsn(bad), bad


def test_readiness_names_carry_no_password() -> None:
    assert display_name("postgresql://user:secret@db.example:6432/stepcoin") == (
        "db.example:6432/stepcoin"
    )


def test_no_standby_in_rotation_means_the_primary() -> None:
    replicas = make()
    assert replicas.choose(0) is None


def test_round_robin_over_the_standbys_that_have_what_the_caller_must_see() -> None:
    replicas = make()
    put_in_rotation(replicas, 100, 200)
    first, second = replicas.replicas
    assert {replicas.choose(0) for _ in range(4)} == {first, second}
    assert {replicas.choose(150) for _ in range(4)} == {second}
    assert replicas.choose(201) is None  # nobody has replayed it yet: the primary


def test_a_write_is_remembered_per_walker_and_the_marker_counts_too() -> None:
    replicas = make()
    walker, other = uuid.uuid4(), uuid.uuid4()
    replicas.remember_write(walker, 500)
    replicas.remember_write(walker, 400)  # an older position never lowers it
    assert replicas.required_lsn(walker, None) == 500
    assert replicas.required_lsn(other, None) == 0
    assert replicas.required_lsn(other, format_lsn(900)) == 900
    assert replicas.required_lsn(walker, "garbage") == 500
    assert replicas.required_lsn(None, format_lsn(7)) == 7


def test_a_full_memory_turns_into_a_floor_for_everyone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replicas_module, "MAX_REMEMBERED_WRITERS", 2)
    replicas = make()
    put_in_rotation(replicas, 1000, 1000)
    replicas.remember_write(uuid.uuid4(), 10)
    replicas.remember_write(uuid.uuid4(), 20)
    replicas.remember_write(uuid.uuid4(), 1500)  # forgets the others: nobody below 1500
    assert replicas.choose(0) is None
    put_in_rotation(replicas, 1500, 1000)
    assert replicas.choose(0) is replicas.replicas[0]


def test_lag_is_the_age_of_the_newest_primary_position_replayed() -> None:
    replicas = make()
    now = time.monotonic()
    assert replicas._lag_ms(0, now) is None  # no sample of the primary yet
    replicas._samples.extend([(now - 3.0, 100), (now - 2.0, 200), (now - 0.1, 300)])
    assert replicas._lag_ms(300, now) == pytest.approx(100, abs=1)
    assert replicas._lag_ms(250, now) == pytest.approx(2000, abs=1)
    assert replicas._lag_ms(50, now) > 3000  # older than every sample


async def test_a_failed_standby_leaves_the_rotation_at_once() -> None:
    replicas = make()
    put_in_rotation(replicas, 100, 100)
    first, second = replicas.replicas
    replicas.mark_down(first, ConnectionResetError("gone"))
    assert first.state == "down" and not first.usable
    assert {replicas.choose(0) for _ in range(4)} == {second}
    assert [s["state"] for s in replicas.status()] == ["down", "ok"]


def test_connection_errors_are_told_from_query_errors() -> None:
    import asyncpg
    import sqlalchemy.exc

    assert is_connection_error(ConnectionRefusedError())
    assert is_connection_error(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert is_connection_error(asyncpg.exceptions.AdminShutdownError("shutdown"))
    wrapped = sqlalchemy.exc.DBAPIError("SELECT 1", None, Exception("x"))
    wrapped.connection_invalidated = True
    assert is_connection_error(wrapped)
    assert not is_connection_error(asyncpg.exceptions.SerializationError("conflict with recovery"))
    assert not is_connection_error(ValueError("bad"))


async def test_a_replica_url_that_is_no_standby_is_never_read(settings: Settings) -> None:
    """The everyday run's check of the wiring: a "replica" that is the primary itself is found
    not in recovery, readiness says so, reads and writes work, and writes carry the marker."""
    assert settings.database_url
    configured = settings.model_copy(update={"database_replica_urls": [settings.database_url]})
    application = create_app(configured, run_worker=False)
    async with application.router.lifespan_context(application):
        transport = AddressedTransport(app=application, client=("203.0.113.8", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
            ready = await c.get("/readyz")
            assert ready.status_code == 200
            (state,) = ready.json()["replicas"]
            assert state["state"] == "not_standby" and state["in_rotation"] is False
            assert "@" not in state["name"]

            walker = await register(c, verified=False)
            assert (
                READ_AFTER_HEADER
                in (
                    await c.post(
                        "/v1/auth/login",
                        json={"email": walker["user"]["email"], "password": walker["password"]},
                    )
                ).headers
            )
            changed = await c.patch(
                "/v1/me", json={"full_name": "Renamed"}, headers=bearer(walker["access_token"])
            )
            assert changed.status_code == 200
            assert parse_lsn(changed.headers[READ_AFTER_HEADER])
            me = await c.get("/v1/me", headers=bearer(walker["access_token"]))
            assert me.json()["full_name"] == "Renamed"
            assert READ_AFTER_HEADER not in me.headers
            assert (await c.get("/v1/products")).status_code == 200
