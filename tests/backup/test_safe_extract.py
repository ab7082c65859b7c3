"""Backup archives unpack only inside their target, with or without tarfile's filters
(Debian 12's Python 3.11.2 has no `filter=`: the engine then checks each member itself)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from stepcoin.backup import engine

# Python 3.12+ warns on extraction without a filter: here that is the point (the fallback).
pytestmark = pytest.mark.filterwarnings("ignore:Python 3.14 will:DeprecationWarning")


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _archive(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture(params=["with tarfile filters", "without (Python < 3.11.4)"])
def extract(request, monkeypatch) -> Callable[[Path, Path], None]:
    if request.param.startswith("without"):
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return engine._extract


def test_a_plain_backup_archive_unpacks(tmp_path: Path, extract) -> None:
    source = tmp_path / "src"
    (source / "base" / "1").mkdir(parents=True)
    (source / "base" / "1" / "1259").write_bytes(b"page" * 100)
    (source / "PG_VERSION").write_text("18\n")
    (source / "PG_VERSION").chmod(0o4755)  # a set-id bit never survives
    (source / "latest").symlink_to("base/1")
    tar_path = tmp_path / "data.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(source.iterdir()):
            tar.add(entry, arcname=entry.name)
    extract(tar_path, tmp_path / "out")
    assert (tmp_path / "out" / "base" / "1" / "1259").read_bytes() == b"page" * 100
    assert (tmp_path / "out" / "PG_VERSION").stat().st_mode & 0o7000 == 0
    assert (tmp_path / "out" / "latest" / "1259").exists()


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([_file("../evil")], id="dot-dot"),
        pytest.param([_file("base/../../evil")], id="dot-dot-inside"),
        pytest.param([_file("/tmp/stepcoin-evil-absolute")], id="absolute"),
        pytest.param([_special("link", tarfile.SYMTYPE, "/etc")], id="absolute-symlink"),
        pytest.param([_special("link", tarfile.SYMTYPE, "../..")], id="symlink-out"),
        pytest.param(
            [_special("up", tarfile.SYMTYPE, "."), _special("up/l2", tarfile.SYMTYPE, "..")],
            id="symlink-chain-out",
        ),
        pytest.param([_special("hard", tarfile.LNKTYPE, "../outside")], id="hardlink-out"),
        pytest.param([_special("dev", tarfile.CHRTYPE)], id="device"),
        pytest.param([_special("fifo", tarfile.FIFOTYPE)], id="fifo"),
    ],
)
def test_a_crafted_archive_is_refused(tmp_path: Path, extract, members) -> None:
    (tmp_path / "outside").write_text("keep")
    tar_path = _archive(tmp_path / "evil.tar", *members)
    target = tmp_path / "deep" / "out"
    with pytest.raises(engine.BackupError, match=r"unsafe|absolute|outside|link"):
        extract(tar_path, target)
    assert not (tmp_path / "deep" / "evil").exists()
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/stepcoin-evil-absolute").exists()
    assert (tmp_path / "outside").read_text() == "keep"


def test_an_archive_larger_than_the_free_space_is_refused(tmp_path: Path, monkeypatch) -> None:
    tar_path = _archive(tmp_path / "big.tar", _file("a", b"0123456789"))
    usage = engine.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(engine.shutil, "disk_usage", lambda p: usage._replace(free=5))
    with pytest.raises(engine.BackupError, match="unpacks to 10 bytes, 5 are free"):
        engine._extract(tar_path, tmp_path / "out")
