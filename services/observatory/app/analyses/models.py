"""The ``analyses`` table.

The raw conversation text is never a column: an analysis keeps a keyed fingerprint (HMAC of
the SHA-256 of the normalised conversation, app/core/crypto.py), its sizes, the options and
the derived (masked) result, sealed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class Analysis(Base):
    __tablename__ = "analyses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    status: Mapped[str] = mapped_column(String(16), index=True)
    owner: Mapped[str | None] = mapped_column(String(128), index=True)
    # The process whose queue holds the job (a ``runners`` row while it lives).
    runner: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    message_count: Mapped[int] = mapped_column(Integer)
    char_count: Mapped[int] = mapped_column(Integer)
    source_format: Mapped[str] = mapped_column(String(32))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The result document, UTF-8 JSON sealed with AES-256-GCM (app/core/crypto.py) under the
    # key ``result_key`` names: written once, opened and served as it is (no re-encoding of a
    # multi-megabyte document on every read). ``result_key`` None: stored in clear by a
    # version before encryption (``observatory keys reencrypt`` seals those).
    result: Mapped[bytes | None] = mapped_column(LargeBinary)
    result_key: Mapped[str | None] = mapped_column(String(32), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    processing_ms: Mapped[float | None] = mapped_column(Float)
    last_accessed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the analysis was erased: the row is then a tombstone (status "deleted").
    deleted_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]

    __table_args__ = (Index("ix_analyses_status_created_at", "status", "created_at"),)
