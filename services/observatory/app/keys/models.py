"""The ``api_keys`` table: a key is stored as the SHA-256 of its secret and a visible prefix,
never as itself."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    # The first characters of the key (``obs_live_Ab3x…``): enough to recognise it in a list.
    # Who the key speaks for: the first key's id, kept by every key that rotation makes
    # from it, so ownership of analyses and rate-limit budgets survive a rotation.
    principal_id: Mapped[str] = mapped_column(String(36), index=True)
    prefix: Mapped[str] = mapped_column(String(24))
    # SHA-256 of the whole key: keys are 256 random bits, so a plain hash cannot be reversed.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    tier: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Set when the key was rotated: the key that replaces it (this one lives until expires_at).
    replaced_by: Mapped[str | None] = mapped_column(String(36))
    last_used_at: Mapped[datetime | None]
