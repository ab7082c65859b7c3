"""Where backups live: a local folder or an S3-compatible bucket, behind one small interface.

Layout of a repository (keys are relative, '/'-separated)::

    catalogue.json               the catalogue (see catalogue.py)
    backups/<id>/data.tar        the backup folder made by pg_basebackup, as one tar
    backups/<id>/backup_manifest its manifest (the parent of the next incremental backup)
    wal/<segment>                WAL archived by archive_command (main repository only)
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit


class Repository(Protocol):
    """The few operations the backup engine needs from a store of files."""

    url: str

    def put_file(self, key: str, source: Path) -> None: ...
    def get_file(self, key: str, target: Path) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def list(self, prefix: str) -> list[tuple[str, int]]: ...
    def delete(self, key: str) -> None: ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise ValueError(f"invalid repository key: {key!r}")
    return key


class LocalRepository:
    """A folder. Files are written to a temporary name, fsynced, then renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def ensure(self) -> None:
        """Create the root (traversable, so the server user can reach wal/) and backups/."""
        if not self.root.exists():
            self.root.mkdir(parents=True, mode=0o711)
            self.root.chmod(0o711)
        (self.root / "backups").mkdir(mode=0o700, exist_ok=True)

    def _atomic_write(self, target: Path, write: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def put_file(self, key: str, source: Path) -> None:
        def write(out: Any) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._atomic_write(self.path(key), write)

    def get_file(self, key: str, target: Path) -> None:
        shutil.copyfile(self.path(key), target)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(self.path(key), lambda out: out.write(data))

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[tuple[str, int]]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                found.append((path.relative_to(self.root).as_posix(), path.stat().st_size))
        return sorted(found)

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # drop the emptied folder (backups/<id>/)
            path.parent.rmdir()


class S3Repository:
    """A bucket (and prefix) of S3-compatible object storage, through boto3.

    Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
    a profile, an instance role). ``s3://bucket/prefix?endpoint_url=http://host:9000&region=x``
    points at any S3-compatible service.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"an S3 repository needs a bucket: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.url = url
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        try:
            boto3: Any = importlib.import_module("boto3")
        except ImportError as exc:
            raise RuntimeError("S3 repositories need boto3: pip install boto3") from exc
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=query.get("endpoint_url") or os.environ.get("STEPCOIN_S3_ENDPOINT_URL"),
            region_name=query.get("region"),
        )

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, source: Path) -> None:
        self._client.upload_file(str(source), self.bucket, self._key(key))

    def get_file(self, key: str, target: Path) -> None:
        self._client.download_file(self.bucket, self._key(key), str(target))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self._client.exceptions.NoSuchKey:
            return None
        body: bytes = response["Body"].read()
        return body

    def list(self, prefix: str) -> list[tuple[str, int]]:
        full = self._key(prefix) if prefix else self.prefix
        if full and not full.endswith("/"):
            full += "/"
        strip = len(f"{self.prefix}/") if self.prefix else 0
        found = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                found.append((obj["Key"][strip:], int(obj["Size"])))
        return sorted(found)

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_repository(url: str) -> LocalRepository | S3Repository:
    """A repository from its URL: s3://bucket/prefix, file:///path or a plain path."""
    if url.startswith("s3://"):
        return S3Repository(url)
    if url.startswith("file://"):
        return LocalRepository(Path(urlsplit(url).path))
    if "://" in url:
        raise ValueError(f"unsupported backup repository {url!r}: use a path or s3://")
    return LocalRepository(Path(url))
