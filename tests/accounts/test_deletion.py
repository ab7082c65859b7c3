"""DELETE /v1/me: re-authenticated, tokens dead at once, personal data gone, the books kept."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth import tasks as auth_tasks
from stepcoin.wallet.service import check_ledger
from stepcoin.worker import open_jobs
from tests.accounts.helpers import (
    delete_me,
    refreshes,
    sign_in_again,
    verified_walker_with_coins,
)
from tests.conftest import (
    APPLE_CLIENT_ID,
    GOOGLE_CLIENT_ID,
    TEST_PASSWORD,
    bearer,
    register,
    unique_email,
)
from tests.shop.helpers import order, product

GOOGLE_ISSUER = "https://accounts.google.com"
APPLE_ISSUER = "https://appleid.apple.com"


async def one(engine, sql: str, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).one()


async def walker_with_two_orders(client, engine):
    """A walker with 1000 coins, an order not yet sent (pending) and one Shopify has."""
    bottle = await product(engine, price=100, stock=10)
    me = await verified_walker_with_coins(client, engine, 1000)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE users SET email_verified_at = now(), phone = '+49 30 1234' WHERE id = :id"
            ),
            {"id": me["user"]["id"]},
        )
    unsent = (await order(client, me["access_token"], [(bottle, 2)])).json()
    sent = (await order(client, me["access_token"], [(bottle, 3)])).json()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE orders SET status = 'submitted', submitted_at = now(), "
                "shopify_order_id = 'gid://shopify/Order/777' WHERE id = :id"
            ),
            {"id": sent["id"]},
        )
    async with engine.begin() as conn:  # Shopify told us about the sent order (address inside)
        await conn.execute(
            text(
                "INSERT INTO webhook_events (webhook_id, topic, payload, processed_at) VALUES "
                "(:w, 'orders/updated', CAST(:p AS jsonb), now())"
            ),
            {
                "w": f"wh-{sent['id']}",
                "p": '{"id": 777, "admin_graphql_api_id": "gid://shopify/Order/777", '
                '"shipping_address": {"address1": "1 Step Street"}, "email": "ada@example.com"}',
            },
        )
    return me, unsent, sent, bottle


async def test_deletion_with_a_wrong_password_changes_nothing(client, engine):
    me, unsent, _, _ = await walker_with_two_orders(client, engine)
    response = await delete_me(client, me["access_token"], password="not the password")
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_password"
    row = await one(
        engine,
        "SELECT u.email, u.is_active, u.deleted_at, o.status, w.available_coins "
        "FROM users u JOIN orders o ON o.user_id = u.id JOIN wallets w ON w.user_id = u.id "
        "WHERE o.id = :o",
        o=unsent["id"],
    )
    assert (row.email, row.is_active, row.deleted_at) == (me["user"]["email"], True, None)
    assert (row.status, row.available_coins) == ("pending", 500)
    assert await refreshes(client, me) is True
    me_again = await client.get("/v1/me", headers=bearer(me["access_token"]))
    assert me_again.status_code == 200


async def test_deletion_ends_everything_at_once_and_keeps_the_books(client, engine):
    me, unsent, sent, bottle = await walker_with_two_orders(client, engine)
    user_id, email = me["user"]["id"], me["user"]["email"]
    tablet = await sign_in_again(client, email, user_agent="tablet")
    ledger_before = (
        await one(
            engine, "SELECT count(*) AS n FROM coin_transactions WHERE user_id = :u", u=user_id
        )
    ).n

    response = await delete_me(client, me["access_token"], password=TEST_PASSWORD)
    assert response.status_code == 204, response.text

    # every token dead at once: refresh on both devices, the access token on every route
    assert await refreshes(client, me) is False
    assert await refreshes(client, tablet) is False
    for method, path in (("GET", "/v1/me"), ("GET", "/v1/orders"), ("GET", "/v1/me/export")):
        answer = await client.request(method, path, headers=bearer(me["access_token"]))
        assert answer.status_code == 401, path
    again = await delete_me(client, me["access_token"], password=TEST_PASSWORD)
    assert again.status_code == 401
    login = await client.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert login.status_code == 401

    # the tombstone
    user = await one(
        engine,
        "SELECT email, full_name, phone, password_hash, totp_secret, email_verified_at, "
        "is_active, deleted_at FROM users WHERE id = :u",
        u=user_id,
    )
    assert user.email == f"deleted+{user_id}@deleted.invalid"
    assert (user.full_name, user.phone, user.password_hash, user.totp_secret) == (
        "Deleted walker",
        None,
        None,
        None,
    )
    assert user.is_active is False and user.deleted_at is not None
    devices = await one(
        engine,
        "SELECT count(*) FILTER (WHERE revoked_at IS NULL) AS live, "
        "count(*) FILTER (WHERE user_agent IS NOT NULL OR ip IS NOT NULL) AS traced "
        "FROM refresh_tokens WHERE user_id = :u",
        u=user_id,
    )
    assert (devices.live, devices.traced) == (0, 0)

    # the unsent order cancelled and refunded exactly once; the sent one kept
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT id, status, shipping_address FROM orders WHERE user_id = :u"),
                {"u": user_id},
            )
        ).all()
        refunds = (
            (
                await conn.execute(
                    text(
                        "SELECT amount FROM coin_transactions WHERE transaction_type = 'refund' "
                        "AND reference_id = ANY(:refs)"
                    ),
                    {"refs": [f"refund:{unsent['id']}", f"refund:{sent['id']}"]},
                )
            )
            .scalars()
            .all()
        )
        ledger_after = (
            await conn.execute(
                text("SELECT count(*) FROM coin_transactions WHERE user_id = :u"), {"u": user_id}
            )
        ).scalar_one()
        stock = (
            await conn.execute(
                text("SELECT stock_quantity FROM reward_products WHERE id = :id"), {"id": bottle}
            )
        ).scalar_one()
    status = {str(r.id): r.status for r in rows}
    assert status == {unsent["id"]: "cancelled", sent["id"]: "submitted"}
    assert refunds == [200]
    assert stock == 10 - 3  # the cancelled order's two are back on the shelf
    assert ledger_after == ledger_before + 1  # nothing removed, one refund row added
    for row in rows:  # no address left, only the country
        assert row.shipping_address == {"erased": True, "country": "DE"}

    webhook = await one(
        engine, "SELECT payload FROM webhook_events WHERE webhook_id = :w", w=f"wh-{sent['id']}"
    )
    assert webhook.payload == {"id": 777, "erased": True}

    # the ledger still balances, everywhere
    async with AsyncSession(engine) as session:
        report = await check_ledger(session)
    assert report.ok, report

    # the email is free again
    reborn = await register(client, email=email)
    assert reborn["user"]["id"] != user_id


async def test_the_deletion_is_in_the_audit_log_without_personal_data(client, engine):
    me, unsent, sent, _ = await walker_with_two_orders(client, engine)
    assert (await delete_me(client, me["access_token"], password=TEST_PASSWORD)).status_code == 204
    log = await one(
        engine,
        "SELECT admin_id, entity_type, changes, changes::text AS raw FROM admin_logs "
        "WHERE action = 'account.deleted' AND entity_id = :u",
        u=me["user"]["id"],
    )
    assert log.admin_id is None and log.entity_type == "user"
    assert log.changes["orders_cancelled"] == [unsent["id"]]
    assert log.changes["orders_kept"] == [sent["id"]]
    assert log.changes["coins_refunded"] == 200
    assert log.changes["reauthenticated_with"] == "password"
    assert me["user"]["email"] not in log.raw
    assert "Test Walker" not in log.raw and "1 Step Street" not in log.raw


async def test_a_staff_account_cannot_delete_itself(client, engine):
    me = await register(client)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET role = 'admin' WHERE id = :id"), {"id": me["user"]["id"]}
        )
    response = await delete_me(client, me["access_token"], password=TEST_PASSWORD)
    assert response.status_code == 409
    assert response.json()["code"] == "staff_account"
    assert await refreshes(client, me) is True


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"password": TEST_PASSWORD, "id_token": "a.b.c"},
        {"password": TEST_PASSWORD, "role": "admin"},
        {"id_token": "a.b.c\x00"},
        {"id_token": "a.b.c", "authorization_code": "bad code\x00"},
    ],
)
async def test_a_malformed_deletion_is_422_and_changes_nothing(client, engine, body):
    me = await register(client)
    response = await delete_me(client, me["access_token"], **body)
    assert response.status_code == 422
    assert await refreshes(client, me) is True


async def google_walker(client, keyset, subject: str):
    email = unique_email("g")
    token = keyset.id_token(
        issuer=GOOGLE_ISSUER, audience=GOOGLE_CLIENT_ID, subject=subject, email=email
    )
    response = await client.post("/v1/auth/google", json={"id_token": token})
    assert response.status_code == 200, response.text
    return response.json(), email


async def test_a_google_account_deletes_with_a_fresh_token_of_its_own_identity(client, keyset):
    me, _ = await google_walker(client, keyset, "google-del-1")
    other_token = keyset.id_token(
        issuer=GOOGLE_ISSUER, audience=GOOGLE_CLIENT_ID, subject="google-someone-else"
    )
    refused = await delete_me(client, me["access_token"], id_token=other_token)
    assert refused.status_code == 403
    assert refused.json()["code"] == "invalid_id_token"
    stale = keyset.id_token(
        issuer=GOOGLE_ISSUER,
        audience=GOOGLE_CLIENT_ID,
        subject="google-del-1",
        iat=1_700_000_000,
        lifetime=10**10,
    )
    assert (await delete_me(client, me["access_token"], id_token=stale)).status_code == 403
    assert await refreshes(client, me) is True

    fresh = keyset.id_token(issuer=GOOGLE_ISSUER, audience=GOOGLE_CLIENT_ID, subject="google-del-1")
    response = await delete_me(client, me["access_token"], id_token=fresh)
    assert response.status_code == 204, response.text
    # the identity is free: signing in with it again makes a new account
    again, _ = await google_walker(client, keyset, "google-del-1")
    assert again["user"]["id"] != me["user"]["id"]


async def run_auth_jobs(app, settings, monkeypatch) -> None:
    monkeypatch.setattr(auth_tasks, "get_settings", lambda: settings)
    async with open_jobs(app.state.database) as jobs:
        await jobs.run_worker_async(wait=False, install_signal_handlers=False, queues=["auth"])


async def test_an_apple_account_is_revoked_with_apple(
    app, client, keyset, engine, settings, apple_standin, monkeypatch
):
    apple_standin.reset()
    sign_in = keyset.id_token(
        issuer=APPLE_ISSUER, audience=APPLE_CLIENT_ID, subject="apple-del-1", email=unique_email()
    )
    me = (await client.post("/v1/auth/apple", json={"id_token": sign_in})).json()
    code = apple_standin.issue_code(APPLE_CLIENT_ID)
    fresh = keyset.id_token(issuer=APPLE_ISSUER, audience=APPLE_CLIENT_ID, subject="apple-del-1")

    response = await delete_me(client, me["access_token"], id_token=fresh, authorization_code=code)
    assert response.status_code == 204, response.text
    assert apple_standin.revoked == []  # the deletion did not wait for Apple

    await run_auth_jobs(app, settings, monkeypatch)
    assert len(apple_standin.revoked) == 1
    revoked = apple_standin.revoked[0]
    assert revoked["client_id"] == APPLE_CLIENT_ID
    assert revoked["token_type_hint"] == "refresh_token"
    assert revoked["known"] == "True"  # the refresh token Apple issued for that very code
    assert apple_standin.refused == []
    log = await one(
        engine,
        "SELECT changes FROM admin_logs WHERE action = 'account.deleted' AND entity_id = :u",
        u=me["user"]["id"],
    )
    assert log.changes["apple_revocation"] == "queued"
    assert log.changes["reauthenticated_with"] == "apple"


async def test_a_slow_apple_is_retried_without_spending_the_code_twice(
    app, client, keyset, engine, settings, apple_standin, monkeypatch
):
    apple_standin.reset()
    code = apple_standin.issue_code(APPLE_CLIENT_ID)
    apple_standin.fail_next = 0
    # the exchange works, then the revocation meets a 503: the token goes to a job of its own
    original = apple_standin.handle

    def flaky(path, form):
        if path == "/auth/revoke" and not getattr(flaky, "failed", False):
            flaky.failed = True
            return 503, {"error": "temporarily_unavailable"}
        return original(path, form)

    monkeypatch.setattr(apple_standin, "handle", flaky)
    monkeypatch.setattr(auth_tasks, "get_settings", lambda: settings)
    async with open_jobs(app.state.database):  # the task as the worker runs it
        first = await auth_tasks.revoke_apple_token(APPLE_CLIENT_ID, authorization_code=code)
    assert first == "revocation_deferred"
    assert apple_standin.revoked == []
    await run_auth_jobs(app, settings, monkeypatch)
    assert [r["known"] for r in apple_standin.revoked] == ["True"]


async def test_the_stand_in_refuses_a_client_secret_signed_with_another_key(
    settings, apple_standin, monkeypatch
):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from pydantic import SecretStr

    apple_standin.reset()
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    wrong = settings.model_copy(update={"apple_private_key": SecretStr(stranger.decode())})
    monkeypatch.setattr(auth_tasks, "get_settings", lambda: wrong)
    code = apple_standin.issue_code(APPLE_CLIENT_ID)
    outcome = await auth_tasks.revoke_apple_token(APPLE_CLIENT_ID, authorization_code=code)
    assert outcome == "refused"
    assert apple_standin.refused == ["invalid_client"]


async def test_an_order_racing_the_deletion_is_refunded_or_refused(client, engine):
    bottle = await product(engine, price=100, stock=50)
    me = await verified_walker_with_coins(client, engine, 1000)
    results = await asyncio.gather(
        order(client, me["access_token"], [(bottle, 1)]),
        delete_me(client, me["access_token"], password=TEST_PASSWORD),
        order(client, me["access_token"], [(bottle, 1)]),
    )
    assert results[1].status_code == 204
    pending = await one(
        engine,
        "SELECT count(*) AS n FROM orders WHERE user_id = :u AND status = 'pending'",
        u=me["user"]["id"],
    )
    assert pending.n == 0
    async with AsyncSession(engine) as session:
        assert (await check_ledger(session)).ok


async def test_steps_stay_for_the_books_without_their_device_ids(client, engine):
    from tests.steps.helpers import rec, sync

    me = await register(client)
    await sync(client, me["access_token"], rec(1, 9000, device_id="adas-iphone"))
    assert (await delete_me(client, me["access_token"], password=TEST_PASSWORD)).status_code == 204
    row = await one(
        engine,
        "SELECT count(*) AS n, count(device_id) AS devices, "
        "count(*) FILTER (WHERE device_ids <> '{}') AS lists FROM step_records WHERE user_id = :u",
        u=me["user"]["id"],
    )
    assert (row.n, row.devices, row.lists) == (1, 0, 0)
    async with AsyncSession(engine) as session:
        assert (await check_ledger(session)).ok


async def test_what_fair_play_kept_goes_with_the_account(client, engine):
    from tests.steps.helpers import rec, sync

    me = await register(client, address="198.51.100.44")
    other = await register(client)
    for walker in (other, me):
        await sync(client, walker["access_token"], rec(1, 6000, device_id="shared"))
    told = await client.get("/v1/me/standing", headers=bearer(me["access_token"]))
    assert told.status_code == 200  # a trust score is stored
    assert (await delete_me(client, me["access_token"], password=TEST_PASSWORD)).status_code == 204
    row = await one(
        engine,
        "SELECT (SELECT count(*) FROM device_accounts WHERE user_id = :u) AS devices, "
        "(SELECT count(*) FROM link_marks WHERE user_id = :u) AS marks, "
        "(SELECT count(*) FROM trust_scores WHERE user_id = :u) AS scores, "
        "(SELECT signup_address FROM users WHERE id = :u) AS address",
        u=me["user"]["id"],
    )
    assert (row.devices, row.marks, row.scores, row.address) == (0, 0, 0, None)


async def test_without_apple_settings_the_deletion_still_happens_and_says_so(
    app, client, keyset, engine, settings
):
    import uuid

    from stepcoin.accounts import service
    from stepcoin.accounts.schemas import DeleteAccountIn
    from stepcoin.db import session_scope

    sign_in = keyset.id_token(
        issuer=APPLE_ISSUER, audience=APPLE_CLIENT_ID, subject="apple-del-2", email=unique_email()
    )
    me = (await client.post("/v1/auth/apple", json={"id_token": sign_in})).json()
    fresh = keyset.id_token(issuer=APPLE_ISSUER, audience=APPLE_CLIENT_ID, subject="apple-del-2")
    unconfigured = settings.model_copy(update={"apple_private_key": None})
    body = DeleteAccountIn(id_token=fresh, authorization_code="c-unused")
    async with session_scope(app.state.database) as session:
        deletion = await service.delete_account(
            session, unconfigured, uuid.UUID(me["user"]["id"]), body
        )
    assert deletion.apple_revocation == "not_configured"
    jobs = await one(
        engine,
        "SELECT count(*) AS n FROM procrastinate_jobs WHERE task_name = 'auth:revoke_apple_token'",
    )
    assert jobs.n == 0
    assert await refreshes(client, me) is False


async def test_deletion_leaves_no_mail_link_or_counter_naming_the_email(client, engine):
    me = await register(client, verified=False)  # registration queued a verification mail
    user_id, email = me["user"]["id"], me["user"]["email"]
    reset = await client.post("/v1/auth/password-reset/request", json={"email": email})
    assert reset.status_code == 202
    wrong = await client.post("/v1/auth/login", json={"email": email, "password": "wrong-one-1"})
    assert wrong.status_code == 401
    traces = (
        "SELECT (SELECT count(*) FROM mail_outbox WHERE recipient = :e) AS mails, "
        "(SELECT count(*) FROM email_tokens WHERE user_id = :u) AS links, "
        "(SELECT count(*) FROM password_reset_requests WHERE email = :e) AS resets, "
        "(SELECT count(*) FROM login_throttle WHERE strpos(key, :e) > 0) AS counts"
    )
    before = await one(engine, traces, e=email, u=user_id)
    assert before.mails >= 1 and before.links >= 1 and before.resets == 1 and before.counts >= 2

    response = await delete_me(client, me["access_token"], password=TEST_PASSWORD)
    assert response.status_code == 204, response.text

    after = await one(engine, traces, e=email, u=user_id)
    assert (after.mails, after.links, after.resets, after.counts) == (0, 0, 0, 0)
