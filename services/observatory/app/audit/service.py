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
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import structlog
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import GENESIS, AuditEvent, AuditHead
from app.core.database import utcnow

log = structlog.get_logger(__name__)

Sessions = async_sessionmaker[AsyncSession]

DENIALS = frozenset({401, 403, 429})
APPEND_ATTEMPTS = 5
VERIFY_ATTEMPTS = 10
# The database lets a prune delete only events older than a day (migration 0007's
# triggers), so the newest can never be removed, even by a session that sets the pruning
# flag; a prune stays an hour clear of that, whatever the clocks of service and database.
PRUNE_FLOOR = timedelta(days=1, hours=1)


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


# The fields of an event its hash covers (with the previous event's hash).
HASHED = ("at", "action", "principal", "target", "outcome", "status", "request_id", "detail")


def chain_hash(prev: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the event's fields, in a canonical JSON form."""
    document = {name: fields[name] for name in HASHED}
    document["at"] = _moment(fields["at"]).isoformat(timespec="microseconds")
    document["prev"] = prev
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def cli_principal() -> str:
    """Who runs a command on the server: the operating-system user."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (a container's numeric uid)
        user = "unknown"
    return f"cli:{user[:64]}"


# Column widths, read from the table: a value that does not fit is cut, never a failed write.
_WIDTHS: dict[str, int] = {
    column.name: getattr(column.type, "length", 0)
    for column in AuditEvent.__table__.columns
    if isinstance(getattr(column.type, "length", None), int)
}


def _storable(value: Any) -> Any:
    """``value`` with NUL, which PostgreSQL's text cannot hold, shown as U+FFFD, and lone
    surrogates as "?" (a token subject may carry either): an event the database refuses
    would be lost."""
    if isinstance(value, str):
        # Lone surrogates (a JSON "\ud800" in a token subject) cannot be encoded either.
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _clipped(fields: dict[str, Any]) -> dict[str, Any]:
    for name, width in _WIDTHS.items():
        value = fields.get(name)
        if isinstance(value, str):
            fields[name] = _storable(value)[:width]
    fields["detail"] = _storable(fields.get("detail"))
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


async def append_in(session: AsyncSession, events: Sequence[Event]) -> int:
    """Writes ``events`` at the end of the chain inside the caller's transaction (so a
    change and its event commit together, or neither); returns the last id."""
    if not events:
        return 0
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


async def append(sessions: Sessions, events: Sequence[Event]) -> int:
    """Writes ``events`` at the end of the chain, in order, in one transaction of their
    own; returns the id of the last one (0 when there were none)."""
    if not events:
        return 0

    async def attempt() -> int:
        async with sessions() as session, session.begin():
            return await append_in(session, events)

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
    for _ in range(VERIFY_ATTEMPTS):
        async with sessions() as session:
            head = await session.scalar(select(AuditHead).where(AuditHead.id == 1))
        if head is None:
            report = Verification()
            report.note("the audit head row is missing: the log cannot be anchored")
            return report
        report = await _walk(sessions, head)
        if report.ok:
            return report
        # A prune while the walk ran moves the start of the log: walk again from there.
        async with sessions() as session:
            anchor = await session.scalar(select(AuditHead.anchor).where(AuditHead.id == 1))
        if anchor == head.anchor:
            return report
        await asyncio.sleep(0.05)
    return report


async def _walk(sessions: Sessions, head: AuditHead) -> Verification:
    """The chain from the anchor to ``head`` as it was read: events appended after it are
    not this walk's business (they are committed with a newer head)."""
    report = Verification()
    expected = head.anchor
    async for row in _events(sessions, AuditEvent.id <= head.last_id):
        report.events += 1
        report.first_id = report.first_id if report.first_id is not None else row.id
        report.last_id = row.id
        if row.prev_hash != expected:
            report.note(
                f"event {row.id}: does not follow the event before it "
                "(an event was removed, inserted or reordered before it)"
            )
        if chain_hash(row.prev_hash, _hashed_fields(row)) != row.hash:
            report.note(f"event {row.id}: its content does not match its hash (it was edited)")
        expected = row.hash
    if expected != head.hash or (report.last_id or 0) != head.last_id:
        report.note(
            f"the log ends at event {report.last_id or 'none'} but the head records event "
            f"{head.last_id}: events were removed from the end"
        )
    return report


def _hashed_fields(row: AuditEvent) -> dict[str, Any]:
    return {name: getattr(row, name) for name in HASHED}


def event_json(row: AuditEvent) -> dict[str, Any]:
    fields = _hashed_fields(row)
    fields["at"] = _moment(row.at).isoformat(timespec="microseconds")
    return {"id": row.id, **fields, "prev_hash": row.prev_hash, "hash": row.hash}


