"""step_records' monthly partitions cover every day a sync may write (issue 13).

A sync window longer than a month wrote its older days into step_records_default (v1 of the
partition function created months from today on): never archived by month, and read by a
sequential scan wherever the sync's snapshot had planned it empty. Now the hourly job creates
the months from today minus the window, and moves what the default partition holds for such a
month into it.
"""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import psycopg
import pytest

from stepcoin.worker import open_jobs
from tests.conftest import bearer, register
from tests.social.helpers import set_setting
from tests.steps.helpers import rec, sync, today

COLUMNS = (
    "id, user_id, recorded_date, source, steps, approved_steps, device_ids, client_record_id, "
    "client_record_version, is_manual, is_deleted, intervals, status, reasons, synced_at, "
    "validation_id"
)


def _name(day: date) -> str:
    return f"step_records_p{day:%Y%m}"


def _drop_empty_month(conn: psycopg.Connection, day: date) -> None:
    """Take the month's partition away (it must hold nothing: no test writes that far back)."""
    name = _name(day)
    if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None:
        return
    held = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    assert held == 0, f"{name} holds rows of another test"
    conn.execute(f'ALTER TABLE step_records DETACH PARTITION "{name}"')
    conn.execute(f'DROP TABLE "{name}"')


def _months(conn: psycopg.Connection) -> set[str]:
    return {
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'step_records'::regclass AND c.relname LIKE 'step_records_p%'"
        )
    }


