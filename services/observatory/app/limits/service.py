"""Request limits per principal, with the ``limits`` library: in memory on the embedded
default, in Redis when ``OBSERVATORY_REDIS_URL`` is set (every replica then shares the
counts). See docs/decisions/0010-rate-limits.md.

Two budgets per principal:
- **requests**: everything but reading an analysis — per minute (moving window) and per UTC
  calendar day (fixed window keyed by the date);
- **reads**: ``GET`` of an analysis, its exports and its event stream — a larger per-minute
  budget of its own, so a public client can poll its analysis without spending the ten
  submissions it has a minute.

And one per client address: **failed authentications** (401 and refused credentials). Once
it is spent, credentials from that address are not even checked until the window moves on,
so guessing keys costs the guesser, not the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.storage import storage_from_string

from app.auth.principal import Principal
from app.core.config import Settings

log = structlog.get_logger(__name__)

KEY_PREFIX = "observatory-limits"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    policy: str


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        if settings.redis_url:
            uri = settings.redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            self._storage: Storage = cast(
                Storage,
                storage_from_string(
                    uri,
                    implementation="redispy",
                    key_prefix=settings.rate_limit_key_prefix,
                    # A Redis that hangs must not hold requests: limits then fail open.
                    socket_timeout=1.0,
                    socket_connect_timeout=1.0,
                ),
            )
            self.backend = "redis"
        else:
            self._storage = cast(Storage, storage_from_string("async+memory://"))
            self.backend = "memory"
        self._minute = MovingWindowRateLimiter(self._storage)
        self._day = FixedWindowRateLimiter(self._storage)
        self._tiers = {
            "public": parse_many(settings.rate_limit_public),
            "api_key": parse_many(settings.rate_limit_api_key),
            "partner": parse_many(settings.rate_limit_partner),
        }
        self._reads = {
            "public": parse_many(settings.read_limit_public),
            "api_key": parse_many(settings.read_limit_api_key),
            "partner": parse_many(settings.read_limit_partner),
        }
        self._auth_failures = parse_many(settings.auth_failure_limit)
        self.failures = 0

    async def hit(self, principal: Principal, *, read: bool) -> Decision | None:
        """Count one request; None when the store is unreachable (limits then fail open,
        logged)."""
        items = (self._reads if read else self._tiers)[principal.tier]
        budget = "reads" if read else "requests"
        return await self._count(items, (budget, principal.tier, principal.id), count=True)

    async def auth_failure(self, client: Principal, *, count: bool) -> Decision | None:
        """The failed-authentication budget of a client address (a public principal):
        ``count`` one more failure, or only look whether the budget is spent."""
        return await self._count(self._auth_failures, ("auth-failures", client.id), count=count)

    async def _count(
        self, items: list[RateLimitItem], ids: tuple[str, ...], *, count: bool
    ) -> Decision | None:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        decisions: list[Decision] = []
        try:
            # Minute before day, and stop at the first refusal: a refused request does not
            # count against the longer window (retries cannot use up a client's day).
            for item in sorted(items, key=lambda i: i.GRANULARITY.seconds):
                daily = _daily(item)
                strategy = self._day if daily else self._minute
                keys = (*ids, *((day,) if daily else ()))
                if count:
                    allowed = await strategy.hit(item, *keys)
                else:
                    allowed = await strategy.test(item, *keys)
                stats = await strategy.get_window_stats(item, *keys)
                reset = (
                    _seconds_to_midnight()
                    if daily
                    else max(0, int(stats.reset_time - time.time() + 0.999))
                )
                decisions.append(
                    Decision(allowed, item.amount, max(0, stats.remaining), reset, _name(item))
                )
                if not allowed:
                    break
        except Exception as exc:  # the store is down: serve, and say so in the log
            self.failures += 1
            log.error("limits.store_unavailable", backend=self.backend, error=type(exc).__name__)
            return None
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return max(refused, key=lambda d: d.reset_seconds)
        return min(decisions, key=lambda d: (d.remaining, -d.reset_seconds))

    async def check(self) -> bool:
        try:
            return bool(await self._storage.check())
        except Exception:
            return False

    async def reset(self) -> None:
        await self._storage.reset()


def _name(item: RateLimitItem) -> str:
    return f"{item.amount}/{'day' if _daily(item) else 'minute'}"


def _daily(item: RateLimitItem) -> bool:
    return item.GRANULARITY.seconds >= 86_400


def _seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds()) + 1