async def export(sessions: Sessions, out: TextIO, since: datetime | None = None) -> int:
    """Writes every event at or after ``since`` as JSON lines, oldest first; returns how many."""
    where = () if since is None else (AuditEvent.at >= _moment(since),)
    count = 0
    async for row in _events(sessions, *where):
        out.write(json.dumps(event_json(row), ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


async def prune(
    sessions: Sessions,
    before: datetime,
    *,
    batch_size: int = 5000,
    dry_run: bool = False,
    pause: float = 1.0,
    rest: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> int:
    """The log's own retention: removes the oldest events, in id order, while they are older
    than ``before`` (an unbroken run from the start, so the chain stays whole; never the
    newest event), records the hash of the last one removed as the new anchor, and writes an
    ``audit.pruned`` event. After each batch it ``rest``s ``pause`` times as long as the
    batch took."""
    before = min(_moment(before), utcnow() - PRUNE_FLOOR)
    if dry_run:  # what would go: the run of events before the first young one or the newest
        async with sessions() as session:
            newest = await session.scalar(select(AuditHead.last_id).where(AuditHead.id == 1))
            young = await session.scalar(
                select(func.min(AuditEvent.id)).where(AuditEvent.at >= before)
            )
            stop = min(newest or 0, young if young is not None else newest or 0)
            due = await session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.id < stop)
            )
        return int(due or 0)

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
                # The newest event always stays: the chain's end, which the database
                # refuses to delete (migration 0007).
                if _moment(row.at) >= before or row.id >= head.last_id:
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
        started = time.monotonic()
        removed: int = await _retrying(one_batch)
        total += removed
        if removed < batch_size:
            break
        # Rest as long as the batch took, as the rest of retention does.
        await rest(pause * (time.monotonic() - started))
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


PRINCIPALS_COUNTED = 10_000


def _transient(exc: BaseException) -> bool:
    """Whether a failed write may succeed later as it is (the database is away, busy or
    restarting), rather than being refused for what the event holds."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    # PostgreSQL's classes for a database that cannot take writes now: connection (08),
    # read-only transaction after a failover (25006), serialisation and deadlock (40),
    # insufficient resources (53), shutting down (57).
    state = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    return bool(exc.connection_invalidated) or state.startswith(("08", "25006", "40", "53", "57"))


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
        self._uncounted = False

    def admit(self, principal: str) -> bool:
        """Whether to write this refusal. Anonymous clients (any number of addresses) share
        the overall budget, tried first so a flood of new addresses keeps no state per
        address; a key or a token subject has its own budget only, so a flood cannot hide
        what an authenticated principal was refused."""
        if principal.startswith("client:") and not self._limiter.hit(self._all, "audit-denial-all"):
            return self._suppress(principal)
        if self._limiter.hit(self._each, "audit-denial", principal):
            return True
        return self._suppress(principal)

    def _suppress(self, principal: str) -> bool:
        self._suppressed += 1
        if len(self._principals) < PRINCIPALS_COUNTED:
            self._principals.add(principal)
        else:
            self._uncounted = True
        return False

    def take_suppressed(self) -> tuple[int, int, bool]:
        """(refusals not written, distinct principals among them, whether there were more
        principals than are counted) since the last call."""
        taken = (self._suppressed, len(self._principals), self._uncounted)
        self._suppressed = 0
        self._principals = set()
        self._uncounted = False
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
        chunk: int = 100,
        max_pending: int = 50_000,
        metrics: Any = None,
        sampler: DenialSampler | None = None,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._batch = batch
        self._chunk = chunk
        self._max_pending = max_pending
        self._metrics = metrics
        self._pending: list[Event] = []
        self._dropped = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_summary = 0.0
        self._closing = False
        self._writing = asyncio.Lock()
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
        suppressed, principals, uncounted = self.sampler.take_suppressed()
        if suppressed or self._dropped:
            detail: dict[str, int | str] = {"refusals": suppressed, "principals": principals}
            if uncounted:
                detail["principals_at_least"] = 1
            if self._dropped:
                log.error("audit.dropped", events=self._dropped)
                detail["dropped"] = self._dropped
                self._dropped = 0
            self._pending.append(Event("audit.suppressed", "system:audit", "ok", detail=detail))

    async def flush(self) -> int:
        """Writes every queued event now, ``chunk`` per transaction, letting requests in
        between; returns how many were written. A chunk the database refuses for what it
        holds (not for being away) is written one event at a time, and an event refused
        on its own is set aside (logged and counted), so it never holds up the rest.
        One flush writes at a time: the writer task and a caller flushing at once would
        otherwise both take the same chunk and write it twice."""
        async with self._writing:
            return await self._write_pending()

    async def _write_pending(self) -> int:
        written = 0
        while self._pending:
            chunk = self._pending[: self._chunk]
            try:
                await append(self._sessions, chunk)
            except Exception as exc:
                if _transient(exc):
                    raise
                written += await self._one_by_one(len(chunk))
                continue
            del self._pending[: len(chunk)]
            written += len(chunk)
            self._count("written", len(chunk))
            await asyncio.sleep(0)
        return written

    async def _one_by_one(self, count: int) -> int:
        written = 0
        for _ in range(count):
            event = self._pending[0]
            try:
                await append(self._sessions, [event])
                written += 1
                self._count("written", 1)
            except Exception as exc:
                if _transient(exc):
                    raise
                log.error("audit.event_refused", action=event.action, error=type(exc).__name__)
                self._count("dropped", 1)
            del self._pending[0]
        return written

    def _count(self, outcome: str, n: int) -> None:
        if self._metrics is not None:
            self._metrics.audit_events.labels(outcome).inc(n)
