"""The job-queue interface the API talks to. The embedded default runs jobs in-process; a
Redis-backed queue implements the same interface for scale-out, so the API never knows which
one runs."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from app.analysis import AnalysisOptions

log = structlog.get_logger(__name__)

PRIORITIES = {"high": 0, "normal": 1, "low": 2}
# Within a priority, a single analysis (someone waits for that one answer) queues as if it
# had been submitted this long before it was: ahead of batch items that have waited less,
# behind those that have waited longer, so a stream of single analyses never starves a
# batch.
SINGLE_AHEAD_SECONDS = 60.0


class QueueFull(Exception):
    """The queue holds as many jobs as it may; the client should retry later."""


@dataclass(slots=True)
class AnalysisJob:
    analysis_id: str
    payload: bytes | None
    """The parsed conversation, serialised (``app.jobs.work.serialise``); dropped once taken."""
    options: AnalysisOptions
    message_count: int = 0
    observer_mode: str = "auto"
    priority: str = "normal"
    batch_id: str | None = None
    """Items of a batch wait under a capacity of their own (a batch is queued whole)."""
    extra: dict[str, Any] = field(default_factory=dict)


class JobQueue(abc.ABC):
    on_finished: Callable[[str], Awaitable[None]] | None = None
    """Called with the id of every job that ended (any outcome), after its row was written;
    errors are logged, never raised."""
    _hooks: set[asyncio.Task[None]]  # set up empty by each queue's __init__

    def _fire_finished(self, analysis_id: str) -> None:
        """Run ``on_finished`` for ``analysis_id`` in a task of its own (kept in ``_hooks``
        until it ends, so a stop can cancel what is still running)."""
        if self.on_finished is None:
            return
        task = asyncio.create_task(self._notify(self.on_finished, analysis_id))
        self._hooks.add(task)
        task.add_done_callback(self._hooks.discard)

    async def _stop_hooks(self) -> None:
        """Cancel hooks still running: what one does (a batch's aggregate) is redone when
        next needed."""
        hooks = list(self._hooks)
        for hook in hooks:
            hook.cancel()
        await asyncio.gather(*hooks, return_exceptions=True)

    @staticmethod
    async def _notify(hook: Callable[[str], Awaitable[None]], analysis_id: str) -> None:
        try:
            await hook(analysis_id)
        except Exception as exc:
            log.error("analysis.finished_hook_failed", analysis_id=analysis_id, error=repr(exc))

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def submit(self, job: AnalysisJob) -> None:
        """Queue ``job`` (its row is already committed as pending); raises ``QueueFull``."""

    @abc.abstractmethod
    async def cancel(self, analysis_id: str) -> None:
        """Stop ``analysis_id`` if it is queued or running here. The caller has already moved
        its row to ``cancelled``; this frees the worker and guarantees nothing is stored."""

    async def reprioritise(self, analysis_id: str, priority: str) -> bool:
        """Move ``analysis_id`` to ``priority`` if it is still queued; whether it moved."""
        return False

    @abc.abstractmethod
    async def wait(self, analysis_id: str, timeout: float) -> None:
        """Return when ``analysis_id`` finished (any outcome) or after ``timeout`` seconds."""

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """Queue depth, running jobs and capacity, for readiness and metrics."""
