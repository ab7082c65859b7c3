"""Changing or removing an enrolled second factor needs a current code and is audited
(issue 12, hole 4)."""

from __future__ import annotations

import re
from typing import Any

import pyotp
from sqlalchemy import text

from stepcoin.console.sessions import reset_totp
from stepcoin.db import session_scope
from tests.console.helpers import csrf_of


async def enrol(console: Any) -> pyotp.TOTP:
    """Set up and confirm an authenticator through the account page."""
    page = (await console.get("/admin/account")).text
    assert (
        await console.post("/admin/account/totp/start", data={"csrf_token": csrf_of(page)})
    ).status_code == 303
    page = (await console.get("/admin/account")).text
    totp = pyotp.TOTP(re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1))
    confirmed = await console.post(
        "/admin/account/totp/confirm", data={"csrf_token": csrf_of(page), "code": totp.now()}
    )
    assert confirmed.status_code == 303
    return totp


async def factor(engine: Any, user_id: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT totp_secret, totp_enabled_at, totp_last_step FROM users WHERE id = :id"
                ),
                {"id": user_id},
            )
        ).one()


async def audit_rows(engine: Any, action: str) -> list[Any]:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT admin_id, entity_id, changes FROM admin_logs WHERE action = :a"),
                {"a": action},
            )
        ).all()


async def test_turning_totp_off_needs_a_current_code_and_is_audited(console, engine):
    totp = await enrol(console)
    user_id = console.account["user"]["id"]
    page = (await console.get("/admin/account")).text
    wrong = "000000" if totp.now() != "000000" else "111111"
    for code in ("", wrong):
        refused = await console.post(
            "/admin/account/totp/disable", data={"csrf_token": csrf_of(page), "code": code}
        )
        assert refused.status_code == 303
        assert (await factor(engine, user_id)).totp_enabled_at is not None
    assert await audit_rows(engine, "console.totp_disable") == []
    # a fresh step's code (the confirming code's step is spent)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE users SET totp_last_step = totp_last_step - 5"))
    off = await console.post(
        "/admin/account/totp/disable", data={"csrf_token": csrf_of(page), "code": totp.now()}
    )
    assert off.status_code == 303
    after = await factor(engine, user_id)
    assert after.totp_enabled_at is None and after.totp_secret is None
    [row] = await audit_rows(engine, "console.totp_disable")
    assert str(row.admin_id) == user_id and row.entity_id == user_id
    assert row.changes["before"] == {"totp": True} and row.changes["after"] == {"totp": False}


async def test_confirming_again_while_totp_is_on_changes_and_logs_nothing(console, engine):
    totp = await enrol(console)
    user_id = console.account["user"]["id"]
    before = await factor(engine, user_id)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE users SET totp_last_step = totp_last_step - 5"))
    page = (await console.get("/admin/account")).text
    again = await console.post(
        "/admin/account/totp/confirm", data={"csrf_token": csrf_of(page), "code": totp.now()}
    )
    assert again.status_code == 303
    assert "already on" in (await console.get(again.headers["location"])).text
    after = await factor(engine, user_id)
    assert (after.totp_secret, after.totp_enabled_at) == (
        before.totp_secret,
        before.totp_enabled_at,
    )
    assert len(await audit_rows(engine, "console.totp_enable")) == 1  # the first confirmation


async def test_the_operators_reset_is_audited_with_who_ran_it(app, console, engine):
    await enrol(console)
    async with session_scope(app.state.database) as session:
        assert await reset_totp(session, console.account["email"]) is True
    [row] = await audit_rows(engine, "cli.reset_totp")
    assert row.admin_id is None and row.entity_id == console.account["user"]["id"]
    assert row.changes["before"] == {"totp": True} and row.changes["after"] == {"totp": False}
    assert "@" in row.changes["operator"]
