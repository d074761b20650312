"""The CPU-bound steps of an analysis, as they run inside worker processes.

Everything here is called in a process of :mod:`app.jobs.pool`, never on the API's event
loop: decoding and parsing a submitted body, the local analysis, and the observer stage
(whose prompt building and merging are CPU work too). Arguments and results cross the
process boundary, so they are plain data: bytes, dataclasses of bytes and strings, and
module-level callables. A function here never raises for an expected outcome; it returns
one of the outcome dataclasses below, so nothing depends on an exception pickling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from app.analyses.schemas import AnalyzeRequest
from app.analysis import AnalysisOptions, analyze, masked_transcript
from app.conversation import Conversation
from app.conversation.parsers import Limits, parse_conversation
from app.core.cancellation import AnalysisTimedOut, CancelToken
from app.core.config import Settings
from app.core.errors import InputError, ObservatoryError, ServiceUnavailable
from app.core.logging import configure_logging, describe_exception

log = structlog.get_logger(__name__)

AnalyzeFn = Callable[[Conversation, AnalysisOptions, CancelToken], dict[str, Any]]


# ---- outcomes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submission:
    """A parsed, accepted request body: the conversation serialised for a worker process,
    and what the row records about it (never the text itself)."""

    payload: bytes
    fingerprint: str
    message_count: int
    char_count: int
    source_format: str
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request body that cannot be accepted: ``status`` 400 or 422, a sentence saying why,
    and for 422 the schema errors with their locations."""

    status: int
    detail: str
    errors: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Done:
    """A finished step: the result document as JSON bytes (and, from the observer stage, its
    calls to Ollama by outcome and the breaker's state, for the API process's metrics)."""

    document: bytes
    observer: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """A step that ended without a result: ``timed_out``, an expected failure whose ``detail``
    is safe to show (e.g. the observer was required), or an internal error whose
    ``exception`` (type and frames, never the message) the API process logs."""

    detail: str
    timed_out: bool = False
    exception: str | None = None
    observer: dict[str, Any] | None = None
    transient: bool = False
    """The failure may pass if tried again later (the observer was required and down)."""


INTERNAL_ERROR = "the analysis failed because of an internal error; it has been logged"


# ---- worker process state -----------------------------------------------------------


class _WorkerState:
    """Per-process resources, made by :func:`init_worker` when the process starts: the
    settings, an event loop for the observer's HTTP calls, and the observer itself (made on
    first use, so a process that only parses never opens a client)."""

    settings: Settings | None = None
    runner: asyncio.Runner | None = None
    observer: Any = None


_state = _WorkerState()


def init_worker(settings: Settings, api_pid: int) -> None:
    """Pool initializer: a lower CPU priority than the API process (so requests are served
    first when analyses fill every core), logging like the API's, this process's resources,
    and a watchdog that ends the process if the API process is gone (after ``kill -9`` of
    the API nothing else would stop it)."""
    if settings.worker_nice:
        with contextlib.suppress(OSError):
            os.nice(settings.worker_nice)
    configure_logging(settings.log_level, settings.log_json)
    _state.settings = settings
    _state.runner = asyncio.Runner()
    threading.Thread(target=_watch_api, args=(api_pid,), name="api-watchdog", daemon=True).start()


WATCHDOG_SECONDS = 1.0


def _watch_api(api_pid: int) -> None:
    while True:
        time.sleep(WATCHDOG_SECONDS)
        try:
            os.kill(api_pid, 0)
        except ProcessLookupError:
            os._exit(70)
        except PermissionError:
            pass  # exists, owned by someone else: cannot be ours, but do not guess


@contextlib.contextmanager
def _hard_deadline(seconds: float) -> Iterator[None]:
    """SIGALRM with its default action (terminate) after ``seconds``: the process ends itself
    even if its parent is gone or the interpreter is stuck in C code holding the GIL."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


SELF_KILL_GRACE_SECONDS = 5.0


def ping() -> int:
    """A no-op task: proves a worker process runs (and starts the pool's processes)."""
    return os.getpid()


def _observer() -> Any:
    if _state.observer is None:
        from app.observer import Observer

        assert _state.settings is not None, "worker process not initialised"
        _state.observer = Observer(_state.settings)
    return _state.observer


# ---- parsing ------------------------------------------------------------------------


def serialise(conversation: Conversation) -> bytes:
    """The parsed conversation as it travels to a worker process of this machine."""
    return pickle.dumps(conversation, protocol=pickle.HIGHEST_PROTOCOL)


def deserialise(payload: bytes) -> Conversation:
    conversation = pickle.loads(payload)
    if not isinstance(conversation, Conversation):
        raise TypeError(f"expected a serialised Conversation, got {type(conversation).__name__}")
    return conversation


NOT_JSON_HINT = (
    "; the body must be a JSON object sent with the header Content-Type: application/json "
    '(a transcript goes inside it: {"conversation_text": "Human: ...\\nAI: ..."})'
)


def json_error(exc: orjson.JSONDecodeError) -> Refusal:
    message = str(exc.msg)
    if "surrogate" in message:
        return Refusal(
            400,
            f"request body holds an unpaired UTF-16 surrogate escape at position {exc.pos}; "
            "text must be valid Unicode (pair the surrogates or send the character as UTF-8)",
        )
    # Text that does not even start like a JSON object (a transcript, a form) gets told how
    # to send one; a typo inside JSON only needs its position.
    doc = exc.doc if isinstance(exc.doc, str) else ""
    if doc[:4096].lstrip()[:1] not in ("{", "["):
        message += NOT_JSON_HINT
    return Refusal(
        422,
        f"body is not valid JSON at position {exc.pos}: {message}",
        (
            {
                "loc": ["body", exc.pos],
                "msg": f"JSON decode error: {message}",
                "type": "json_invalid",
            },
        ),
    )


def schema_errors(exc: ValidationError) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)[:20]
    )


