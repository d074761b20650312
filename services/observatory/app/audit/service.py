"""The audit log (SPEC §8): who did what to which analysis, batch or key, when, and how it
ended; never conversation text, never a credential. See docs/decisions/0015-audit-log.md.

- **Append-only.** Nothing here updates an event; the only deletion is the log's own
  retention (:func:`prune`), which removes the oldest events and records that it did. The
  database refuses everything else: triggers (migration 0007) reject UPDATE, TRUNCATE and
  any DELETE outside a prune.
- **Chained.** Each event carries the SHA-256 of the one before, computed over its own
  fields and that hash, so an edit, a gap or a reordering breaks the chain; ``audit_head``
  holds the last hash (events cut off the end) and the hash of the last pruned event (the
  oldest kept must point at it). :func:`verify` walks the chain.
- **Cheap for a request.** A request hands its event to :class:`AuditLog`, which queues it
  in memory (microseconds) and writes what has gathered every ``interval`` in one
  transaction. Appends are serialised by a row lock on ``audit_head``, so replicas sharing
  one PostgreSQL database build one chain.
- **Floods are sampled.** Refusals (401, 403, 429) are what an attacker can produce at
  will: per principal, the first few a minute are written, the rest counted and written as
  one ``audit.suppressed`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import GENESIS, AuditEvent, AuditHead
from app.core.database import utcnow

log = structlog.get_logger(__name__)

Sessions = async_sessionmaker[AsyncSession]

DENIALS = frozenset({401, 403, 429})
APPEND_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Event:
    action: str
    principal: str
    outcome: str
    target: str | None = None
    status: int | None = None
    request_id: str | None = None
    # Counts and names only: {"analyses": 3}.
    detail: dict[str, Any] | None = None
    at: datetime = field(default_factory=utcnow)


def _moment(at: datetime) -> datetime:
    """``at`` in UTC at microsecond precision, as both databases give it back."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def chain_hash(prev: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the event's fields, in a canonical JSON form."""
    document = {
        "prev": prev,
        "at": _moment(fields["at"]).isoformat(timespec="microseconds"),
        "action": fields["action"],
        "principal": fields["principal"],
        "target": fields["target"],
        "outcome": fields["outcome"],
        "status": fields["status"],
        "request_id": fields["request_id"],
        "detail": fields["detail"],
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def cli_principal() -> str:
    """Who runs a command on the server: the operating-system user."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (a container's numeric uid)
        user = "unknown"
    return f"cli:{user[:64]}"


# Column widths (models.py): a value that does not fit is cut, never a failed write.
_WIDTHS = {"action": 48, "principal": 160, "target": 64, "outcome": 24, "request_id": 64}


def _clipped(fields: dict[str, Any]) -> dict[str, Any]:
    for name, width in _WIDTHS.items():
        value = fields.get(name)
        if isinstance(value, str) and len(value) > width:
            fields[name] = value[:width]
    fields["at"] = _moment(fields["at"])
    return fields


async def _take_head(session: AsyncSession) -> AuditHead:
    """The chain's head, locked for this transaction: a row lock on PostgreSQL (other
    replicas wait), the database's write lock on SQLite (an UPDATE takes it)."""
    await session.execute(update(AuditHead).where(AuditHead.id == 1).values(id=1))
    head = await session.scalar(select(AuditHead).where(AuditHead.id == 1))
    if head is None:  # created by migration 0007; absent only if someone removed it
        head = AuditHead(id=1, last_id=0, hash=GENESIS, anchor=GENESIS, pruning=False)
        session.add(head)
        await session.flush()
    return head


async def _retrying(attempt: Any) -> Any:
    """SQLite answers "database is locked" when another process held its write lock past the
    busy timeout, or its snapshot went stale: the whole transaction is tried again."""
    for n in range(APPEND_ATTEMPTS):
        try:
            return await attempt()
        except OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc).lower():
                raise
            if n == APPEND_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.05 * (n + 1))
    raise AssertionError("unreachable")


