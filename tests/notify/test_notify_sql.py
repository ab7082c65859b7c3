"""stepcoin_notify (notify/sql/notify_one.v1.sql): a notification written from SQL (the review's
decision, steps/sql/review_decide.v2.sql) is the row and the push job that notify_many writes
for the same note, and a second one with the same dedupe key is a no-op."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.notify import service
from tests.notify.conftest import android_token
from tests.notify.helpers import add_device, walker

_ROW = (
    "SELECT to_jsonb(n) - 'id' - 'created_at' - 'dedupe_key' FROM notifications n WHERE n.id = :id"
)
_JOB = (
    "SELECT j.queue_name, j.task_name, j.lock, j.queueing_lock, j.args, j.status "
    "FROM procrastinate_jobs j WHERE CAST(j.args ->> 'notification_id' AS bigint) = :id"
)


async def _written(session: AsyncSession, notification_id: int) -> tuple[Any, list[Any]]:
    row = (await session.execute(text(_ROW), {"id": notification_id})).scalar_one()
    jobs = [tuple(j) for j in await session.execute(text(_JOB), {"id": notification_id})]
    return row, jobs


def _note(user_id: uuid.UUID, key: str) -> service.Note:
    return service.Note(
        user_id,
        "review_outcome",
        "Your steps are approved",
        "Monday 3 March: 90 coins are in your wallet.",
        key,
        {"date": "2026-03-02", "status": "approved", "coins": 90},
        collapse_key="review:2026-03-02",
    )


@pytest.mark.parametrize(("device", "off"), [(True, False), (False, False), (True, True)])
async def test_the_sql_writes_what_notify_many_writes(client, engine, device, off):
    who = await walker(client)
    if device:
        await add_device(client, who, "android", android_token(81))
    if off:
        response = await client.put(
            "/v1/me/notification-preferences",
            json={"types": {"review_outcome": {"push": False}}},
            headers=who["headers"],
        )
        assert response.status_code == 200, response.text
    user_id = uuid.UUID(who["id"])
    async with AsyncSession(engine) as session, session.begin():
        [by_python] = await service.notify_many(session, [_note(user_id, "a")])
        kinds = (
            await session.execute(
                text("SELECT kinds FROM notification_preferences WHERE user_id = :u"),
                {"u": user_id},
            )
        ).scalar_one_or_none()
        row = service.note_row(_note(user_id, "b"), kinds, device)
        sql = text("SELECT stepcoin_notify(CAST(:n AS jsonb))")
        by_sql = (await session.execute(sql, {"n": orjson.dumps(row).decode()})).scalar_one()
        again = (await session.execute(sql, {"n": orjson.dumps(row).decode()})).scalar_one()
        python_row, python_jobs = await _written(session, by_python)
        sql_row, sql_jobs = await _written(session, by_sql)
    assert again is None
    assert sql_row == python_row
    expected = "off" if off else ("pending" if device else "no_device")
    assert sql_row["push_status"] == expected
    # the same job but for the notification it sends
    assert [j[:2] + j[3:4] + (j[5],) for j in sql_jobs] == [
        j[:2] + j[3:4] + (j[5],) for j in python_jobs
    ]
    assert [(j[2], j[4]) for j in sql_jobs] == [
        (service.job_lock(by_sql), {"notification_id": by_sql})
    ] * len(python_jobs)
    assert len(sql_jobs) == (1 if expected == "pending" else 0)
