"""Apply and inspect Alembic migrations from code (`stepcoin migrate`, serve, /readyz)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(database_url: str) -> Config:
    """The migrations ship inside the package, so an installed `stepcoin` can migrate."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("stepcoin") / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raises if the models and the migrated database differ (alembic check)."""
    command.check(alembic_config(database_url))


@lru_cache(maxsize=1)
def expected_heads() -> frozenset[str]:
    config = Config()
    config.set_main_option("script_location", str(resources.files("stepcoin") / "migrations"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


async def applied_heads(engine: AsyncEngine) -> frozenset[str]:
    """The revisions the database is at (alembic_version); raises when it cannot be read."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    return frozenset(str(row[0]) for row in rows)
