"""Alembic environment: migrations run over a synchronous psycopg connection."""

from __future__ import annotations

import os
import re
from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from stepcoin.db import libpq_url
from stepcoin.models import Base

config = context.config
target_metadata = Base.metadata

# Tables that exist in the database but are not models: monthly partitions of step_records
# (made by a job) and the job queue's own tables (procrastinate's schema, applied by 0002).
_UNMANAGED = re.compile(r"^(step_records_(p\d{6}|default)|procrastinate_.*)$")


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if type_ == "table" and reflected and compare_to is None and name and _UNMANAGED.match(name):
        return False
    if type_ in {"index", "unique_constraint", "foreign_key_constraint"} and reflected:
        table = getattr(obj, "table", None)
        if table is not None and _UNMANAGED.match(table.name):
            return False
        referred = getattr(obj, "referred_table", None)
        if referred is not None and _UNMANAGED.match(referred.name):
            return False  # PostgreSQL's per-partition copies of a foreign key
    return True


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set (or use `stepcoin migrate`)")
    return libpq_url(url).replace("postgresql://", "postgresql+psycopg://", 1)


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
