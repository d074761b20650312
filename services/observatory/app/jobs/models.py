"""The ``runners`` table: the service processes alive now (see app/jobs/runners.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class Runner(Base):
    """A live service process: it holds queued and running jobs in memory, and proves it is
    alive by moving ``heartbeat_at`` forward. Work of a runner whose heartbeat stopped is
    lost with its memory and is failed by whichever process notices first."""

    __tablename__ = "runners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
