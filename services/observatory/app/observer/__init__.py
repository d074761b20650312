"""The observer: an LLM behind Ollama's HTTP API that reads the conversation too (SPEC §4)."""

from app.observer.errors import (
    ModelNotFound,
    ObserverError,
    ObserverFailed,
    ObserverRequiredError,
    ObserverUnavailable,
)
from app.observer.observer import MODES, Observer

__all__ = [
    "MODES",
    "ModelNotFound",
    "Observer",
    "ObserverError",
    "ObserverFailed",
    "ObserverRequiredError",
    "ObserverUnavailable",
]