async def append(sessions: Sessions, events: Sequence[Event]) -> int:
    """Writes ``events`` at the end of the chain, in order, in one transaction; returns the
    id of the last one (0 when there were none)."""
    if not events:
        return 0

    async def attempt() -> int:
        async with sessions() as session, session.begin():
            head = await _take_head(session)
            prev = head.hash
            rows = []
            for event in events:
                fields = _clipped(asdict(event))
                digest = chain_hash(prev, fields)
                rows.append(AuditEvent(**fields, prev_hash=prev, hash=digest))
                prev = digest
            session.add_all(rows)
            await session.flush()
            head.last_id = rows[-1].id
            head.hash = prev
            return rows[-1].id

    last: int = await _retrying(attempt)
    return last


@dataclass(slots=True)
class Verification:
    events: int = 0
    first_id: int | None = None
    last_id: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def note(self, problem: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(problem)


async def _events(sessions: Sessions, *where: Any, chunk: int = 5000) -> AsyncIterator[AuditEvent]:
    """Every event matching ``where`` in id order, read in chunks (keyset pagination)."""
    after = -1
    while True:
        async with sessions() as session:
            rows = (
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.id > after, *where)
                    .order_by(AuditEvent.id)
                    .limit(chunk)
                )
            ).all()
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].id


async def verify(sessions: Sessions) -> Verification:
    """Walks the chain from the oldest event kept to the head and reports every event whose
    content no longer matches its hash (edited), whose predecessor is not the event before
    it (removed, inserted or reordered), and a head that the last event does not reach
    (events removed from the end)."""
    report = Verification()
    async with sessions() as session:
        head = await session.scalar(select(AuditHead).where(AuditHead.id == 1))
    if head is None:
        report.note("the audit head row is missing: the log cannot be anchored")
        return report
    expected = head.anchor
    async for row in _events(sessions):
        report.events += 1
        report.first_id = report.first_id if report.first_id is not None else row.id
        report.last_id = row.id
        if row.prev_hash != expected:
            report.note(
                f"event {row.id}: does not follow the event before it "
                "(an event was removed, inserted or reordered before it)"
            )
        fields = {
            "at": row.at,
            "action": row.action,
            "principal": row.principal,
            "target": row.target,
            "outcome": row.outcome,
            "status": row.status,
            "request_id": row.request_id,
            "detail": row.detail,
        }
        if chain_hash(row.prev_hash, fields) != row.hash:
            report.note(f"event {row.id}: its content does not match its hash (it was edited)")
        expected = row.hash
    if expected != head.hash or (report.last_id or 0) != head.last_id:
        report.note(
            f"the log ends at event {report.last_id or 'none'} but the head records event "
            f"{head.last_id}: events were removed from the end"
        )
    return report


