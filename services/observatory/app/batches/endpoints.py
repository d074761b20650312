"""Batches of up to 1,000 conversations: submit, status with items, events, exports, cancel
and priority."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from sqlalchemy import and_, select

from app.analyses.endpoints import ERRORS, render
from app.analyses.models import Analysis
from app.analyses.status import TOMBSTONE
from app.api.body import json_body
from app.api.deps import SessionDep, StateDep
from app.api.events import event, polled
from app.api.openapi import json_body as openapi_body
from app.auth.dependencies import AnalystDep
from app.batches import service
from app.batches.models import Batch, BatchItem
from app.batches.parsing import BatchSubmission, Rejected, prepare_batch
from app.batches.schemas import (
    BatchAccepted,
    BatchCancelled,
    BatchPriority,
    BatchPriorityChanged,
    BatchStatus,
)
from app.conversation.parsers import Limits
from app.core import export
from app.core.errors import InputError, ServiceUnavailable
from app.core.problems import Problem

JSON = "application/json"
EXPORT_PAGE = 50
MAX_OFFSET = 1_000_000  # far past any batch; bounds the SQL OFFSET
EVENT_POLL_SECONDS = 0.5
router = APIRouter(prefix="/api/v1/analyze/batch", tags=["batches"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAccepted,
    responses={
        202: {
            "headers": {
                "Location": {
                    "description": "The batch: `/api/v1/analyze/batch/{batch_id}`.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            }
        },
        **ERRORS,
    },
    openapi_extra=openapi_body("BatchRequest"),
)
async def submit(
    state: StateDep, principal: AnalystDep, request: Request, response: Response
) -> BatchAccepted:
    """Submit up to 1,000 conversations at once; each becomes an analysis of its own. An item
    that cannot be accepted is reported with its reason and does not fail the batch."""
    settings = state.settings
    prepared = await state.pool.parse(
        prepare_batch,
        await json_body(request),
        Limits.from_settings(settings),
        settings.max_batch_conversations,
        # A batch holds many conversations: parsing may take as long as that many bodies.
        time_limit=settings.parse_timeout_seconds * 4,
    )
    if not isinstance(prepared, BatchSubmission):
        if prepared.status == 422:
            raise RequestValidationError(list(prepared.errors))
        if prepared.status == 503:
            raise ServiceUnavailable(prepared.detail, headers={"Retry-After": "1"})
        raise InputError(prepared.detail)
    batch, analysis_ids = await service.create(state, prepared, principal)
    rejected = [
        {"position": i.position, "id": i.ref, "error": i.outcome.detail}
        for i in prepared.items
        if isinstance(i.outcome, Rejected)
    ]
    del prepared
    request.state.audit_target = batch.id
    request.state.audit_more = [
        ("analysis.create", analysis_id, {"batch": batch.id}) for analysis_id in analysis_ids
    ]
    response.headers["Location"] = f"/api/v1/analyze/batch/{batch.id}"
    return BatchAccepted(
        batch_id=batch.id,
        status="completed" if batch.rejected == batch.total else "pending",
        total_conversations=batch.total,
        accepted=batch.total - batch.rejected,
        rejected=rejected,
        created_at=batch.created_at,
        expires_at=batch.expires_at,
    )


@router.get(
    "/{batch_id}",
    response_model=BatchStatus,
    responses={
        200: {
            "content": {"application/x-ndjson": {}, "text/csv": {}, "text/markdown": {}},
            "description": "The batch, or with `?format=` an export of all its results.",
        },
        404: {"model": Problem},
    },
)
async def read(
    batch_id: str,
    session: SessionDep,
    state: StateDep,
    principal: AnalystDep,
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="First item of the page (0-based)."),
    limit: int = Query(100, ge=1, le=1000, description="Items per page."),
    format: Literal["json", "jsonl", "csv", "markdown"] = Query(
        "json",
        description="json (status and a page of items, default); jsonl (one line per item "
        "with its full result), csv (one row per finding, item ids first) or markdown "
        "(a report): exports of every item.",
    ),
) -> Response:
    """Status, counts, progress, a page of items and, once every item ended, the aggregate."""
    batch = await service.load(session, batch_id, principal)
    if format == "json":
        return Response(
            orjson.dumps(await service.view(state, session, batch, offset, limit)),
            media_type=JSON,
        )
    view = await service.view(state, session, batch, 0, 1)
    await session.close()
    media, ext = {
        "jsonl": ("application/x-ndjson", "jsonl"),
        "csv": ("text/csv; charset=utf-8", "csv"),
        "markdown": ("text/markdown; charset=utf-8", "md"),
    }[format]
    return StreamingResponse(
        _export(state, batch_id, format, view),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}.{ext}"'},
    )


async def _items(state: StateDep, batch_id: str) -> AsyncIterator[tuple[BatchItem, Any]]:
    """Every item with its analysis row (or None), a page at a time."""
    position = -1
    while True:
        async with state.sessions() as session:
            rows = (
                await session.execute(
                    select(BatchItem, Analysis)
                    .outerjoin(
                        Analysis,
                        and_(Analysis.id == BatchItem.analysis_id, Analysis.status != TOMBSTONE),
                    )
                    .where(BatchItem.batch_id == batch_id, BatchItem.position > position)
                    .order_by(BatchItem.position)
                    .limit(EXPORT_PAGE)
                )
            ).all()
        if not rows:
            return
        for item, analysis in rows:
            yield item, analysis
        position = rows[-1][0].position


def _item_status(item: BatchItem, analysis: Analysis | None) -> tuple[str, str | None]:
    if item.analysis_id is None:
        return service.REJECTED, item.error
    if analysis is None:
        return service.DELETED, None
    return analysis.status, analysis.error


async def _export(
    state: StateDep, batch_id: str, format: str, view: dict[str, Any]
) -> AsyncIterator[bytes]:
    if format == "markdown":
        yield _markdown_head(view).encode()
    header = True
    async for item, analysis in _items(state, batch_id):
        item_status, error = _item_status(item, analysis)
        if format == "jsonl":
            line: dict[str, Any] = {
                "position": item.position,
                "id": item.ref,
                "analysis_id": item.analysis_id,
                "status": item_status,
                "error": error,
            }
            if analysis is not None:
                line["result"] = orjson.Fragment(render(analysis, state.cipher))
            yield orjson.dumps(line) + b"\n"
        elif format == "csv":
            doc = orjson.loads(render(analysis, state.cipher)) if analysis is not None else {}
            leading = {"item_position": item.position, "item_id": item.ref}
            leading |= {"analysis_id": item.analysis_id, "item_status": item_status}
            yield export.csv_rows(doc, leading, header).encode()
            header = False
        else:
            title = export.md(f"Item {item.position}: {item.ref} ({item_status})")
            if analysis is not None and analysis.status == "completed":
                body = export.to_markdown(orjson.loads(render(analysis, state.cipher)))
            else:
                body = export.md(error or f"no result ({item_status})") + "\n"
            yield f"\n---\n\n## {title}\n\n{body}".encode()


def _markdown_head(view: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {name}" for name, n in view["counts"].items() if n)
    lines = [
        f"# Batch {view['batch_id']}",
        "",
        f"Status: {view['status']}; {view['total_conversations']} conversations ({counts}).",
    ]
    aggregate = view.get("aggregate")
    if aggregate:
        tones = ", ".join(f"{t} {n}" for t, n in aggregate["tones"].items())
        lines += ["", "## Across the batch", "", f"- Tones: {tones}"]
        for theme in aggregate["themes"]:
            lines.append(
                f"- Theme: {export.md(theme['label'])} ({theme['conversations']} conversations)"
            )
    return "\n".join(lines) + "\n"


@router.get(
    "/{batch_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": Problem}},
)
async def events(
    batch_id: str, session: SessionDep, state: StateDep, principal: AnalystDep
) -> StreamingResponse:
    """Server-sent events: `progress` events with status, counts and progress 0–1 whenever
    they change, until every item has ended (then one `aggregate` event)."""
    await service.load(session, batch_id, principal)
    await session.close()

    last: dict[str, Any] | None = None

    async def poll() -> tuple[list[bytes], bool]:
        nonlocal last
        async with state.sessions() as s:
            batch = await s.get(Batch, batch_id)
            if batch is None:
                return [event("deleted", b"{}")], True
            by_status = await service.counts(s, batch)
            current = {
                "batch_id": batch_id,
                "status": service.status_of(batch, by_status),
                "counts": by_status,
                "progress": round(service.finished(by_status) / batch.total, 4)
                if batch.total
                else 1.0,
            }
        out = []
        if current != last:
            out.append(event("progress", orjson.dumps(current)))
            last = current
        if current["status"] not in ("completed", "cancelled"):
            return out, False
        await service.finish(state, batch_id)
        async with state.sessions() as s:
            batch = await s.get(Batch, batch_id)
            summary = batch.aggregate if batch is not None else None
        return [*out, event("aggregate", summary or b"null")], True

    return polled(poll, EVENT_POLL_SECONDS)


@router.post(
    "/{batch_id}/cancel",
    response_model=BatchCancelled,
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def cancel(
    batch_id: str, session: SessionDep, state: StateDep, principal: AnalystDep
) -> BatchCancelled:
    """Stop every queued or running item of the batch; ended items keep their results. 409
    if the batch already ended."""
    done = await service.cancel(state, session, batch_id, principal)
    return BatchCancelled(batch_id=batch_id, status="cancelled", cancelled=done["cancelled"])


@router.post(
    "/{batch_id}/priority",
    response_model=BatchPriorityChanged,
    responses={404: {"model": Problem}, 409: {"model": Problem}, 422: {"model": Problem}},
)
async def priority(
    batch_id: str, body: BatchPriority, session: SessionDep, state: StateDep, principal: AnalystDep
) -> BatchPriorityChanged:
    """Move the items still queued to another priority (low, normal, high)."""
    moved = await service.reprioritise(state, session, batch_id, principal, body.priority)
    return BatchPriorityChanged(batch_id=batch_id, priority=body.priority, moved=moved["moved"])
