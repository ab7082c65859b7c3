"""Versioned earn rules (issue 15, item 1): a day is paid by the rule in force on that day.

Through HTTP the way the app and the admin tools call it. "The future arrives" in these tests
by moving a rule's effective_from in the database (and dropping this process's cache, as its
TTL would).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from stepcoin.steps.earn_rules import (
    CACHE_TTL_SECONDS,
    LEAD,
    EarnRulesCache,
    earliest_effective_from,
    earn_rules,
)
from tests.conftest import bearer, register
from tests.steps.helpers import day, ledger_ok, make_admin, rec, sync, today, wallet

CUT = {"coins_per_1000_steps": 5, "daily_step_cap": None, "daily_coin_cap": 200}


async def create(client, admin: str, effective_from: date | str, **fields: Any):
    body = {**CUT, **fields, "effective_from": str(effective_from)}
    return await client.post("/v1/admin/earn-rules", json=body, headers=bearer(admin))


async def earliest(client, admin: str) -> date:
    listed = await client.get("/v1/admin/earn-rules", headers=bearer(admin))
    assert listed.status_code == 200, listed.text
    return date.fromisoformat(listed.json()["earliest_effective_from"])


async def arrive(engine, rule_id: int, on: date) -> None:
    """Make the future arrive: the rule starts on `on` (a past or today's day)."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE earn_rules SET effective_from = :d WHERE id = :id"),
            {"d": on, "id": rule_id},
        )
    earn_rules.invalidate()


async def day_row(engine, user_id: str, offset: int) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT credited_steps, coins_paid FROM step_days "
                    "WHERE user_id = :u AND recorded_date = :d"
                ),
                {"u": user_id, "d": date.fromisoformat(day(offset))},
            )
        ).one()
    return row.credited_steps, row.coins_paid


async def test_a_rate_cut_leaves_paid_days_untouched(client, engine):
    """The issue's scenario: cut the rate from 10 to 5, re-sync yesterday with 100 more steps.
    Before: the walker lost 50 coins. Now yesterday keeps its 100 coins and the 100 steps are
    paid at yesterday's rate; a day after the cut is paid at 5."""
    walker = await register(client)
    token, user_id = walker["access_token"], walker["user"]["id"]
    admin = await make_admin(client, engine)
    first = await sync(client, token, rec(1, 10_000))
    assert first[0]["coins_awarded"] == 100

    cut = await create(client, admin, await earliest(client, admin))
    assert cut.status_code == 201, cut.text
    assert cut.json()["status"] == "announced"

    again = await sync(client, token, rec(1, 10_100))
    assert again[0]["coins_awarded"] == 1  # 10,100 steps at 10: 101, of which 100 were paid
    assert await day_row(engine, user_id, 1) == (10_100, 101)

    # the cut's day comes: today is priced at 5, yesterday still at 10
    await arrive(engine, cut.json()["id"], today())
    now = await sync(client, token, rec(0, 10_000))
    assert now[0]["coins_awarded"] == 50
    later = await sync(client, token, rec(1, 10_200))
    assert later[0]["coins_awarded"] == 1  # 102 at 10, never 51 at 5 (a clawback of 50)
    assert await day_row(engine, user_id, 1) == (10_200, 102)
    assert await day_row(engine, user_id, 0) == (10_000, 50)
    assert (await wallet(client, token))["available_coins"] == 152
    await ledger_ok(engine)


async def test_the_step_cap_counts_steps_up_to_it_then_the_coin_cap(client, engine):
    walker = await register(client)
    admin = await make_admin(client, engine)
    rule = await create(
        client,
        admin,
        await earliest(client, admin),
        coins_per_1000_steps=10,
        daily_step_cap=6_000,
        daily_coin_cap=55,
    )
    assert rule.status_code == 201, rule.text
    await arrive(engine, rule.json()["id"], date.fromisoformat(day(2)))
    results = await sync(
        client,
        walker["access_token"],
        rec(3, 9_000),  # the first rule: 90
        rec(2, 9_000),  # 6,000 steps count: 60, capped at 55
        rec(1, 5_000),  # under both caps: 50
    )
    assert [r["coins_awarded"] for r in results] == [90, 55, 50]


