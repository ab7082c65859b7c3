"""procrastinate's fetch at depth (issue 13): the lock check is a lookup, the order is kept.

The fetch skips a waiting job whose lock has an earlier or running job: a NOT EXISTS matched on
`lock` per candidate. Without an index led by `lock` each check read the whole (id, lock) index,
and with statistics taken while the queue was nearly empty the generic plan checks every waiting
job before sorting: quadratic in the backlog. Migration 0017 adds the index; these tests check
the plan's property (pages read per check), not timings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from stepcoin.queue import JOBS_STATISTICS_STALE
from stepcoin.queue_tasks import refresh_statistics, retry_stalled_jobs
from stepcoin.worker import open_jobs

JOBS_LOCK_INDEX = "stepcoin_procrastinate_jobs_lock_idx"
DEPTH = 3000


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection whose jobs vanish: everything runs in one transaction, rolled back."""
    with psycopg.connect(database_url) as connection:
        connection.execute("DELETE FROM procrastinate_jobs")  # in the transaction too
        yield connection
        connection.rollback()


def _candidate_query(conn: psycopg.Connection[Any]) -> str:
    """The candidate SELECT of the installed procrastinate_fetch_job_v2, as it runs."""
    source = conn.execute(
        "SELECT prosrc FROM pg_proc WHERE proname = 'procrastinate_fetch_job_v2'"
    ).fetchone()
    assert source is not None
    found = re.search(r"WITH candidate AS \((.*?)\)\s*UPDATE", source[0], re.S)
    assert found, "procrastinate's fetch changed: look at this test again"
    return found.group(1).replace("target_queue_names", "$1")


