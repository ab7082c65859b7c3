"""Retention and archival (docs/retention.md): each job deletes exactly what it should and
nothing still needed; the month archive survives a stop between its steps and a damaged file,
and an archived month comes back row for row with the ledger check passing."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from stepcoin import metrics
from stepcoin.backup.repository import LocalRepository
from stepcoin.db import session_scope
from stepcoin.retention import service
from stepcoin.steps.retention import next_month, partition_name
from stepcoin.wallet.service import check_ledger
from tests.conftest import bearer, register
from tests.fixtures.plans import plan_of, rows_of_walkers
from tests.social.helpers import set_setting
from tests.steps.helpers import ledger_ok, make_admin, rec, sync


def _months_back(today: date, months: int) -> date:
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


async def _age(engine: Any, user_id: str, days: int) -> None:
    """Move a walker's step data `days` back in time, as if it had been synced then (the
    partition key moves the records into their month's partition)."""
    async with engine.begin() as conn:
        shift = {"u": user_id, "d": days}
        back = "make_interval(days => CAST(:d AS integer))"
        await conn.execute(
            text(
                "UPDATE step_records SET recorded_date = recorded_date - CAST(:d AS integer), "
                f"synced_at = synced_at - {back}, created_at = created_at - {back} "
                "WHERE user_id = :u"
            ),
            shift,
        )
        await conn.execute(
            text(
                "UPDATE step_validations SET recorded_date = recorded_date - CAST(:d AS integer), "
                f"created_at = created_at - {back} WHERE user_id = :u"
            ),
            shift,
        )
        await conn.execute(
            text(
                "UPDATE step_days SET recorded_date = recorded_date - CAST(:d AS integer) "
                "WHERE user_id = :u"
            ),
            shift,
        )


async def _validation_ids(engine: Any, user_id: str) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id FROM step_validations WHERE user_id = :u ORDER BY id"), {"u": user_id}
        )
        return [r[0] for r in rows]


async def _final_ids(engine: Any, user_id: str) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT validation_id FROM step_records WHERE user_id = :u ORDER BY validation_id"
            ),
            {"u": user_id},
        )
        return [r[0] for r in rows]


async def _ledger_checked(app: Any, engine: Any) -> None:
    await ledger_ok(engine)
    async with session_scope(app.state.database) as session:
        report = await check_ledger(session)
    assert report.ok, report


