"""Console sign-in: cookies, CSRF, roles, TOTP, idle timeout, sign-out."""

from __future__ import annotations

import re

import httpx
import pyotp
from sqlalchemy import text

from stepcoin.console.totp_keys import seal, unseal
from stepcoin.console.web import SESSION_COOKIE
from tests.console.helpers import browser_client, csrf_of, make_staff, sign_in


async def test_admin_signs_in_and_gets_a_strict_httponly_secure_cookie(app, client, engine):
    admin = await make_staff(client, engine, "admin")
    async with browser_client(app) as c:
        assert (await c.get("/admin/")).status_code == 303  # not signed in: to the sign-in page
        response = await sign_in(c, admin["email"])
        assert response.status_code == 303 and response.headers["location"] == "/admin/"
        cookie = next(
            h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
        )
        lowered = cookie.lower()
        assert "httponly" in lowered and "secure" in lowered and "samesite=strict" in lowered
        assert "path=/admin" in lowered
        page = await c.get("/admin/")
        assert page.status_code == 200 and "Overview" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM admin_sessions"))).scalar_one()
        logged = (
            await conn.execute(
                text("SELECT count(*) FROM admin_logs WHERE action = 'console.sign_in'")
            )
        ).scalar_one()
    token = c.cookies.get(SESSION_COOKIE) or ""
    assert token and token.encode() not in stored and logged == 1


async def test_a_walker_cannot_sign_in_even_with_the_right_password(app, client, engine):
    walker = await make_staff(client, engine, "user")
    async with browser_client(app) as c:
        response = await sign_in(c, walker["email"])
        assert response.status_code == 401
        assert "no access to the console" in response.text
        assert SESSION_COOKIE not in c.cookies
        assert (await c.get("/admin/")).status_code == 303
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM admin_sessions"))).scalar_one() == 0


async def test_wrong_password_is_refused_and_counted(app, client, engine):
    admin = await make_staff(client, engine, "admin")
    async with browser_client(app) as c:
        response = await sign_in(c, admin["email"], "not the password at all")
        assert response.status_code == 401 and "Wrong email or password" in response.text
    async with engine.connect() as conn:
        failures = (
            await conn.execute(
                text("SELECT failures FROM login_throttle WHERE key = :k"),
                {"k": f"account:{admin['email']}"},
            )
        ).scalar_one()
    assert failures == 1


async def test_sign_in_without_its_csrf_token_is_refused(app, client, engine):
    admin = await make_staff(client, engine, "admin")
    async with browser_client(app) as c:
        await c.get("/admin/login")
        response = await c.post(
            "/admin/login", data={"email": admin["email"], "password": admin["password"]}
        )
        assert response.status_code == 403 and "CSRF" in response.text
        assert SESSION_COOKIE not in c.cookies


async def test_a_form_posted_without_its_csrf_token_changes_nothing(console):
    page = await console.get("/admin/account")
    assert page.status_code == 200
    response = await console.post("/admin/account/totp/start", data={})
    assert response.status_code == 403 and "CSRF" in response.text
    response = await console.post("/admin/account/totp/start", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert "Set up an authenticator" in (await console.get("/admin/account")).text


async def test_sign_out_ends_the_session_for_good(console, engine):
    page = await console.get("/admin/")
    token = console.cookies.get(SESSION_COOKIE)
    response = await console.post("/admin/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and "/admin/login" in response.headers["location"]
    console.cookies.set(SESSION_COOKIE, token, domain="console.test", path="/admin")
    assert (await console.get("/admin/")).status_code == 303  # the old cookie opens nothing


async def test_an_idle_session_expires(console, engine):
    assert (await console.get("/admin/")).status_code == 200
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE admin_sessions SET last_seen_at = now() - interval '31 minutes'")
        )
    response = await console.get("/admin/account")
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/admin/login") and "next=%2Fadmin%2Faccount" in location
    assert "ended" in (await console.get(location)).text


async def test_the_idle_timeout_is_a_runtime_setting(console, engine):
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = '5' WHERE key = 'console.idle_timeout_minutes'")
        )
        await conn.execute(
            text("UPDATE admin_sessions SET last_seen_at = now() - interval '6 minutes'")
        )
    from stepcoin.runtime_settings.service import runtime_settings

    runtime_settings.invalidate()
    assert (await console.get("/admin/")).status_code == 303


async def test_deactivating_or_demoting_staff_ends_their_console_session(console, engine):
    assert (await console.get("/admin/")).status_code == 200
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET role = 'user' WHERE id = :id"),
            {"id": console.account["user"]["id"]},
        )
    assert (await console.get("/admin/")).status_code == 303


