"""Issue 16 item 3: a walker's code, and claiming one (idempotent, race-safe, each refusal)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text

from stepcoin.referrals.service import CODE_ALPHABET, CODE_LENGTH
from tests.admin.helpers import count
from tests.referrals.helpers import backdate, claim, code_of, invite, walker


async def test_a_code_is_made_on_first_ask_and_stays(client):
    me = await walker(client)
    first = await client.get("/v1/me/referral", headers=me["headers"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["code"]) == CODE_LENGTH and set(body["code"]) <= set(CODE_ALPHABET)
    assert body["terms"] == {
        "referrer_coins": 500,
        "invitee_coins": 250,
        "qualifying_days": 5,
        "qualifying_window_days": 30,
        "hold_days": 7,
    }
    assert body["claimed"] is None
    assert (await code_of(client, me)) == body["code"]


async def test_anonymous_callers_are_refused(client):
    assert (await client.get("/v1/me/referral")).status_code == 401
    assert (await client.get("/v1/me/referrals")).status_code == 401
    response = await client.post("/v1/referrals/claim", json={"code": "ABCDEFGH"})
    assert response.status_code == 401


async def test_claim_then_the_same_code_again_is_the_same_referral(client, engine):
    referrer = await walker(client, "Rita Referrer")
    invitee = await walker(client, "Ivan Invitee")
    code = await code_of(client, referrer)
    first = await claim(client, invitee, code)
    assert first["status"] == "pending" and first["code"] == code
    # case, spaces and dashes do not matter
    typed = f" {code[:4].lower()}-{code[4:]} "
    again = await claim(client, invitee, typed, status=200)
    assert again == first
    mine = (await client.get("/v1/me/referral", headers=invitee["headers"])).json()
    assert mine["claimed"] == {"code": code, "status": "pending"}
    assert await count(engine, "SELECT count(*) FROM referrals") == 1
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT terms, terms_version FROM referrals"))).one()
    assert stored.terms_version == 1 and stored.terms["referrer_coins"] == 500


async def test_another_code_after_a_claim_is_409(client):
    first_referrer, second_referrer = await walker(client), await walker(client)
    invitee, _ = await invite(client, first_referrer)
    response = await client.post(
        "/v1/referrals/claim",
        json={"code": await code_of(client, second_referrer)},
        headers=invitee["headers"],
    )
    assert response.status_code == 409
    assert response.json()["code"] == "referral_already_claimed"


async def test_an_unknown_code_is_404_and_a_malformed_one_too(client):
    me = await walker(client)
    for code in ("ZZZZZZZZ", "not a code", "0O1IL000"):
        response = await client.post(
            "/v1/referrals/claim", json={"code": code}, headers=me["headers"]
        )
        assert response.status_code == 404, code
        assert response.json()["code"] == "referral_code_unknown"


async def test_own_code_is_422_self_referral(client):
    me = await walker(client)
    response = await client.post(
        "/v1/referrals/claim", json={"code": await code_of(client, me)}, headers=me["headers"]
    )
    assert response.status_code == 422
    assert response.json()["code"] == "self_referral"


async def test_an_account_older_than_the_claim_window_is_409(client, engine):
    referrer, invitee = await walker(client), await walker(client)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET created_at = now() - interval '8 days' WHERE id = :id"),
            {"id": invitee["id"]},
        )
    response = await client.post(
        "/v1/referrals/claim",
        json={"code": await code_of(client, referrer)},
        headers=invitee["headers"],
    )
    assert response.status_code == 409
    assert response.json()["code"] == "referral_claim_window_closed"


async def test_a_claimed_referral_answers_200_even_after_the_window(client, engine):
    referrer = await walker(client)
    invitee, referral = await invite(client, referrer)
    await backdate(engine, referral["id"], 20)
    again = await claim(client, invitee, await code_of(client, referrer), status=200)
    assert again["id"] == referral["id"]


async def test_two_concurrent_claims_make_one_referral(app, client, engine):
    referrer, other = await walker(client), await walker(client)
    invitee = await walker(client)
    code, other_code = await code_of(client, referrer), await code_of(client, other)

    async def claim_with(c: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c2:
            return await c2.post(
                "/v1/referrals/claim", json={"code": c}, headers=invitee["headers"]
            )

    same = await asyncio.gather(*(claim_with(code) for _ in range(4)))
    assert sorted(r.status_code for r in same) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in same}) == 1
    mixed = await asyncio.gather(claim_with(code), claim_with(other_code))
    assert sorted(r.status_code for r in mixed) == [200, 409]
    assert await count(engine, "SELECT count(*) FROM referrals") == 1


async def test_the_claim_is_rate_limited(client, engine):
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings SET value = to_jsonb(CAST('2/hour' AS text)) "
                "WHERE key = 'ratelimit.referrals_per_account'"
            )
        )
    from stepcoin.runtime_settings.service import runtime_settings

    runtime_settings.invalidate()
    me = await walker(client)
    answers = [
        (
            await client.post(
                "/v1/referrals/claim", json={"code": "ZZZZZZZZ"}, headers=me["headers"]
            )
        ).status_code
        for _ in range(3)
    ]
    assert answers == [404, 404, 429]


async def test_changed_terms_need_a_higher_version_and_claims_keep_theirs(client, engine):
    from tests.admin.helpers import make_staff

    admin = await make_staff(client, engine)
    referrer = await walker(client)
    _, before = await invite(client, referrer)
    current = (await client.get("/v1/admin/settings", headers=admin["headers"])).json()
    terms = next(i for i in current["items"] if i["key"] == "referrals.terms")["value"]
    same_version = await client.put(
        "/v1/admin/settings/referrals.terms",
        json={"value": {**terms, "referrer_coins": 900}},
        headers=admin["headers"],
    )
    assert same_version.status_code == 422, same_version.text
    assert same_version.json()["code"] == "invalid_setting"
    assert "higher version" in same_version.json()["detail"]
    raised = await client.put(
        "/v1/admin/settings/referrals.terms",
        json={"value": {**terms, "referrer_coins": 900, "version": 2}},
        headers=admin["headers"],
    )
    assert raised.status_code == 200, raised.text
    _, after = await invite(client, referrer)
    async with engine.connect() as conn:
        rows = {
            r.id: (r.terms_version, r.terms["referrer_coins"])
            for r in await conn.execute(text("SELECT id, terms, terms_version FROM referrals"))
        }
    assert rows == {before["id"]: (1, 500), after["id"]: (2, 900)}
