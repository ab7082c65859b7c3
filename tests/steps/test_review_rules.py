"""The review rules the API and the console share (steps.review): the note is optional for
approve and reject alike, a bulk decision is all or nothing, the walker's own range."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.errors import AppError, InvalidInput
from stepcoin.steps import review
from tests.conftest import bearer
from tests.steps.helpers import ledger_ok, make_admin, wallet
from tests.steps.test_review import flagged_walker, queue


async def admin_id(engine) -> uuid.UUID:
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT id FROM users WHERE role = 'admin' LIMIT 1"))
        ).scalar_one()


def test_a_note_is_optional_and_bounded() -> None:
    assert review.check_note(None) is None
    assert review.check_note("") is None
    assert review.check_note("why") == "why"
    assert review.check_note("x" * review.MAX_NOTE) == "x" * review.MAX_NOTE
    with pytest.raises(InvalidInput):
        review.check_note("x" * (review.MAX_NOTE + 1))


async def test_api_rejects_without_a_note_and_an_empty_note_is_none(client, engine):
    first, second = await flagged_walker(client), await flagged_walker(client)
    admin = await make_admin(client, engine)
    one, two = (await queue(client, admin))["items"]
    bare = await client.post(f"/v1/admin/validations/{one['id']}/reject", headers=bearer(admin))
    assert bare.status_code == 200 and bare.json()["note"] is None
    empty = await client.post(
        f"/v1/admin/validations/{two['id']}/reject", json={"note": ""}, headers=bearer(admin)
    )
    assert empty.status_code == 200 and empty.json()["note"] is None
    for walker in (first, second):
        assert (await wallet(client, walker["access_token"]))["pending_coins"] == 0
    await ledger_ok(engine)


async def test_decide_many_is_all_or_nothing_and_names_the_failing_record(app, client, engine):
    walkers = [await flagged_walker(client) for _ in range(2)]
    admin = await make_admin(client, engine)
    ids = [item["id"] for item in (await queue(client, admin))["items"]]
    reviewer = await admin_id(engine)
    with pytest.raises(AppError) as failure:
        async with session_scope(app.state.database) as session:
            await review.decide_many(
                session,
                validation_ids=[ids[0], 999_999, ids[1]],
                reviewer_id=reviewer,
                decision="approved",
                note=None,
            )
    assert failure.value.detail.startswith("Record 999999:")
    assert [(await wallet(client, w["access_token"]))["pending_coins"] for w in walkers] == [
        90,
        90,
    ]
    async with session_scope(app.state.database) as session:
        decided = await review.decide_many(
            session,
            validation_ids=[ids[1], ids[0], ids[1]],  # a repeated id is decided once
            reviewer_id=reviewer,
            decision="rejected",
            note="",
        )
    assert [d["id"] for d in decided] == [ids[1], ids[0]]
    assert all(d["note"] is None and d["status"] == "rejected" for d in decided)
    await ledger_ok(engine)


async def test_decide_many_refuses_no_ids_and_too_many(app):
    for ids in ([], list(range(1, review.MAX_BULK + 2))):
        with pytest.raises(InvalidInput) as refused:
            async with session_scope(app.state.database) as session:
                await review.decide_many(
                    session,
                    validation_ids=ids,
                    reviewer_id=uuid.uuid4(),
                    decision="approved",
                    note=None,
                )
        assert refused.value.code == "invalid_ids"


async def test_own_steps_range_rule(client, engine):
    walker = await flagged_walker(client)
    token = walker["access_token"]
    reversed_range = await client.get(
        "/v1/steps", params={"from": "2026-02-02", "to": "2026-02-01"}, headers=bearer(token)
    )
    assert reversed_range.status_code == 422 and reversed_range.json()["code"] == "invalid_range"
    too_long = await client.get(
        "/v1/steps", params={"from": "2024-12-31", "to": "2026-01-01"}, headers=bearer(token)
    )
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid_range"
    year = await client.get(  # 366 days, both ends included
        "/v1/steps", params={"from": "2025-01-01", "to": "2026-01-01"}, headers=bearer(token)
    )
    assert year.status_code == 200
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :id"), {"id": walker["user"]["id"]}
        )
    gone = await client.get("/v1/steps", headers=bearer(token))
    assert gone.status_code == 401
