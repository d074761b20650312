"""The ``audit_events`` table (append-only, each row chained to the one before by a hash)
and ``audit_head``, its one row holding the hash of the last event and of the last pruned
one, so that events missing at either end are noticed too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base

GENESIS = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # SQLite would reuse the ids of deleted rows; the chain's ids only grow.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    # BIGINT on PostgreSQL; SQLite needs INTEGER for its rowid alias to count by itself.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(48), index=True)
    # "key:<id>", "sub:<token subject>", "client:<keyed hash of the address>", "cli:<user>",
    # "system:<task>": never a credential.
    principal: Mapped[str] = mapped_column(String(160), index=True)
    # An analysis or batch id, a key id, or an owner (``sub:`` and a token subject).
    target: Mapped[str | None] = mapped_column(String(160), index=True)
    outcome: Mapped[str] = mapped_column(String(24))
    status: Mapped[int | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Counts and names (never text of a conversation): e.g. {"analyses": 12}.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    last_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
    # The hash of the newest event removed by the audit log's own retention: the oldest
    # event kept must point at it.
    anchor: Mapped[str] = mapped_column(String(64))
    # True only inside a prune's own transaction: the triggers refuse any other DELETE.
    pruning: Mapped[bool] = mapped_column(default=False)
