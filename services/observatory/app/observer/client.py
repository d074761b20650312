"""Ollama's HTTP API over httpx (docs/decisions/0002-observer-client.md).

Every failure becomes an :class:`~app.observer.errors.ObserverError` whose reason can be
shown to the user. Connection failures, timeouts and 5xx answers count against the circuit
breaker; a 404 means the model is missing, which no retry will fix.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.core.config import Settings
from app.observer.breaker import BreakerOpen, CircuitBreaker
from app.observer.errors import ModelNotFound, ObserverFailed, ObserverUnavailable

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


def _error_text(response: httpx.Response) -> str:
    """Ollama's ``{"error": "..."}`` body, or the start of whatever else came back."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:300]
    return response.reason_phrase


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class OllamaClient:
    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = settings.observer_url.rstrip("/")
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

    @property
    def model_missing(self) -> str:
        return (
            f"model '{self.model}' not found on {self.base_url}; "
            f"run `ollama create {self.model} -f Modelfile`"
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    async def chat(self, payload: dict[str, Any]) -> ChatReply:
        """One non-streaming ``/api/chat`` call, guarded by the breaker and a hard timeout."""
        probe = await self._admit()
        try:
            return await self._chat(payload)
        finally:
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
                        f"Ollama at {self.base_url} is failing ({exc.last_error}); "
                        f"not trying again for {exc.retry_in:.0f} s"
                    ) from None
                await self._probe_done.wait()
                continue
            if probe:
                self._probe_done = asyncio.Event()
            return probe

    async def _chat(self, payload: dict[str, Any]) -> ChatReply:
        url = f"{self.base_url}/api/chat"
        try:
            # httpx's read timeout restarts with every byte; this bounds the whole call.
            async with asyncio.timeout(self._timeout):
                response = await self._http.post(url, json=payload)
        except (TimeoutError, httpx.TimeoutException):
            reason = f"Ollama at {self.base_url} did not answer within {self._timeout:g} s"
            self.breaker.failure(reason)
            raise ObserverFailed(reason) from None
        except httpx.TransportError as exc:
            reason = f"cannot reach Ollama at {self.base_url} ({_describe(exc)})"
            self.breaker.failure(reason)
            raise ObserverUnavailable(reason) from None
        status = response.status_code
        if status >= 500:
            reason = f"Ollama at {self.base_url} answered {status}: {_error_text(response)}"
            self.breaker.failure(reason)
            raise ObserverUnavailable(reason)
        self.breaker.success()
        if status == 404:
            raise ModelNotFound(self.model_missing)
        if status == 429:
            raise ObserverUnavailable(f"Ollama at {self.base_url} is busy (429)")
        if status >= 400:
            raise ObserverFailed(f"Ollama refused the request ({status}: {_error_text(response)})")
        try:
            body = response.json()
        except ValueError:
            raise ObserverFailed(f"Ollama at {self.base_url} answered with non-JSON") from None
        if not isinstance(body, dict):
            raise ObserverFailed(f"Ollama at {self.base_url} answered with non-JSON")
        if isinstance(body.get("error"), str):
            raise ObserverFailed(f"Ollama reported an error: {body['error'][:300]}")
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
        """Whether Ollama answers and has the model; never raises."""
        report: dict[str, Any] = {
            "status": "unavailable",
            "model": self.model,
            "base_url": self.base_url,
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
                report["reason"] = f"Ollama at {self.base_url} did not {where} ({_describe(exc)})"
            else:
                report["reason"] = (
                    f"Ollama at {self.base_url} failed to list models ({_describe(exc)})"
                )
            return report
        if not report["model_present"]:
            report["status"] = "model_missing"
            report["reason"] = self.model_missing
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
