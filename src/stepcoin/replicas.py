"""Read replicas: PostgreSQL streaming standbys that serve the hot reads (docs/replicas.md).

A background check per process samples the primary's WAL position and each standby's replay
position every STEPCOIN_REPLICA_CHECK_MS. A standby is *usable* when it answers, is still in
recovery and its replay lag (the age of the newest primary position it has replayed) is within
STEPCOIN_REPLICA_MAX_LAG_MS; anything else takes it out of rotation until a later check finds
it healthy again. Routing is a decision in memory: `choose(min_lsn)` returns a usable standby
(round robin) that has replayed at least `min_lsn`, or None for the primary. Read-your-writes
comes from that `min_lsn`: the primary's WAL position captured right after a walker's write,
remembered in this process and handed to the client as a marker to send back (any process then
knows what the walker must see). No I/O happens on the read path.

This module knows nothing of the app: the pools and engines it opens come from `stepcoin.db`
(the same settings as the primary's), passed in as factories.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg

logger = logging.getLogger("stepcoin.replicas")

READ_AFTER_HEADER = "StepCoin-Read-After"
"""Sent with every successful write while replicas are configured (the primary's WAL position
after the write); a client sends it back on its next reads so that they see the write."""

CHECK_TIMEOUT_S = 2.0
"""A check or a connection that takes longer counts as down."""

MAX_REMEMBERED_WRITERS = 100_000
"""Walkers whose last write position this process remembers; beyond it, every read waits for
the standbys to pass the primary's position of that moment (a floor), and the map starts over."""

OpenPool = Callable[[str], Awaitable[asyncpg.Pool]]
OpenEngine = Callable[[str], tuple[Any, Any]]  # url -> (AsyncEngine, read async_sessionmaker)


_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # includes ConnectionDoesNotExistError
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now
)


def is_connection_error(exc: BaseException) -> bool:
    """The server is gone or going (not a query's own failure): look through SQLAlchemy's and
    the driver's wrappers."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, _CONNECTION_ERRORS) or getattr(seen, "connection_invalidated", False):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def parse_lsn(text: str | None) -> int | None:
    """'16/B374D848' as an integer (None for None or anything else)."""
    if not text or "/" not in text or len(text) > 17:
        return None
    high, _, low = text.partition("/")
    try:
        value = (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None
    return value if 0 <= value < 1 << 64 and int(low, 16) < 1 << 32 else None


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def display_name(url: str) -> str:
    """host:port/database of a URL, without user or password (readiness shows it)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


@dataclass(eq=False)
class Replica:
    """One standby: its state as last checked, and its pools while it is usable."""

    url: str
    name: str
    state: str = "starting"  # ok | lagging | paused | down | not_standby | starting
    usable: bool = False
    replay_lsn: int = 0
    lag_ms: float | None = None
    error: str | None = None
    checked_at: float | None = None
    pool: asyncpg.Pool | None = None
    engine: Any = None
    read_sessionmaker: Any = None
    _check_conn: asyncpg.Connection | None = field(default=None, repr=False)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "in_rotation": self.usable,
            "lag_ms": None if self.lag_ms is None else round(self.lag_ms),
            "replay_lsn": format_lsn(self.replay_lsn) if self.replay_lsn else None,
            "error": self.error,
        }


