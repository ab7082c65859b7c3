"""Fixtures of the achievement tests."""

from __future__ import annotations

import pytest
from sqlalchemy import text


@pytest.fixture
async def no_queued_achievement_jobs(engine):
    """The job table outlives each test (it is not truncated): start without our old jobs."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "DELETE FROM procrastinate_jobs WHERE task_name LIKE 'achievements:%' "
                "AND status <> 'doing'"
            )
        )
