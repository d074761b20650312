"""Callbacks when an analysis or a batch ends, signed per Standard Webhooks.

- An owner (an API key's or a token's principal) creates its secret once
  (``POST /api/v1/webhooks/secret``, shown once; a rotation keeps the old one signing for a
  day). The public tier has no owner to hold a secret, so it cannot ask for callbacks.
- ``callback_url`` is checked at submission (public addresses only, see ``ssrf.py``) and
  again at every attempt, connecting to the address that was checked.
- Events: ``analysis.completed``, ``analysis.failed`` (an analysis submitted on its own
  with a callback) and ``batch.completed`` (a batch with a callback, also when cancelled;
  its items send none). The body names the event and the resource, never its content.
- Each event is a row (``webhook_deliveries``) written when the work ends, so a restart
  loses none. A sender in every API process claims due rows (a conditional update, so two
  replicas never send one attempt twice), POSTs without following redirects, and on
  failure schedules the next attempt (``OBSERVATORY_WEBHOOK_RETRY_SECONDS``, with ±10 %
  jitter); after the last one the delivery is ``failed``. A ``410 Gone`` disables the
  endpoint for its owner: later submissions naming it are refused.
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from app import __version__
from app.analyses.models import Analysis
from app.auth.principal import Principal
from app.core.config import Settings
from app.core.database import utcnow
from app.core.errors import Forbidden, InputError
from app.webhooks import ssrf
from app.webhooks.models import DisabledEndpoint, WebhookDelivery, WebhookSecret, url_hash

log = structlog.get_logger(__name__)

SECRET_PREFIX = "whsec_"
ROTATION_GRACE = timedelta(hours=24)
CLAIM_SECONDS = 120.0
BATCH = 20
PENDING, DELIVERED, FAILED, DISABLED = "pending", "delivered", "failed", "disabled"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


async def create_secret(session: AsyncSession, owner: str) -> WebhookSecret:
    """A new secret for ``owner``; an existing one keeps signing for ``ROTATION_GRACE``."""
    row = await session.get(WebhookSecret, owner)
    now = utcnow()
    if row is None:
        row = WebhookSecret(owner=owner, secret=new_secret(), created_at=now)
        session.add(row)
    else:
        row.previous, row.previous_until = row.secret, now + ROTATION_GRACE
        row.secret, row.created_at = new_secret(), now
    await session.flush()
    return row


async def check_callback(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    principal: Principal,
    url: str,
) -> None:
    """Refuse a callback the submitter cannot have: 403 for the public tier (no owner to
    sign for); 400 for no secret yet, an address that is not public, or an endpoint that
    answered 410."""
    owner = principal.owner
    if owner is None:
        raise Forbidden(
            "callback_url needs an API key or a partner token: callbacks are signed with a "
            "secret of their owner, and the public tier has none"
        )
    try:
        await ssrf.resolve(url, settings.webhook_allowed_networks)
    except ssrf.UnsafeURL as exc:
        raise InputError(str(exc)) from None
    async with sessions() as session:
        if await session.get(WebhookSecret, owner) is None:
            raise InputError(
                "callback_url needs a webhook secret to sign with: create it once with "
                "POST /api/v1/webhooks/secret (it is shown once)"
            )
        if await session.get(DisabledEndpoint, (owner, url_hash(url))) is not None:
            raise InputError(
                "callback_url answered 410 Gone earlier and is disabled; enable it again with "
                "DELETE /api/v1/webhooks/disabled?url=…"
            )


def _payload(event: str, data: dict[str, Any], now: datetime) -> bytes:
    return orjson.dumps({"type": event, "timestamp": now, "data": data})


async def enqueue(
    session: AsyncSession,
    *,
    owner: str,
    url: str,
    event: str,
    target_id: str,
    data: dict[str, Any],
) -> WebhookDelivery:
    now = utcnow()
    row = WebhookDelivery(
        id=f"msg_{uuid.uuid4().hex}",
        owner=owner,
        url=url,
        event=event,
        target_id=target_id,
        payload=_payload(event, data, now),
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    log.info("webhook.queued", delivery=row.id, kind=event, target_id=target_id)
    return row


async def latest(session: AsyncSession, target_id: str) -> dict[str, Any] | None:
    """The last delivery for ``target_id``, as shown in its status."""
    row = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.target_id == target_id)
        .order_by(WebhookDelivery.created_at.desc())
        .limit(1)
    )
    return None if row is None else view(row)


def view(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "event": row.event,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "last_attempt_at": row.last_attempt_at,
        "next_attempt_at": row.next_attempt_at if row.status == PENDING else None,
        "delivered_at": row.delivered_at,
        "created_at": row.created_at,
    }


async def analysis_finished(
    sessions: async_sessionmaker[AsyncSession], analysis_id: str
) -> WebhookDelivery | None:
    """Queue ``analysis.completed`` or ``analysis.failed`` for an analysis that asked for a
    callback (a cancelled one announces nothing: its owner stopped it)."""
    async with sessions() as session, session.begin():
        row = await session.get(Analysis, analysis_id)
        url = row.options.get("callback_url") if row is not None else None
        if row is None or not url or row.owner is None or row.status not in ("completed", "failed"):
            return None
        already = await session.scalar(
            select(WebhookDelivery.id).where(WebhookDelivery.target_id == analysis_id)
        )
        if already is not None:
            return None
        return await enqueue(
            session,
            owner=row.owner,
            url=url,
            event=f"analysis.{row.status}",
            target_id=analysis_id,
            data={
                "id": analysis_id,
                "status": row.status,
                "error": row.error,
                "finished_at": row.finished_at,
                "url": f"/api/v1/analyze/{analysis_id}",
            },
        )


def schedule(settings: Settings) -> list[float]:
    return [float(s) for s in settings.webhook_retry_seconds.split(",") if s.strip()]


class Sender:
    """Sends due deliveries every ``webhook_poll_seconds`` in the background."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": f"Observatory-Webhooks/{__version__}"},
        )
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.sent = 0
        # A claimed row is not taken by another replica for longer than any attempt lasts
        # (each has an overall deadline), so no attempt is ever sent twice at once.
        self._claim_seconds = max(CLAIM_SECONDS, 2 * settings.webhook_timeout_seconds + 30)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="webhook-sender")

    def wake(self) -> None:
        """A delivery was queued: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception as exc:
                log.error("webhook.sender_failed", error=repr(exc))
            self._wake.clear()
            try:
                async with asyncio.timeout(self._settings.webhook_poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """Send what is due now (at most ``BATCH``); how many were attempted."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._attempt(row) for row in claimed))
        return len(claimed)

    async def _claim(self) -> list[WebhookDelivery]:
        now = utcnow()
        async with self._sessions() as session:
            due = (
                await session.scalars(
                    select(WebhookDelivery)
                    .where(
                        WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now
                    )
                    .order_by(WebhookDelivery.next_attempt_at)
                    .limit(BATCH)
                )
            ).all()
            claimed = []
            for row in due:
                # Another replica may claim the same row: only one conditional update wins.
                won = await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == row.id,
                        WebhookDelivery.status == PENDING,
                        WebhookDelivery.next_attempt_at == row.next_attempt_at,
                    )
                    .values(next_attempt_at=now + timedelta(seconds=self._claim_seconds))
                    .execution_options(synchronize_session=False)
                )
                if getattr(won, "rowcount", 0):
                    claimed.append(row)
            await session.commit()
            for row in claimed:
                session.expunge(row)
        return claimed

    async def _signature(self, owner: str, msg_id: str, when: datetime, body: bytes) -> str | None:
        async with self._sessions() as session:
            row = await session.get(WebhookSecret, owner)
        if row is None:
            return None
        keys = [row.secret]
        if row.previous and row.previous_until and row.previous_until > utcnow():
            keys.append(row.previous)
        return " ".join(Webhook(key).sign(msg_id, when, body) for key in keys)

    async def _attempt(self, row: WebhookDelivery) -> None:
        now = utcnow()
        status: int | None = None
        error: str | None = None
        outcome = PENDING
        deadline = self._settings.webhook_timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                status = await self._send(row, now)
            if 200 <= status < 300:
                outcome = DELIVERED
            elif status == 410:
                outcome, error = DISABLED, "the endpoint answered 410 Gone: disabled"
            elif 300 <= status < 400:
                error = f"answered {status} (redirects are not followed)"
            else:
                error = f"answered {status}"
        except TimeoutError:
            error = f"no answer within {deadline:g} seconds"
        except ssrf.UnsafeURL as exc:
            error = str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__} while sending"
        except Exception as exc:
            error = f"could not send ({type(exc).__name__})"
        await self._record(row, now, outcome, status, error)

    async def _send(self, row: WebhookDelivery, now: datetime) -> int:
        """POST one attempt; its status once the response headers are in (the body is not
        read: a receiver that drips it cannot hold the sender)."""
        target = await ssrf.resolve(row.url, self._settings.webhook_allowed_networks)
        signature = await self._signature(row.owner, row.id, now, row.payload)
        if signature is None:
            raise RuntimeError("the owner's webhook secret is gone")
        headers = {
            "Host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
            "Content-Type": "application/json",
            "webhook-id": row.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        request = self._client.build_request(
            "POST",
            target.request_url(),
            content=row.payload,
            headers=headers,
            extensions={"sni_hostname": target.host},
        )
        response = await self._client.send(request, stream=True)
        await response.aclose()
        return response.status_code

    async def _record(
        self,
        row: WebhookDelivery,
        now: datetime,
        outcome: str,
        status: int | None,
        error: str | None,
    ) -> None:
        attempts = row.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status": status,
            "last_error": error,
        }
        if outcome == DELIVERED:
            values |= {"status": DELIVERED, "delivered_at": utcnow(), "next_attempt_at": None}
        elif outcome == DISABLED:
            values |= {"status": DISABLED, "next_attempt_at": None}
        else:
            delays = schedule(self._settings)
            if attempts > len(delays):
                values |= {"status": FAILED, "next_attempt_at": None}
            else:
                delay = delays[attempts - 1] * random.uniform(0.9, 1.1)
                values["next_attempt_at"] = utcnow() + timedelta(seconds=delay)
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == row.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            key = (row.owner, url_hash(row.url))
            if outcome == DISABLED and await session.get(DisabledEndpoint, key) is None:
                session.add(
                    DisabledEndpoint(owner=row.owner, url_hash=key[1], url=row.url, disabled_at=now)
                )
        log.info(
            "webhook.attempt",
            delivery=row.id,
            kind=row.event,
            attempt=attempts,
            status=status,
            outcome=values.get("status", "retry"),
            error=error,
        )
        self.sent += 1