class Replicas:
    """The standbys of one process: health checks, routing, and the walkers' write positions."""

    def __init__(
        self,
        primary_url: str,
        urls: Sequence[str],
        *,
        max_lag_ms: int,
        check_ms: int,
        open_pool: OpenPool,
        open_engine: OpenEngine,
    ) -> None:
        self.primary_url = primary_url
        self.replicas = [Replica(url, display_name(url)) for url in urls]
        self.max_lag_ms = max_lag_ms
        self.check_s = check_ms / 1000
        self._open_pool = open_pool
        self._open_engine = open_engine
        self._turn = itertools.count()
        self._usable: tuple[Replica, ...] = ()
        # (monotonic time, primary insert LSN) of recent checks: how old a replay position is
        window = max(4 * max_lag_ms / 1000, 10.0)
        self._samples: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=max(16, int(window / self.check_s) + 1)
        )
        self._writes: dict[uuid.UUID, int] = {}
        self._floor = 0
        self._primary_conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._disposals: set[asyncio.Task[None]] = set()  # referenced until done
        self._closing = False

    # ------------------------------------------------------------------ the read path

    def choose(self, min_lsn: int = 0) -> Replica | None:
        """A usable standby that has replayed min_lsn (round robin), else None: the primary."""
        usable = self._usable
        if not usable:
            return None
        need = max(min_lsn, self._floor)
        start = next(self._turn)
        for offset in range(len(usable)):
            replica = usable[(start + offset) % len(usable)]
            if replica.replay_lsn >= need and replica.usable:
                return replica
        return None

    def required_lsn(self, user_id: uuid.UUID | None, marker: str | None) -> int:
        """What the standby must have replayed for this caller: the larger of the marker it
        sent back and the last write this process saw it make."""
        need = (parse_lsn(marker) or 0) if marker else 0
        if user_id is not None:
            need = max(need, self._writes.get(user_id, 0))
        return need

    def remember_write(self, user_id: uuid.UUID, lsn: int) -> None:
        if len(self._writes) >= MAX_REMEMBERED_WRITERS and user_id not in self._writes:
            self._floor = max(self._floor, lsn)
            self._writes.clear()
        self._writes[user_id] = max(lsn, self._writes.get(user_id, 0))

    def mark_down(self, replica: Replica, exc: BaseException) -> None:
        """A request failed on this standby: out of rotation at once (the next check that finds
        it healthy brings it back with fresh connections)."""
        self._take_out(replica, "down", f"{type(exc).__name__}: {exc}"[:200])

    async def primary_lsn(self, conn: Any) -> int:
        """The primary's WAL insert position on `conn`, taken right after a write committed."""
        text = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        return parse_lsn(text) or 0

    # ------------------------------------------------------------------ the checks

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="replicas")

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._disposals:
            await asyncio.gather(*self._disposals, return_exceptions=True)
        for replica in self.replicas:
            replica.usable = False
            await self._close_pools(replica)
            await _close_conn(replica._check_conn)
            replica._check_conn = None
        await _close_conn(self._primary_conn)
        self._primary_conn = None
        self._usable = ()

    def status(self) -> list[dict[str, Any]]:
        return [replica.status() for replica in self.replicas]

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die: the next tick tries again
                logger.exception("replica check failed")
            await asyncio.sleep(self.check_s)

    async def check_once(self) -> None:
        """Sample the primary, then every standby; update states, pools and the rotation."""
        now = time.monotonic()
        primary = await self._sample_primary()
        if primary is not None:
            self._samples.append((now, primary))
        await asyncio.gather(*(self._check(replica) for replica in self.replicas))
        self._forget_satisfied()

    async def _sample_primary(self) -> int | None:
        try:
            if self._primary_conn is None or self._primary_conn.is_closed():
                self._primary_conn = await asyncpg.connect(
                    self.primary_url, timeout=CHECK_TIMEOUT_S, statement_cache_size=0
                )
            text = await self._primary_conn.fetchval(
                "SELECT pg_current_wal_insert_lsn()::text", timeout=CHECK_TIMEOUT_S
            )
            return parse_lsn(text)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            logger.warning("replica check: primary unreachable (%s)", exc)
            await _close_conn(self._primary_conn)
            self._primary_conn = None
            return None

    async def _check(self, replica: Replica) -> None:
        try:
            if replica._check_conn is None or replica._check_conn.is_closed():
                replica._check_conn = await asyncpg.connect(
                    replica.url, timeout=CHECK_TIMEOUT_S, statement_cache_size=0
                )
            row = await replica._check_conn.fetchrow(
                "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS replay, "
                "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused",
                timeout=CHECK_TIMEOUT_S,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            await _close_conn(replica._check_conn)
            replica._check_conn = None
            replica.lag_ms = None
            replica.checked_at = time.monotonic()
            self._take_out(replica, "down", f"{type(exc).__name__}: {exc}"[:200])
            return
        replica.checked_at = time.monotonic()
        if not row["standby"]:
            replica.lag_ms = None
            self._take_out(replica, "not_standby", "not in recovery (promoted?): never read")
            return
        replica.replay_lsn = max(replica.replay_lsn, parse_lsn(row["replay"]) or 0)
        replica.lag_ms = self._lag_ms(replica.replay_lsn, replica.checked_at)
        if replica.lag_ms is None or replica.lag_ms > self.max_lag_ms:
            state = "paused" if row["paused"] else "lagging"
            self._take_out(replica, state, f"replay lag beyond {self.max_lag_ms} ms")
            return
        if not replica.usable:
            try:
                await self._open_pools(replica)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                self._take_out(replica, "down", f"{type(exc).__name__}: {exc}"[:200])
                return
            logger.info("standby %s in rotation (lag %.0f ms)", replica.name, replica.lag_ms)
        replica.state, replica.error, replica.usable = "ok", None, True
        self._refresh_rotation()

    def _lag_ms(self, replay_lsn: int, now: float) -> float | None:
        """How old the newest primary position this standby has replayed is (None: unknown,
        no sample of the primary yet)."""
        if not self._samples:
            return None
        for at, lsn in reversed(self._samples):
            if lsn <= replay_lsn:
                return (now - at) * 1000
        return (now - self._samples[0][0]) * 1000 + self.check_s * 1000

    def _take_out(self, replica: Replica, state: str, error: str | None) -> None:
        was_usable = replica.usable
        replica.usable = False
        replica.state, replica.error = state, error
        self._refresh_rotation()
        if was_usable:
            logger.warning("standby %s out of rotation: %s (%s)", replica.name, state, error)
        if state == "down" and (replica.pool is not None or replica.engine is not None):
            # its connections are dead: drop them; a recovery opens new ones
            pool, engine = replica.pool, replica.engine
            replica.pool = replica.engine = replica.read_sessionmaker = None
            task = asyncio.get_running_loop().create_task(_dispose(pool, engine))
            self._disposals.add(task)
            task.add_done_callback(self._disposals.discard)

    def _refresh_rotation(self) -> None:
        self._usable = tuple(r for r in self.replicas if r.usable)

    async def _open_pools(self, replica: Replica) -> None:
        if replica.pool is None:
            replica.pool = await asyncio.wait_for(self._open_pool(replica.url), CHECK_TIMEOUT_S)
        if replica.engine is None:
            replica.engine, replica.read_sessionmaker = self._open_engine(replica.url)

    async def _close_pools(self, replica: Replica) -> None:
        pool, engine = replica.pool, replica.engine
        replica.pool = replica.engine = replica.read_sessionmaker = None
        await _dispose(pool, engine)

    def _forget_satisfied(self) -> None:
        """Drop remembered writes every standby in rotation has replayed (keeps the map small)."""
        if not self._usable or not self._writes:
            return
        behind = min(r.replay_lsn for r in self.replicas)
        if behind <= 0:
            return
        self._writes = {user: lsn for user, lsn in self._writes.items() if lsn > behind}


async def _close_conn(conn: asyncpg.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.terminate()


async def _dispose(pool: asyncpg.Pool | None, engine: Any) -> None:
    if pool is not None:
        with contextlib.suppress(Exception):
            pool.terminate()
    if engine is not None:
        with contextlib.suppress(Exception):
            await engine.dispose(close=False)