async def test_decisions_compaction_keeps_every_needed_decision(app, client, engine):
    await set_setting(engine, "anticheat.manual_entry_action", "flag")
    # old, every record approved: the superseded decisions go, the final ones stay
    # (a clean approval of a cleanly approved record writes no decision: the day's second
    # version is flagged, as a new account's high day, so that the third has one to supersede)
    old = await register(client)
    await sync(client, old["access_token"], rec(1, 1000))
    await set_setting(engine, "anticheat.new_account_max_steps", 1500)
    assert (await sync(client, old["access_token"], rec(1, 2000)))[0]["status"] == "flagged"
    await set_setting(engine, "anticheat.new_account_max_steps", 40_000)
    assert (await sync(client, old["access_token"], rec(1, 3000)))[0]["status"] == "approved"
    await sync(client, old["access_token"], rec(2, 4000))
    # old, but a record of the day is in review: everything of the day stays
    held = await register(client)
    await sync(client, held["access_token"], rec(1, 1000))
    await set_setting(engine, "anticheat.new_account_max_steps", 1500)
    await sync(client, held["access_token"], rec(1, 2000))
    await set_setting(engine, "anticheat.new_account_max_steps", 40_000)
    flagged = await sync(client, held["access_token"], rec(1, 500, source="manual"))
    assert flagged[0]["status"] == "flagged"
    # superseded, but young: stays
    young = await register(client)
    await sync(client, young["access_token"], rec(1, 1000))
    await set_setting(engine, "anticheat.new_account_max_steps", 1500)
    await sync(client, young["access_token"], rec(1, 2000))

    old_id, held_id, young_id = (a["user"]["id"] for a in (old, held, young))
    old_before = await _validation_ids(engine, old_id)
    assert len(old_before) == 4
    held_before = await _validation_ids(engine, held_id)
    young_before = await _validation_ids(engine, young_id)
    await _age(engine, old_id, 200)
    await _age(engine, held_id, 200)

    reports = await service.prune(app.state.database, (service.DECISIONS,), from_start=True)
    assert [r.deleted for r in reports] == [2]
    assert await _validation_ids(engine, old_id) == await _final_ids(engine, old_id)
    assert len(await _validation_ids(engine, old_id)) == 2
    assert await _validation_ids(engine, held_id) == held_before
    assert await _validation_ids(engine, young_id) == young_before

    # the next run starts at the first decision found too young: the young walker's first
    async with engine.connect() as conn:
        next_start = (
            await conn.execute(
                text("SELECT next_start FROM retention_runs WHERE id = :id"),
                {"id": reports[0].run_id},
            )
        ).scalar_one()
    assert next_start == young_before[0]
    # the run is recorded; a second run finds nothing more
    again = await service.prune(app.state.database, (service.DECISIONS,))
    assert again[0].deleted == 0 and again[0].run_id != reports[0].run_id
    state = await service.status(app.state.database)
    run = next(r for r in state["runs"] if r["job"] == service.DECISIONS)
    assert run["status"] == "done" and run["id"] == again[0].run_id

    # the walker's own view of the day is unchanged
    response = await client.get("/v1/wallet", headers=bearer(old["access_token"]))
    assert response.status_code == 200
    assert response.json()["available_coins"] == 70
    await _ledger_checked(app, engine)


async def _webhook(conn: Any, *, age_days: int, processed: bool) -> None:
    await conn.execute(
        text(
            "INSERT INTO webhook_events (webhook_id, topic, content_key, payload, received_at, "
            "processed_at) VALUES (:w, 'products/update', :w, '{}', "
            "now() - make_interval(days => CAST(:a AS integer)), "
            "CASE WHEN :p THEN now() - make_interval(days => CAST(:a AS integer)) END)"
        ),
        {"w": uuid.uuid4().hex, "a": age_days, "p": processed},
    )


async def test_webhook_pruning_is_batched_and_resumes(app, engine, scraper):
    await set_setting(engine, "retention.batch_rows", 100)
    async with engine.begin() as conn:
        for _ in range(250):
            await _webhook(conn, age_days=40, processed=True)
        for _ in range(3):
            await _webhook(conn, age_days=40, processed=False)  # not handled yet: stays
            await _webhook(conn, age_days=10, processed=True)  # young: stays

    first = await service.prune(app.state.database, (service.WEBHOOKS,), max_batches=1)
    assert (first[0].deleted, first[0].batches) == (100, 1)
    state = await service.status(app.state.database)
    assert next(r for r in state["runs"] if r["job"] == service.WEBHOOKS)["status"] == "running"

    second = await service.prune(app.state.database, (service.WEBHOOKS,))
    assert second[0].resumed and second[0].run_id == first[0].run_id
    assert (second[0].deleted, second[0].batches) == (250, 3)
    async with engine.connect() as conn:
        left = (
            await conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE processed_at IS NULL), "
                    "count(*) FILTER (WHERE processed_at IS NOT NULL) FROM webhook_events"
                )
            )
        ).one()
    assert tuple(left) == (3, 3)
    # what it did shows in /metrics
    metrics.DATABASE_COLLECTOR.snapshot.taken = float("-inf")
    body = (await scraper.get("/metrics")).text
    assert 'stepcoin_retention_deleted_total{job="webhook_events"} 250.0' in body
    assert 'stepcoin_retention_last_run_timestamp_seconds{job="webhook_events"}' in body


