"""stepcoin_apply_sync as migrated (v5, set-based) against v3 (its SQL file, loaded as a
temporary function): the same random states and payloads, every written row and the answer
compared (issue 13).

Each example is one user's history of random syncs in one transaction. Every step runs v3 in a
savepoint, reads the user's rows, rolls back, runs v4 on the very same state, reads again and
compares; the history continues from v4's state. Both runs share the transaction's now(), so
synced_at/updated_at compare exactly; generated ids are compared by rank (v3's rolled-back
calls use up sequence values) and references to them (validation_id, superseded_by,
step_record_id) through the same ranks; ledger rows without their clock_timestamp() stamp.
v3 queues the achievements job where v4 marks the user dirty: the two must coincide.
Between steps the history spends coins (so clawbacks meet the floor) and reviews flags.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepcoin.db import libpq_url
from stepcoin.sqlfiles import load
from stepcoin.steps.models import SOURCES

V3 = "pg_temp.stepcoin_apply_sync_v3"
BASE = date(2026, 1, 5)
DAYS = [BASE + timedelta(days=i) for i in range(7)]
STATUSES = ("approved", "flagged", "rejected")


def v3_sql() -> str:
    sql = load("stepcoin.steps", "apply_sync.v3.sql")
    assert sql.count("FUNCTION stepcoin_apply_sync(") == 1
    return sql.replace("FUNCTION stepcoin_apply_sync(", f"FUNCTION {V3}(")


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(DAYS), st.sampled_from(SOURCES)),
            unique=True,
            max_size=9,
        )
    )
    records, validations = [], []
    for day, source in keys:
        status = draw(st.sampled_from(STATUSES))
        steps = draw(st.integers(0, 30000))
        records.append(
            {
                "day": day.isoformat(),
                "source": source,
                "steps": steps,
                "approved_steps": draw(st.integers(0, steps)),
                "device_ids": draw(st.lists(st.sampled_from(["a", "b"]), max_size=2)),
                "client_record_id": draw(st.none() | st.text("xyz", max_size=3)),
                "client_record_version": draw(st.none() | st.integers(0, 5)),
                "manual": draw(st.booleans()),
                "deleted": draw(st.booleans()),
                "intervals": draw(st.none() | st.just([{"start": "x", "steps": 1}])),
                "status": status,
                "reasons": draw(st.lists(st.sampled_from(["r1", "r2"]), max_size=2)),
            }
        )
        if draw(st.integers(0, 9)) > 0:  # most records come with their decision
            validations.append(
                {
                    "day": day.isoformat(),
                    "source": source,
                    "steps": steps,
                    "status": status,
                    "rule_hits": draw(st.just([]) | st.just([{"rule": "r1"}])),
                    "risk_score": draw(st.integers(0, 100)),
                    "stored": True,
                }
            )
    for _ in range(draw(st.integers(0, 2))):  # refused before storage (and a stray stored one)
        validations.append(
            {
                "day": draw(st.sampled_from([*DAYS, BASE + timedelta(days=40)])).isoformat(),
                "source": draw(st.sampled_from(SOURCES)),
                "steps": draw(st.integers(0, 30000)),
                "status": draw(st.sampled_from(STATUSES)),
                "rule_hits": [],
                "risk_score": 0,
                "stored": draw(st.integers(0, 4)) == 0
                and not any(
                    (v["day"], v["source"]) == (r["day"], r["source"])
                    for v in validations
                    for r in records
                ),
            }
        )
    days = [
        {
            "day": day.isoformat(),
            "credited_source": draw(st.none() | st.sampled_from(SOURCES)),
            "credited_steps": draw(st.integers(0, 30000)),
            "coins_paid": draw(st.integers(0, 300)),
            "coins_pending": draw(st.integers(0, 100)),
        }
        for day in sorted(draw(st.sets(st.sampled_from(DAYS), max_size=7)))
    ]
    if draw(st.booleans()):
        days.reverse()  # the function orders the days itself
    return {"records": records, "validations": validations, "days": days}


steps_strategy = st.lists(
    st.tuples(
        payloads(),
        st.integers(0, 200),  # coins to spend before the sync (what the balance allows)
        st.booleans(),  # review one open flag before the sync
        st.integers(0, 15),  # 0: send a stale version (the conflict answer)
    ),
    min_size=1,
    max_size=6,
)


def _ranks(values: list[int]) -> dict[int, int]:
    return {v: i for i, v in enumerate(sorted(values))}


def snapshot(conn: psycopg.Connection[Any], user: uuid.UUID) -> dict[str, Any]:
    """Everything a sync may write for the user, ids replaced by their ranks."""
    records = conn.execute(
        "SELECT id, recorded_date, source, steps, approved_steps, device_ids, client_record_id, "
        "client_record_version, is_manual, is_deleted, intervals, status, reasons, synced_at, "
        "validation_id, created_at, device_id FROM step_records WHERE user_id = %s "
        "ORDER BY recorded_date, source",
        (user,),
    ).fetchall()
    validations = conn.execute(
        "SELECT id, step_record_id, recorded_date, source, steps, status, rule_hits, risk_score, "
        "coins_awarded, coins_pending, superseded_by, reviewed_by, reviewed_at, note, created_at "
        "FROM step_validations WHERE user_id = %s ORDER BY id",
        (user,),
    ).fetchall()
    rid = _ranks([r[0] for r in records])
    vid = _ranks([v[0] for v in validations])

    def v_(x: int | None) -> int | None:
        return None if x is None else vid[x]

    def r_(x: int | None) -> int | None:
        return None if x is None else rid.get(x, -1)

    return {
        "records": [(rid[r[0]], *r[1:14], v_(r[14]), *r[15:]) for r in records],
        "validations": [(vid[v[0]], r_(v[1]), *v[2:10], v_(v[10]), *v[11:]) for v in validations],
        "days": conn.execute(
            "SELECT recorded_date, credited_source, credited_steps, coins_paid, coins_pending, "
            "version, updated_at FROM step_days WHERE user_id = %s ORDER BY recorded_date",
            (user,),
        ).fetchall(),
        "ledger": conn.execute(
            "SELECT amount, transaction_type, reference_id, balance_after, note "
            "FROM coin_transactions WHERE user_id = %s ORDER BY id",
            (user,),
        ).fetchall(),
        "wallet": conn.execute(
            "SELECT available_coins, pending_coins, lifetime_earned, lifetime_spent, version, "
            "updated_at FROM wallets WHERE user_id = %s",
            (user,),
        ).fetchone(),
    }


def evaluation_queued_v3(conn: psycopg.Connection[Any], user: uuid.UUID) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s",
            (f"achievements:{user}",),
        ).fetchone()[0]  # type: ignore[index]
    )


def evaluation_marked_v4(conn: psycopg.Connection[Any], user: uuid.UUID) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM achievements_dirty WHERE user_id = %s", (user,)
        ).fetchone()[0]  # type: ignore[index]
    )


def call(
    conn: psycopg.Connection[Any], fn: str, user: uuid.UUID, version: int, payload: str
) -> tuple[str, Any]:
    try:
        with conn.transaction():  # a savepoint: a failed call leaves the state as it was
            row = conn.execute(f"SELECT {fn}(%s, %s, %s::jsonb)", (user, version, payload))
            return "ok", row.fetchone()[0]  # type: ignore[index]
    except psycopg.Error as error:
        return "error", error.sqlstate


@pytest.fixture(scope="module")
def conn(database_url: str) -> Any:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        connection.execute(v3_sql())
        yield connection


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=steps_strategy)
def test_v4_writes_what_v3_writes(conn: psycopg.Connection[Any], history: list[Any]) -> None:
    with conn.transaction(force_rollback=True):  # the example leaves nothing behind
        user = uuid.uuid4()
        conn.execute(
            "INSERT INTO users (id, email, full_name) VALUES (%s, %s, 'Diff')",
            (user, f"{user}@example.com"),
        )
        conn.execute("INSERT INTO wallets (user_id) VALUES (%s)", (user,))
        conn.execute(
            "DELETE FROM procrastinate_jobs WHERE queueing_lock = %s", (f"achievements:{user}",)
        )
        for payload, spend, review, stale in history:
            available, version = conn.execute(
                "SELECT available_coins, version FROM wallets WHERE user_id = %s", (user,)
            ).fetchone()  # type: ignore[misc]
            if spend and available:
                amount = min(spend, available)
                conn.execute(
                    "SELECT * FROM stepcoin_wallet_post(%s, ARRAY[%s]::bigint[], "
                    "ARRAY['redemption'], ARRAY[%s])",
                    (user, -amount, f"diff:{uuid.uuid4()}"),
                )
                version += 1
            if review:
                conn.execute(
                    "UPDATE step_validations SET reviewed_at = now() WHERE id = (SELECT min(id) "
                    "FROM step_validations WHERE user_id = %s AND status = 'flagged' "
                    "AND reviewed_at IS NULL)",
                    (user,),
                )
            conn.execute("DELETE FROM achievements_dirty WHERE user_id = %s", (user,))
            text_payload = orjson.dumps(payload).decode()
            sent_version = version - 1 if stale == 0 else version

            before = snapshot(conn, user)
            conn.execute("SAVEPOINT reference")
            out3 = call(conn, V3, user, sent_version, text_payload)
            after3 = snapshot(conn, user)
            queued3 = evaluation_queued_v3(conn, user)
            conn.execute("ROLLBACK TO SAVEPOINT reference")
            assert snapshot(conn, user) == before
            out4 = call(conn, "stepcoin_apply_sync", user, sent_version, text_payload)
            after4 = snapshot(conn, user)
            marked4 = evaluation_marked_v4(conn, user)
            conn.execute("RELEASE SAVEPOINT reference")

            assert out4 == out3
            for table in after3:
                assert after4[table] == after3[table], table
            assert marked4 == queued3
            assert not evaluation_queued_v3(conn, user)  # v4 queues no job
