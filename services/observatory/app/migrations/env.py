"""Alembic environment: runs on a connection handed over by the app, or opens its own."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import app.analyses.models
import app.audit.models
import app.batches.models
import app.jobs.models
import app.keys.models
import app.webhooks.models  # noqa: F401  (every table registers on Base.metadata)
from app.core.config import get_settings
from app.core.database import Base, create_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url") or get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().database_url
    asyncio.run(_run_async(url))
