"""Bodies of the web page's own endpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TranscriptMessage(BaseModel):
    index: int = Field(description="The index every finding of an analysis cites.")
    speaker: str
    role: Literal["human", "ai", "system"]
    text: str = Field(description="The message with personal data masked.")
    timestamp: str | None = None


class Transcript(BaseModel):
    """A conversation as an analysis of the same body would index it."""

    format: str = Field(description="The input format detected or named.")
    speakers: list[str]
    messages: list[TranscriptMessage]