def event_json(row: AuditEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": _moment(row.at).isoformat(timespec="microseconds"),
        "action": row.action,
        "principal": row.principal,
        "target": row.target,
        "outcome": row.outcome,
        "status": row.status,
        "request_id": row.request_id,
        "detail": row.detail,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


async def export(sessions: Sessions, out: TextIO, since: datetime | None = None) -> int:
    """Writes every event at or after ``since`` as JSON lines, oldest first; returns how many."""
    where = () if since is None else (AuditEvent.at >= _moment(since),)
    count = 0
    async for row in _events(sessions, *where):
        out.write(json.dumps(event_json(row), ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


async def prune(
    sessions: Sessions, before: datetime, *, batch_size: int = 5000, dry_run: bool = False
) -> int:
    """The log's own retention: removes the oldest events, in id order, while they are older
    than ``before`` (an unbroken run from the start, so the chain stays whole), records the
    hash of the last one removed as the new anchor, and writes an ``audit.pruned`` event."""
    before = _moment(before)
    if dry_run:
        due = 0
        async for row in _events(sessions):
            if _moment(row.at) >= before:
                break
            due += 1
        return due

    async def one_batch() -> int:
        async with sessions() as session, session.begin():
            head = await _take_head(session)
            rows = (
                await session.execute(
                    select(AuditEvent.id, AuditEvent.at, AuditEvent.hash)
                    .order_by(AuditEvent.id)
                    .limit(batch_size)
                )
            ).all()
            run = []
            for row in rows:
                if _moment(row.at) >= before:
                    break
                run.append(row)
            if not run:
                return 0
            # The triggers let a DELETE through only while the head says a prune is on.
            head.pruning = True
            await session.flush()
            await session.execute(delete(AuditEvent).where(AuditEvent.id <= run[-1].id))
            head.pruning = False
            head.anchor = run[-1].hash
            return len(run)

    total = 0
    while True:
        removed: int = await _retrying(one_batch)
        total += removed
        if removed < batch_size:
            break
        await asyncio.sleep(0)
    if total:
        await append(
            sessions,
            [
                Event(
                    "audit.pruned",
                    "system:retention",
                    "ok",
                    detail={"events": total, "before": before.isoformat()},
                )
            ],
        )
    return total


class DenialSampler:
    """Decides which refusals are written: per principal, ``per_principal`` a minute, and
    ``overall`` a minute in all (a moving window, in memory: each process samples its own).
    What is not written is counted, and reported by :meth:`take_suppressed`."""

    def __init__(self, per_principal: str = "10/minute", overall: str = "600/minute") -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._each = parse(per_principal)
        self._all = parse(overall)
        self._suppressed = 0
        self._principals: set[str] = set()

    def admit(self, principal: str) -> bool:
        if self._limiter.hit(self._each, "audit-denial", principal) and self._limiter.hit(
            self._all, "audit-denial-all"
        ):
            return True
        self._suppressed += 1
        if len(self._principals) < 10_000:
            self._principals.add(principal)
        return False

    def take_suppressed(self) -> tuple[int, int]:
        """(refusals not written, distinct principals among them) since the last call."""
        taken = (self._suppressed, len(self._principals))
        self._suppressed = 0
        self._principals = set()
        return taken


class AuditLog:
    """The API process's writer: :meth:`record` queues an event without waiting; a task
    writes what has gathered every ``interval`` seconds (or sooner when ``batch`` events
    wait), and :meth:`close` writes the rest. When the database cannot take events, they
    wait (up to ``max_pending``, then the newest are dropped, counted and logged)."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        interval: float = 0.2,
        batch: int = 500,
        max_pending: int = 50_000,
        metrics: Any = None,
        sampler: DenialSampler | None = None,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._batch = batch
        self._max_pending = max_pending
        self._metrics = metrics
        self._pending: list[Event] = []
        self._dropped = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_summary = 0.0
        self._closing = False
        self.sampler = sampler or DenialSampler()

    def record(self, event: Event) -> None:
        """Queues ``event``; never blocks and never raises for a full queue."""
        if event.status in DENIALS and not self.sampler.admit(event.principal):
            if self._metrics is not None:
                self._metrics.audit_events.labels("suppressed").inc()
            return
        if len(self._pending) >= self._max_pending:
            self._dropped += 1
            if self._metrics is not None:
                self._metrics.audit_events.labels("dropped").inc()
            return
        self._pending.append(event)
        if len(self._pending) >= self._batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-writer")

    async def close(self) -> None:
        """Stops the writer after the write it is doing (a cancelled commit could land and
        then be written again), then writes what is left."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except (TimeoutError, Exception):
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            self._closing = False
        self._summarise()
        try:
            await self.flush()
        except Exception as exc:
            log.error("audit.lost", events=len(self._pending), error=repr(exc))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_summary = loop.time()
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            if self._closing:
                return
            if loop.time() - self._last_summary >= 60:
                self._last_summary = loop.time()
                self._summarise()
            try:
                await self.flush()
            except Exception as exc:  # the database is away: keep the events, try later
                log.error("audit.write_failed", pending=len(self._pending), error=repr(exc))
                await asyncio.sleep(min(5.0, self._interval * 10))

    def _summarise(self) -> None:
        suppressed, principals = self.sampler.take_suppressed()
        if suppressed or self._dropped:
            detail: dict[str, int | str] = {"refusals": suppressed, "principals": principals}
            if self._dropped:
                log.error("audit.dropped", events=self._dropped)
                detail["dropped"] = self._dropped
                self._dropped = 0
            self._pending.append(Event("audit.suppressed", "system:audit", "ok", detail=detail))

    async def flush(self) -> int:
        """Writes every queued event now, ``batch`` per transaction; returns how many."""
        written = 0
        while self._pending:
            chunk = self._pending[: self._batch]
            await append(self._sessions, chunk)
            del self._pending[: len(chunk)]
            written += len(chunk)
            if self._metrics is not None:
                self._metrics.audit_events.labels("written").inc(len(chunk))
        return written
