"""The observer: an LLM's reading of the conversation, added to the local result.

Long conversations are split into chunks that fit ``num_ctx`` (see :func:`transcript_budget`),
the chunks are analysed concurrently under one per-process semaphore, and the chunk findings
(not the raw text) are merged by further calls, several levels deep when they do not fit
one prompt. Cancelling the task that runs :meth:`Observer.enrich` cancels every request in
flight, which closes their connections.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel

from app.analysis.privacy import mask_pii
from app.conversation import Conversation
from app.core.config import Settings
from app.observer import prompt
from app.observer.certainty import LogprobTally, agreement
from app.observer.chunking import Chunk, plan_chunks
from app.observer.client import ChatReply, OllamaClient
from app.observer.errors import ObserverError, ObserverFailed, ObserverRequiredError
from app.observer.merge import (
    cut,
    injection_key,
    judgement_items,
    judgement_key,
    local_dialectic,
    merge_into,
    merge_locally,
    unique,
)
from app.observer.schema import (
    ChunkFindings,
    InjectionAttempt,
    PatternJudgement,
    Synthesis,
    json_schema,
    schema_text,
)
from app.observer.validation import (
    CitationChecker,
    InvalidAnswer,
    check_findings,
    check_synthesis,
    parse_answer,
)

log = structlog.get_logger(__name__)

MODES: tuple[str, ...] = ("auto", "off", "required")
TOP_P = 0.9
PATTERNS_PER_CHUNK = 10
_PATTERN_LINE_TOKENS = 16
_TEMPLATE_TOKENS = 48
"""Chat-template wrapping of the two or three messages of one call."""
MIN_TRANSCRIPT_BUDGET = 128
REASON_MAX = 500

Answer = TypeVar("Answer", bound=BaseModel)
R = TypeVar("R")


def transcript_budget(settings: Settings) -> int:
    """Tokens left for transcript lines (or findings) in one call.

    ``num_ctx`` minus: the system prompt, the instructions with the schema and up to
    :data:`PATTERNS_PER_CHUNK` pattern lines, the answer (``num_predict``), a repair note,
    the chat template, and a 10 % margin for the chars/4 estimate undercounting code and
    non-Latin text.
    """
    fixed = (
        prompt.estimate_tokens(prompt.SYSTEM_PROMPT)
        + prompt.estimate_tokens(
            prompt.chunk_instructions(
                schema=schema_text(ChunkFindings),
                first=99_999,
                last=99_999,
                first_new=99_999,
                total=99_999,
                part=9_999,
                parts=9_999,
                patterns=(),
            )
            + prompt.transcript_block(())
            + prompt.TRANSCRIPT_REMINDER
        )
        + PATTERNS_PER_CHUNK * _PATTERN_LINE_TOKENS
        + prompt.REPAIR_RESERVE_TOKENS
        + _TEMPLATE_TOKENS
    )
    margin = settings.observer_num_ctx // 10
    return settings.observer_num_ctx - fixed - settings.observer_num_predict - margin


@dataclass(slots=True)
class _Run:
    """What one :meth:`Observer.enrich` call did."""

    chunks: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dropped: int = 0
    in_flight: int = 0
    peak: int = 0
    failed_chunks: int = 0
    merge_calls: int = 0
    merge_fallbacks: int = 0
    logprobs: LogprobTally = field(default_factory=LogprobTally)


@dataclass(frozen=True, slots=True)
class _Part:
    """Validated findings about messages ``first..last``."""

    first: int
    last: int
    synthesis: Synthesis


@dataclass(frozen=True, slots=True)
class _Observation:
    synthesis: Synthesis
    judgements: list[PatternJudgement]
    injections: list[InjectionAttempt]
    failure_notes: list[str]


def _client_text(reason: str) -> str:
    """A reason as shown to API clients: personal data the model or a transcript put into
    it masked, and bounded in length."""
    return cut(mask_pii(reason), REASON_MAX)


def _first_observer_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            exc = _first_observer_error(exc)
        if isinstance(exc, ObserverError):
            return exc
    return group


async def _all(coros: Sequence[Coroutine[Any, Any, R]]) -> list[R]:
    """Run ``coros`` together; the first observer error cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as errors:
        raise _first_observer_error(errors) from None
    return [t.result() for t in tasks]