def schema_refusal(exc: ValidationError, fallback: str) -> Refusal:
    """A 422 for a body that does not fit its schema, its first errors in the detail."""
    errors = schema_errors(exc)
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:10])
    return Refusal(422, detail or fallback, errors)


def _request(raw: Any, limits: Limits) -> tuple[AnalyzeRequest, Conversation] | Refusal:
    """Validate and parse one decoded analysis request."""
    try:
        request = AnalyzeRequest.model_validate(raw)
    except ValidationError as exc:
        return schema_refusal(exc, "invalid request")
    try:
        conversation = parse_conversation(
            conversation_text=request.conversation_text,
            messages=request.messages,
            data=request.data,
            format=request.format,
            limits=limits,
        )
    except InputError as exc:
        return Refusal(exc.status_code, exc.detail)
    return request, conversation


def _decoded(body: bytes, limits: Limits) -> tuple[AnalyzeRequest, Conversation] | Refusal:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return json_error(exc)
    return _request(raw, limits)


def prepare(body: bytes, limits: Limits) -> Submission | Refusal:
    """Decode, validate and parse one ``POST /api/v1/analyze`` body."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return json_error(exc)
    return prepare_object(raw, limits)


def prepare_object(raw: Any, limits: Limits) -> Submission | Refusal:
    """Validate and parse one decoded analysis request (a body, or an item of a batch)."""
    parsed = _request(raw, limits)
    if isinstance(parsed, Refusal):
        return parsed
    request, conversation = parsed
    return Submission(
        payload=serialise(conversation),
        fingerprint=conversation.fingerprint(),
        message_count=len(conversation),
        char_count=conversation.char_count,
        source_format=conversation.source_format,
        options=request.options.model_dump(),
    )


def transcript(body: bytes, limits: Limits) -> Done | Refusal:
    """The messages an analysis of this body would index, personal data masked, as JSON."""
    parsed = _decoded(body, limits)
    if isinstance(parsed, Refusal):
        return parsed
    return Done(orjson.dumps(masked_transcript(parsed[1])))


# ---- analysis -----------------------------------------------------------------------


def run_local(
    analysis_id: str,
    payload: bytes,
    options: AnalysisOptions,
    timeout: float,
    analyze_fn: AnalyzeFn = analyze,
) -> Done | Failed:
    """The local analysis of one conversation, with a cooperative deadline (the pool kills
    the process shortly after it, should a detector stop checking its token)."""
    token = CancelToken(timeout=timeout)
    try:
        with _hard_deadline(timeout + SELF_KILL_GRACE_SECONDS):
            result = analyze_fn(deserialise(payload), options, token)
            return Done(orjson.dumps(result))
    except AnalysisTimedOut:
        return Failed("timed out", timed_out=True)
    except Exception as exc:
        return _internal(exc)


def run_observer(
    analysis_id: str, payload: bytes, document: bytes, mode: str, time_limit: float
) -> Done | Failed:
    """The observer stage: the model's reading added to the local result (or why there is
    none). Its HTTP calls run on this process's own event loop."""
    assert _state.runner is not None, "worker process not initialised"
    try:
        with _hard_deadline(time_limit + SELF_KILL_GRACE_SECONDS):
            enriched = _state.runner.run(
                _observer().enrich(
                    deserialise(payload), orjson.loads(document), mode, time_limit=time_limit
                )
            )
            return Done(orjson.dumps(enriched), _observer_stats())
    except ObservatoryError as exc:
        return Failed(
            exc.detail,
            observer=_observer_stats(),
            transient=isinstance(exc, ServiceUnavailable),
        )
    except Exception as exc:
        return replace(_internal(exc), observer=_observer_stats())


def _observer_stats() -> dict[str, Any] | None:
    return _state.observer.take_stats() if _state.observer is not None else None


def _internal(exc: Exception) -> Failed:
    return Failed(INTERNAL_ERROR, exception=describe_exception(type(exc), exc.__traceback__))