async def test_refresh_tokens_of_finished_sign_ins_go(app, client, engine):
    gone = await register(client)  # a sign-in long over
    alive = await register(client)  # its first token expired long ago, the family lives on
    fresh = await register(client)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '60 days', "
                "family_expires_at = now() - interval '60 days' WHERE user_id = :u"
            ),
            {"u": gone["user"]["id"]},
        )
        await conn.execute(
            text(
                "INSERT INTO refresh_tokens (user_id, token_hash, family_id, issued_at, "
                "expires_at, family_expires_at, revoked_at) "
                "SELECT user_id, :h, family_id, now() - interval '90 days', "
                "now() - interval '60 days', family_expires_at, now() - interval '80 days' "
                "FROM refresh_tokens WHERE user_id = :u"
            ),
            {"u": alive["user"]["id"], "h": hashlib.sha256(b"old").digest()},
        )
    reports = await service.prune(app.state.database, (service.REFRESH_TOKENS,))
    assert reports[0].deleted == 1
    async with engine.connect() as conn:
        counts = dict(
            (
                await conn.execute(
                    text("SELECT user_id::text, count(*) FROM refresh_tokens GROUP BY 1")
                )
            ).all()
        )
    assert gone["user"]["id"] not in counts
    assert counts[alive["user"]["id"]] == 2  # the alive family is whole: nothing went
    assert counts[fresh["user"]["id"]] == 1
    # the live session still refreshes
    response = await client.post("/v1/auth/refresh", json={"refresh_token": alive["refresh_token"]})
    assert response.status_code == 200, response.text


async def test_a_refresh_token_batch_reads_only_its_own_tokens(engine):
    """A pruning batch walks the expired tokens in expiry order and stops at the batch (each
    candidate's sign-in probed by family), then deletes by place: neither reads nor sorts the
    whole table (the key is (user_id, id): `id IN (...)` had scanned it for every batch)."""
    from stepcoin.auth.retention import PRUNE_SQL

    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(
            text(
                rows_of_walkers(
                    "refresh_tokens (user_id, token_hash, family_id, expires_at, "
                    "family_expires_at)",
                    "walker, sha256(CAST(n AS text)::bytea), gen_random_uuid(), "
                    "now() + (n % 2 * 2 - 1) * interval '60 days', "
                    "now() + (n % 2 * 2 - 1) * interval '60 days'",
                    walkers=60,
                    rows=6000,
                    label="prune",
                )
            )
        )  # 3,000 long over, 3,000 live
        await conn.execute(text("ANALYZE refresh_tokens"))
        params = {"cutoff": datetime.now(UTC) - timedelta(days=30), "batch": 100}
        plan = await plan_of(conn, PRUNE_SQL, params)
        deleted = (await conn.execute(text(PRUNE_SQL), params)).rowcount
        await transaction.rollback()
    assert "Seq Scan on refresh_tokens" not in plan and " Sort " not in plan, plan
    assert "ix_refresh_tokens_expires_at" in plan and "Tid Scan" in plan, plan
    assert deleted == 100


async def _month_rows(engine: Any, month: date) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT * FROM step_records WHERE recorded_date >= :a AND recorded_date < :b "
                "ORDER BY user_id, recorded_date, source"
            ),
            {"a": month, "b": next_month(month)},
        )
        return [tuple(r) for r in rows]


async def _month_decisions(engine: Any, month: date) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT * FROM step_validations WHERE recorded_date >= :a "
                "AND recorded_date < :b ORDER BY id"
            ),
            {"a": month, "b": next_month(month)},
        )
        return [tuple(r) for r in rows]


async def _walkers_in(client: Any, engine: Any, month: date, today: date, n: int) -> list[str]:
    ids = []
    for i in range(n):
        walker = await register(client)
        await sync(client, walker["access_token"], rec(1, 3000 + i), rec(2, 5000 + i))
        await sync(client, walker["access_token"], rec(1, 6000 + i))
        await _age(engine, walker["user"]["id"], (today - month).days - 10)
        ids.append(walker["user"]["id"])
    return ids


