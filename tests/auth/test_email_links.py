"""Email verification and password reset end to end through HTTP, the mail read from a real
SMTP server; the order rule for unverified walkers; and issue 12 hole 1 (account pre-hijack
through Google/Apple sign-in)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.conftest import GOOGLE_CLIENT_ID, TEST_PASSWORD, bearer, register, unique_email
from tests.fixtures.smtp import text_of, token_in
from tests.shop.helpers import order, product, walker_with_coins

GOOGLE_ISSUER = "https://accounts.google.com"
NEW_PASSWORD = "a brand new passphrase 42"


async def scalar(engine, sql: str, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


# --- verification ------------------------------------------------------------------------------


async def test_registration_mails_a_link_that_verifies_the_email(client, engine, mailbox):
    walker = await register(client, verified=False)
    email = walker["user"]["email"]
    assert walker["user"]["email_verified"] is False
    [mail] = await mailbox.deliver(1)
    assert mail["To"] == email
    assert "/verify-email?token=" in text_of(mail)
    token = token_in(mail)
    stored = await scalar(engine, "SELECT encode(token_hash, 'hex') FROM email_tokens")
    assert token not in stored  # only the hash is kept

    verified = await client.post("/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email_verified"] is True
    assert verified.json()["wallet"]["available_coins"] == 0  # the profile
    me = await client.get("/v1/me", headers=bearer(walker["access_token"]))
    assert me.json()["email_verified"] is True

    again = await client.post("/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 410 and again.json()["code"] == "token_used"
    unknown = await client.post("/v1/auth/verify-email", json={"token": "x" * 43})
    assert unknown.status_code == 400 and unknown.json()["code"] == "invalid_token_link"


async def test_a_registration_that_fails_sends_no_mail(client, engine):
    walker = await register(client)
    taken = await client.post(
        "/v1/auth/register",
        json={"email": walker["user"]["email"], "password": TEST_PASSWORD, "full_name": "Again"},
    )
    assert taken.status_code == 409
    assert await scalar(engine, "SELECT count(*) FROM mail_outbox") == 1  # the first only


async def test_an_expired_verification_link_is_refused(client, engine, mailbox):
    walker = await register(client, verified=False)
    [mail] = await mailbox.deliver(1)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE email_tokens SET expires_at = now() - interval '1 s'"))
    expired = await client.post("/v1/auth/verify-email", json={"token": token_in(mail)})
    assert expired.status_code == 410 and expired.json()["code"] == "token_expired"
    me = await client.get("/v1/me", headers=bearer(walker["access_token"]))
    assert me.json()["email_verified"] is False


async def test_a_reset_token_does_not_verify_and_a_verify_token_does_not_reset(client, mailbox):
    walker = await register(client, verified=False)
    await client.post("/v1/auth/password-reset/request", json={"email": walker["user"]["email"]})
    verify_mail, reset_mail = await mailbox.deliver(2)
    if "reset" not in verify_mail["Subject"].lower():
        verify_mail, reset_mail = reset_mail, verify_mail
    wrong = await client.post("/v1/auth/verify-email", json={"token": token_in(verify_mail)})
    assert wrong.status_code == 400
    wrong = await client.post(
        "/v1/auth/password-reset",
        json={"token": token_in(reset_mail), "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 400


async def test_asking_again_sends_a_new_mail_and_nothing_once_verified(client, engine, mailbox):
    walker = await register(client, verified=False)
    headers = bearer(walker["access_token"])
    again = await client.post("/v1/auth/verify-email/request", headers=headers)
    assert again.status_code == 202
    first, second = await mailbox.deliver(2)
    assert token_in(first) != token_in(second)
    # either link works; using one spends both
    assert (
        await client.post("/v1/auth/verify-email", json={"token": token_in(second)})
    ).status_code == 200
    assert (
        await client.post("/v1/auth/verify-email", json={"token": token_in(first)})
    ).status_code == 410
    done = await client.post("/v1/auth/verify-email/request", headers=headers)
    assert done.status_code == 202 and "already" in done.json()["detail"]
    assert await scalar(engine, "SELECT count(*) FROM mail_outbox") == 2
    anonymous = await client.post("/v1/auth/verify-email/request")
    assert anonymous.status_code == 401


async def test_verification_mails_are_throttled_per_account(client, engine):
    """The requests count (the `mails` rate limit, ratelimit.mails_per_account: 5/hour by
    default), not the mail registration sent."""
    walker = await register(client, verified=False)  # the first mail
    headers = bearer(walker["access_token"])
    for _ in range(5):
        ok = await client.post("/v1/auth/verify-email/request", headers=headers)
        assert ok.status_code == 202
    refused = await client.post("/v1/auth/verify-email/request", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_verification_mails"
    assert "Retry-After" in refused.headers
    assert await scalar(engine, "SELECT count(*) FROM mail_outbox") == 6


# --- the order rule ----------------------------------------------------------------------------


async def test_an_unverified_walker_earns_but_cannot_order_until_verified(client, engine, mailbox):
    walker = await walker_with_coins(client, engine, 500, verified=False)
    bottle = await product(engine, price=100)
    refused = await order(client, walker["access_token"], [(bottle, 1)])
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "email_unverified"
    me = await client.get("/v1/me", headers=bearer(walker["access_token"]))
    assert me.json()["wallet"]["available_coins"] == 500  # nothing moved
    assert await scalar(engine, "SELECT count(*) FROM orders") == 0

    [mail] = await mailbox.deliver(1)
    assert (
        await client.post("/v1/auth/verify-email", json={"token": token_in(mail)})
    ).status_code == 200
    placed = await order(client, walker["access_token"], [(bottle, 1)])
    assert placed.status_code == 201, placed.text


# --- password reset ----------------------------------------------------------------------------


async def test_password_reset_through_the_mail_ends_every_session(client, engine, mailbox):
    walker = await register(client, verified=False)
    email = walker["user"]["email"]
    other_device = await client.post(
        "/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
    )
    asked = await client.post("/v1/auth/password-reset/request", json={"email": email.upper()})
    assert asked.status_code == 202
    mails = await mailbox.deliver(2)  # the verification mail, then the reset mail
    [reset_mail] = [m for m in mails if "reset" in m["Subject"].lower()]
    assert "/reset-password?token=" in text_of(reset_mail)
    token = token_in(reset_mail)

    weak = await client.post(
        "/v1/auth/password-reset", json={"token": token, "new_password": "short"}
    )
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"  # token kept

    done = await client.post(
        "/v1/auth/password-reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 200, done.text
    assert done.json()["sessions_ended"] == 2
    for tokens in (walker, other_device.json()):
        refreshed = await client.post(
            "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 401
    old = await client.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert old.status_code == 401
    new = await client.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert new.status_code == 200
    assert new.json()["user"]["email_verified"] is True  # the link proved the email

    reused = await client.post(
        "/v1/auth/password-reset", json={"token": token, "new_password": "another one 12345"}
    )
    assert reused.status_code == 410 and reused.json()["code"] == "token_used"


async def test_a_reset_link_expires_after_30_minutes(client, engine, mailbox):
    walker = await register(client)
    await client.post("/v1/auth/password-reset/request", json={"email": walker["user"]["email"]})
    [mail] = [m for m in await mailbox.deliver(2) if "reset" in m["Subject"].lower()]
    ttl = await scalar(
        engine,
        "SELECT extract(epoch FROM expires_at - created_at) FROM email_tokens "
        "WHERE purpose = 'password_reset'",
    )
    assert ttl == 30 * 60
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE email_tokens SET expires_at = now() - interval '1 s' "
                "WHERE purpose = 'password_reset'"
            )
        )
    late = await client.post(
        "/v1/auth/password-reset", json={"token": token_in(mail), "new_password": NEW_PASSWORD}
    )
    assert late.status_code == 410 and late.json()["code"] == "token_expired"


RESET_JOBS = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'auth:mail_password_reset'"


async def test_a_reset_request_answers_the_same_for_an_unknown_email(client, engine, mailbox):
    walker = await register(client)
    email = walker["user"]["email"]
    nobody = unique_email("nobody")
    known = await client.post("/v1/auth/password-reset/request", json={"email": email})
    unknown = await client.post("/v1/auth/password-reset/request", json={"email": nobody})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.headers.keys() == unknown.headers.keys()
    # the same work in the request for both (a request row and a job): the account is
    # looked up later, by the job, so the answer's timing tells nothing either
    assert await scalar(engine, RESET_JOBS) == 2
    assert await scalar(engine, "SELECT count(*) FROM password_reset_requests") == 2
    assert await scalar(engine, "SELECT count(*) FROM email_tokens") == 1  # registration's

    await mailbox.deliver(2)
    assert [m["Subject"] for m in mailbox.to(email)] == [
        "Confirm your email for StepCoin",
        "Reset your StepCoin password",
    ]
    assert mailbox.to(nobody) == []


async def test_reset_requests_are_throttled_per_email_silently_and_per_address(
    client, engine, mailbox
):
    walker = await register(client)
    email = walker["user"]["email"]
    for _ in range(5):
        answer = await client.post("/v1/auth/password-reset/request", json={"email": email})
        assert answer.status_code == 202  # the same answer...
    assert await scalar(engine, RESET_JOBS) == 3  # ...but at most three links a quarter hour
    await mailbox.deliver(4)
    assert len(mailbox.to(email)) == 4  # the verification mail and three reset mails

    answers = await asyncio.gather(
        *(
            client.post("/v1/auth/password-reset/request", json={"email": unique_email()})
            for _ in range(20)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 15 + [429] * 5  # 20 a quarter hour per address, parallel or not
    assert all("Retry-After" in a.headers for a in answers if a.status_code == 429)


# --- hole 1: account pre-hijack ----------------------------------------------------------------


async def test_google_never_joins_an_account_whose_email_is_unverified(
    client, engine, keyset, mailbox
):
    """Issue 12 hole 1: an attacker registers the victim's email with a password; the victim
    signs in with Google. The identity must not join the attacker's account (the attacker's
    password would open it). The owner resets the password, which proves the email; then
    Google signs in to that account and the attacker's password is gone."""
    victim = unique_email("victim")
    attacker_password = "attacker knows this one"
    await register(client, victim, attacker_password, verified=False)
    google = keyset.id_token(
        issuer=GOOGLE_ISSUER,
        audience=GOOGLE_CLIENT_ID,
        subject="victim-google-id",
        email=victim,
        email_verified=True,
    )
    refused = await client.post("/v1/auth/google", json={"id_token": google})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "account_unverified"
    assert "reset the password" in refused.json()["detail"]
    assert await scalar(engine, "SELECT count(*) FROM user_identities") == 0

    await client.post("/v1/auth/password-reset/request", json={"email": victim})
    [reset] = [m for m in await mailbox.deliver(2) if "reset" in m["Subject"].lower()]
    done = await client.post(
        "/v1/auth/password-reset", json={"token": token_in(reset), "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 200
    linked = await client.post("/v1/auth/google", json={"id_token": google})
    assert linked.status_code == 200, linked.text
    assert linked.json()["user"]["email"] == victim
    attacker = await client.post(
        "/v1/auth/login", json={"email": victim, "password": attacker_password}
    )
    assert attacker.status_code == 401


async def test_a_google_sign_up_with_a_verified_email_is_verified(client, keyset, engine):
    email = unique_email("g")
    token = keyset.id_token(
        issuer=GOOGLE_ISSUER, audience=GOOGLE_CLIENT_ID, subject="g-1", email=email
    )
    answer = await client.post("/v1/auth/google", json={"id_token": token})
    assert answer.status_code == 200
    assert answer.json()["user"]["email_verified"] is True
    assert await scalar(engine, "SELECT count(*) FROM mail_outbox") == 0  # nothing to prove


# --- single use under concurrency --------------------------------------------------------------


async def test_a_link_used_by_parallel_requests_works_once(client, mailbox):
    walker = await register(client, verified=False)
    await client.post("/v1/auth/password-reset/request", json={"email": walker["user"]["email"]})
    mails = await mailbox.deliver(2)
    [verify] = [m for m in mails if "Confirm" in m["Subject"]]
    [reset] = [m for m in mails if "Reset" in m["Subject"]]
    verifies = await asyncio.gather(
        *(client.post("/v1/auth/verify-email", json={"token": token_in(verify)}) for _ in range(6))
    )
    assert sorted(r.status_code for r in verifies) == [200] + [410] * 5
    resets = await asyncio.gather(
        *(
            client.post(
                "/v1/auth/password-reset",
                json={"token": token_in(reset), "new_password": f"{NEW_PASSWORD} {n}"},
            )
            for n in range(6)
        )
    )
    assert sorted(r.status_code for r in resets) == [200] + [410] * 5
    [winner] = [n for n, r in enumerate(resets) if r.status_code == 200]
    login = await client.post(
        "/v1/auth/login",
        json={"email": walker["user"]["email"], "password": f"{NEW_PASSWORD} {winner}"},
    )
    assert login.status_code == 200


async def test_a_deactivated_account_cannot_be_reset_or_verified(client, engine, mailbox):
    walker = await register(client, verified=False)
    await client.post("/v1/auth/password-reset/request", json={"email": walker["user"]["email"]})
    mails = await mailbox.deliver(2)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :id"), {"id": walker["user"]["id"]}
        )
    [reset] = [m for m in mails if "Reset" in m["Subject"]]
    [verify] = [m for m in mails if "Confirm" in m["Subject"]]
    refused = await client.post(
        "/v1/auth/password-reset", json={"token": token_in(reset), "new_password": NEW_PASSWORD}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "account_disabled"
    refused = await client.post("/v1/auth/verify-email", json={"token": token_in(verify)})
    assert refused.status_code == 401
    unused = await scalar(engine, "SELECT count(*) FROM email_tokens WHERE used_at IS NULL")
    assert unused == 2  # nothing changed
