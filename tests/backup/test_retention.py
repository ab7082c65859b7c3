"""Retention and the schedule: pure rules, plus a prune applied to a real local repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stepcoin.backup import engine
from stepcoin.backup.catalogue import (
    BackupRecord,
    Catalogue,
    RetentionPolicy,
    load_catalogue,
    plan_retention,
    save_catalogue,
)
from stepcoin.backup.repository import LocalRepository
from stepcoin.backup.schedule import due_activities, last_monthly, last_weekly
from stepcoin.runtime_settings.registry import defaults

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(incremental_days=30, full_days=30)


def rec(backup_id: str, days_ago: float, parent: str | None = None, segment: int = 1,
        verified: bool | None = True) -> BackupRecord:  # fmt: skip
    at = (NOW - timedelta(days=days_ago)).isoformat()
    return BackupRecord(
        id=backup_id, type="incremental" if parent else "full", parent=parent, started=at,
        stopped=at, start_lsn="0/0", stop_lsn="0/0", timeline=1,
        start_wal=f"00000001000000000000{segment:04X}", size=1, sha256="x", verified=verified,
        verified_at=at, repository="r", server_version=180006, system_identifier="1",
        database="stepcoin",
    )  # fmt: skip


def test_old_backups_go_but_a_kept_incremental_keeps_its_whole_chain() -> None:
    backups = [
        rec("F1", 70),  # old full, nothing depends on it: goes
        rec("I1", 69, "F1"),  # old incremental: goes
        rec("F2", 40),  # old full, but I3 (kept) depends on it through I2
        rec("I2", 35, "F2"),  # old incremental, parent of a kept one: stays
        rec("I3", 29, "I2"),  # young: stays
        rec("F3", 10),
        rec("I4", 1, "F3"),
    ]
    assert plan_retention(backups, POLICY, NOW) == ["F1", "I1"]


def test_the_last_good_backup_is_never_deleted_however_old() -> None:
    backups = [rec("F1", 400), rec("I1", 399, "F1"), rec("I2", 398, "I1", verified=False)]
    # I2 failed verification: the last good one is I1, kept with its full.
    assert plan_retention(backups, POLICY, NOW) == ["I2"]


def test_monthly_copies_live_a_year() -> None:
    year = RetentionPolicy(365, 365)
    backups = [rec(f"M{m}", 30 * m) for m in range(14)]
    assert plan_retention(backups, year, NOW) == ["M13"]


def test_prune_deletes_exactly_the_planned_files_and_old_wal(tmp_path: Path) -> None:
    repo = LocalRepository(tmp_path / "repo")
    repo.ensure()
    backups = [rec("F1", 70, segment=2), rec("I1", 69, "F1", segment=4),
               rec("F2", 40, segment=8), rec("I2", 35, "F2", segment=9),
               rec("I3", 29, "I2", segment=10)]  # fmt: skip
    for b in backups:
        repo.put_bytes(f"backups/{b.id}/data.tar", b"tar")
        repo.put_bytes(f"backups/{b.id}/backup_manifest", b"{}")
    repo.put_bytes("backups/ORPHAN/data.tar", b"half an upload")
    for n in range(1, 12):
        repo.put_bytes(f"wal/00000001000000000000{n:04X}", b"wal")
    repo.put_bytes("wal/00000002.history", b"history")
    save_catalogue(repo, Catalogue(backups=backups))
    config = engine.BackupConfig(source_url=None, repository=str(repo.root))

    dry = engine.prune(config, POLICY, now=NOW, dry_run=True)
    assert dry.deleted == ["F1", "I1"] and len(repo.list("backups")) == 11

    result = engine.prune(config, POLICY, now=NOW)
    assert result.deleted == ["F1", "I1"]
    assert {k.split("/")[1] for k, _ in repo.list("backups")} == {"F2", "I2", "I3"}
    wal = [k.rsplit("/", 1)[1] for k, _ in repo.list("wal")]
    assert wal == ["00000001000000000000000" + c for c in "89AB"] + ["00000002.history"]
    assert [b.id for b in load_catalogue(repo).backups] == ["F2", "I2", "I3"]


def test_schedule_daily_full_hourly_incremental_weekly_and_monthly_copies() -> None:
    values = defaults()
    at_0230 = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # a Wednesday
    empty = Catalogue()
    kw = {"has_cold": True, "has_region": True, "incremental_supported": True}
    assert due_activities(at_0230, values, empty, **kw) == [
        "full", "cold_copy", "region_copy", "prune",
    ]  # fmt: skip
    catalogue = Catalogue(backups=[rec("F", (9 * 60 + 29) / 1440)])  # ended 02:31
    for activity in ("full", "cold_copy", "region_copy", "prune"):
        catalogue.runs[activity] = {"last_success": at_0230.isoformat(), "failures": 0}
    assert due_activities(at_0230 + timedelta(minutes=5), values, catalogue, **kw) == []
    later = NOW  # 12:00, the newest backup ended at 02:31
    assert due_activities(later, values, catalogue, **kw) == ["incremental"]
    assert due_activities(later, values, catalogue, **{**kw, "incremental_supported": False}) == []
    # a failed full waits backup.retry_minutes before the next try
    catalogue.runs["full"] = {"last_attempt": (NOW + timedelta(days=1)).isoformat(), "failures": 1}
    next_day = NOW + timedelta(days=1, minutes=5)
    assert "full" not in due_activities(next_day, values, catalogue, **kw)
    assert "full" in due_activities(next_day + timedelta(minutes=15), values, catalogue, **kw)


def test_calendar_helpers() -> None:
    assert last_weekly(NOW, 7, 4) == datetime(2026, 11, 22, 4, tzinfo=UTC)
    assert last_monthly(NOW, 1, 4) == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert last_monthly(datetime(2026, 3, 1, tzinfo=UTC), 31, 4) == datetime(
        2026, 2, 28, 4, tzinfo=UTC
    )