async def test_totp_setup_then_sign_in_needs_the_code(app, console, engine):
    page = await console.post(
        "/admin/account/totp/start",
        data={"csrf_token": csrf_of((await console.get("/admin/account")).text)},
    )
    assert page.status_code == 303
    account_page = (await console.get("/admin/account")).text
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT totp_secret FROM users WHERE id = :id"),
                {"id": console.account["user"]["id"]},
            )
        ).scalar_one()
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', account_page).group(1)
    assert stored.startswith("fernet:") and secret not in stored  # encrypted at rest
    assert unseal(app.state.settings, stored) == secret
    totp = pyotp.TOTP(secret)
    wrong = await console.post(
        "/admin/account/totp/confirm",
        data={
            "csrf_token": csrf_of(account_page),
            "code": "000000" if totp.now() != "000000" else "111111",
        },
    )
    assert wrong.status_code == 303
    assert "wrong" in (await console.get("/admin/account")).text
    confirmed_with = totp.now()
    ok = await console.post(
        "/admin/account/totp/confirm",
        data={"csrf_token": csrf_of(account_page), "code": confirmed_with},
    )
    assert ok.status_code == 303
    assert "Two-step sign-in is on" in (await console.get("/admin/account")).text

    async with browser_client(app) as fresh:
        response = await sign_in(fresh, console.account["email"])
        assert response.status_code == 303 and response.headers["location"].startswith(
            "/admin/login/totp"
        )
        assert (await fresh.get("/admin/")).status_code == 303  # password alone opens nothing
        code_page = await fresh.get("/admin/login/totp")
        assert code_page.status_code == 200
        # the code used to confirm cannot be replayed
        replay = await fresh.post(  # (that very code: a 30 s step may have passed meanwhile)
            "/admin/login/totp",
            data={"csrf_token": csrf_of(code_page.text), "code": confirmed_with},
        )
        assert replay.status_code == 422
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE users SET totp_last_step = totp_last_step - 5"))
        good = await fresh.post(
            "/admin/login/totp", data={"csrf_token": csrf_of(code_page.text), "code": totp.now()}
        )
        assert good.status_code == 303
        assert (await fresh.get("/admin/")).status_code == 200


async def test_next_is_kept_but_never_leaves_the_console(app, client, engine):
    admin = await make_staff(client, engine, "admin")
    async with browser_client(app) as c:
        page = await c.get("/admin/login?next=/admin/settings")
        response = await c.post(
            "/admin/login",
            data={
                "email": admin["email"],
                "password": admin["password"],
                "csrf_token": csrf_of(page.text),
                "next": "/admin/settings",
            },
        )
        assert response.headers["location"] == "/admin/settings"
    async with browser_client(app) as c:
        page = await c.get("/admin/login")
        response = await c.post(
            "/admin/login",
            data={
                "email": admin["email"],
                "password": admin["password"],
                "csrf_token": csrf_of(page.text),
                "next": "https://evil.example/",
            },
        )
        assert response.headers["location"] == "/admin/"


async def test_unknown_console_pages_are_html_not_problem_json(console):
    response = await console.get("/admin/no-such-page")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")


async def test_the_admin_chooses_the_timezone_times_are_shown_in(console, engine):
    page = await console.get("/admin/account")
    response = await console.post(
        "/admin/account/timezone", data={"csrf_token": csrf_of(page.text), "timezone": "Asia/Tokyo"}
    )
    assert response.status_code == 303
    assert "Asia/Tokyo" in (await console.get("/admin/account")).text
    bad = await console.post(
        "/admin/account/timezone",
        data={"csrf_token": csrf_of(page.text), "timezone": "Mars/Olympus"},
    )
    assert bad.status_code == 303
    async with engine.connect() as conn:
        tz = (
            await conn.execute(
                text("SELECT timezone FROM users WHERE id = :id"),
                {"id": console.account["user"]["id"]},
            )
        ).scalar_one()
    assert tz == "Asia/Tokyo"


async def test_ended_sessions_are_pruned_after_thirty_days(console, engine, app):
    from stepcoin.console.sessions import prune_sessions
    from stepcoin.db import session_scope

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO admin_sessions "
                "(user_id, token_hash, csrf_token, revoked_at, created_at) "
                "SELECT :id, sha256(v.k::bytea), v.k, v.revoked, v.created FROM (VALUES "
                "('x', now() - interval '31 days', now() - interval '32 days'), "
                "('y', NULL, now() - interval '40 days'), "
                "('z', now() - interval '2 days', now() - interval '3 days')"
                ") AS v (k, revoked, created)"
            ),
            {"id": console.account["user"]["id"]},
        )
    async with session_scope(app.state.database) as session:
        assert await prune_sessions(session) == 2
    async with engine.connect() as conn:
        left = (await conn.execute(text("SELECT csrf_token FROM admin_sessions"))).scalars().all()
    assert sorted(left) != [] and "x" not in left and "y" not in left and "z" in left
    assert (await console.get("/admin/")).status_code == 200  # the live session is untouched


