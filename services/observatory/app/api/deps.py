"""Dependencies shared by the endpoints: the service state built by the lifespan, a session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.crypto import Fingerprinter, ResultCipher
from app.jobs.base import JobQueue
from app.jobs.pool import WorkerPool


@dataclass
class ServiceState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    queue: JobQueue
    pool: WorkerPool
    cipher: ResultCipher
    fingerprints: Fingerprinter
    observer: Any | None = None
    runner: str | None = None
    runners: Any = None
    limiter: Any = None
    metrics: Any = None
    tokens: Any = None
    key_cache: Any = None
    webhooks: Any = None
    audit: Any = None


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A session for one request. Endpoints that write commit explicitly before answering (so a
    failed commit is the client's error response, not a lost write); anything left is rolled back."""
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