@pytest.fixture
async def old_months(app, engine):
    """Partitions from 30 months back to now (the test database has recent ones only)."""
    today = datetime.now(UTC).date()
    first = _months_back(today, 30)
    async with engine.begin() as conn:
        await conn.execute(text("SELECT stepcoin_ensure_step_partitions(:d, 0)"), {"d": first})
    yield today, first
    async with engine.begin() as conn:  # leave every month attached for the other tests
        await conn.execute(text("SELECT stepcoin_ensure_step_partitions(:d, 0)"), {"d": first})


async def test_archive_survives_stops_and_restores_row_for_row(
    app, client, engine, old_months, tmp_path: Path
):
    today, first = old_months
    month = next_month(first)  # 29 months back: past the 25 kept online
    walkers = await _walkers_in(client, engine, month, today, 3)
    before = await _month_rows(engine, month)
    assert len(before) == 6 and {r[0] for r in before} == {uuid.UUID(w) for w in walkers}
    async with engine.begin() as conn:  # a decision made lately about the old month stays
        recent = (
            await conn.execute(
                text(
                    "UPDATE step_validations SET created_at = now() - interval '1 day' "
                    "WHERE id = (SELECT min(id) FROM step_validations WHERE user_id = :u) "
                    "RETURNING id"
                ),
                {"u": walkers[0]},
            )
        ).scalar_one()
    decisions = await _month_decisions(engine, month)
    # three syncs a walker; the re-synced day's clean approval restates the first: no row
    assert len(decisions) == 6
    repository = LocalRepository(tmp_path / "repo")
    database = app.state.database

    # a stop right after the detach: the rows are out of step_records, the table is kept
    with pytest.raises(service.Interrupted):
        await service.archive_month(
            database, repository, month, scratch=tmp_path, stop_after="detached"
        )
    assert await _month_rows(engine, month) == []
    # a stop after the write, then a damaged file: the verify refuses, nothing is dropped
    with pytest.raises(service.Interrupted):
        await service.archive_month(
            database, repository, month, scratch=tmp_path, stop_after="written"
        )
    file_key, manifest_key = service.archive_keys(month)
    packed = repository.path(file_key)
    good = packed.read_bytes()
    packed.write_bytes(good[:-8] + b"\0" * 8)
    with pytest.raises(service.RetentionError, match="SHA-256"):
        await service.archive_month(database, repository, month, scratch=tmp_path)
    async with engine.connect() as conn:
        kept = (
            await conn.execute(text(f'SELECT count(*) FROM "{partition_name(month)}"'))
        ).scalar_one()
    assert kept == 6
    packed.write_bytes(good)

    report = await service.archive_month(database, repository, month, scratch=tmp_path)
    assert report.state == "archived" and report.steps_done == ["verified", "archived"]
    assert report.row_count == 6
    async with engine.connect() as conn:
        exists = (
            await conn.execute(text("SELECT to_regclass(:n)"), {"n": partition_name(month)})
        ).scalar_one()
    assert exists is None
    # archived with the month, but the recent one (the trust score reads 90 days of them)
    assert [d[0] for d in await _month_decisions(engine, month)] == [recent]
    manifest = json.loads(repository.path(manifest_key).read_bytes())
    assert manifest["rows"] == 6 and manifest["decisions"]["rows"] == 5
    assert manifest["file_sha256"] == hashlib.sha256(good).hexdigest()
    assert manifest["content_sha256"] == hashlib.sha256(gzip.decompress(good)).hexdigest()
    await _ledger_checked(app, engine)  # the ledger never needed the records

    restored = await service.restore_month(database, repository, month, scratch=tmp_path)
    assert restored.row_count == 6
    assert await _month_rows(engine, month) == before
    assert await _month_decisions(engine, month) == decisions
    with pytest.raises(service.RetentionError, match="online"):
        await service.restore_month(database, repository, month, scratch=tmp_path)
    # a restored month stays online: the scheduled archive leaves it alone
    assert month not in [r.month for r in await service.archive_due(database, repository)]
    await _ledger_checked(app, engine)


