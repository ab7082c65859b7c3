"""The database: engine, one session per request or job, and the constraint naming convention."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from stepcoin.config import get_settings
from stepcoin.errors import AppError
from stepcoin.replicas import Replica, Replicas, is_connection_error

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names are predictable for migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _with_scheme(url: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def sqlalchemy_url(url: str) -> str:
    """DATABASE_URL as SQLAlchemy's asyncpg URL (postgres://, postgresql:// or +driver accepted)."""
    return _with_scheme(url, "postgresql+asyncpg")


def libpq_url(url: str) -> str:
    """DATABASE_URL as a plain libpq URL, for psycopg (the job queue) and the PostgreSQL tools."""
    return _with_scheme(url, "postgresql")


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def pgbouncer_connect_args() -> dict[str, Any]:
    """asyncpg behind PgBouncer in transaction pooling mode (1.18 keeps no prepared statements
    across transactions): no statement caches, and unique names for the statements that
    SQLAlchemy still prepares inside a transaction, so two clients never collide on one
    server connection. The raw-connection hot paths (steps.service) follow these settings."""
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


SESSION_SETTINGS = {"jit": "off"}
"""What every session of the application sets at connect, besides its application_name.

`jit = off`: PostgreSQL compiles a statement with LLVM when its *estimated* cost passes
`jit_above_cost` (100,000), 25-250 ms of compilation before the first row. An estimate of a
table that was never analyzed, or analyzed full and since drained (the boards' change log after
a burst of syncs), passes it: the boards' refresh with nothing to do cost 25-33 ms at rest and
up to 256 ms under load, all of it compilation (BENCHMARKS.md run 23). The longest statement of
the hot schedule, the boards' full rebuild over 900,000 days, ran faster without it too (158
against 183-242 ms)."""


def server_settings(pgbouncer: bool) -> dict[str, str]:
    """The startup packet's settings (asyncpg's server_settings). PgBouncer refuses a startup
    parameter other than a few (application_name among them): behind it, its pgbouncer.ini
    sets SESSION_SETTINGS on every server connection (`connect_query`, docs/operations.md)."""
    return {"application_name": "stepcoin", **({} if pgbouncer else SESSION_SETTINGS)}


def psycopg_connect_kwargs(pgbouncer: bool) -> dict[str, Any]:
    """psycopg (the job queue): the session's settings; never prepare server-side statements
    behind PgBouncer."""
    if pgbouncer:
        return {"prepare_threshold": None}
    return {"options": " ".join(f"-c {key}={value}" for key, value in SESSION_SETTINGS.items())}


def _pgbouncer_default() -> bool:
    return get_settings().database_pgbouncer


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    pgbouncer: bool = False,
    timeouts: dict[str, float] | None = None,
) -> AsyncEngine:
    """An asyncpg engine; the application_name shows StepCoin in pg_stat_activity. timeouts:
    asyncpg's connect `timeout` and `command_timeout` (a standby's: see STANDBY_TIMEOUTS)."""
    connect_args: dict[str, Any] = {"server_settings": server_settings(pgbouncer)}
    connect_args.update(timeouts or {})
    if pgbouncer:
        connect_args.update(pgbouncer_connect_args())
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        connect_args=connect_args,
    )


FAST_POOL_MAX_QUERIES = 1_000_000
"""asyncpg recycles a pooled connection after this many queries (its default, 50,000, reopens a
session every few seconds per connection under load: PERFORMANCE.md)."""


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The fast pool's release hook: nothing to undo, so no reset query (see `fast_pool`).

    asyncpg still runs its own `_reset()` before this hook: listeners are dropped and an open
    transaction (there is never one) would be rolled back, which costs no round trip when idle.
    """


READ_AFTER_KEY = "stepcoin.read_after"
"""ASGI scope key: the WAL position a standby must have replayed to serve this request."""
REPLICA_USED_KEY = "stepcoin.replica"
"""ASGI scope key: the standby a request's read went to (a failure there is retried)."""


STANDBY_TIMEOUTS = {"timeout": 2.0, "command_timeout": 5.0}
"""A standby that does not connect in 2 s or answer a read in 5 s counts as down: the read is
answered by the primary (a partitioned host would otherwise hold it for the TCP timeout)."""


