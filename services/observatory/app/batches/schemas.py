"""Request and response bodies of the batch endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.analyses.schemas import DATA_TYPES, AnalysisOptionsIn, Priority

BatchStatusName = Literal["pending", "processing", "completed", "cancelled"]
ItemStatus = Literal[
    "pending", "processing", "completed", "failed", "cancelled", "rejected", "deleted"
]


class BatchConversation(BaseModel):
    """One conversation: exactly one of ``text``, ``messages`` or ``data``."""

    model_config = ConfigDict(extra="forbid")

    id: str | int | None = Field(
        None, description="Your id for it (1–128 characters, unique in the batch)."
    )
    text: str | None = Field(None, description="A plain transcript (`Speaker: text` lines).")
    conversation_text: str | None = Field(None, description="The same as `text`.")
    messages: list[Any] | None = None
    data: Any | None = Field(None, json_schema_extra={"anyOf": [{"type": DATA_TYPES}]})
    format: str | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversations: list[Any] = Field(
        min_length=1,
        description="Up to 1,000 conversations (and the batch byte limit). Each should be a "
        "`BatchConversation`; one that is not is refused on its own, with its reason in "
        "`rejected`, and the others go on.",
    )
    options: AnalysisOptionsIn = Field(default_factory=AnalysisOptionsIn)


class RejectedItem(BaseModel):
    position: int
    id: str
    error: str


class BatchAccepted(BaseModel):
    batch_id: str
    status: BatchStatusName
    total_conversations: int
    accepted: int
    rejected: list[RejectedItem] = Field(
        description="Conversations refused at submission, each with its reason."
    )
    created_at: datetime
    expires_at: datetime


class BatchItemView(BaseModel):
    position: int
    id: str
    analysis_id: str | None
    status: ItemStatus
    error: str | None = None


class Page(BaseModel):
    offset: int
    limit: int
    returned: int
    next_offset: int | None


class BatchStatus(BaseModel):
    batch_id: str
    status: BatchStatusName
    total_conversations: int
    counts: dict[str, int] = Field(description="Items by status.")
    progress: float = Field(description="Share of items that have ended, 0–1.")
    created_at: datetime
    finished_at: datetime | None
    cancelled_at: datetime | None
    expires_at: datetime
    options: dict[str, Any]
    items: list[BatchItemView]
    page: Page
    aggregate: dict[str, Any] | None = Field(
        description="Once every item ended: distributions of tones, pattern types and "
        "dynamics, and themes shared by at least k conversations (no text of any one)."
    )
    webhook: dict[str, Any] | None = Field(
        None,
        description="The `batch.completed` callback, when one was asked for: status "
        "(pending, delivered, failed, disabled), attempts, the last answer or error.",
    )


class BatchCancelled(BaseModel):
    batch_id: str
    status: Literal["cancelled"]
    cancelled: int = Field(description="Items that were queued or running and are now stopped.")


class BatchPriority(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: Priority


class BatchPriorityChanged(BaseModel):
    batch_id: str
    priority: Priority
    moved: int = Field(description="Queued items moved to the new priority.")
