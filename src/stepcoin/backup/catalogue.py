"""The catalogue of a repository: one JSON document next to the backups it describes, so a
repository alone (a copy in another region, a bucket after the disk died) is enough to restore.

Also the pure rules on it: which backups a restore needs (the incremental chain) and which
ones retention may delete.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from stepcoin.backup.repository import Repository

CATALOGUE_KEY = "catalogue.json"
BackupType = Literal["full", "incremental"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class RestorePoint:
    """A named point in the WAL with the row counts of the main tables at exactly that point."""

    name: str
    lsn: str
    time: str
    counts: dict[str, int]


@dataclass
class BackupRecord:
    id: str
    type: BackupType
    parent: str | None
    started: str
    stopped: str
    start_lsn: str
    stop_lsn: str
    timeline: int
    start_wal: str
    size: int
    sha256: str
    verified: bool | None
    verified_at: str | None
    repository: str
    server_version: int
    system_identifier: str
    database: str
    restore_point: RestorePoint | None = None
    copied_from: str | None = None
    verify_error: str | None = None

    @property
    def started_at(self) -> datetime:
        return parse_time(self.started)

    @property
    def stopped_at(self) -> datetime:
        return parse_time(self.stopped)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackupRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        point = values.get("restore_point")
        if isinstance(point, dict):
            values["restore_point"] = RestorePoint(**point)
        return cls(**values)


@dataclass
class Catalogue:
    """All backups of one repository, oldest first, plus the schedule's bookkeeping."""

    backups: list[BackupRecord] = field(default_factory=list)
    # activity -> {"last_attempt", "last_success", "failures", "last_error"}
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, backup_id: str) -> BackupRecord:
        for record in self.backups:
            if record.id == backup_id:
                return record
        raise KeyError(f"no backup {backup_id!r} in this repository")

    def latest(self, *, verified_only: bool = False) -> BackupRecord | None:
        candidates = [b for b in self.backups if not verified_only or b.verified]
        return max(candidates, key=lambda b: b.stopped_at, default=None)

    def chain(self, backup_id: str) -> list[BackupRecord]:
        """The backup and its ancestors, full backup first: what a restore combines."""
        chain = [self.get(backup_id)]
        while chain[-1].parent is not None:
            chain.append(self.get(chain[-1].parent))
        return list(reversed(chain))

    def record_run(self, activity: str, *, ok: bool, error: str | None = None) -> None:
        """Note an attempt of a scheduled activity (for retries and metrics)."""
        now = utcnow().isoformat()
        run = self.runs.setdefault(activity, {"failures": 0})
        run["last_attempt"] = now
        if ok:
            run["last_success"] = now
            run["last_error"] = None
        else:
            run["failures"] = int(run.get("failures", 0)) + 1
            run["last_error"] = (error or "")[:2000]

    def to_json(self) -> bytes:
        body = {
            "version": 1,
            "backups": [dataclasses.asdict(b) for b in self.backups],
            "runs": self.runs,
        }
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Catalogue:
        data = json.loads(raw)
        if data.get("version") != 1:
            raise ValueError(f"unknown catalogue version {data.get('version')!r}")
        return cls(
            backups=[BackupRecord.from_json(b) for b in data.get("backups", [])],
            runs=dict(data.get("runs", {})),
        )


def load_catalogue(repository: Repository) -> Catalogue:
    raw = repository.get_bytes(CATALOGUE_KEY)
    return Catalogue() if raw is None else Catalogue.from_json(raw)


def save_catalogue(repository: Repository, catalogue: Catalogue) -> None:
    catalogue.backups.sort(key=lambda b: (b.started_at, b.id))
    repository.put_bytes(CATALOGUE_KEY, catalogue.to_json())


# --- retention -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    """Ages after which backups may go; what a kept backup needs always stays."""

    incremental_days: int
    full_days: int


def plan_retention(
    backups: Iterable[BackupRecord], policy: RetentionPolicy, now: datetime
) -> list[str]:
    """Ids to delete, oldest first.

    1. an incremental older than incremental_days goes, a full older than full_days goes;
    2. but the newest verified backup (the last good one) and its whole chain always stay;
    3. and every ancestor of a kept incremental stays (its restore needs it);
    4. an incremental whose ancestor is gone (never the case after rule 3) goes with it.
    """
    records = {b.id: b for b in backups}
    keep: set[str] = set()
    for record in records.values():
        limit = policy.incremental_days if record.type == "incremental" else policy.full_days
        if record.stopped_at >= now - timedelta(days=limit):
            keep.add(record.id)
    good = [b for b in records.values() if b.verified]
    if good:
        keep.add(max(good, key=lambda b: b.stopped_at).id)
    for backup_id in list(keep):  # rule 3: close over parents
        parent = records[backup_id].parent
        while parent is not None and parent in records:
            keep.add(parent)
            parent = records[parent].parent
    doomed = [b for b in records.values() if b.id not in keep]
    return [b.id for b in sorted(doomed, key=lambda b: b.stopped_at)]


def wal_needed_from(backups: Iterable[BackupRecord]) -> str | None:
    """The oldest WAL segment a kept backup starts from (WAL before it can go)."""
    starts = [b.start_wal for b in backups]
    return min(starts, key=lambda name: name[8:]) if starts else None


def wal_is_older(segment: str, oldest_needed: str) -> bool:
    """pg_archivecleanup's rule: compare log and segment numbers, ignoring the timeline;
    history files and anything that is not a segment name are kept."""
    base, suffix = segment[:24], segment[24:]
    if len(base) != 24 or not all(c in "0123456789ABCDEF" for c in base):
        return False
    if suffix not in ("", ".partial") and not suffix.endswith(".backup"):
        return False
    return base[8:] < oldest_needed[8:]