async def _open_fast_pool(
    url: str, size: int, pgbouncer: bool, timeouts: dict[str, float] | None = None
) -> asyncpg.Pool:
    connect_args: dict[str, Any] = {"server_settings": server_settings(pgbouncer)}
    connect_args.update(timeouts or {})
    if pgbouncer:
        connect_args["statement_cache_size"] = 0
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=size,
        max_queries=FAST_POOL_MAX_QUERIES,
        reset=_keep_session,
        **connect_args,
    )
    return pool


class Database:
    """Holds the engine and the session factory for the life of the process, and a bare asyncpg
    pool of autocommit connections for the hot single-statement paths (`fast_pool`)."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 5,
        pgbouncer: bool | None = None,
        fast_pool_size: int | None = None,
        replica_urls: Sequence[str] = (),
        replica_max_lag_ms: int = 1000,
        replica_check_ms: int = 200,
    ) -> None:
        """pgbouncer=None: STEPCOIN_DATABASE_PGBOUNCER decides. fast_pool_size None: pool_size
        + max_overflow, as many as the engine may hold (the fast pool carries the syncs, the
        orders and the hot reads: one process under as many concurrent requests must not queue
        for a connection). replica_urls: streaming standbys for the hot reads (`replicas`;
        none: everything on this URL, exactly as without the feature)."""
        self.url = url
        self.fast_pool_size = fast_pool_size or pool_size + max_overflow
        self._fast_pool: asyncpg.Pool | None = None
        self._fast_pool_lock = asyncio.Lock()
        self.pgbouncer = _pgbouncer_default() if pgbouncer is None else pgbouncer
        # The whole budget (pool_size + max_overflow) is kept open once opened: SQLAlchemy
        # closes an overflow connection as soon as it is returned, so a process serving more
        # concurrent requests than pool_size opened a PostgreSQL session every ~13 requests
        # (issue 13). The number of connections a process may hold is unchanged.
        self.engine = create_engine(
            url, pool_size=pool_size + max_overflow, max_overflow=0, pgbouncer=self.pgbouncer
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # reads that need no transaction: no BEGIN/COMMIT round trips
        self.read_sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        self._engine_size = pool_size + max_overflow
        self.replicas: Replicas | None = None
        if replica_urls:
            self.replicas = Replicas(
                libpq_url(url),
                [libpq_url(u) for u in replica_urls],
                max_lag_ms=replica_max_lag_ms,
                check_ms=replica_check_ms,
                open_pool=self._open_replica_pool,
                open_engine=self._open_replica_engine,
            )

    async def _open_replica_pool(self, url: str) -> asyncpg.Pool:
        """A standby's fast pool: the same settings as the primary's (see `fast_pool`)."""
        return await _open_fast_pool(url, self.fast_pool_size, self.pgbouncer, STANDBY_TIMEOUTS)

    def _open_replica_engine(self, url: str) -> tuple[AsyncEngine, Any]:
        """A standby's engine and its autocommit read sessions (ReplicaSessionDep)."""
        engine = create_engine(
            url,
            pool_size=self._engine_size,
            max_overflow=0,
            pgbouncer=self.pgbouncer,
            timeouts=STANDBY_TIMEOUTS,
        )
        sessions = async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        return engine, sessions

    def replica_for(self, scope: Any) -> Replica | None:
        """The standby a read may use (None: the primary). Only a request the routing
        middleware (main.ReplicaRouting) has looked at may go to a standby: it puts there what
        the caller must see (`stepcoin.read_after`), and forbids standbys on a retry."""
        replicas = self.replicas
        if replicas is None:
            return None
        need = scope.get(READ_AFTER_KEY)
        if need is None:
            return None
        return replicas.choose(need)

    async def fast_pool(self) -> asyncpg.Pool:
        """asyncpg's own pool, opened on first use, for hot statements outside any explicit
        transaction: each one runs in autocommit (its own transaction).

        Released connections skip asyncpg's reset query (pg_advisory_unlock_all, CLOSE ALL,
        UNLISTEN *, RESET ALL: a round trip and 12-25% of a hot read's throughput). That is
        safe because nothing but `fetch*` of fixed single statements ever runs on these
        connections: the hot reads (DriverDep, auth.dependencies.active_claims), the step sync
        (steps.service: the settings, the snapshot read and the one call of
        stepcoin_apply_sync), the order placement (shop.orders: one call of
        stepcoin_place_order) and a review's decision (steps.review.decide: stepcoin_review_open,
        then one call of stepcoin_review_decide); each write is one function call, its locks
        row locks of its own transaction. No SET or
        set_config, no session-level advisory lock, no LISTEN, no cursor, no temporary table,
        no explicit transaction; the only session state is asyncpg's own prepared-statement
        cache, which it manages itself (and which pgbouncer mode turns off). Anything that
        needs session state or a transaction of several statements uses the SQLAlchemy
        engine, whose pool does reset. tests/test_fast_pool.py and tests/steps/test_fast_sync.py
        hold it.
        """
        pool = self._fast_pool
        if pool is not None:
            return pool
        async with self._fast_pool_lock:
            if self._fast_pool is None:
                self._fast_pool = await _open_fast_pool(
                    libpq_url(self.url), self.fast_pool_size, self.pgbouncer
                )
            return self._fast_pool

    def start_replica_checks(self) -> None:
        """Start the standbys' background health check (no standby configured: nothing)."""
        if self.replicas is not None:
            self.replicas.start()

    async def dispose(self) -> None:
        if self.replicas is not None:
            await self.replicas.close()
        pool, self._fast_pool = self._fast_pool, None
        if pool is not None:
            await pool.close()
        await self.engine.dispose()


