"""Which service processes are alive, so that restart recovery never fails a peer's work.

Each process registers a ``runners`` row under an id of its own (its label, which defaults to
the host name, plus its pid and a random suffix: two processes never share one, whatever
their configuration) and moves its heartbeat forward every few seconds. Any process fails
queued or running work whose runner has no row or a stale heartbeat; that work was held in
the memory of a process that is gone. A process that stops cleanly fails what it still held
and removes its row. See docs/decisions/0008-runner-heartbeats.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import repository as repo

log = structlog.get_logger(__name__)

INTERRUPTED = (
    "the service process holding this analysis stopped while it was queued or running; the "
    "conversation was not kept, so submit it again"
)


def new_runner_id(label: str) -> str:
    return f"{label[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


def default_label(instance_id: str) -> str:
    return (instance_id or socket.gethostname())[:64]


class RunnerRegistry:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        label: str,
        *,
        interval: float,
        stale_after: float,
    ) -> None:
        self._sessions = sessions
        self.label = label
        self.runner_id = new_runner_id(label)
        self._interval = interval
        self._stale_after = timedelta(seconds=stale_after)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self._sessions() as session, session.begin():
            await repo.register_runner(session, self.runner_id, self.label)
        await self.recover()
        self._task = asyncio.create_task(self._beat(), name="runner-heartbeat")

    async def recover(self) -> list[str]:
        """Fail the work of runners that are gone; returns the analysis ids."""
        async with self._sessions() as session, session.begin():
            ids = await repo.fail_orphaned(session, self._stale_after, INTERRUPTED)
        if ids:
            log.warning("analysis.orphaned_work_failed", count=len(ids))
        return ids

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                async with self._sessions() as session, session.begin():
                    alive = await repo.heartbeat(session, self.runner_id)
                    if not alive:
                        # A peer judged this process dead (the database was out of reach for
                        # longer than the stale limit) and failed its work; carry on as new.
                        log.warning("runner.reregistered", runner=self.runner_id)
                        await repo.register_runner(session, self.runner_id, self.label)
                await self.recover()
            except Exception as exc:
                log.error("runner.heartbeat_failed", error=type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with self._sessions() as session, session.begin():
                ids = await repo.fail_runner_work(session, self.runner_id, INTERRUPTED)
                await repo.unregister_runner(session, self.runner_id)
            if ids:
                log.warning("analysis.interrupted_on_stop", count=len(ids))
        except Exception as exc:
            log.error("runner.unregister_failed", error=type(exc).__name__)

    def stats(self) -> dict[str, Any]:
        return {"runner": self.runner_id}
