"""The canonical conversation every input format is parsed into."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import orjson

Role = Literal["human", "ai", "system"]


@dataclass(frozen=True, slots=True)
class Message:
    index: int
    speaker: str
    role: Role
    text: str
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    messages: tuple[Message, ...]
    source_format: str = "messages"
    title: str | None = None
    speakers: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.speakers:
            seen: dict[str, None] = {}
            for m in self.messages:
                seen.setdefault(m.speaker, None)
            object.__setattr__(self, "speakers", tuple(seen))

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def char_count(self) -> int:
        return sum(len(m.text) for m in self.messages)

    def fingerprint(self) -> str:
        """SHA-256 of the normalised conversation (speaker, role, text, timestamp per message)."""
        h = hashlib.sha256()
        for m in self.messages:
            row = [m.speaker, m.role, m.text, m.timestamp.isoformat() if m.timestamp else None]
            h.update(orjson.dumps(row))
            h.update(b"\n")
        return h.hexdigest()
