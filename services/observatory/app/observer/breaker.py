"""A small circuit breaker so that, while Ollama is down, requests fail at once.

Closed: calls go through; ``failures`` consecutive failures open it. Open: calls are refused
for ``open_seconds``. Then half-open: exactly one probe call goes through; its success closes
the breaker, its failure opens it again, and while it runs every other call is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class BreakerOpen(Exception):
    def __init__(self, retry_in: float, last_error: str) -> None:
        super().__init__(last_error)
        self.retry_in = retry_in
        self.last_error = last_error


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failures
        self._open_seconds = open_seconds
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False
        self.last_error = ""

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self._open_seconds:
            return "open"
        return "half_open"

    def admit(self) -> bool:
        """Let a call through or raise :class:`BreakerOpen`; True when the call is the probe."""
        state = self.state
        if state == "closed":
            return False
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        assert self._opened_at is not None
        retry_in = max(0.0, self._opened_at + self._open_seconds - self._clock())
        raise BreakerOpen(retry_in, self.last_error)

    def success(self, probe: bool = False) -> None:
        """Ollama answered: close the breaker. A call admitted before the breaker opened may
        end during a probe; it closes the breaker too, but the probe stays the probe."""
        self._consecutive = 0
        self._opened_at = None
        if probe:
            self._probing = False

    def failure(self, reason: str, probe: bool = False) -> None:
        """A failure of the probe reopens the breaker; other failures count only while it is
        closed (a late failure of a call admitted earlier must neither end the probe, which
        would let a second one through, nor push the reopening further out)."""
        self.last_error = reason
        if probe:
            self._opened_at = self._clock()
            self._probing = False
            return
        if self._opened_at is not None:
            return
        self._consecutive += 1
        if self._consecutive >= self._threshold:
            self._opened_at = self._clock()

    def release(self, probe: bool) -> None:
        """A call ended with neither verdict (it was cancelled): let another probe run."""
        if probe:
            self._probing = False
