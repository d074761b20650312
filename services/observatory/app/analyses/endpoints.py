"""Single-conversation analysis: submit, read, cancel, delete."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal, NoReturn, get_args

import orjson
import structlog
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from app.analyses import repository as repo
from app.analyses import service
from app.analyses.models import Analysis
from app.analyses.schemas import (
    ALL_PATTERN_TYPES,
    AnalysisAccepted,
    AnalysisResult,
    AnalyzeCollection,
    CancelResponse,
    Erased,
    ObserverMode,
    Priority,
    SubmissionHelp,
    SubmissionLimits,
)
from app.api.body import json_body, request_body_limit
from app.api.deps import ServiceState, SessionDep, StateDep
from app.api.events import event, polled
from app.api.openapi import json_body as openapi_body
from app.auth.dependencies import AnalystDep
from app.auth.principal import Principal
from app.conversation.parsers import FORMATS, Limits
from app.core import export, patterns
from app.core.crypto import ResultCipher
from app.core.errors import Conflict, Forbidden, InputError, ServiceUnavailable
from app.core.problems import Problem
from app.jobs.work import Refusal

JSON = "application/json"
router = APIRouter(prefix="/api/v1/analyze", tags=["analysis"])
log = structlog.get_logger(__name__)

_WAIT = patterns.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "The conversation is empty, malformed or over a limit; or the body is not "
        "valid UTF-8 or holds a NUL byte.",
    },
    413: {"model": Problem, "description": "The request body is over the size limit."},
    415: {
        "model": Problem,
        "description": "The body is not JSON in UTF-8, or is compressed (`Content-Encoding`).",
    },
    422: {
        "model": Problem,
        "description": "The body is not valid JSON or does not fit the schema.",
    },
    503: {
        "model": Problem,
        "description": "The queue is full; retry after `Retry-After` seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before submitting again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        },
    },
}
LOCATION = {
    "Location": {
        "description": "The analysis: `/api/v1/analyze/{id}`.",
        "required": True,
        "schema": {"type": "string"},
    }
}


def _prefer_wait(prefer: list[str], cap: float) -> float:
    """``wait=N`` from any ``Prefer`` header line (RFC 7240), quoted or not, capped."""
    for line in prefer:
        m = _WAIT.search(line)
        if m:
            return min(float(m.group(1)), cap)
    return 0.0


def render(row: Analysis, cipher: ResultCipher) -> bytes:
    """The public view of an analysis as JSON: its metadata, and once completed the §4 result
    fields at the top level (spliced from the stored document, opened but not re-encoded)."""
    meta = orjson.dumps(
        {
            "id": row.id,
            "status": row.status,
            "stage": row.stage,
            "processing_time": None
            if row.processing_ms is None
            else round(row.processing_ms / 1000, 4),
            "created_at": row.created_at,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
            "expires_at": row.expires_at,
            "error": row.error,
            "message_count": row.message_count,
            "fingerprint": row.fingerprint,
            "options": row.options,
        }
    )
    if row.status == repo.COMPLETED and row.result:
        document = cipher.open(row.result, row.result_key, row.id)
        if len(document) > 2:
            return meta[:-1] + b"," + document[1:]
    return meta


SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "headers": {
            **LOCATION,
            "Preference-Applied": {
                "description": "The wait applied (`Prefer: wait=N`, capped), when the "
                "analysis did not finish within it.",
                "schema": {"type": "string"},
            },
        }
    },
    200: {
        "model": AnalysisResult,
        "description": "Done within `Prefer: wait=N`.",
        "headers": {
            **LOCATION,
            "Preference-Applied": {
                "description": "The wait applied, e.g. `wait=10` (capped).",
                "required": True,
                "schema": {"type": "string"},
            },
        },
    },
    **ERRORS,
}


def refuse(refusal: Refusal) -> NoReturn:
    """Raise the error a refused body is answered with (422, 503 or 400)."""
    if refusal.status == 422:
        raise RequestValidationError(list(refusal.errors))
    if refusal.status == 503:
        raise ServiceUnavailable(refusal.detail, headers={"Retry-After": "1"})
    raise InputError(refusal.detail)


async def answer_submission(
    state: ServiceState, principal: Principal, request: Request, response: Response, body: bytes
) -> Any:
    """Accept one analysis request body for ``principal`` and answer as
    ``POST /api/v1/analyze`` does: 202 with ``Location``, or under ``Prefer: wait=N`` 200 with
    the result when it finishes in time. Any endpoint that submits an analysis answers
    through this, so limits, ownership and the answer stay the same."""
    settings = state.settings
    # The body is decoded, validated and parsed in a worker process (small bodies inline),
    # so a large or hostile body never holds the event loop.
    prepared = await state.pool.prepare(body, Limits.from_settings(settings))
    if isinstance(prepared, Refusal):
        refuse(prepared)
    row = await service.create(state, prepared, principal)
    request.state.audit_target = row.id
    del prepared  # the serialised conversation now lives only in its job
    log.info("analysis.submitted", analysis_id=row.id, messages=row.message_count)
    wait = _prefer_wait(request.headers.getlist("prefer"), settings.max_wait_seconds)
    headers = {"Location": f"/api/v1/analyze/{row.id}"}
    if wait > 0:
        await state.queue.wait(row.id, wait)
        async with state.sessions() as session:
            current = await repo.get(session, row.id)
        headers["Preference-Applied"] = f"wait={wait:g}"
        if current is not None and current.status in repo.FINISHED:
            return Response(render(current, state.cipher), media_type=JSON, headers=headers)
        if current is not None:
            row = current  # e.g. processing by now
    response.headers.update(headers)
    return AnalysisAccepted(
        id=row.id, status=row.status, created_at=row.created_at, expires_at=row.expires_at
    )


EXAMPLE_BODY: dict[str, Any] = {
    "conversation_text": "Human: Why is the sky blue?\nAI: Rayleigh scattering.",
    "options": {"pattern_types": ["dialectic", "dynamics"]},
}
REQUIRED_BODY = (
    "a JSON object with exactly one of conversation_text (a transcript), messages (a list) "
    "or data (an export), and optionally format and options, e.g. "
    + orjson.dumps(EXAMPLE_BODY).decode()
)

PREFER = Header(
    None,
    description="`wait=N`: answer 200 with the result if done within N s.",
    openapi_examples={"wait": {"summary": "Wait up to 5 s", "value": "wait=5"}},
)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AnalysisAccepted,
    responses=SUBMIT_RESPONSES,
    openapi_extra=openapi_body("AnalyzeRequest"),
)
async def submit(
    state: StateDep,
    principal: AnalystDep,
    request: Request,
    response: Response,
    prefer: str | None = PREFER,
) -> Any:
    """Submit one conversation for analysis; 202 with its id, or 200 with the result under `Prefer: wait=N`."""
    body = await json_body(request, required=REQUIRED_BODY)
    return await answer_submission(state, principal, request, response, body)


@router.get("", response_model=AnalyzeCollection)
async def describe(state: StateDep) -> AnalyzeCollection:
    """What this collection offers: its methods, the body a submission takes, the input formats, the limits and links."""
    settings = state.settings
    return AnalyzeCollection(
        methods={
            "POST": "Submit one conversation: 202 {id, status, created_at, expires_at} and a "
            "Location; with `Prefer: wait=N`, 200 with the result if it is done within N s.",
            "GET": "This description.",
            "DELETE": "Erase everything your API key or partner token created.",
        },
        request=SubmissionHelp(
            content_type="application/json",
            one_of={
                "conversation_text": "a plain transcript: `Speaker: text` lines",
                "messages": "a list of {speaker|name|role, text|content, timestamp?}",
                "data": "an export: ChatGPT, Claude.ai, ShareGPT or ConvoKit",
            },
            optional={
                "format": "the input format (default: detected)",
                "options": "pattern_types, include_insights, observer, priority, callback_url",
            },
            example=EXAMPLE_BODY,
        ),
        formats=list(FORMATS),
        pattern_types=list(ALL_PATTERN_TYPES),
        observer_modes=list(get_args(ObserverMode)),
        priorities=list(get_args(Priority)),
        limits=SubmissionLimits(
            max_messages=settings.max_messages,
            max_conversation_bytes=settings.max_conversation_bytes,
            max_message_chars=settings.max_message_chars,
            max_body_bytes=request_body_limit(settings),
            max_wait_seconds=settings.max_wait_seconds,
            max_batch_conversations=settings.max_batch_conversations,
            max_batch_bytes=settings.max_batch_bytes,
        ),
        links={
            "submit": "/api/v1/analyze",
            "result": "/api/v1/analyze/{id}",
            "events": "/api/v1/analyze/{id}/events",
            "cancel": "/api/v1/analyze/{id}/cancel",
            "batch": "/api/v1/analyze/batch",
            "transcript": "/api/v1/transcript",
            "examples": "/examples",
            "docs": "/docs",
            "openapi": "/openapi.json",
        },
    )


@router.get(
    "/{analysis_id}",
    response_model=AnalysisResult,
    responses={
        200: {"content": {"text/csv": {}, "text/markdown": {}}},
        404: {"model": Problem},
        409: {"model": Problem, "description": "CSV or Markdown asked before completion."},
    },
)
async def read(
    analysis_id: str,
    session: SessionDep,
    principal: AnalystDep,
    state: StateDep,
    format: Literal["json", "csv", "markdown"] = Query(
        "json", description="json (default), csv (one row per finding) or markdown (a report)."
    ),
) -> Response:
    """Status of an analysis and, once completed, its full result; `?format=` exports it."""
    row = await service.load(session, analysis_id, principal, live=True)
    if await repo.touch(session, row, timedelta(days=state.settings.result_ttl_days)):
        await session.commit()
    body = render(row, state.cipher)
    if format == "json":
        return Response(body, media_type=JSON)
    if row.status != repo.COMPLETED:
        raise Conflict(
            f"analysis '{analysis_id}' is {row.status}; {format} exports exist once it is completed"
        )
    doc = orjson.loads(body)
    if format == "csv":
        content, media, ext = export.to_csv(doc), "text/csv; charset=utf-8", "csv"
    else:
        content, media, ext = export.to_markdown(doc), "text/markdown; charset=utf-8", "md"
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="analysis-{analysis_id}.{ext}"'},
    )


STAGE_PROGRESS = {"local": 0.2, "observer": 0.6}
EVENT_POLL_SECONDS = 0.25


def _event(row: Analysis) -> dict[str, Any]:
    if row.status in repo.FINISHED:
        progress = 1.0
    elif row.status == repo.PROCESSING:
        progress = STAGE_PROGRESS.get(row.stage or "", 0.1)
    else:
        progress = 0.0
    return {
        "id": row.id,
        "status": row.status,
        "stage": row.stage,
        "progress": progress,
        "error": row.error,
    }


@router.get(
    "/{analysis_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": Problem}},
)
async def events(
    analysis_id: str, session: SessionDep, state: StateDep, principal: AnalystDep
) -> StreamingResponse:
    """Server-sent events: `status` events with status, stage and progress 0–1, until the analysis finishes."""
    await service.load(session, analysis_id, principal, live=True)
    await session.close()

    last: dict[str, Any] | None = None

    async def poll() -> tuple[list[bytes], bool]:
        nonlocal last
        async with state.sessions() as s:
            row = await repo.get(s, analysis_id)
        if row is None:
            return [event("deleted", b"{}")], True
        current, out = _event(row), []
        if current != last:
            out.append(event("status", orjson.dumps(current)))
            last = current
        return out, row.status in repo.FINISHED

    return polled(poll, EVENT_POLL_SECONDS)


@router.post(
    "/{analysis_id}/cancel",
    response_model=CancelResponse,
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def cancel(
    analysis_id: str, session: SessionDep, state: StateDep, principal: AnalystDep
) -> CancelResponse:
    """Stop a queued or running analysis; its result is never stored. 409 if already finished."""
    await service.cancel(state, session, analysis_id, principal)
    return CancelResponse(id=analysis_id, status="cancelled")


@router.delete(
    "",
    response_model=Erased,
    responses={403: {"model": Problem, "description": "The public tier owns nothing to erase."}},
)
async def erase_all(request: Request, state: StateDep, principal: AnalystDep) -> Erased:
    """Erase everything your credential created (a data subject's request): running work
    is cancelled, every analysis is erased (a tombstone of id and timestamps stays until
    the metadata period ends), batches and their aggregates and callback deliveries go."""
    if principal.owner is None:
        raise Forbidden(
            "erasing everything needs an API key or a partner token: the public tier owns "
            "nothing; erase a public analysis with DELETE /api/v1/analyze/{id}"
        )
    counts = await service.erase_owner(state.sessions, state.engine, principal.owner, state.queue)
    request.state.audit_detail = counts
    return Erased(**counts)


@router.delete(
    "/{analysis_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": Problem}}
)
async def erase(
    analysis_id: str, session: SessionDep, state: StateDep, principal: AnalystDep
) -> Response:
    """Erase an analysis and its result; running work is cancelled first."""
    await service.erase(state, session, analysis_id, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
