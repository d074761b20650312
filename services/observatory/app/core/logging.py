"""structlog: readable console in development, JSON in production; a request id bound per request.

Events are names with fields. Conversation text is never logged: log sizes and ids only.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

import structlog


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (test capture, redirected streams)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def withhold_exception_messages(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Render ``exc_info`` as type and frames only. Exception messages can quote their input
    (``int()``, ``strptime``, ``KeyError`` …), and the input may be conversation text."""
    exc_info = event.pop("exc_info", None)
    if not exc_info:
        return event
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    etype, _value, tb = exc_info
    if etype is None:
        return event
    event["exception"] = describe_exception(etype, tb)
    return event


def describe_exception(etype: type[BaseException], tb: TracebackType | None) -> str:
    """A traceback's frames and the exception's type, without its message."""
    frames = "".join(traceback.format_list(traceback.extract_tb(tb)))
    return (
        f"Traceback (most recent call last):\n{frames}"
        f"{etype.__module__}.{etype.__qualname__} (message withheld)"
    )


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def _escaped(value: str) -> str:
    value = value.translate(_CONTROL)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a crafted path or header
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def escape_control_characters(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Control characters in logged strings (a ``%00`` or ``%0a`` in a path, a header value)
    written as escapes, so one log line stays one line and a terminal stays a terminal."""
    for key, value in event.items():
        if isinstance(value, str) and key != "exception":
            event[key] = _escaped(value)
    return event


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    processors += [withhold_exception_messages, escape_control_characters]
    if json:
        processors += [structlog.processors.JSONRenderer()]
    else:
        # Plain tracebacks: the rich formatter would print local variables, which can hold
        # conversation text.
        processors += [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