async def test_an_approval_pays_the_held_day_by_its_own_rule(client, engine):
    walker = await register(client)
    token = walker["access_token"]
    held = await sync(client, token, rec(2, 9_000, manual=True))
    assert held[0]["status"] == "flagged" and held[0]["coins_pending"] == 90
    admin = await make_admin(client, engine)
    cut = await create(client, admin, await earliest(client, admin))
    await arrive(engine, cut.json()["id"], date.fromisoformat(day(1)))  # after the held day
    queue = await client.get("/v1/admin/validations", headers=bearer(admin))
    validation_id = queue.json()["items"][0]["id"]
    approved = await client.post(
        f"/v1/admin/validations/{validation_id}/approve", headers=bearer(admin)
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["coins_awarded"] == 90  # the day's rule (10), not today's (5)
    assert (await wallet(client, token))["available_coins"] == 90
    await ledger_ok(engine)


async def test_a_back_dated_rule_is_422(client, engine):
    admin = await make_admin(client, engine)
    first_day = await earliest(client, admin)
    assert first_day == earliest_effective_from()
    # the latest day that has begun anywhere (UTC+14) is never a rule's day
    assert first_day > (datetime.now(UTC) + timedelta(hours=14)).date()
    for bad in (first_day - timedelta(days=1), today(), date(2020, 1, 1)):
        response = await create(client, admin, bad)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "earn_rule_backdated"
        assert body["earliest_effective_from"] == first_day.isoformat()
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM earn_rules"))).scalar_one()
    assert count == 1  # only the first rule


async def test_an_overlapping_rule_is_422_and_a_later_one_is_appended(client, engine):
    admin = await make_admin(client, engine)
    start = await earliest(client, admin)
    announced = await create(client, admin, start + timedelta(days=5))
    assert announced.status_code == 201
    for overlapping in (start + timedelta(days=5), start + timedelta(days=2)):
        response = await create(client, admin, overlapping)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "earn_rule_overlaps"
    later = await create(client, admin, start + timedelta(days=6), coins_per_1000_steps=7)
    assert later.status_code == 201
    listed = (await client.get("/v1/admin/earn-rules", headers=bearer(admin))).json()["items"]
    assert [(r["effective_from"], r["effective_until"], r["status"]) for r in listed] == [
        (str(start + timedelta(days=6)), None, "announced"),
        (str(start + timedelta(days=5)), str(start + timedelta(days=5)), "announced"),
        ("1970-01-01", str(start + timedelta(days=4)), "in_force"),
    ]


async def test_input_and_roles_are_checked(client, engine):
    walker = await register(client)
    support = await make_admin(client, engine, role="support")
    admin = await make_admin(client, engine)
    start = await earliest(client, admin)
    anonymous = await client.post("/v1/admin/earn-rules", json={**CUT, "effective_from": "x"})
    assert anonymous.status_code == 401
    assert (await create(client, walker["access_token"], start)).status_code == 403
    assert (await create(client, support, start)).status_code == 403
    assert (await client.get("/v1/admin/earn-rules", headers=bearer(support))).status_code == 200
    for bad in (
        {"coins_per_1000_steps": -1},
        {"coins_per_1000_steps": 10_001},
        {"daily_step_cap": -5},
        {"daily_coin_cap": 10_000_001},
        {"daily_coin_cap": "200"},
        {"coins_per_1000_steps": 10.0},
        {"daily_step_cap": True},
        {"daily_coin_cap": None},
    ):
        response = await create(client, admin, start, **bad)
        assert response.status_code == 422, bad
        assert response.json()["code"] == "validation_error"
    extra = await client.post(
        "/v1/admin/earn-rules",
        json={**CUT, "effective_from": str(start), "note": "x"},
        headers=bearer(admin),
    )
    assert extra.status_code == 422


async def test_walkers_see_the_rule_in_force_and_the_next_one(client, engine):
    walker = await register(client)
    token = walker["access_token"]
    before = await client.get("/v1/economy/earn-rules", headers=bearer(token))
    assert before.status_code == 200
    assert before.json() == {
        "today": today().isoformat(),  # a new walker's time zone is UTC
        "in_force": {
            "effective_from": "1970-01-01",
            "effective_until": None,
            "coins_per_1000_steps": 10,
            "daily_step_cap": None,
            "daily_coin_cap": 200,
        },
        "next": None,
    }
    admin = await make_admin(client, engine)
    start = await earliest(client, admin)
    await create(client, admin, start, daily_step_cap=15_000, daily_coin_cap=75)
    after = (await client.get("/v1/economy/earn-rules", headers=bearer(token))).json()
    assert after["in_force"]["effective_until"] == str(start - timedelta(days=1))
    assert after["next"] == {
        "effective_from": str(start),
        "effective_until": None,
        "coins_per_1000_steps": 5,
        "daily_step_cap": 15_000,
        "daily_coin_cap": 75,
    }
    assert (await client.get("/v1/economy/earn-rules")).status_code == 401


async def test_the_walkers_today_decides_which_rule_is_in_force(client, engine):
    """A walker on the Line Islands (UTC+14) lives tomorrow's UTC day for ten hours a day."""
    walker = await register(client)
    token = walker["access_token"]
    patched = await client.patch(
        "/v1/me", json={"timezone": "Pacific/Kiritimati"}, headers=bearer(token)
    )
    assert patched.status_code == 200, patched.text
    admin = await make_admin(client, engine)
    cut = await create(client, admin, await earliest(client, admin))
    kiritimati = (datetime.now(UTC) + timedelta(hours=14)).date()
    await arrive(engine, cut.json()["id"], kiritimati)
    seen = (await client.get("/v1/economy/earn-rules", headers=bearer(token))).json()
    assert seen["today"] == str(kiritimati)
    assert seen["in_force"]["coins_per_1000_steps"] == 5 and seen["next"] is None
    utc_walker = await register(client)
    in_utc = (
        await client.get("/v1/economy/earn-rules", headers=bearer(utc_walker["access_token"]))
    ).json()
    if kiritimati > today():  # from 10:00 UTC on, Kiritimati lives tomorrow's UTC day
        assert in_utc["in_force"]["coins_per_1000_steps"] == 10
        assert in_utc["next"]["effective_from"] == str(kiritimati)
    else:
        assert in_utc["in_force"]["coins_per_1000_steps"] == 5


async def test_withdrawing_an_announced_rule_and_the_audit_trail(client, engine):
    admin = await make_admin(client, engine)
    start = await earliest(client, admin)
    created = await create(client, admin, start + timedelta(days=3))
    rule_id = created.json()["id"]
    withdrawn = await client.post(f"/v1/admin/earn-rules/{rule_id}/withdraw", headers=bearer(admin))
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn" and withdrawn.json()["withdrawn_at"]
    again = await client.post(f"/v1/admin/earn-rules/{rule_id}/withdraw", headers=bearer(admin))
    assert again.status_code == 409 and again.json()["code"] == "earn_rule_withdrawn"
    listed = (await client.get("/v1/admin/earn-rules", headers=bearer(admin))).json()["items"]
    in_force = next(r for r in listed if r["status"] == "in_force")
    refused = await client.post(
        f"/v1/admin/earn-rules/{in_force['id']}/withdraw", headers=bearer(admin)
    )
    assert refused.status_code == 409 and refused.json()["code"] == "earn_rule_in_force"
    missing = await client.post("/v1/admin/earn-rules/999999/withdraw", headers=bearer(admin))
    assert missing.status_code == 404 and missing.json()["code"] == "earn_rule_not_found"
    # the day is free again: a rule before the withdrawn one's day is no overlap
    replacement = await create(client, admin, start + timedelta(days=1))
    assert replacement.status_code == 201, replacement.text
    async with engine.connect() as conn:
        logs = (
            await conn.execute(
                text(
                    "SELECT admin_id, action, entity_id, changes FROM admin_logs "
                    "WHERE entity_type = 'earn_rule' ORDER BY id"
                )
            )
        ).all()
    admin_id = (await client.get("/v1/me", headers=bearer(admin))).json()["id"]
    assert [(str(r.admin_id), r.action, r.entity_id) for r in logs] == [
        (admin_id, "earn_rule.create", str(rule_id)),
        (admin_id, "earn_rule.withdraw", str(rule_id)),
        (admin_id, "earn_rule.create", str(replacement.json()["id"])),
    ]
    assert logs[0].changes["after"] == {
        "effective_from": str(start + timedelta(days=3)),
        "coins_per_1000_steps": 5,
        "daily_step_cap": None,
        "daily_coin_cap": 200,
    }


async def _walker_with_days(engine, days: dict[int, int]) -> uuid.UUID:
    """A walker whose step_days hold these credited steps (offset in days -> steps)."""
    user_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO users (id, email, full_name) VALUES (:id, :e, 'W')"),
            {"id": user_id, "e": f"{user_id.hex[:12]}@example.com"},
        )
        for offset, steps in days.items():
            await conn.execute(
                text(
                    "INSERT INTO step_days (user_id, recorded_date, credited_source, "
                    "credited_steps) VALUES (:u, :d, 'healthkit', :s)"
                ),
                {"u": user_id, "d": date.fromisoformat(day(offset)), "s": steps},
            )
    return user_id


