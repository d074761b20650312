"""The ``batches`` and ``batch_items`` tables.

A batch is a list of ordinary analyses (each readable on its own by its owner) plus the
items that were refused at submission, each with the reason. What a batch's status and
counts are is read from its analyses; only the end (``finished_at``), a cancel and the
aggregate, which outlives the items, are stored on the batch.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    owner: Mapped[str | None] = mapped_column(String(128), index=True)
    total: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]
    # Set once every item has ended, together with the aggregate.
    finished_at: Mapped[datetime | None]
    # Aggregated insights as UTF-8 JSON (no text of any single conversation).
    aggregate: Mapped[bytes | None] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime]


class BatchItem(Base):
    __tablename__ = "batch_items"

    batch_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # The client's own id for the conversation (or its position when it gave none).
    ref: Mapped[str] = mapped_column(String(128))
    # The analysis the item became; None when it was refused at submission.
    analysis_id: Mapped[str | None] = mapped_column(String(36), index=True)
    error: Mapped[str | None] = mapped_column(Text)
