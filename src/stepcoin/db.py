"""The database: engine, one session per request or job, and the constraint naming convention."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from stepcoin.errors import AppError

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


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 5) -> AsyncEngine:
    """An asyncpg engine; the application_name shows StepCoin in pg_stat_activity."""
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "stepcoin"}},
    )


class Database:
    """Holds the engine and the session factory for the life of the process."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 5) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # reads that need no transaction: no BEGIN/COMMIT round trips
        self.read_sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    async def dispose(self) -> None:
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


async def get_read_driver(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[Any]:
    """A pooled connection's bare asyncpg handle, outside any transaction.

    For hot single-statement reads: no BEGIN/COMMIT round trips and no ORM session, the
    statement is prepared once per connection (PERFORMANCE.md: round trips decide everything).
    """
    async with database.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        yield raw.driver_connection


DriverDep = Annotated[Any, Depends(get_read_driver, scope="function")]


async def get_read_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    """A session in autocommit for GET routes: each statement stands alone, nothing to commit."""
    async with database.read_sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
