"""steps.hot.HotReview (issue 13): a review's decision without FastAPI's request handling
answers exactly what the route answers, writes what the route writes, and everything but a
decision taken reaches the route with its body intact, having written nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from stepcoin.steps import hot
from tests.conftest import bearer, register
from tests.steps.helpers import ledger_ok, make_admin, wallet
from tests.steps.test_review import flagged_walker, queue


@pytest.fixture
def hot_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For every decision that reached HotReview._answer: answered here or not."""
    calls: list[bool] = []
    real = hot.HotReview._answer

    async def counting(self: Any, *args: Any) -> Any:
        answer = await real(self, *args)
        calls.append(answer is not None)
        return answer

    monkeypatch.setattr(hot.HotReview, "_answer", counting)
    return calls


def _fall_through(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(self: Any, *args: Any) -> None:
        return None

    monkeypatch.setattr(hot.HotReview, "_answer", never)


async def _flagged(client, admin: str) -> tuple[dict[str, Any], int]:
    walker = await flagged_walker(client)
    items = (await queue(client, admin))["items"]
    mine = [i for i in items if i["user"]["id"] == walker["user"]["id"]]
    return walker, mine[0]["id"]


async def _written(engine, validation_id: int) -> dict[str, Any]:
    """What a decision writes, without what two decisions cannot share (ids, clocks)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT v.status, v.note, v.coins_awarded, v.coins_pending, "
                    "v.reviewed_by IS NOT NULL AS reviewed, "
                    "(SELECT count(*) FROM admin_logs a WHERE a.entity_type = 'step_validation' "
                    " AND a.entity_id = CAST(v.id AS text)) AS audits, "
                    "(SELECT count(*) FROM notifications n WHERE n.user_id = v.user_id) AS told, "
                    "(SELECT count(*) FROM coin_transactions t WHERE t.user_id = v.user_id) "
                    " AS ledger "
                    "FROM step_validations v WHERE v.id = :id"
                ),
                {"id": validation_id},
            )
        ).one()
    return dict(row._mapping)


@pytest.mark.parametrize(
    ("verb", "body"),
    [("approve", b"{}"), ("approve", b""), ("reject", b'{"note": "Nein \xe2\x80\x94 danke"}')],
)
async def test_hot_decisions_are_the_routes_decisions(
    client, engine, hot_calls, monkeypatch, verb, body
):
    admin = await make_admin(client, engine)
    fast_walker, fast_id = await _flagged(client, admin)
    routed_walker, routed_id = await _flagged(client, admin)
    headers = {**bearer(admin), "Content-Type": "application/json"}
    fast = await client.post(
        f"/v1/admin/validations/{fast_id}/{verb}", content=body, headers=headers
    )
    assert hot_calls == [True]
    _fall_through(monkeypatch)
    routed = await client.post(
        f"/v1/admin/validations/{routed_id}/{verb}", content=body, headers=headers
    )
    assert fast.status_code == routed.status_code == 200, (fast.text, routed.text)
    answers = [fast.json(), routed.json()]
    for answer, walker, vid in zip(
        answers, (fast_walker, routed_walker), (fast_id, routed_id), strict=True
    ):
        assert answer.pop("id") == vid
        assert answer.pop("user_id") == walker["user"]["id"]
    assert answers[0] == answers[1]
    assert answers[0]["status"] == ("approved" if verb == "approve" else "rejected")
    for name in ("content-type", "content-length"):
        assert fast.headers[name] == routed.headers[name]
    assert len(fast.headers["x-request-id"]) == 32
    assert await _written(engine, fast_id) == await _written(engine, routed_id)
    assert await wallet(client, fast_walker["access_token"]) == await wallet(
        client, routed_walker["access_token"]
    )
    await ledger_ok(engine)


async def test_a_decision_taken_here_is_not_taken_twice(client, engine, hot_calls):
    admin = await make_admin(client, engine)
    walker, vid = await _flagged(client, admin)
    first = await client.post(f"/v1/admin/validations/{vid}/approve", headers=bearer(admin))
    again = await client.post(f"/v1/admin/validations/{vid}/approve", headers=bearer(admin))
    assert first.status_code == 200 and first.json()["coins_awarded"] == 90
    assert again.status_code == 409 and again.json()["code"] == "already_reviewed"
    assert hot_calls == [True, False]
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 90
    await ledger_ok(engine)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"token": None}, 401, "missing_token"),
        ({"token": "not.a.token"}, 401, "invalid_token"),
        ({"token": "walker"}, 403, "forbidden"),
        ({"token": "own"}, 403, "own_record"),
        ({"body": b'{"note": 5}'}, 422, None),
        ({"body": b'{"nope": 1}'}, 422, None),
        ({"body": b'{"note": "' + b"x" * 1001 + b'"}'}, 422, None),
        ({"id": 999_999_999}, 404, "validation_not_found"),
    ],
)
async def test_everything_but_a_decision_is_the_routes_answer(
    client, engine, hot_calls, change, status, code
):
    admin = await make_admin(client, engine)
    walker, vid = await _flagged(client, admin)
    token = change.get("token", admin)
    if token == "walker":
        token = (await register(client))["access_token"]
    elif token == "own":  # an admin reviewing their own record
        token = walker["access_token"]
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE users SET role = 'admin' WHERE id = :u"), {"u": walker["user"]["id"]}
            )
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers.update(bearer(token))
    target = change.get("id", vid)
    before = await _written(engine, vid)
    answer = await client.post(
        f"/v1/admin/validations/{target}/approve",
        content=change.get("body", b"{}"),
        headers=headers,
    )
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["code"] == code
    assert hot_calls == [False]
    assert await _written(engine, vid) == before  # nothing written, here or by the route


async def test_a_deactivated_reviewer_falls_through_and_is_refused(client, engine, hot_calls):
    admin = await make_admin(client, engine, role="support")
    _, vid = await _flagged(client, admin)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE users SET is_active = false WHERE id = "
                "(SELECT id FROM users WHERE role = 'support')"
            )
        )
    answer = await client.post(f"/v1/admin/validations/{vid}/approve", headers=bearer(admin))
    assert answer.status_code == 401
    assert hot_calls == [False]


async def test_other_methods_and_paths_are_not_taken(client, engine, hot_calls):
    admin = await make_admin(client, engine)
    await client.get("/v1/admin/validations/1/approve", headers=bearer(admin))
    await client.post("/v1/admin/validations/1/approve/", headers=bearer(admin))
    await client.post("/v1/admin/validations/01/approve", headers=bearer(admin))
    await client.post("/v1/admin/validations/1/appeal", headers=bearer(admin))
    assert hot_calls == []
