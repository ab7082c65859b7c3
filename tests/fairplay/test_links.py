"""Links between accounts end to end, through the API as the app uses it: one phone on two
accounts, a sign-up burst from one address, the same step series, what staff see and clear,
and the walker's standing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.fairplay import links
from tests.conftest import bearer, register
from tests.fixtures.plans import plan_of
from tests.steps.helpers import ledger_ok, make_admin, rec, sync, wallet


async def queue_of(client: Any, admin: str, user_id: str) -> list[dict[str, Any]]:
    page = await client.get("/v1/admin/validations?status=flagged", headers=bearer(admin))
    assert page.status_code == 200
    return [item for item in page.json()["items"] if item["user"]["id"] == user_id]


async def test_one_phone_on_two_accounts_pays_the_second_nothing_without_review(client, engine):
    admin = await make_admin(client, engine)
    first, second = await register(client), await register(client)
    paid = await sync(client, first["access_token"], rec(1, 7000, device_id="phone-A"))
    assert paid[0]["status"] == "approved" and paid[0]["coins_awarded"] == 70

    again = await sync(client, second["access_token"], rec(1, 7000, device_id="phone-A"))
    assert again[0]["status"] == "flagged" and again[0]["coins_awarded"] == 0
    assert again[0]["reasons"] == ["shared_device"]
    assert (await wallet(client, second["access_token"]))["available_coins"] == 0
    # the first account's next day is flagged too: the phone is on both now
    later = await sync(client, first["access_token"], rec(0, 6000, device_id="phone-A"))
    assert later[0]["status"] == "flagged" and "shared_device" in later[0]["reasons"]
    # and a day sent without the device id: the account used the phone within the window
    bare = await sync(client, second["access_token"], rec(0, 6000))
    assert bare[0]["status"] == "flagged" and "shared_device" in bare[0]["reasons"]

    items = await queue_of(client, admin, second["user"]["id"])
    hit = next(h for h in items[0]["rule_hits"] if h["code"] == "shared_device")
    assert (hit["observed"], hit["threshold"]) == (2, 1)
    linked = items[0]["linked_accounts"]
    assert [link["user_id"] for link in linked] == [first["user"]["id"]]
    assert linked[0]["via"] == ["shared_device"] and linked[0]["devices"] == ["phone-A"]
    await ledger_ok(engine)


async def test_a_device_is_written_once_per_walker_and_day(client, engine):
    walker = await register(client)
    for steps in (3000, 4000, 5000):
        await sync(client, walker["access_token"], rec(0, steps, device_id="phone-B"))
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT device_id, first_seen, last_seen, xmin::text::bigint AS x "
                    "FROM device_accounts WHERE user_id = :u"
                ),
                {"u": walker["user"]["id"]},
            )
        ).all()
    assert [r.device_id for r in rows] == ["phone-B"]
    assert rows[0].first_seen == rows[0].last_seen


async def test_a_reviewer_clears_a_shared_family_tablet_until_a_third_account_comes(client, engine):
    admin = await make_admin(client, engine)
    mum, kid, stranger = await register(client), await register(client), await register(client)
    await sync(client, mum["access_token"], rec(2, 6000, device_id="tablet"))
    flagged = await sync(client, kid["access_token"], rec(2, 5000, device_id="tablet"))
    assert flagged[0]["status"] == "flagged"

    for walker in (mum, kid):
        cleared = await client.post(
            f"/v1/admin/users/{walker['user']['id']}/links/clear",
            json={"note": "one family's tablet"},
            headers=bearer(admin),
        )
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["clearances"]["shared_device"]["observed"] == 2
    fine = await sync(client, kid["access_token"], rec(1, 5000, device_id="tablet"))
    assert fine[0]["status"] == "approved" and fine[0]["coins_awarded"] == 50

    third = await sync(client, stranger["access_token"], rec(1, 5000, device_id="tablet"))
    assert third[0]["status"] == "flagged"
    back = await sync(client, kid["access_token"], rec(0, 5000, device_id="tablet"))
    assert back[0]["status"] == "flagged" and back[0]["reasons"] == ["shared_device"]

    audit = await client.get(
        "/v1/admin/audit-logs?action=fairplay.links_cleared", headers=bearer(admin)
    )
    assert audit.status_code == 200
    assert {row["entity_id"] for row in audit.json()["items"]} >= {
        mum["user"]["id"],
        kid["user"]["id"],
    }


async def test_staff_do_not_clear_their_own_links(client, engine):
    admin = await make_admin(client, engine)
    me = (await client.get("/v1/me", headers=bearer(admin))).json()
    refused = await client.post(
        f"/v1/admin/users/{me['id']}/links/clear", json={}, headers=bearer(admin)
    )
    assert refused.status_code == 403 and refused.json()["code"] == "own_account"
    walker = await register(client)
    denied = await client.post(
        f"/v1/admin/users/{me['id']}/links/clear", json={}, headers=bearer(walker["access_token"])
    )
    assert denied.status_code == 403


async def test_a_signup_burst_from_one_address_flags_every_account_of_it(client, engine):
    burst = [await register(client, address="198.51.100.20") for _ in range(6)]
    for walker in burst:
        answer = await sync(client, walker["access_token"], rec(1, 6000))
        assert answer[0]["status"] == "flagged", answer
        assert answer[0]["reasons"] == ["signup_burst"]
    await ledger_ok(engine)


async def test_a_family_of_two_phones_at_one_address_is_not_flagged(client, engine):
    home = "198.51.100.77"
    parent = await register(client, address=home)
    child = await register(client, address=home)
    for who, phone in ((parent, "parent-phone"), (child, "child-phone")):
        for offset, steps in ((2, 6500), (1, 8200), (0, 4000)):
            answer = await sync(client, who["access_token"], rec(offset, steps, device_id=phone))
            assert answer[0]["status"] == "approved", answer
    standing = await client.get("/v1/me/standing", headers=bearer(child["access_token"]))
    assert standing.json()["standing"] == "building" and standing.json()["checks"] == []


async def test_a_signup_from_the_servers_own_address_links_nothing(client, engine):
    local = [await register(client, address="127.0.0.1") for _ in range(7)]
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT signup_address FROM users WHERE id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": [w["user"]["id"] for w in local]},
            )
        ).scalars()
        assert set(stored) == {None}
        kept = (
            await conn.execute(
                text("SELECT signup_address FROM users WHERE id = :id"),
                {"id": (await register(client, address="198.51.100.9"))["user"]["id"]},
            )
        ).scalar_one()
    assert kept is not None and "198.51" not in kept and len(kept) == 32
    answer = await sync(client, local[-1]["access_token"], rec(1, 6000))
    assert answer[0]["status"] == "approved"


async def test_the_same_series_on_three_accounts_is_found_and_flagged(client, app, engine):
    admin = await make_admin(client, engine)
    copies = [await register(client) for _ in range(3)]
    honest = await register(client)
    series = [(5, 6100), (4, 7200), (3, 6900), (2, 8100), (1, 7700)]
    for walker in copies:
        await sync(client, walker["access_token"], *(rec(o, s) for o, s in series))
    await sync(client, honest["access_token"], *(rec(o, s + 13) for o, s in series))

    async with session_scope(app.state.database) as session:
        found = await links.scan_series(session)
    assert found == {"groups": 1, "new_flags": 3, "flags": 3}
    async with session_scope(app.state.database) as session:
        assert (await links.scan_series(session))["new_flags"] == 0  # kept, not raised twice

    for walker in copies:
        answer = await sync(client, walker["access_token"], rec(0, 5000))
        assert answer[0]["status"] == "flagged" and answer[0]["reasons"] == ["same_series"]
    clean = await sync(client, honest["access_token"], rec(0, 5000))
    assert clean[0]["status"] == "approved"

    view = await client.get(
        f"/v1/admin/users/{copies[0]['user']['id']}/fair-play", headers=bearer(admin)
    )
    assert view.status_code == 200
    body = view.json()
    assert body["link_counts"]["same_series"] == 3
    assert {link["user_id"] for link in body["linked_accounts"]} == {
        w["user"]["id"] for w in copies[1:]
    }
    assert body["inputs"]["linked_accounts"] == 2 and body["trust_score"] < 50


async def test_standing_is_words_and_a_farm_account_is_limited(client, engine):
    farm = [await register(client) for _ in range(5)]
    for walker in farm:
        await sync(client, walker["access_token"], rec(1, 6000, device_id="farm-phone"))
    told = await client.get("/v1/me/standing", headers=bearer(farm[-1]["access_token"]))
    assert told.status_code == 200
    body = told.json()
    assert set(body) == {"standing", "title", "message", "checks"}
    assert body["standing"] == "limited"
    assert any("Orders are checked" in c for c in body["checks"])
    assert "score" not in told.text
    unknown = await client.get("/v1/me/standing")
    assert unknown.status_code == 401


async def test_a_phone_link_ends_when_the_other_account_stops_using_it(client, app, engine):
    old, new = await register(client), await register(client)
    await sync(client, old["access_token"], rec(3, 6000, device_id="handed-down"))
    flagged = await sync(client, new["access_token"], rec(1, 6000, device_id="handed-down"))
    assert flagged[0]["reasons"] == ["shared_device"]
    async with engine.begin() as conn:  # the old owner last used it 40 days ago
        await conn.execute(
            text(
                "UPDATE device_accounts SET first_seen = current_date - 60, "
                "last_seen = current_date - 40 WHERE user_id = :u"
            ),
            {"u": old["user"]["id"]},
        )
    async with session_scope(app.state.database) as session:
        assert await links.refresh_marks(session) == {"changed": 0, "removed": 2}
    fine = await sync(client, new["access_token"], rec(0, 6000, device_id="handed-down"))
    assert fine[0]["status"] == "approved"


async def test_an_unknown_walker_is_a_404_and_nothing_is_written(client, engine):
    import uuid

    admin = await make_admin(client, engine)
    nobody = uuid.uuid4()
    for method, path in (
        ("POST", f"/v1/admin/users/{nobody}/links/clear"),
        ("GET", f"/v1/admin/users/{nobody}/fair-play"),
    ):
        answer = await client.request(method, path, headers=bearer(admin))
        assert answer.status_code == 404 and answer.json()["code"] == "user_not_found"
    async with engine.connect() as conn:
        written = (await conn.execute(text("SELECT count(*) FROM link_clearances"))).scalar_one()
    assert written == 0


# the walker's busiest device as a join (the form until 2026-12-07), the reference
_BUSIEST_AS_A_JOIN = """
    SELECT w.id, coalesce((SELECT max(c.n) FROM (
        SELECT count(*) AS n FROM device_accounts m
        JOIN device_accounts o ON o.device_id = m.device_id
        WHERE m.user_id = w.id AND o.last_seen >= :since GROUP BY m.device_id) c), 0)
    FROM unnest(CAST(:ids AS uuid[])) AS w(id)"""


async def test_the_busiest_device_is_counted_by_a_probe_per_device(app, engine):
    """links.observed_many counts, per device of each walker, the accounts seen on it within the
    window, as the join it was; and by a probe of each device's key, never a scan of
    device_accounts (with statistics taken while it was small the join hashed the whole table
    once per walker)."""
    async with engine.begin() as conn:
        ids = [
            row[0]
            for row in await conn.execute(
                text(
                    "INSERT INTO users (email, full_name) SELECT 'busiest-' || n || '-' || "
                    "gen_random_uuid() || '@example.com', 'W' FROM generate_series(1, 6) n "
                    "RETURNING id"
                )
            )
        ]
        # phone-1: walkers 0-3 (3 last seen before the 30-day window); phone-2: 0 and 4; phone-3:
        # 4 alone; walker 5 on no device
        seen = [("phone-1", 0, 1), ("phone-1", 1, 2), ("phone-1", 2, 3), ("phone-1", 3, 60)]
        seen += [("phone-2", 0, 1), ("phone-2", 4, 0), ("phone-3", 4, 5)]
        for device, walker, days_ago in seen:
            await conn.execute(
                text(
                    "INSERT INTO device_accounts (device_id, user_id, first_seen, last_seen) "
                    "VALUES (:d, :u, :day, :day)"
                ),
                {
                    "d": f"{device}-{ids[0]}",
                    "u": ids[walker],
                    "day": links.utc_today() - timedelta(days=days_ago),
                },
            )
    async with session_scope(app.state.database) as session:
        counts = await links.observed_many(session, ids)
    since = links.utc_today() - timedelta(days=30)  # the window's default
    async with engine.connect() as conn:
        reference = dict(
            (await conn.execute(text(_BUSIEST_AS_A_JOIN), {"ids": ids, "since": since})).all()
        )
    assert [counts[i]["shared_device"] for i in ids] == [3, 3, 3, 3, 2, 0]
    assert {i: counts[i]["shared_device"] for i in ids} == reference
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(text("DELETE FROM device_accounts"))
        await conn.execute(text("ANALYZE device_accounts"))  # analyzed empty, then 3,000 rows
        await conn.execute(
            text(
                "INSERT INTO device_accounts (device_id, user_id, first_seen, last_seen) "
                "SELECT 'many-' || n, CAST(:u AS uuid), current_date, current_date "
                "FROM generate_series(1, 3000) n"
            ),
            {"u": ids[5]},
        )
        params = {"ids": ids, "since": since, "burst": timedelta(hours=24)}
        plan = await plan_of(conn, str(links.OBSERVED_MANY_SQL), params)
        await transaction.rollback()
    lines = plan.splitlines()
    scans = [k for k, line in enumerate(lines) if " on device_accounts " in line]
    assert len(scans) == 2, plan  # the walker's devices, then each device's accounts
    assert all("Index Cond" in lines[k + 1] for k in scans), plan  # each by its key