async def test_a_month_with_anything_unsettled_stays_online(
    app, client, engine, old_months, tmp_path
):
    await set_setting(engine, "anticheat.manual_entry_action", "flag")
    today, first = old_months
    month = next_month(first)
    settled = await register(client)
    await sync(client, settled["access_token"], rec(1, 4000))
    in_review = await register(client)
    flagged = await sync(client, in_review["access_token"], rec(1, 700, source="manual"))
    assert flagged[0]["status"] == "flagged"
    for walker in (settled, in_review):
        await _age(engine, walker["user"]["id"], (today - month).days - 10)
    repository = LocalRepository(tmp_path / "repo")
    with pytest.raises(service.RetentionError, match="in review"):
        await service.archive_month(app.state.database, repository, month, scratch=tmp_path)
    assert len(await _month_rows(engine, month)) == 2
    # the scheduled archive skips it too (and archives the empty months before it)
    reports = await service.archive_due(app.state.database, repository, scratch=tmp_path)
    assert month not in [r.month for r in reports]
    assert first in [r.month for r in reports]
    # a recent month is inside the retention window
    with pytest.raises(service.RetentionError, match="retention window"):
        await service.archive_month(
            app.state.database, repository, _months_back(today, 2), scratch=tmp_path
        )
    await _ledger_checked(app, engine)


@pytest.mark.slow
async def test_a_killed_archive_is_completed_by_the_next_run(
    app, client, engine, old_months, database_url, tmp_path: Path
):
    """`stepcoin retention archive-month` killed (SIGKILL) while it works: the next run
    completes it and the month restores row for row."""
    today, first = old_months
    month = next_month(first)
    walkers = await _walkers_in(client, engine, month, today, 2)
    # a month big enough that the kill lands while the file is written: intraday samples
    samples = json.dumps([[i * 60, 60 + i % 40] for i in range(20_000)])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO step_records (user_id, recorded_date, source, steps, status, "
                "approved_steps, intervals) "
                "SELECT u, d, 'google_fit', 1000, 'approved', 1000, CAST(:s AS jsonb) "
                "FROM unnest(CAST(:users AS uuid[])) u, "
                "generate_series(CAST(:a AS date), CAST(:b AS date), interval '1 day') d "
                "ON CONFLICT DO NOTHING"
            ),
            {
                "s": samples,
                "users": walkers,
                "a": month,
                "b": next_month(month) - timedelta(days=1),
            },
        )
    before = await _month_rows(engine, month)
    decisions = await _month_decisions(engine, month)
    repository = tmp_path / "repo"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "DATABASE_URL": database_url,
            "STEPCOIN_BACKUP_REPOSITORY": str(repository),
            "STEPCOIN_BACKUP_SCRATCH_DIR": str(tmp_path),
            "STEPCOIN_LOG_LEVEL": "WARNING",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "stepcoin.cli", "retention", "archive-month", f"{month:%Y-%m}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    state = None
    deadline = time.monotonic() + 120
    try:
        while state is None and time.monotonic() < deadline and process.poll() is None:
            async with engine.connect() as conn:
                state = (
                    await conn.execute(
                        text("SELECT state FROM retention_archives WHERE month = :m"),
                        {"m": month},
                    )
                ).scalar_one_or_none()
            await asyncio.sleep(0.002)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert state == "detached", (state, process.stderr.read() if process.stderr else "")
    async with engine.connect() as conn:
        killed_at = (
            await conn.execute(
                text("SELECT state FROM retention_archives WHERE month = :m"), {"m": month}
            )
        ).scalar_one()
    assert killed_at in ("detached", "written", "verified")  # stopped midway
    assert await _month_rows(engine, month) == []

    local = LocalRepository(repository)
    report = await service.archive_month(app.state.database, local, month, scratch=tmp_path)
    assert report.state == "archived" and report.row_count == len(before)
    await _ledger_checked(app, engine)
    assert await _month_decisions(engine, month) == []
    await service.restore_month(app.state.database, local, month, scratch=tmp_path)
    assert await _month_rows(engine, month) == before
    assert await _month_decisions(engine, month) == decisions
    await _ledger_checked(app, engine)