class Observer:
    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._budget = transcript_budget(settings)
        if self._budget < MIN_TRANSCRIPT_BUDGET:
            raise ValueError(
                f"observer_num_ctx={settings.observer_num_ctx} leaves {self._budget} tokens for "
                f"the transcript after prompt, schema and num_predict="
                f"{settings.observer_num_predict}; raise num_ctx or lower num_predict"
            )
        self._ollama = OllamaClient(settings, client)
        self._semaphore = asyncio.Semaphore(settings.observer_max_concurrency)
        self._chunk_format = json_schema(ChunkFindings)
        self._synthesis_format = json_schema(Synthesis)

    @property
    def model(self) -> str:
        return self._settings.observer_model

    @property
    def time_limit(self) -> float:
        """Seconds one :meth:`enrich` may take. The job's own limit covers the local analysis
        and the observer; stopping at 90 % of it lets ``auto`` still return the local result
        instead of the whole analysis timing out."""
        s = self._settings
        return min(s.observer_analysis_timeout_seconds, 0.9 * s.analysis_timeout_seconds)

    async def readiness(self) -> dict[str, Any]:
        return await self._ollama.readiness()

    def take_stats(self) -> dict[str, Any]:
        """Ollama calls by outcome since last asked, and the breaker's state now."""
        return {"calls": self._ollama.take_calls(), "breaker": self._ollama.breaker.state}

    async def aclose(self) -> None:
        await self._ollama.aclose()

    async def enrich(
        self,
        conversation: Conversation,
        result: dict[str, Any],
        mode: str,
        *,
        time_limit: float | None = None,
    ) -> dict[str, Any]:
        """A copy of ``result`` with the observer's findings, or with why there are none.

        ``required`` raises :class:`ObserverRequiredError` when the observer cannot
        contribute; ``auto`` returns the local result with ``observer.status`` explaining and
        never raises for anything the observer does. ``time_limit`` lowers
        :attr:`time_limit` for this call: a job that has spent part of its own limit on the
        local analysis passes what is left of it (minus a margin), so that a slow observer
        ends with the local result rather than with the job's timeout.
        """
        if mode not in MODES:
            raise ValueError(f"observer mode must be one of {', '.join(MODES)}, not {mode!r}")
        enriched = copy.deepcopy(result)
        if mode == "off" or not conversation.messages:
            why = "observer turned off for this request" if mode == "off" else "no messages"
            enriched["observer"] = {"status": "disabled", "model": self.model, "reason": why}
            return enriched
        run = _Run()
        started = time.perf_counter()
        limit = self.time_limit if time_limit is None else min(self.time_limit, time_limit)
        try:
            async with asyncio.timeout(limit):
                observation = await self._observe(conversation, result, run)
            certainty, source = self._certainty(observation, result, run)
            merge_into(
                enriched, conversation, observation.synthesis, observation.injections, certainty
            )
            info = self._info(run, started)
            info.update(
                failed_chunks=run.failed_chunks,
                merge_calls=run.merge_calls,
                model_certainty=certainty,
                certainty_source=source,
                pattern_judgements=judgement_items(observation.judgements),
            )
            if observation.failure_notes:
                info["reason"] = _client_text("; ".join(observation.failure_notes))
        except TimeoutError:
            error: ObserverError = ObserverFailed(f"the observer did not finish within {limit:g} s")
        except ObserverError as exc:
            error = exc
        except Exception:
            # A fault in this optional layer must not cost the caller its local result.
            log.exception("observer.error", messages=len(conversation))
            error = ObserverFailed("internal error in the observer; it has been logged")
        else:
            enriched["observer"] = info
            log.info(
                "observer.used", **{k: v for k, v in info.items() if k != "pattern_judgements"}
            )
            return enriched
        enriched = copy.deepcopy(result)  # drop anything a half-done merge added
        reason = _client_text(error.reason)
        info = self._info(run, started)
        info.update(status=error.status, reason=reason)
        log.warning("observer.not_used", mode=mode, **info)
        if mode == "required":
            raise ObserverRequiredError(f"observer required but not usable: {reason}")
        enriched["observer"] = info
        return enriched

    def _info(self, run: _Run, started: float) -> dict[str, Any]:
        return {
            "status": "used",
            "model": self.model,
            "chunks": run.chunks,
            "calls": run.calls,
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "dropped_citations": run.dropped,
            "concurrency": run.peak,
        }

    @staticmethod
    def _certainty(
        observation: _Observation, result: dict[str, Any], run: _Run
    ) -> tuple[float | None, str | None]:
        from_logprobs = run.logprobs.certainty()
        if from_logprobs is not None:
            return from_logprobs, "logprobs"
        agreed = agreement(observation.judgements, local_dialectic(result))
        return agreed, ("agreement" if agreed is not None else None)

    async def _observe(
        self, conversation: Conversation, result: dict[str, Any], run: _Run
    ) -> _Observation:
        texts = [m.text for m in conversation.messages]
        lines = [prompt.render_message(m, self._budget * 4) for m in conversation.messages]
        sizes = [prompt.estimate_tokens(line) + 1 for line in lines]
        chunks = plan_chunks(sizes, self._budget, self._settings.observer_chunk_overlap_messages)
        run.chunks = len(chunks)
        local = local_dialectic(result)
        outcomes = await _all(
            [
                self._analyse_chunk(texts, lines, chunk, number, len(chunks), local, run)
                for number, chunk in enumerate(chunks, start=1)
            ]
        )
        found = [(c, f) for c, f in zip(chunks, outcomes, strict=True) if not isinstance(f, str)]
        failures = [f for f in outcomes if isinstance(f, str)]
        run.failed_chunks = len(failures)
        notes: list[str] = []
        if failures:
            summary = f"invalid_output: {len(failures)} of {len(chunks)} chunks unusable"
            # A few bad chunks of many still leave a useful reading; a majority does not.
            if len(failures) * 2 > len(chunks):
                raise ObserverFailed(f"{summary} ({failures[0]})")
            notes.append(f"{summary} ({failures[0]})")
        findings = [f for _, f in found]
        parts = [_Part(c.start, c.end - 1, _as_synthesis(f)) for c, f in found]
        synthesis, fell_back = await self._synthesise(texts, parts, len(texts), run)
        if fell_back:
            notes.append(f"{fell_back} merges of chunk findings done locally after invalid answers")
        return _Observation(
            synthesis=synthesis,
            judgements=unique((j for f in findings for j in f.pattern_judgements), judgement_key),
            injections=unique((a for f in findings for a in f.injection_attempts), injection_key),
            failure_notes=notes,
        )

    async def _analyse_chunk(
        self,
        texts: Sequence[str],
        lines: Sequence[str],
        chunk: Chunk,
        number: int,
        total_chunks: int,
        local: Sequence[Any],
        run: _Run,
    ) -> ChunkFindings | str:
        """Validated findings for one chunk, or the reason its answers were unusable."""
        inside = [
            p
            for p in local
            if p["messages"]
            and chunk.start <= min(p["messages"])
            and max(p["messages"]) < chunk.end
        ][:PATTERNS_PER_CHUNK]
        instructions = prompt.chunk_instructions(
            schema=schema_text(ChunkFindings),
            first=chunk.start,
            last=chunk.end - 1,
            first_new=chunk.first_new,
            total=len(texts),
            part=number,
            parts=total_chunks,
            patterns=inside,
        )
        text = prompt.chunk_prompt(instructions, lines[chunk.start : chunk.end])
        try:
            findings = await self._ask(text, ChunkFindings, self._chunk_format, run)
        except InvalidAnswer as exc:
            return f"chunk {number}: {exc.reason}"
        checker = CitationChecker(texts, chunk.indices)
        checked = check_findings(findings, checker)
        run.dropped += checker.dropped
        return checked

    async def _synthesise(
        self, texts: Sequence[str], parts: list[_Part], total: int, run: _Run
    ) -> tuple[Synthesis, int]:
        """Merge part findings level by level until one remains; returns it and the number
        of merges that fell back to :func:`merge_locally`."""
        fallbacks = 0
        limit = self._budget * 4
        while len(parts) > 1:
            groups = _pack([_digest(p, limit // 2 - 2) for p in parts], parts, limit)
            merged = await _all([self._merge(texts, g, total, run) for g in groups])
            fallbacks += sum(1 for _, fell_back in merged if fell_back)
            parts = [part for part, _ in merged]
        return parts[0].synthesis, fallbacks

    async def _merge(
        self, texts: Sequence[str], group: list[tuple[str, _Part]], total: int, run: _Run
    ) -> tuple[_Part, bool]:
        members = [part for _, part in group]
        first, last = members[0].first, members[-1].last
        if len(members) == 1:
            return members[0], False
        text = prompt.synthesis_prompt(
            schema=schema_text(Synthesis), total=total, digests=[d for d, _ in group]
        )
        run.merge_calls += 1
        try:
            answer = await self._ask(text, Synthesis, self._synthesis_format, run)
        except InvalidAnswer:
            return _Part(first, last, merge_locally([p.synthesis for p in members])), True
        checker = CitationChecker(texts, _cited(members))
        checked = check_synthesis(answer, checker)
        run.dropped += checker.dropped
        return _Part(first, last, checked), False

    async def _ask(
        self, text: str, model: type[Answer], schema: dict[str, Any], run: _Run
    ) -> Answer:
        """One call and, when its answer is unusable, one repair call."""
        reply = await self._call(prompt.chat_messages(text), schema, run)
        try:
            answer = parse_answer(reply.content, reply.done_reason, model)
        except InvalidAnswer as first:
            note = prompt.repair_note(first.reason, cut_off=first.cut_off)
            reply = await self._call(prompt.chat_messages(text, note), schema, run)
            try:
                answer = parse_answer(reply.content, reply.done_reason, model)
            except InvalidAnswer as second:
                raise InvalidAnswer(
                    f"{first.reason}; after a repair request, {second.reason}"
                ) from None
        run.logprobs.add(reply.logprobs)
        return answer

    async def _call(
        self, messages: list[dict[str, str]], schema: dict[str, Any], run: _Run
    ) -> ChatReply:
        s = self._settings
        payload = {
            "model": s.observer_model,
            "messages": messages,
            "stream": False,
            "think": False,
            "format": schema,
            "keep_alive": s.observer_keep_alive,
            "logprobs": True,
            "top_logprobs": 0,
            "options": {
                "temperature": s.observer_temperature,
                "seed": s.observer_seed,
                "num_ctx": s.observer_num_ctx,
                "num_predict": s.observer_num_predict,
                "top_p": TOP_P,
            },
        }
        async with self._semaphore:
            run.in_flight += 1
            run.peak = max(run.peak, run.in_flight)
            try:
                reply = await self._ollama.chat(payload)
            finally:
                run.in_flight -= 1
        run.calls += 1
        run.prompt_tokens += reply.prompt_tokens
        run.completion_tokens += reply.completion_tokens
        return reply


def _as_synthesis(findings: ChunkFindings) -> Synthesis:
    return Synthesis(
        narrative=findings.narrative,
        themes=findings.themes,
        insights=findings.insights,
        notable_exchanges=findings.notable_exchanges,
    )


def _cited(parts: Sequence[_Part]) -> set[int]:
    """Indices a merge may cite: those the merged findings cited, nothing new."""
    cited: set[int] = set()
    for part in parts:
        s = part.synthesis
        for group in (s.themes, s.insights, s.notable_exchanges):
            for item in group:
                cited.update(item.messages)
    return cited


def _digest(part: _Part, max_chars: int) -> str:
    """The findings of one part as one JSON line of at most ``max_chars`` (items are dropped
    from the end of the longest list, then the narrative is shortened, until it fits)."""
    s = part.synthesis
    body: dict[str, Any] = {
        "messages": f"{part.first}-{part.last}",
        "narrative": s.narrative,
        "themes": [t.model_dump() for t in s.themes],
        "insights": [i.model_dump() for i in s.insights],
        "notable_exchanges": [e.model_dump() for e in s.notable_exchanges],
    }
    text = prompt.findings_json(body)
    while len(text) > max_chars:
        lists = [k for k in ("notable_exchanges", "insights", "themes") if body[k]]
        if lists:
            body[max(lists, key=lambda k: len(body[k]))].pop()
        elif body["narrative"]:
            over = len(text) - max_chars
            body["narrative"] = body["narrative"][: max(0, len(body["narrative"]) - over - 8)]
        else:
            break
        text = prompt.findings_json(body)
    return text


def _pack(
    digests: Sequence[str], parts: Sequence[_Part], max_chars: int
) -> list[list[tuple[str, _Part]]]:
    """Consecutive groups whose digests fit ``max_chars``; each digest is at most half of it,
    so every group but perhaps the last holds two or more and the number of parts shrinks."""
    groups: list[list[tuple[str, _Part]]] = []
    current: list[tuple[str, _Part]] = []
    used = 0
    for digest, part in zip(digests, parts, strict=True):
        if current and used + len(digest) + 1 > max_chars:
            groups.append(current)
            current, used = [], 0
        current.append((digest, part))
        used += len(digest) + 1
    if current:
        groups.append(current)
    return groups
