"""Analysis functions for tests, run in the worker processes in place of the real one.

They cross a process boundary, so each is a module-level function or an instance of a
module-level class; a ``Release`` is a flag that a test in the API process sets and a
worker process sees (a file).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.analysis import analyze
from app.core.cancellation import CancelToken


def _fresh_path(kind: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"observatory-test-{kind}-{uuid.uuid4().hex}")


@dataclass(frozen=True)
class Release:
    path: str = field(default_factory=lambda: _fresh_path("release"))

    def set(self) -> None:
        Path(self.path).touch()

    def is_set(self) -> bool:
        return os.path.exists(self.path)


@dataclass(frozen=True)
class BlockingAnalysis:
    """Runs until released (checking its token like the real analysis), then analyses."""

    release: Release

    def __call__(self, conversation: Any, options: Any, token: CancelToken) -> dict[str, Any]:
        while not self.release.is_set():
            time.sleep(0.005)
            token.check()
        return analyze(conversation, options, token)


def blocking_analysis(release: Release) -> BlockingAnalysis:
    return BlockingAnalysis(release)


@dataclass(frozen=True)
class PidRecorder:
    """Writes the worker process's pid to a file, then runs ``then``."""

    then: Any = analyze
    path: str = field(default_factory=lambda: _fresh_path("pid"))

    def __call__(self, conversation: Any, options: Any, token: CancelToken) -> dict[str, Any]:
        Path(self.path).write_text(str(os.getpid()))
        result: dict[str, Any] = self.then(conversation, options, token)
        return result

    def pid(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return int(Path(self.path).read_text())
            except (FileNotFoundError, ValueError):
                time.sleep(0.01)
        raise AssertionError("the analysis never started in a worker process")


def never_checks(conversation: Any, options: Any, token: CancelToken) -> dict[str, Any]:
    """A long computation that never calls ``token.check()``: only a kill stops it."""
    time.sleep(30)
    return {}


def hangs_in_c(conversation: Any, options: Any, token: CancelToken) -> dict[str, Any]:
    """Holds its interpreter like a runaway regular expression would."""
    import re

    re.match(r"(a+)+$", "a" * 40 + "b")
    return {}


def unserialisable(conversation: Any, options: Any, token: CancelToken) -> dict[str, Any]:
    return {"bad": {1, 2}}


def leaky(conversation: Any, options: Any, token: Any) -> dict[str, Any]:
    int(conversation.messages[0].text)  # ValueError quoting the text
    return {}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True)
class SlowAnalysis:
    """Takes ``seconds`` (checking its token like the real analysis), then analyses."""

    seconds: float

    def __call__(self, conversation: Any, options: Any, token: CancelToken) -> dict[str, Any]:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            time.sleep(0.01)
            token.check()
        return analyze(conversation, options, token)
