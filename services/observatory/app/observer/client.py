"""Ollama's HTTP API over httpx (docs/decisions/0002-observer-client.md).

Every failure becomes an :class:`~app.observer.errors.ObserverError` whose reason can be
shown to the user: it names what went wrong but not where Ollama runs, and carries no
upstream body other than Ollama's own short ``error`` text. The address and the raw details
go to the log, for operators. Connection failures, timeouts and 5xx answers count against
the circuit breaker; a 404 means the model is missing, which no retry will fix.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from app.core import patterns
from app.core.config import Settings
from app.observer.breaker import BreakerOpen, CircuitBreaker
from app.observer.errors import ModelNotFound, ObserverFailed, ObserverUnavailable

log = structlog.get_logger(__name__)

READINESS_TIMEOUT_SECONDS = 5.0
LOGPROBS_SINCE = (0, 12, 11)
"""The first Ollama release that answers ``logprobs: true``."""


@dataclass(frozen=True, slots=True)
class ChatReply:
    content: str
    done_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[dict[str, Any]] = field(default_factory=list)


_NUMBER = patterns.compile(r"\d+")
_CREDENTIALS = patterns.compile(r"(?<=://)[^/@]*+@")
# A URL from its scheme on; group 1 is what precedes the first letter in the run of
# scheme characters. Only the start of such a run is tried, so a long run is read once.
_URL = patterns.compile(r"(?<![a-z0-9+.-])([0-9+.-]*+)[a-z][a-z0-9+.-]*+://\S+", re.IGNORECASE)
ERROR_TEXT_MAX = 200


def _error_text(response: httpx.Response) -> str | None:
    """Ollama's own ``{"error": "..."}`` text, cut and without addresses; None for any
    other body (an HTML page from a proxy, say), which is for the log, not the user."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return _URL.sub(r"\1[url]", " ".join(body["error"].split()))[:ERROR_TEXT_MAX]
    return None


