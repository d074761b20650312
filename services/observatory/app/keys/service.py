"""API keys: create (the secret is shown once), list, revoke, rotate with a grace period, and
check a presented key. Keys live in the database, so every replica sees the same keys."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.errors import InputError, NotFound
from app.keys.models import ApiKey

KEY_PREFIX = "obs_live_"
SHOWN_PREFIX_CHARS = len(KEY_PREFIX) + 6
TIERS = ("api_key", "partner")
SCOPES = ("analyze", "metrics")
DEFAULT_SCOPES = ("analyze",)
# A key's last use is recorded at most this often (a read must not become a write).
LAST_USED_GRANULARITY = timedelta(minutes=10)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and 40 <= len(value) <= 80


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def _check(tier: str, scopes: list[str]) -> None:
    if tier not in TIERS:
        raise InputError(f"unknown tier '{tier}'; allowed: {', '.join(TIERS)}")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InputError(f"unknown scope(s) {', '.join(unknown)}; allowed: {', '.join(SCOPES)}")


async def create(
    session: AsyncSession,
    *,
    name: str,
    tier: str = "api_key",
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
    principal_id: str | None = None,
) -> CreatedKey:
    scopes = sorted(set(scopes if scopes is not None else DEFAULT_SCOPES))
    _check(tier, scopes)
    secret = new_secret()
    key_id = str(uuid.uuid4())
    key = ApiKey(
        id=key_id,
        principal_id=principal_id or key_id,
        prefix=secret[:SHOWN_PREFIX_CHARS],
        secret_hash=hash_secret(secret),
        name=name[:128],
        tier=tier,
        scopes=scopes,
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return CreatedKey(key, secret)


async def find(session: AsyncSession, ref: str) -> ApiKey:
    """A key by its id or its shown prefix (unique), for the command line."""
    rows = (
        await session.scalars(select(ApiKey).where((ApiKey.id == ref) | (ApiKey.prefix == ref)))
    ).all()
    if len(rows) != 1:
        raise NotFound(
            f"no single key with id or prefix '{ref}'"
            + (" (the prefix is ambiguous; use the id)" if rows else "")
        )
    return rows[0]


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all())


async def revoke(session: AsyncSession, ref: str) -> ApiKey:
    key = await find(session, ref)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


async def rotate(session: AsyncSession, ref: str, grace: timedelta) -> CreatedKey:
    """A new key with the same name, tier and scopes; the old one keeps working for
    ``grace`` and then expires."""
    old = await find(session, ref)
    if old.revoked_at is not None:
        raise InputError(f"key {old.prefix}… is revoked; create a new key instead")
    created = await create(
        session,
        name=old.name,
        tier=old.tier,
        scopes=list(old.scopes),
        expires_at=old.expires_at,
        principal_id=old.principal_id,
    )
    ends = utcnow() + grace
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    old.replaced_by = created.key.id
    return created


async def lookup(session: AsyncSession, secret: str) -> ApiKey | None:
    return await session.scalar(select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret)))


class KeyState(Protocol):
    @property
    def prefix(self) -> str: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def replaced_by(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class CheckedKey:
    """What a request needs of a key, detached from the database session."""

    id: str
    principal_id: str
    prefix: str
    tier: str
    scopes: frozenset[str]
    revoked_at: datetime | None
    expires_at: datetime | None
    replaced_by: str | None

    @classmethod
    def of(cls, key: ApiKey) -> CheckedKey:
        return cls(
            key.id,
            key.principal_id,
            key.prefix,
            key.tier,
            frozenset(key.scopes),
            key.revoked_at,
            key.expires_at,
            key.replaced_by,
        )


class KeyCache:
    """Keys this process checked recently, by the hash of their secret, for ``ttl`` seconds:
    a request with a known key then costs no database round trip, and a revocation reaches
    every replica within ``ttl``. Unknown secrets are never remembered (a key created a
    moment ago works at once), and expiry is judged on every request from the remembered
    dates."""

    def __init__(
        self, ttl: float, maxsize: int = 10_000, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._cache: TTLCache[str, CheckedKey] | None = (
            TTLCache(maxsize, ttl, timer=timer) if ttl > 0 else None
        )

    def get(self, secret: str) -> CheckedKey | None:
        return None if self._cache is None else self._cache.get(hash_secret(secret))

    def put(self, secret: str, key: CheckedKey) -> None:
        if self._cache is not None:
            self._cache[hash_secret(secret)] = key

    def clear(self) -> None:
        if self._cache is not None:
            self._cache.clear()


def why_unusable(key: KeyState, now: datetime) -> str | None:
    """None if ``key`` may be used now, else what is wrong with it."""
    if key.revoked_at is not None:
        return f"the API key {key.prefix}… was revoked"
    if key.expires_at is not None and key.expires_at <= now:
        if key.replaced_by is not None:
            return f"the API key {key.prefix}… was rotated and its grace period has ended"
        return f"the API key {key.prefix}… expired at {key.expires_at.isoformat()}"
    return None