@contextlib.asynccontextmanager
async def session_scope(database: Database) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends normally, rolled back on any error.

    This is the only place that commits; repositories and services only flush.
    """
    async with database.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except AppError as exc:
            if exc.keep_changes:
                await session.commit()
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise


class SessionDriver:
    """A session's connection spoken to like a bare asyncpg connection (`fetchval`, `fetch`
    with $n parameters), inside the session's transaction: for code written once for the fast
    pool's autocommit connections (stepcoin.steps.review.decide) that must also run in a
    caller's transaction."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def fetchval(self, sql: str, *args: Any) -> Any:
        connection = await self.session.connection()
        return (await connection.exec_driver_sql(sql, args)).scalar()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        connection = await self.session.connection()
        return list((await connection.exec_driver_sql(sql, args)).all())


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    """The request's session; commits before the response is sent (see main.create_app)."""
    async with session_scope(database) as session:
        yield session


# scope="function": the commit happens before the response leaves, so a failed commit is a 500
# and never a success the client believed.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_fast_driver(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[Any]:
    """A bare asyncpg connection of the fast pool, outside any transaction.

    For hot single-statement reads: no BEGIN/COMMIT round trips, no ORM session and no reset
    on release (see Database.fast_pool for why that is safe); the statement is prepared once
    per connection (PERFORMANCE.md: round trips decide everything).
    """
    async with (await database.fast_pool()).acquire() as conn:
        yield conn


DriverDep = Annotated[Any, Depends(get_fast_driver, scope="function")]


async def get_read_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    """A session in autocommit for GET routes: each statement stands alone, nothing to commit."""
    async with database.read_sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def get_replica_read_session(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    """ReadSessionDep on a healthy streaming standby that has what the caller must see, else on
    the primary (docs/replicas.md). For the named hot read routes only: never a transaction."""
    replica = database.replica_for(request.scope)
    if replica is None or replica.read_sessionmaker is None:
        async with database.read_sessionmaker() as session:
            yield session
        return
    request.scope[REPLICA_USED_KEY] = replica
    async with replica.read_sessionmaker() as session:
        try:
            yield session
        except Exception as exc:
            _standby_failed(database, replica, exc)
            raise


ReplicaSessionDep = Annotated[AsyncSession, Depends(get_replica_read_session, scope="function")]


async def get_replica_driver(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[Any]:
    """DriverDep on a healthy streaming standby (as ReplicaSessionDep), else on the primary."""
    replica = database.replica_for(request.scope)
    pool = replica.pool if replica is not None else None
    if replica is None or pool is None:
        async with (await database.fast_pool()).acquire() as conn:
            yield conn
        return
    request.scope[REPLICA_USED_KEY] = replica
    try:
        async with pool.acquire() as conn:
            yield conn
    except Exception as exc:
        _standby_failed(database, replica, exc)
        raise


def _standby_failed(database: Database, replica: Replica, exc: BaseException) -> None:
    """A read on a standby failed: a dead server leaves the rotation at once (main.ReplicaRouting
    runs the request again on the primary either way)."""
    if database.replicas is not None and is_connection_error(exc):
        database.replicas.mark_down(replica, exc)


ReplicaDriverDep = Annotated[Any, Depends(get_replica_driver, scope="function")]
