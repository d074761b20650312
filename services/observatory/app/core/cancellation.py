"""Cooperative cancellation for CPU-bound analysis running in worker threads.

The analysis calls ``token.check()`` inside its loops; once the token is cancelled (or its
deadline passes) the next check raises, so the work stops within a few milliseconds and
nothing is stored.
"""

from __future__ import annotations

import threading
import time


class AnalysisCancelled(Exception):
    """Raised inside the analysis when its token was cancelled."""


class AnalysisTimedOut(AnalysisCancelled):
    """Raised inside the analysis when its deadline has passed."""


class CancelToken:
    __slots__ = ("_deadline", "_event")

    def __init__(self, timeout: float | None = None) -> None:
        self._event = threading.Event()
        self._deadline = time.monotonic() + timeout if timeout else None

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise AnalysisCancelled("analysis cancelled")
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise AnalysisTimedOut("analysis exceeded its time limit")


NEVER = CancelToken()
"""A token that is never cancelled, for callers (CLI, tests) that need none."""