async def test_compaction_keeps_staff_decisions_and_appeals_and_the_walkers_view(
    app, client, engine
):
    from tests.steps.test_appeals import appeal, queue, rejected_walker

    admin = await make_admin(client, engine)
    walker = await rejected_walker(client, admin)  # yesterday's manual entry, rejected
    token = walker["access_token"]
    assert (await appeal(client, token)).status_code == 201
    [item] = [i for i in await queue(client, admin) if i["user"]["id"] == walker["user"]["id"]]
    approved = await client.post(
        f"/v1/admin/validations/{item['id']}/approve", headers=bearer(admin)
    )
    assert approved.status_code == 200, approved.text
    # three syncs of the watch: the first two decisions are superseded (the second version is
    # flagged as a new account's high day; a clean re-approval would restate, not add one)
    await sync(client, token, rec(1, 9500))
    await set_setting(engine, "anticheat.new_account_max_steps", 9600)
    assert (await sync(client, token, rec(1, 9800)))[0]["status"] == "flagged"
    await set_setting(engine, "anticheat.new_account_max_steps", 40_000)
    assert (await sync(client, token, rec(1, 9900)))[0]["status"] == "approved"
    user_id = walker["user"]["id"]
    ids = await _validation_ids(engine, user_id)
    # the rejected manual entry, its appeal (approved), three decisions of the watch
    assert len(ids) == 5
    await _age(engine, user_id, 200)
    old_day = (datetime.now(UTC).date() - timedelta(days=201)).isoformat()

    async def seen() -> Any:
        response = await client.get(f"/v1/steps?from={old_day}&to={old_day}", headers=bearer(token))
        assert response.status_code == 200, response.text
        again = await client.post(
            f"/v1/steps/{old_day}/appeal", json={"note": "again"}, headers=bearer(token)
        )
        return response.json(), again.status_code, again.json().get("code")

    before = await seen()
    assert len(before[0]["items"]) == 1 and before[1] >= 400
    reports = await service.prune(app.state.database, (service.DECISIONS,), from_start=True)
    assert reports[0].deleted == 2
    async with engine.connect() as conn:
        gone = (
            (
                await conn.execute(
                    text(
                        "SELECT id FROM unnest(CAST(:ids AS bigint[])) id EXCEPT "
                        "SELECT id FROM step_validations"
                    ),
                    {"ids": ids},
                )
            )
            .scalars()
            .all()
        )
    assert gone == ids[2:4]  # the watch's superseded decisions only: staff's, the appeal stay
    assert await seen() == before  # the walker's day and the one-appeal rule are unchanged
    await _ledger_checked(app, engine)


async def test_a_month_with_an_appealable_rejection_stays_online(
    app, client, engine, old_months, tmp_path
):
    from tests.steps.test_appeals import rejected_walker

    today, first = old_months
    month = next_month(next_month(first))  # 28 months back
    admin = await make_admin(client, engine)
    walker = await rejected_walker(client, admin)  # a reviewer rejected it just now
    await _age(engine, walker["user"]["id"], (today - month).days - 10)
    repository = LocalRepository(tmp_path / "repo")
    with pytest.raises(service.RetentionError, match="appealed"):
        await service.archive_month(app.state.database, repository, month, scratch=tmp_path)
    # thirty days after the review it may go
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE step_validations SET reviewed_at = reviewed_at - interval '31 days' "
                "WHERE user_id = :u"
            ),
            {"u": walker["user"]["id"]},
        )
    report = await service.archive_month(app.state.database, repository, month, scratch=tmp_path)
    assert report.state == "archived" and report.row_count == 1
    await _ledger_checked(app, engine)
