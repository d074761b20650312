"""Webhook secrets (one per owner), deliveries (one row per event, its attempts counted on
it) and endpoints that answered ``410 Gone``."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class WebhookSecret(Base):
    __tablename__ = "webhook_secrets"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    # ``whsec_`` + base64: needed in clear to sign (kept like the results it announces).
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # After a rotation the old secret signs too (a second signature) until this time.
    previous: Mapped[str | None] = mapped_column(String(128))
    previous_until: Mapped[datetime | None]


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    # The ``webhook-id`` header: the same on every attempt.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(36), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # pending → delivered | failed | disabled
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


class DisabledEndpoint(Base):
    __tablename__ = "webhook_disabled_endpoints"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    # SHA-256 of the URL (a URL may be longer than an index entry may be).
    url_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    disabled_at: Mapped[datetime] = mapped_column(default=utcnow)


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()