def _fill_like_orders(conn: psycopg.Connection[Any], depth: int) -> None:
    """A backlog like the order scenario left: Shopify jobs with a lock each, evaluations with
    a queueing lock each, every one due now; statistics from when the queue was empty."""
    with psycopg.connect(conn.info.dsn, autocommit=True) as other:
        other.execute("ANALYZE procrastinate_jobs")
    conn.execute(
        "SELECT stepcoin_defer_job('shop', 'shop:submit_order', 'order:' || g, NULL, "
        "jsonb_build_object('order_id', g::text)) FROM generate_series(1, %s) g",
        (depth // 2,),
    )
    conn.execute(
        "SELECT stepcoin_defer_job('default', 'achievements:evaluate_user', NULL, "
        "'achievements:' || g, jsonb_build_object('user_id', g::text)) "
        "FROM generate_series(1, %s) g",
        (depth - depth // 2,),
    )


def _lock_checks(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """The plan nodes of the lock check (alias other_jobs) of the fetch's generic plan, run."""
    conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    conn.execute("DEALLOCATE ALL")
    conn.execute(f"PREPARE stepcoin_fetch(varchar[]) AS {_candidate_query(conn)}")
    row = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE stepcoin_fetch(NULL)"
    ).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Alias") == "other_jobs":
            found.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    conn.execute("DEALLOCATE stepcoin_fetch")
    return found


def _pages_per_check(node: dict[str, Any]) -> float:
    loops = max(node["Actual Loops"], 1)
    return (node["Shared Hit Blocks"] + node["Shared Read Blocks"]) / loops


def test_the_lock_check_is_a_lookup_at_depth(conn):
    """With the statistics queue:refresh_statistics keeps, the fetch takes the first waiting job
    in priority order and checks its lock with one lookup of a few pages (index root, leaf,
    the heap row), not with a read of the backlog; the control drops the index inside the
    transaction and runs the same fetch again."""
    _fill_like_orders(conn, DEPTH)
    conn.execute("ANALYZE procrastinate_jobs")  # what refresh_statistics runs when stale
    checks = _lock_checks(conn)
    assert checks, "the fetch has no lock check: look at this test again"
    for node in checks:
        assert node["Index Name"] == JOBS_LOCK_INDEX, node
        assert "lock" in node["Index Cond"], node
        assert node["Actual Loops"] <= 2, node  # not one check per waiting job
    with_index = max(_pages_per_check(node) for node in checks)
    assert with_index <= 16, checks

    conn.execute(f"DROP INDEX {JOBS_LOCK_INDEX}")  # rolled back with the transaction
    without = max(_pages_per_check(node) for node in _lock_checks(conn))
    assert without > 4 * with_index, (without, with_index)


async def test_a_backlog_makes_the_statistics_stale_and_the_task_refreshes_them(app, database_url):
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("ANALYZE procrastinate_jobs")
        admin.execute(
            "SELECT stepcoin_defer_job('shop', 'shop:submit_order', 'order:' || g, NULL, "
            "jsonb_build_object('order_id', g::text)) FROM generate_series(1, 2000) g"
        )

        def stale() -> bool:
            admin.execute("SELECT pg_stat_force_next_flush()")  # flushed when it ends
            row = admin.execute(JOBS_STATISTICS_STALE).fetchone()
            assert row is not None
            return bool(row[0])

        assert stale()
        async with open_jobs(app.state.database) as jobs:
            context = SimpleNamespace(app=jobs)
            assert await refresh_statistics(context, timestamp=0) is True  # type: ignore[arg-type]
            assert not stale()
            assert await refresh_statistics(context, timestamp=0) is False  # type: ignore[arg-type]


def _fetch_all(conn: psycopg.Connection[Any]) -> list[str]:
    worker = conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
    worker_id = worker.fetchone()[0]  # type: ignore[index]
    fetched: list[str] = []
    while True:
        job = conn.execute(
            "SELECT id, args->>'name' FROM procrastinate_fetch_job_v2(NULL, %s)", (worker_id,)
        ).fetchone()
        if job is None or job[0] is None:
            return fetched
        fetched.append(job[1])
        conn.execute("SELECT procrastinate_finish_job_v1(%s, 'succeeded', false)", (job[0],))


def test_jobs_are_still_fetched_by_priority_then_age_and_one_per_lock(conn):
    jobs = [  # (name, priority, lock)
        ("low-1", 0, "order:a"),
        ("high", 10, None),
        ("low-2", 0, None),
        ("mid", 5, "order:b"),
        ("low-3", 0, "order:a"),  # behind low-1 (same lock)
        ("high-2", 10, "order:c"),
    ]
    for name, priority, lock in jobs:
        conn.execute(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('default', 't', %s, %s, NULL, "
            "jsonb_build_object('name', %s::text), NULL)::procrastinate_job_to_defer_v1])",
            (priority, lock, name),
        )
    worker = conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
    worker_id = worker.fetchone()[0]  # type: ignore[index]
    # while low-1 runs, low-3 (same lock) waits even when it comes up
    first = [
        conn.execute(
            "SELECT id, args->>'name' FROM procrastinate_fetch_job_v2(NULL, %s)", (worker_id,)
        ).fetchone()
        for _ in range(5)
    ]
    assert [j[1] for j in first] == ["high", "high-2", "mid", "low-1", "low-2"]
    none_left = conn.execute(
        "SELECT id FROM procrastinate_fetch_job_v2(NULL, %s)", (worker_id,)
    ).fetchone()
    assert none_left is not None and none_left[0] is None  # low-3 waits for low-1
    for job in first:
        conn.execute("SELECT procrastinate_finish_job_v1(%s, 'succeeded', false)", (job[0],))
    assert _fetch_all(conn) == ["low-3"]


async def test_a_stalled_job_whose_queueing_lock_waits_again_is_ended_not_an_error(
    app, database_url
):
    """A worker killed during the Shopify sweep leaves its job 'doing'; meanwhile the next sweep
    waits under the same queueing lock. Putting the stalled one back would break that lock's
    uniqueness: it ends instead, and the other stalled jobs are still retried."""
    with psycopg.connect(database_url, autocommit=True) as admin:
        dead = admin.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) "
            "VALUES (now() - interval '1 hour') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        ids = []
        for task, queueing_lock in (
            ("shop:submit_pending", "shop:submit_pending"),
            ("shop:submit_order", None),
        ):
            ids.append(
                admin.execute(
                    "SELECT stepcoin_defer_job('shop', %s, NULL, %s, '{}'::jsonb)",
                    (task, queueing_lock),
                ).fetchone()[0]  # type: ignore[index]
            )
        admin.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = ANY(%s)",
            (dead, ids),
        )
        waiting = admin.execute(
            "SELECT stepcoin_defer_job('shop', 'shop:submit_pending', NULL, "
            "'shop:submit_pending', '{}'::jsonb)"
        ).fetchone()[0]  # type: ignore[index]
        async with open_jobs(app.state.database) as jobs:
            context = SimpleNamespace(app=jobs, job=SimpleNamespace(id=-1))
            assert await retry_stalled_jobs(context, timestamp=0) == 1  # type: ignore[arg-type]
        statuses = dict(
            admin.execute(
                "SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(%s)",
                ([*ids, waiting],),
            ).fetchall()
        )
        assert statuses == {ids[0]: "failed", ids[1]: "todo", waiting: "todo"}
        admin.execute("DELETE FROM procrastinate_jobs")