def _status_text(response: httpx.Response) -> str:
    detail = _error_text(response)
    return f"{response.status_code}: {detail}" if detail else str(response.status_code)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in _NUMBER.findall(version)[:3])


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class OllamaClient:
    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = settings.observer_url.rstrip("/")
        # For the log: the address without any user:password part.
        self.log_url = _CREDENTIALS.sub("***@", self.base_url)
        self.model = settings.observer_model
        self._timeout = settings.observer_request_timeout_seconds
        self._owns_client = client is None
        # No proxy from the environment: Ollama usually sits on localhost or the same network,
        # and a stray HTTP(S)_PROXY would send the transcript elsewhere.
        self._http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(
                self._timeout,
                connect=min(settings.observer_connect_timeout_seconds, self._timeout),
            ),
            limits=httpx.Limits(
                max_connections=settings.observer_max_concurrency + 2,
                max_keepalive_connections=settings.observer_max_concurrency,
            ),
            trust_env=False,
        )
        self.breaker = CircuitBreaker(
            settings.observer_breaker_failures, settings.observer_breaker_open_seconds
        )
        self._probe_done: asyncio.Event | None = None
        self.calls: Counter[str] = Counter()

    def take_calls(self) -> dict[str, int]:
        """Calls to Ollama by outcome since the last time this was asked (for metrics kept
        by another process)."""
        calls, self.calls = dict(self.calls), Counter()
        return calls

    @property
    def model_missing(self) -> str:
        return (
            f"model '{self.model}' not found on the Ollama server; "
            f"run `ollama create {self.model} -f Modelfile`"
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    async def chat(self, payload: dict[str, Any]) -> ChatReply:
        """One non-streaming ``/api/chat`` call, guarded by the breaker and a hard timeout."""
        try:
            probe = await self._admit()
        except ObserverUnavailable:
            self.calls["breaker_open"] += 1
            raise
        outcome = "cancelled"
        try:
            reply = await self._chat(payload, probe)
            outcome = "ok"
            return reply
        except ModelNotFound:
            outcome = "model_missing"
            raise
        except ObserverUnavailable:
            outcome = "unavailable"
            raise
        except ObserverFailed:
            outcome = "failed"
            raise
        finally:
            self.calls[outcome] += 1
            self.breaker.release(probe)
            if probe and self._probe_done is not None:
                self._probe_done.set()
                self._probe_done = None

    async def _admit(self) -> bool:
        """Pass the breaker; while a half-open probe runs, wait for its verdict instead of
        failing, so the other chunks of the same analysis are not lost to it."""
        while True:
            try:
                probe = self.breaker.admit()
            except BreakerOpen as exc:
                if self._probe_done is None:
                    raise ObserverUnavailable(
                        f"Ollama is failing ({exc.last_error}); "
                        f"not trying again for {exc.retry_in:.0f} s"
                    ) from None
                await self._probe_done.wait()
                continue
            if probe:
                self._probe_done = asyncio.Event()
            return probe

    def _failed(self, reason: str, probe: bool, detail: str) -> str:
        log.warning("observer.ollama_failed", url=self.log_url, reason=reason, detail=detail)
        self.breaker.failure(reason, probe)
        return reason

    async def _chat(self, payload: dict[str, Any], probe: bool = False) -> ChatReply:
        url = f"{self.base_url}/api/chat"
        try:
            # httpx's read timeout restarts with every byte; this bounds the whole call.
            async with asyncio.timeout(self._timeout):
                response = await self._http.post(url, json=payload)
        except (TimeoutError, httpx.TimeoutException) as exc:
            reason = f"Ollama did not answer within {self._timeout:g} s"
            raise ObserverFailed(self._failed(reason, probe, _describe(exc))) from None
        except httpx.TransportError as exc:
            reason = f"cannot reach Ollama ({type(exc).__name__})"
            raise ObserverUnavailable(self._failed(reason, probe, _describe(exc))) from None
        except httpx.HTTPError as exc:
            # E.g. a body that cannot be decoded: the server is not answering properly.
            reason = f"Ollama's answer could not be read ({type(exc).__name__})"
            raise ObserverFailed(self._failed(reason, probe, _describe(exc))) from None
        status = response.status_code
        if status >= 500:
            reason = f"Ollama answered {_status_text(response)}"
            raise ObserverUnavailable(self._failed(reason, probe, response.text[:500]))
        self.breaker.success(probe)
        if status == 404:
            log.warning("observer.model_missing", url=self.log_url, model=self.model)
            raise ModelNotFound(self.model_missing)
        if status == 429:
            raise ObserverUnavailable("Ollama is busy (429)")
        if status >= 400:
            log.warning("observer.refused", url=self.log_url, detail=response.text[:500])
            raise ObserverFailed(f"Ollama refused the request ({_status_text(response)})")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning("observer.non_json", url=self.log_url, detail=response.text[:500])
            raise ObserverFailed("Ollama answered with something other than a JSON object")
        if isinstance(body.get("error"), str):
            raise ObserverFailed(f"Ollama reported an error: {_error_text(response)}")
        message = body.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        logprobs = body.get("logprobs")
        return ChatReply(
            content=content if isinstance(content, str) else "",
            done_reason=body.get("done_reason")
            if isinstance(body.get("done_reason"), str)
            else None,
            prompt_tokens=_int(body.get("prompt_eval_count")),
            completion_tokens=_int(body.get("eval_count")),
            logprobs=[e for e in logprobs if isinstance(e, dict)]
            if isinstance(logprobs, list)
            else [],
        )

    async def readiness(self) -> dict[str, Any]:
        """Whether Ollama answers and has the model; never raises.

        The report goes out on the unauthenticated readiness endpoint, so like the database
        check (which names its backend, not its URL) it leaves out where Ollama runs; a
        report that is not ok is logged with the address.
        """
        report: dict[str, Any] = {
            "status": "unavailable",
            "model": self.model,
            "reachable": False,
            "version": None,
            "model_present": False,
            "logprobs": None,
            "breaker": self.breaker.state,
        }
        try:
            async with asyncio.timeout(min(READINESS_TIMEOUT_SECONDS, self._timeout)):
                version = await self._http.get(f"{self.base_url}/api/version")
                version.raise_for_status()
                report["reachable"] = True
                number = str(version.json().get("version", ""))
                report["version"] = number or None
                if number:
                    report["logprobs"] = _version_tuple(number) >= LOGPROBS_SINCE
                report["model_present"] = await self._has_model()
        except (TimeoutError, httpx.HTTPError, ValueError, AttributeError) as exc:
            where = "answer in time" if isinstance(exc, TimeoutError) else "answer properly"
            if not report["reachable"]:
                report["reason"] = f"Ollama did not {where} ({type(exc).__name__})"
            else:
                report["reason"] = f"Ollama failed to list models ({type(exc).__name__})"
            log.warning(
                "observer.not_ready",
                url=self.log_url,
                reason=report["reason"],
                detail=_describe(exc),
            )
            return report
        if not report["model_present"]:
            report["status"] = "model_missing"
            report["reason"] = self.model_missing
            log.warning("observer.model_missing", url=self.log_url, model=self.model)
        else:
            report["status"] = "ok"
        return report

    async def _has_model(self) -> bool:
        response = await self._http.get(f"{self.base_url}/api/tags")
        response.raise_for_status()
        names = {
            str(entry.get(key))
            for entry in response.json().get("models") or ()
            if isinstance(entry, dict)
            for key in ("name", "model")
            if entry.get(key)
        }
        wanted = {self.model} if ":" in self.model else {self.model, f"{self.model}:latest"}
        return bool(names & wanted)
