"""Why the observer could not contribute, as exceptions carrying a reason for the result."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.core.errors import ServiceUnavailable

Status = Literal["unavailable", "failed"]


class ObserverError(Exception):
    """The observer gave nothing usable; ``status`` and ``reason`` go into ``observer``."""

    status: ClassVar[Status] = "failed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ObserverUnavailable(ObserverError):
    """Ollama cannot be reached, answers with a server error, or its breaker is open."""

    status = "unavailable"


class ModelNotFound(ObserverUnavailable):
    """Ollama is up but has no model of the configured name."""


class ObserverFailed(ObserverError):
    """Ollama answered, but too slowly, refused the request, or its answers were invalid."""


class ObserverRequiredError(ServiceUnavailable):
    """The request said ``observer: required`` and the observer could not contribute."""

    title = "Observer unavailable"
    type_ = "observer-unavailable"
