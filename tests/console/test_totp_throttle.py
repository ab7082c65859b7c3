"""The console's second factor: codes reserved before they are checked, on their own count
(issue 12, holes 2 and 3)."""

from __future__ import annotations

import asyncio
from typing import Any

import pyotp
import pytest
from sqlalchemy import text

from stepcoin.console import sessions
from stepcoin.console.totp_keys import seal
from tests.console.helpers import browser_client, csrf_of, make_staff, sign_in


async def with_totp(app: Any, client: Any, engine: Any) -> tuple[dict[str, Any], pyotp.TOTP]:
    admin = await make_staff(client, engine, "admin")
    secret = pyotp.random_base32()
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET totp_secret = :s, totp_enabled_at = now() WHERE id = :id"),
            {"s": seal(app.state.settings, secret), "id": admin["user"]["id"]},
        )
    return admin, pyotp.TOTP(secret)


def wrong_code(totp: pyotp.TOTP) -> str:
    return next(f"{n:06d}" for n in range(1_000_000) if not totp.verify(f"{n:06d}", valid_window=1))


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every TOTP code the console actually compares."""
    seen: list[str] = []
    real = sessions.matching_step

    def counting(secret: str, code: str, **kwargs: Any) -> int | None:
        seen.append(code)
        return real(secret, code, **kwargs)

    monkeypatch.setattr(sessions, "matching_step", counting)
    return seen


async def test_parallel_wrong_codes_get_at_most_the_limit_of_checks(app, client, engine, checks):
    admin, totp = await with_totp(app, client, engine)
    async with browser_client(app) as c:
        assert (await sign_in(c, admin["email"])).status_code == 303
        token = csrf_of((await c.get("/admin/login/totp")).text)
        code = wrong_code(totp)
        responses = await asyncio.gather(
            *[
                c.post("/admin/login/totp", data={"csrf_token": token, "code": code})
                for _ in range(20)
            ]
        )
    statuses = sorted(r.status_code for r in responses)
    assert len(checks) <= 5
    assert statuses == [422] * len(checks) + [429] * (20 - len(checks))


async def test_correct_passwords_between_wrong_codes_do_not_reset_their_count(
    app, client, engine, checks
):
    admin, totp = await with_totp(app, client, engine)
    code = wrong_code(totp)
    statuses = []
    for _ in range(6):  # sign in again with the right password before every guess
        async with browser_client(app) as c:
            assert (await sign_in(c, admin["email"])).status_code == 303
            token = csrf_of((await c.get("/admin/login/totp")).text)
            answer = await c.post("/admin/login/totp", data={"csrf_token": token, "code": code})
            statuses.append(answer.status_code)
    assert statuses == [422] * 5 + [429]
    assert len(checks) == 5
    async with browser_client(app) as c:  # the right code waits out the window too
        assert (await sign_in(c, admin["email"])).status_code == 303
        token = csrf_of((await c.get("/admin/login/totp")).text)
        right = await c.post("/admin/login/totp", data={"csrf_token": token, "code": totp.now()})
        assert right.status_code == 429
        assert (await c.get("/admin/")).status_code == 303


async def test_a_passed_code_clears_the_count(app, client, engine):
    admin, totp = await with_totp(app, client, engine)
    code = wrong_code(totp)
    async with browser_client(app) as c:
        assert (await sign_in(c, admin["email"])).status_code == 303
        token = csrf_of((await c.get("/admin/login/totp")).text)
        for _ in range(4):
            wrong = await c.post("/admin/login/totp", data={"csrf_token": token, "code": code})
            assert wrong.status_code == 422
        right = await c.post("/admin/login/totp", data={"csrf_token": token, "code": totp.now()})
        assert right.status_code == 303
    async with engine.connect() as conn:
        left = (
            await conn.execute(
                text("SELECT count(*) FROM login_throttle WHERE key = :k"),
                {"k": f"totp:{admin['user']['id']}"},
            )
        ).scalar_one()
    assert left == 0