@pytest.fixture
def far_months(database_url):
    """The tests create every month from years back; those that were not there before go again
    (a hundred partitions more would change every later test's plans of step_records)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = _months(conn)
    yield
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name in sorted(_months(conn) - before):
            _drop_empty_month(conn, date(int(name[-6:-2]), int(name[-2:]), 1))


def _where(conn: psycopg.Connection, walker: str) -> list[tuple]:
    return conn.execute(
        f"SELECT tableoid::regclass::text, {COLUMNS} FROM step_records WHERE user_id = %s "
        "ORDER BY recorded_date, source",
        (walker,),
    ).fetchall()


async def test_rows_of_the_default_partition_move_into_their_new_month(
    client, database_url, far_months
):
    walker = (await register(client))["user"]["id"]
    # eight years back: a month no other test and no sync window reaches
    first = date(today().year - 8, today().month, 1)
    second = (first + timedelta(days=40)).replace(day=1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for month in (first, second):
            _drop_empty_month(conn, month)
        conn.execute(
            "INSERT INTO step_records (user_id, recorded_date, source, steps, approved_steps, "
            "device_ids, client_record_id, client_record_version, is_manual, intervals, status, "
            "reasons, synced_at) VALUES "
            "(%(u)s, %(a)s, 'healthkit', 4100, 4100, '{phone-1}', 'c-1', 3, false, "
            " '[{\"start\": \"07:00\", \"steps\": 4100}]', 'approved', '{}', now()), "
            "(%(u)s, %(a)s, 'google_fit', 4000, 0, '{}', NULL, NULL, true, NULL, 'flagged', "
            " '{manual_entry}', now()), "
            "(%(u)s, %(b)s, 'healthkit', 9000, 9000, '{phone-1}', NULL, NULL, false, NULL, "
            " 'approved', '{}', now())",
            {"u": walker, "a": first + timedelta(days=4), "b": second + timedelta(days=27)},
        )
        before = _where(conn, walker)
        assert {row[0] for row in before} == {"step_records_default"}

        created = conn.execute(
            "SELECT stepcoin_ensure_step_partitions(%s, 0)", (first,)
        ).fetchone()[0]

        after = _where(conn, walker)
        assert created >= 2
        assert [row[0] for row in after] == [_name(first), _name(first), _name(second)]
        assert [row[1:] for row in after] == [row[1:] for row in before]  # ids and all
        left = conn.execute(
            "SELECT count(*) FROM step_records_default WHERE recorded_date < %s",
            (second + timedelta(days=31),),
        ).fetchone()[0]
        assert left == 0
        again = conn.execute("SELECT stepcoin_ensure_step_partitions(%s, 0)", (first,)).fetchone()[
            0
        ]
        assert again == 0
        conn.execute("DELETE FROM step_records WHERE user_id = %s", (walker,))


async def test_a_raised_sync_window_gets_its_months_from_the_job(app, client, engine, database_url):
    """The window raised to 365 days: a sync of a day 360 days back is stored (in the default
    partition while its month has none); the job creates that month and moves the record."""
    user = await register(client)
    walker, token = user["user"]["id"], user["access_token"]
    old = today() - timedelta(days=360)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _drop_empty_month(conn, old)
    await set_setting(engine, "anticheat.sync_window_days", 365)
    try:
        await sync(client, token, rec(360, 5200), rec(1, 6100))
        with psycopg.connect(database_url) as conn:
            before = _where(conn, walker)
        assert before[0][0] == "step_records_default"
        assert before[0][3] == old

        async with open_jobs(app.state.database) as jobs:
            await jobs.configure_task("steps:ensure_step_partitions").defer_async(timestamp=7)
            await jobs.run_worker_async(wait=False, install_signal_handlers=False)

        with psycopg.connect(database_url) as conn:
            after = _where(conn, walker)
        assert after[0][0] == _name(old)
        assert [row[1:] for row in after] == [row[1:] for row in before]
        # the walker's history reads as before
        listed = await client.get(
            "/v1/steps",
            params={"from": old.isoformat(), "to": old.isoformat()},
            headers=bearer(token),
        )
        assert listed.status_code == 200, listed.text
        assert [r["steps"] for r in listed.json()["items"]] == [5200]
    finally:
        await set_setting(engine, "anticheat.sync_window_days", 7)


async def test_the_move_waits_for_a_transaction_that_reads_then_writes_records(
    client, database_url, far_months
):
    """A review's decision reads step_records and then writes them in one transaction. The
    move must wait for it, never deadlock with it: with a weaker lock taken first and held
    while waiting for the one that creating a partition takes, PostgreSQL found a deadlock
    and aborted one side."""
    walker = (await register(client))["user"]["id"]
    month = date(today().year - 9, today().month, 1)  # nine years back: this test's own month
    with psycopg.connect(database_url, autocommit=True) as setup:
        _drop_empty_month(setup, month)
        setup.execute(
            "INSERT INTO step_records (user_id, recorded_date, source, steps, synced_at) "
            "VALUES (%s, %s, 'healthkit', 3000, now())",
            (walker, month + timedelta(days=2)),
        )
    outcome: dict[str, object] = {}

    def ensure() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '20s'")
                outcome["created"] = conn.execute(
                    "SELECT stepcoin_ensure_step_partitions(%s, 0)", (month,)
                ).fetchone()[0]
        except psycopg.Error as exc:  # the assertion below names it
            outcome["error"] = exc

    with (
        psycopg.connect(database_url) as reviewer,
        psycopg.connect(database_url, autocommit=True) as watcher,
    ):
        reviewer.execute("SELECT count(*) FROM step_records WHERE user_id = %s", (walker,))
        mover = threading.Thread(target=ensure)
        mover.start()
        waiting = 0
        for _ in range(100):  # until the move waits for the reviewer's lock
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%%stepcoin_ensure_step_partitions%%'"
            ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.05)
        assert waiting == 1
        reviewer.execute(
            "INSERT INTO step_records (user_id, recorded_date, source, steps, synced_at) "
            "VALUES (%s, %s, 'healthkit', 4000, now())",
            (walker, today() - timedelta(days=1)),
        )
        reviewer.commit()
        mover.join(30)
    assert "error" not in outcome, outcome
    assert outcome["created"] >= 1
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = _where(conn, walker)
        assert [(row[0], row[5]) for row in rows] == [
            (_name(month), 3000),
            (_name(today() - timedelta(days=1)), 4000),
        ]
        conn.execute("DELETE FROM step_records WHERE user_id = %s", (walker,))
