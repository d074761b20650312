"""Processes that start together on one fresh database (an API and its workers) all migrate
it on start: they take turns, and every one comes up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from app.core.database import create_engine
from app.core.migrate import upgrade


async def test_processes_starting_together_take_turns_migrating_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    engines = [create_engine(url) for _ in range(4)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
        async with engines[0].connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM analyses")) == 0
    finally:
        for engine in engines:
            await engine.dispose()