async def test_guessing_totp_codes_is_throttled(app, client, engine):
    admin = await make_staff(client, engine, "admin")
    secret = pyotp.random_base32()
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET totp_secret = :s, totp_enabled_at = now() WHERE id = :id"),
            {"s": seal(app.state.settings, secret), "id": admin["user"]["id"]},
        )
    totp = pyotp.TOTP(secret)
    async with browser_client(app) as c:
        assert (await sign_in(c, admin["email"])).status_code == 303
        page = await c.get("/admin/login/totp")
        token = csrf_of(page.text)
        wrong = next(
            f"{n:06d}" for n in range(1_000_000) if totp.verify(f"{n:06d}", valid_window=1) is False
        )
        statuses = [
            (
                await c.post("/admin/login/totp", data={"csrf_token": token, "code": wrong})
            ).status_code
            for _ in range(6)
        ]
        assert statuses[:5] == [422] * 5 and statuses[5] == 429
        # even the right code waits out the block
        right = await c.post("/admin/login/totp", data={"csrf_token": token, "code": totp.now()})
        assert right.status_code == 429
        assert (await c.get("/admin/")).status_code == 303


async def test_admin_without_the_slash_leads_to_the_console(app):
    async with browser_client(app) as c:
        response = await c.get("/admin")
        assert response.status_code in (301, 302, 303, 307, 308)
        assert response.headers["location"].endswith("/admin/")


async def test_the_sign_in_page_warns_when_its_secure_cookie_cannot_stick(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.example") as c:
        assert 'id="needs-https"' in (await c.get("/admin/login")).text
    async with browser_client(app) as c:  # https
        assert 'id="needs-https"' not in (await c.get("/admin/login")).text


async def test_a_totp_secret_sealed_with_another_key_fails_closed_until_reset(app, client, engine):
    from stepcoin.config import Settings
    from stepcoin.console.sessions import reset_totp
    from stepcoin.db import session_scope

    admin = await make_staff(client, engine, "admin")
    other = Settings(env="test", database_url="postgresql://unused/x", totp_keys=["k" * 40])
    secret = pyotp.random_base32()
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET totp_secret = :s, totp_enabled_at = now() WHERE id = :id"),
            {"s": seal(other, secret), "id": admin["user"]["id"]},
        )
    async with browser_client(app) as c:
        assert (await sign_in(c, admin["email"])).status_code == 303
        page = await c.get("/admin/login/totp")
        refused = await c.post(
            "/admin/login/totp",
            data={"csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret).now()},
        )
        assert refused.status_code == 422 and "reset-totp" in refused.text
        assert (await c.get("/admin/")).status_code == 303
    async with session_scope(app.state.database) as session:
        assert await reset_totp(session, admin["email"]) is True
        assert await reset_totp(session, "nobody@example.com") is False
    async with browser_client(app) as c:
        response = await sign_in(c, admin["email"])
        assert response.headers["location"] == "/admin/"  # password alone again
    async with engine.connect() as conn:
        assert (
            await conn.execute(
                text("SELECT count(*) FROM admin_logs WHERE action = 'cli.reset_totp'")
            )
        ).scalar_one() == 1


async def test_setting_up_totp_again_while_it_is_on_is_refused(console, engine):
    """Starting the setup again must not switch an enrolled factor off without its code."""
    account_page = (await console.get("/admin/account")).text
    started = await console.post(
        "/admin/account/totp/start", data={"csrf_token": csrf_of(account_page)}
    )
    assert started.status_code == 303
    account_page = (await console.get("/admin/account")).text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', account_page).group(1)
    confirmed = await console.post(
        "/admin/account/totp/confirm",
        data={"csrf_token": csrf_of(account_page), "code": pyotp.TOTP(secret).now()},
    )
    assert confirmed.status_code == 303

    async def factor():
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT totp_secret, totp_enabled_at FROM users WHERE id = :id"),
                    {"id": console.account["user"]["id"]},
                )
            ).one()

    before = await factor()
    assert before.totp_enabled_at is not None
    again = await console.post(
        "/admin/account/totp/start", data={"csrf_token": csrf_of(account_page)}
    )
    assert again.status_code == 303
    page = (await console.get(again.headers["location"])).text
    assert "turn it off with a current code" in page
    assert await factor() == before  # still on, with the same key


async def test_the_cookie_names_its_user_and_one_from_before_still_signs_in(console, engine, app):
    """Issue 19 item 4: a console cookie starts with its user's id, so the session is found by
    (user_id, token_hash); a cookie issued before is found by its hash alone."""
    import secrets

    from stepcoin.console.sessions import hash_token, load_session
    from stepcoin.db import session_scope
    from stepcoin.distribution import route_of

    user_id = console.account["user"]["id"]
    from stepcoin.console.web import SESSION_COOKIE

    cookie = console.cookies.get(SESSION_COOKIE)
    assert str(route_of(cookie)) == user_id
    old = secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO admin_sessions (user_id, token_hash, csrf_token, second_factor_done)"
                " VALUES (:id, :hash, 'old', true)"
            ),
            {"id": user_id, "hash": hash_token(old)},
        )
    async with session_scope(app.state.database) as session:
        found = await load_session(session, old)
        forged = await load_session(session, f"{'0' * 32}-{old}")
    assert found is not None and str(found.id) == user_id
    assert forged is None
