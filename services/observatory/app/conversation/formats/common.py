"""What every input format shares: role names, timestamps, text tidying, the draft message."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.conversation.model import Role
from app.core import patterns
from app.core.errors import InputError

ROLE_WORDS: dict[str, Role] = {
    "human": "human",
    "user": "human",
    "ai": "ai",
    "assistant": "ai",
    "model": "ai",
    "gpt": "ai",
    "bot": "ai",
    "chatgpt": "ai",
    "claude": "ai",
    "system": "system",
    "tool": "system",
    "function": "system",
}

# Only as the value of a ``role`` field: OpenAI's newer name for the system prompt. As a
# speaker name in a transcript "Developer" is an ordinary person.
_ROLE_FIELD_EXTRA: dict[str, Role] = {"developer": "system"}

ROLE_SPEAKER: dict[Role, str] = {"human": "Human", "ai": "AI", "system": "System"}
"""The speaker name given to messages that carry only a role."""

ACCEPTED_TIMES = "ISO-8601 (e.g. 2026-03-02T10:15:00Z) or epoch seconds (e.g. 1772446500)"

# Epoch values this large are milliseconds: as seconds they would fall after the year 5000.
_EPOCH_MS_THRESHOLD = 100_000_000_000
_NUMERIC = patterns.compile(r"[+-]?\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Draft:
    """A message as read from the input, before tidying, dropping and numbering.

    ``origin`` says where it came from in the input ("line 12", "input item 4", …) so
    that an error about it can point the user at the right place.
    """

    speaker: str
    role: Role
    text: str
    timestamp: datetime | None
    origin: str
    line: int | None = None  # the input line ``text`` starts on, for plain transcripts


@dataclass(frozen=True, slots=True)
class Parsed:
    drafts: list[Draft]
    source_format: str
    title: str | None = None


def role_for_name(name: str) -> Role:
    """The role a speaker name implies: a known role word, otherwise a human participant."""
    return ROLE_WORDS.get(name.strip().casefold(), "human")


def role_for_field(value: str) -> Role:
    """The role named by a ``role``/``from``/``sender`` field."""
    key = value.strip().casefold()
    return ROLE_WORDS.get(key) or _ROLE_FIELD_EXTRA.get(key) or "human"


def is_role_word(value: str) -> bool:
    key = value.strip().casefold()
    return key in ROLE_WORDS or key in _ROLE_FIELD_EXTRA


def speaker_for_role_field(value: str) -> str:
    """The speaker name for a message identified only by its role field.

    Role words become "Human"/"AI"/"System"; anything else is a participant's name.
    """
    value = value.strip()
    return ROLE_SPEAKER[role_for_field(value)] if is_role_word(value) else value


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def describe_keys(value: dict[Any, Any], limit: int = 8) -> str:
    keys = [str(k) for k in list(value)[:limit]]
    more = ", …" if len(value) > limit else ""
    return ", ".join(keys) + more if keys else "(none)"


def normalise_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def tidy_text(text: str) -> str:
    """LF line endings, no leading blank lines, no trailing whitespace; otherwise unchanged.

    Indentation of the first real line is kept, so a message that starts with indented
    code keeps its shape.
    """
    text = normalise_newlines(text).rstrip()
    if not text or text[0] not in " \t\n\x0b\x0c":
        return text
    start = 0
    while True:
        end = text.find("\n", start)
        if end == -1 or text[start:end].strip():
            return text[start:]
        start = end + 1


def as_float(value: float) -> float:
    """``value`` as a float; an integer too large for one (JSON allows any) is infinite."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def epoch_to_datetime(value: float) -> datetime | None:
    if math.isnan(value) or math.isinf(value):
        return None
    if abs(value) >= _EPOCH_MS_THRESHOLD:
        value /= 1000
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def as_utc(moment: datetime) -> datetime:
    """Timezone-aware UTC; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_timestamp(value: Any, where: str, field: str = "timestamp") -> datetime | None:
    """An ISO-8601 string or epoch seconds (or milliseconds) as an aware UTC datetime.

    Absent values (null, empty string) give None; anything else unreadable is an error
    that names ``where`` and the accepted forms.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    moment: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        moment = epoch_to_datetime(as_float(value))
    elif isinstance(value, str):
        text = value.strip()
        if _NUMERIC.fullmatch(text):
            moment = epoch_to_datetime(float(text))
        else:
            try:
                moment = as_utc(datetime.fromisoformat(text))
            except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00+01:00
                moment = None
    if moment is None:
        readable = isinstance(value, str | int | float) and not isinstance(value, bool)
        shown = repr(value) if readable else f"of type {json_type(value)}"
        raise InputError(
            f"{where}: '{field}' {shown} is not a recognised time; use {ACCEPTED_TIMES}"
        )
    return moment