async def test_the_preview_against_a_hand_computation(client, engine):
    admin = await make_admin(client, engine)
    start = await earliest(client, admin)
    # the rules in force: the first (10 per 1,000, no step cap, 200) until 3 days ago, then
    # 5 per 1,000 with 8,000 steps at most; a withdrawn rule is no rule
    second = await create(client, admin, start, daily_step_cap=8_000)
    await arrive(engine, second.json()["id"], date.fromisoformat(day(2)))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO earn_rules (effective_from, coins_per_1000_steps, daily_coin_cap, "
                "withdrawn_at) VALUES (:d, 1000, 100000, now())"
            ),
            {"d": date.fromisoformat(day(4))},
        )
    await _walker_with_days(engine, {1: 10_000, 3: 25_000, 5: 4_000})  # a
    await _walker_with_days(engine, {1: 3_000})  # b
    await _walker_with_days(engine, {0: 9_000, 30: 9_000, 31: 9_000})  # c: today and 31 out
    await _walker_with_days(engine, {2: 100})  # d: nothing either way
    await _walker_with_days(engine, {6: 0})  # no credited steps: not a walker of the day

    proposed = {"coins_per_1000_steps": 8, "daily_step_cap": 12_000, "daily_coin_cap": 90}
    response = await client.post(
        "/v1/admin/earn-rules/preview", json=proposed, headers=bearer(admin)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rule"] == proposed
    assert (body["from"], body["to"]) == (day(30), day(1))
    assert [d["date"] for d in body["days"]] == [day(k) for k in range(30, 0, -1)]
    # by hand, (walkers, paid now, proposed, affected):
    #   day 1: a 10,000 -> now min(8,000)*5 = 40, proposed 80; b 3,000 -> 15, 24
    #   day 2: d 100 -> 0 (5 per 1,000), 0 (8 per 1,000): unaffected
    #   day 3: a 25,000 -> first rule 250 capped 200; proposed 12,000*8 = 96 capped 90
    #   day 5: a 4,000 -> 40, 32;  day 30: c 9,000 -> 90, 72
    expected = {
        1: (2, 55, 104, 2),
        2: (1, 0, 0, 0),
        3: (1, 200, 90, 1),
        5: (1, 40, 32, 1),
        30: (1, 90, 72, 1),
    }
    by_day = {d["date"]: d for d in body["days"]}
    for offset in range(1, 31):
        walkers, paid, new, affected = expected.get(offset, (0, 0, 0, 0))
        assert by_day[day(offset)] == {
            "date": day(offset),
            "walkers": walkers,
            "coins_paid": paid,
            "coins_proposed": new,
            "difference": new - paid,
            "walkers_affected": affected,
        }, offset
    assert body["total"] == {
        "walkers": 4,
        "coins_paid": 385,
        "coins_proposed": 298,
        "difference": -87,
        "walkers_affected": 3,
    }
    support = await make_admin(client, engine, role="support")
    assert (
        await client.post("/v1/admin/earn-rules/preview", json=proposed, headers=bearer(support))
    ).status_code == 200
    bad = await client.post(
        "/v1/admin/earn-rules/preview",
        json={**proposed, "coins_per_1000_steps": -1},
        headers=bearer(admin),
    )
    assert bad.status_code == 422


async def test_another_process_sees_a_new_rule_within_the_ttl(client, engine, monkeypatch):
    """The cache of another process (a second cache here) is not told of a new rule: it reads
    it once its TTL has passed; the rule's day is at least an hour away, far beyond it."""
    other = EarnRulesCache()  # the default TTL
    admin = await make_admin(client, engine)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert len((await other.all_raw(driver)).rules) == 1
        created = await create(client, admin, await earliest(client, admin))
        assert created.status_code == 201
        assert len((await other.all_raw(driver)).rules) == 1  # still cached
        later = time.monotonic() + CACHE_TTL_SECONDS + 0.1
        monkeypatch.setattr("stepcoin.steps.earn_rules.time.monotonic", lambda: later)
        rules = (await other.all_raw(driver)).rules
    assert [r.coins_per_1000_steps for r in rules] == [10, 5]
    assert LEAD.total_seconds() >= CACHE_TTL_SECONDS * 10  # many lifetimes within the lead


async def test_on_a_change_day_both_rules_are_in_force_somewhere(client, engine):
    """UTC-12 and UTC+14 are 26 hours apart: the old rule is past only once its last day has
    ended everywhere."""
    admin = await make_admin(client, engine)
    cut = await create(client, admin, await earliest(client, admin))
    now = datetime.now(UTC)
    for starts, old_status in [
        ((now - timedelta(hours=12)).date(), "past"),  # every walker lives the new rule's days
        ((now + timedelta(hours=14)).date(), "in_force"),  # the new day has begun somewhere
    ]:
        await arrive(engine, cut.json()["id"], starts)
        listed = (await client.get("/v1/admin/earn-rules", headers=bearer(admin))).json()
        assert [r["status"] for r in listed["items"]] == ["in_force", old_status], starts
