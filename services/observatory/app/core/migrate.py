"""Apply Alembic migrations: on start (on the app's own engine) and from ``observatory db upgrade``."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Replicas starting together on one PostgreSQL database take turns migrating.
MIGRATION_LOCK_KEY = 0x0B5E7A7


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


@contextlib.asynccontextmanager
async def _sqlite_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """Processes starting together on one SQLite file (an API and its workers) take turns
    migrating, by a lock on a file beside the database; PostgreSQL's turn is in
    ``_upgrade``."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    fd = os.open(f"{path}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database to ``revision``."""
    async with _sqlite_turn(engine), engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)
