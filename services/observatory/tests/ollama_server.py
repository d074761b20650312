"""A real HTTP server on 127.0.0.1 that speaks Ollama's wire protocol, for tests.

Ollama itself cannot run here, so the observer is tested against this server instead:

    with OllamaTestServer(models=["observer"]) as server:
        server.script({"topics": []}, Script(status=500, error="out of memory"))
        ...  # point the client at server.url

Replies to ``POST /api/chat`` come, in order of precedence, from the queue filled by
``server.script(...)``, from a real model when ``server.backend`` is a ``LlamaBackend``
(see ``tests/ollama_llama_backend.py``), or from ``server.default_reply(request)``.

The shapes follow Ollama's ``api/types.go`` and ``server/routes.go``: streaming is on
unless the request says ``"stream": false`` (NDJSON over chunked transfer encoding,
``application/x-ndjson``), durations are nanoseconds, zero metrics are omitted like Go's
``omitempty``, errors are ``{"error": "..."}``, and an error during a stream arrives as
one NDJSON line after a 200. Request validation is a little stricter than Ollama's, so
a client bug shows up as a 400 up front: a message role outside system/user/assistant/tool
is refused (Ollama passes it to the prompt template), and so are a ``format`` that is
neither ``"json"`` nor a schema object and a mistyped option (Ollama fails those only
once generation starts, with a 500 or an error line).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import re
import select
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

JsonObject = dict[str, Any]

ROLES = ("system", "user", "assistant", "tool")
THINK_LEVELS = ("high", "medium", "low")
MAX_TOP_LOGPROBS = 20
POLL_SECONDS = 0.01
IDLE_CONNECTION_SECONDS = 30.0

FLOAT_OPTIONS = frozenset(
    {
        "temperature",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    }
)
INT_OPTIONS = frozenset(
    {
        "seed",
        "num_ctx",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "num_keep",
        "num_batch",
        "num_thread",
        "num_gpu",
        "main_gpu",
    }
)

# What the scripted model reports about itself: the same small model the real backend runs.
SCRIPTED_DETAILS: JsonObject = {
    "parent_model": "",
    "format": "gguf",
    "family": "llama",
    "families": ["llama"],
    "parameter_size": "135M",
    "quantization_level": "Q4_1",
}
SCRIPTED_SIZE = 92_800_000
CHATML_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
)

# Scripted token timings, reported in the metrics (nothing actually waits for them).
SCRIPTED_LOAD_NS = 1_000_000
SCRIPTED_PROMPT_TOKEN_NS = 1_000_000
SCRIPTED_EVAL_TOKEN_NS = 10_000_000


@dataclass(frozen=True)
class Script:
    """One scripted reply to ``POST /api/chat``.

    ``content`` that is not a string is sent as its JSON text. ``delay`` waits before the
    first byte while watching for the client to go away; ``chunk_delay`` does the same
    between stream lines. ``status``/``error`` answer with an error object instead of a
    reply (``error`` alone means 500). ``stream_error`` streams the content and then one
    ``{"error": ...}`` line instead of the final line (without streaming: a 500).
    ``drop_connection`` closes the socket without answering; ``drop_mid_stream`` closes
    it halfway through the reply. ``logprobs`` entries are Ollama-shaped
    (``{"token", "logprob", "top_logprobs": [...]}``) and are sent only when the request
    asks for them; when it asks and none are scripted, plausible ones are made up.
    """

    content: Any = ""
    delay: float = 0.0
    status: int | None = None
    error: str | None = None
    stream_error: str | None = None
    done_reason: str = "stop"
    drop_connection: bool = False
    drop_mid_stream: bool = False
    chunk_delay: float = 0.0
    logprobs: Sequence[Mapping[str, Any]] | None = None
    eval_count: int | None = None
    prompt_eval_count: int | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return json.dumps(self.content)


Reply = Mapping[str, Any] | list[Any] | str | Script


@dataclass(frozen=True)
class Piece:
    """A streamed fragment of the reply and the log-probabilities of its tokens."""

    text: str
    logprobs: tuple[JsonObject, ...] = ()


@dataclass(frozen=True)
class Generation:
    """A finished reply, whichever backend produced it. Durations are nanoseconds."""

    pieces: tuple[Piece, ...]
    done_reason: str = "stop"
    prompt_eval_count: int = 0
    eval_count: int = 0
    load_duration: int = 0
    prompt_eval_duration: int = 0
    eval_duration: int = 0

    @property
    def content(self) -> str:
        return "".join(piece.text for piece in self.pieces)


class GenerationCancelled(Exception):
    """The client went away (or the server is stopping) before the reply was ready."""


class BackendError(Exception):
    """The model could not answer; sent to the client as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Backend(Protocol):
    def generate(self, request: JsonObject, cancelled: Callable[[], bool]) -> Generation: ...

    def model_details(self) -> JsonObject: ...

    def model_size(self) -> int: ...


# ---------------------------------------------------------------------------------------
# Pure functions: names, validation, reply shapes.


def canonical_model_name(name: str) -> str:
    """The name Ollama stores a model under: ``observer`` and ``Observer`` are
    ``observer:latest``, and the default registry and namespace may be spelled out."""
    canonical = name.strip().lower()
    for prefix in ("registry.ollama.ai/", "library/"):
        canonical = canonical.removeprefix(prefix)
    if ":" not in canonical.rsplit("/", 1)[-1]:
        canonical += ":latest"
    return canonical


def _go_type(value: Any) -> str:
    """How Go's encoding/json names a JSON value in its unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _unmarshal_error(value: Any, where: str, go_type: str) -> tuple[int, str]:
    return 400, f"json: cannot unmarshal {_go_type(value)} into Go {where} of type {go_type}"


def _message_problem(index: int, message: Any) -> tuple[int, str] | None:
    if not isinstance(message, dict):
        return _unmarshal_error(message, "struct field ChatRequest.messages", "api.Message")
    for key in ("role", "content"):
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            return _unmarshal_error(value, f"struct field Message.messages.{key}", "string")
    role = str(message.get("role") or "").lower()
    if role not in ROLES:
        return 400, f"messages[{index}]: invalid role {role!r}, expected one of {', '.join(ROLES)}"
    return None


def _options_problem(options: Mapping[str, Any]) -> tuple[int, str] | None:
    for key, value in options.items():
        if value is None:
            continue
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if key in FLOAT_OPTIONS and not is_number:
            return 400, f'option "{key}" must be of type float32'
        if key in INT_OPTIONS and not is_number:
            return 400, f'option "{key}" must be of type integer'
        if key == "stop" and not (
            isinstance(value, list) and all(isinstance(stop, str) for stop in value)
        ):
            return 400, 'option "stop" must be of type array of strings'
    return None


def _format_problem(fmt: Any) -> tuple[int, str] | None:
    if fmt is None or fmt in ("", "json") or isinstance(fmt, dict):
        return None
    return 400, (
        f'invalid format: {json.dumps(fmt)}; expected "json" or a valid JSON Schema object'
    )


def _shape_problem(request: Any) -> tuple[int, str] | None:
    """What Go's JSON decoding of an ``api.ChatRequest`` would refuse."""
    if not isinstance(request, dict):
        return _unmarshal_error(request, "value", "api.ChatRequest")
    fields: dict[str, tuple[type | tuple[type, ...], str]] = {
        "model": (str, "string"),
        "messages": (list, "[]api.Message"),
        "stream": (bool, "bool"),
        "options": (dict, "map[string]interface {}"),
        "logprobs": (bool, "bool"),
        "top_logprobs": (int, "int"),
        "tools": (list, "api.Tools"),
    }
    for key, (expected, go_type) in fields.items():
        value = request.get(key)
        if value is None:
            continue
        wrong_bool = isinstance(value, bool) and expected is int
        if not isinstance(value, expected) or wrong_bool:
            return _unmarshal_error(value, f"struct field ChatRequest.{key}", go_type)
    for index, message in enumerate(request.get("messages") or []):
        problem = _message_problem(index, message)
        if problem:
            return problem
    return None


def chat_request_problem(request: Any, models: Iterable[str]) -> tuple[int, str] | None:
    """The status and error Ollama would answer a malformed ``/api/chat`` body with."""
    problem = _shape_problem(request)
    if problem:
        return problem
    top = request.get("top_logprobs") or 0
    if not 0 <= top <= MAX_TOP_LOGPROBS:
        return 400, f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}"
    name = request.get("model") or ""
    if not re.fullmatch(r"[\w.\-/:]+", name):
        return 400, "model is required"
    if canonical_model_name(name) not in set(models):
        return 404, f'model "{name}" not found, try pulling it first'
    think = request.get("think")
    if think is not None and not isinstance(think, bool) and think not in THINK_LEVELS:
        return 400, f"invalid think value: {json.dumps(think)}"
    if think:
        return 400, f'"{name}" does not support thinking'
    if request.get("tools"):
        return 400, f'"{name}" does not support tools'
    return _format_problem(request.get("format")) or _options_problem(request.get("options") or {})


def split_into_pieces(text: str) -> list[str]:
    """Word-sized stream fragments that join back to ``text`` exactly."""
    return re.findall(r"\s*\S+|\s+", text)


def pieces_with_logprobs(text: str, entries: Sequence[Mapping[str, Any]]) -> tuple[Piece, ...]:
    """Stream fragments for ``text``: one per token when the tokens spell the text,
    otherwise word-sized fragments with the token entries spread over them in order."""
    tokens = [str(entry.get("token", "")) for entry in entries]
    normalised = tuple(dict(entry) for entry in entries)
    if entries and "".join(tokens) == text:
        return tuple(
            Piece(token, (entry,)) for token, entry in zip(tokens, normalised, strict=True)
        )
    words = split_into_pieces(text)
    if not words:
        return (Piece("", normalised),) if normalised else ()
    count = len(normalised)
    return tuple(
        Piece(
            word,
            normalised[i * count // len(words) : (i + 1) * count // len(words)],
        )
        for i, word in enumerate(words)
    )


def made_up_logprobs(text: str) -> list[JsonObject]:
    """Log-probabilities for a scripted reply whose script gave none: one token per
    word-sized fragment, with ranked alternatives below it."""
    entries = []
    for piece in split_into_pieces(text):
        chosen = {"token": piece, "logprob": -0.25, "bytes": list(piece.encode())}
        alternatives = [
            {"token": f" alt{rank}", "logprob": -2.0 - rank, "bytes": list(f" alt{rank}".encode())}
            for rank in range(1, MAX_TOP_LOGPROBS)
        ]
        entries.append({**chosen, "top_logprobs": [dict(chosen), *alternatives]})
    return entries


def estimated_prompt_tokens(request: Mapping[str, Any]) -> int:
    """About four characters a token, plus a few tokens of template per message."""
    messages = request.get("messages") or []
    characters = sum(len(str(message.get("content") or "")) for message in messages)
    return max(1, characters // 4 + 4 * len(messages))


def scripted_generation(script: Script, request: Mapping[str, Any]) -> Generation:
    text = script.text
    if script.logprobs is not None:
        entries: Sequence[Mapping[str, Any]] = script.logprobs
    elif request.get("logprobs"):
        entries = made_up_logprobs(text)
    else:
        entries = ()
    pieces = pieces_with_logprobs(text, entries)
    eval_count = script.eval_count
    if eval_count is None:
        eval_count = len(entries) if entries else len(split_into_pieces(text))
    prompt_count = script.prompt_eval_count
    if prompt_count is None:
        prompt_count = estimated_prompt_tokens(request)
    return Generation(
        pieces=pieces,
        done_reason=script.done_reason,
        prompt_eval_count=prompt_count,
        eval_count=eval_count,
        load_duration=SCRIPTED_LOAD_NS,
        prompt_eval_duration=prompt_count * SCRIPTED_PROMPT_TOKEN_NS,
        eval_duration=eval_count * SCRIPTED_EVAL_TOKEN_NS,
    )


def as_script(reply: Reply) -> Script:
    if isinstance(reply, Script):
        return reply
    return Script(content=reply)


def ollama_logprobs(entries: Iterable[Mapping[str, Any]], top_logprobs: int) -> list[JsonObject]:
    """Entries as Ollama sends them: ``top_logprobs`` cut to the requested number,
    best first, and left out when none were requested (Go's ``omitempty``)."""
    shaped = []
    for entry in entries:
        item = {key: value for key, value in entry.items() if key != "top_logprobs"}
        alternatives = sorted(
            entry.get("top_logprobs") or [], key=lambda alt: alt.get("logprob", 0.0), reverse=True
        )[:top_logprobs]
        if alternatives:
            item["top_logprobs"] = [dict(alt) for alt in alternatives]
        shaped.append(item)
    return shaped


def created_at() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _metrics(generation: Generation, total_duration: int) -> JsonObject:
    values = {
        "total_duration": total_duration,
        "load_duration": generation.load_duration,
        "prompt_eval_count": generation.prompt_eval_count,
        "prompt_eval_duration": generation.prompt_eval_duration,
        "eval_count": generation.eval_count,
        "eval_duration": generation.eval_duration,
    }
    return {key: value for key, value in values.items() if value}


def _encode(document: Any) -> bytes:
    # Go's encoder: compact, UTF-8 rather than \u escapes for non-ASCII text.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------
# The server.


class OllamaTestServer:
    """A threaded Ollama-protocol server on ``127.0.0.1:<free port>``.

    Use it as a context manager or call ``start()``/``stop()``. What it saw, safe to read
    while requests are in flight: ``requests`` (parsed ``/api/chat`` bodies, in arrival
    order, refused ones included), ``open_connections`` and ``max_concurrent`` (``/api/chat``
    requests in flight now and at most), ``disconnects`` (clients that hung up before
    their reply was complete) and ``server_errors`` (tracebacks of handler crashes).
    """

    def __init__(self, models: Iterable[str] = ("observer",), *, version: str = "0.13.0") -> None:
        self.models = [canonical_model_name(name) for name in models]
        self.version = version
        self.backend: str | Backend = "script"
        self.default_reply: Callable[[JsonObject], Reply] | None = None
        self.requests: list[Any] = []
        self.max_concurrent = 0
        self.disconnects = 0
        self.server_errors: list[str] = []
        self.modified_at = created_at()
        self._open = 0
        self._queue: deque[Script] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> OllamaTestServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="ollama-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_all_connections()
        httpd.server_close()
        httpd.join_handlers(timeout=5.0)
        if thread is not None:
            thread.join(timeout=5.0)
        self._httpd = self._thread = None

    def __enter__(self) -> OllamaTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- scripting

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next ``/api/chat`` requests, first in first out."""
        with self._lock:
            self._queue.extend(as_script(reply) for reply in replies)

    @property
    def pending_replies(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def open_connections(self) -> int:
        """``/api/chat`` requests in flight now (a client that hangs up leaves)."""
        with self._lock:
            return self._open

    def next_reply(self, request: JsonObject) -> Script | Backend:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if not isinstance(self.backend, str):
            return self.backend
        if self.default_reply is None:
            return Script(status=500, error="no reply is scripted for this request")
        return as_script(self.default_reply(request))

    # -- bookkeeping used by the handler

    def enter_chat(self) -> None:
        with self._lock:
            self._open += 1
            self.max_concurrent = max(self.max_concurrent, self._open)

    def leave_chat(self) -> None:
        with self._lock:
            self._open -= 1

    def record_request(self, request: Any) -> None:
        with self._lock:
            self.requests.append(request)

    def record_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1

    def record_error(self, description: str) -> None:
        with self._lock:
            self.server_errors.append(description)

    # -- model descriptions

    def _details(self) -> JsonObject:
        if isinstance(self.backend, str):
            return dict(SCRIPTED_DETAILS)
        return self.backend.model_details()

    def _size(self) -> int:
        return SCRIPTED_SIZE if isinstance(self.backend, str) else self.backend.model_size()

    def tags(self) -> JsonObject:
        return {
            "models": [
                {
                    "name": name,
                    "model": name,
                    "modified_at": self.modified_at,
                    "size": self._size(),
                    "digest": hashlib.sha256(name.encode()).hexdigest(),
                    "details": self._details(),
                }
                for name in self.models
            ]
        }

    def show(self, name: str) -> JsonObject:
        digest = hashlib.sha256(canonical_model_name(name).encode()).hexdigest()
        details = self._details()
        return {
            "license": "Apache License 2.0",
            "modelfile": (
                '# Modelfile generated by "ollama show"\n'
                "# To build a new Modelfile based on this one, replace the FROM line with:\n"
                f"# FROM {canonical_model_name(name)}\n\n"
                f"FROM /root/.ollama/models/blobs/sha256-{digest}\n"
                f'TEMPLATE """{CHATML_TEMPLATE}"""\n'
                'PARAMETER stop "<|im_end|>"\n'
                "PARAMETER num_ctx 2048\n"
            ),
            "parameters": 'stop                           "<|im_end|>"\nnum_ctx                        2048',
            "template": CHATML_TEMPLATE,
            "details": details,
            "model_info": {
                "general.architecture": details.get("family", "llama"),
                "general.parameter_count": 134_515_008,
                "general.quantization_version": 2,
                "llama.context_length": 8192,
                "llama.embedding_length": 576,
                "llama.block_count": 30,
            },
            "capabilities": ["completion"],
            "modified_at": self.modified_at,
        }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: OllamaTestServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._track = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        handler = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._track:
            self._handlers = {thread for thread in self._handlers if thread.is_alive()}
            self._handlers.add(handler)
            self._connections.add(request)
        handler.start()

    def shutdown_request(self, request: Any) -> None:
        with self._track:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        """Wake handlers blocked on idle keep-alive connections so they can end."""
        with self._track:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._track:
            handlers = list(self._handlers)
        for handler in handlers:
            handler.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return  # the client hung up; nothing to report
        description = traceback.format_exc()
        self.owner.record_error(description)
        print(description, file=sys.stderr)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Replies go out in small writes; without this every request pays ~40 ms of delayed ACKs.
    disable_nagle_algorithm = True
    server_version = "Ollama"
    sys_version = ""
    timeout = IDLE_CONNECTION_SECONDS
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    @property
    def owner(self) -> OllamaTestServer:
        return self.server.owner

    # -- routing

    def do_GET(self) -> None:
        self._route_get(include_body=True)

    def do_HEAD(self) -> None:
        self._route_get(include_body=False)

    def _route_get(self, include_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8", include_body)
        elif path == "/api/version":
            self._send_json(200, {"version": self.owner.version}, include_body)
        elif path == "/api/tags":
            self._send_json(200, self.owner.tags(), include_body)
        else:
            self._not_found()

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/chat":
            self.owner.enter_chat()
            try:
                self._chat()
            finally:
                self.owner.leave_chat()
        elif path == "/api/show":
            self._show()
        else:
            self._read_body()
            self._not_found()

    def do_PUT(self) -> None:
        self._read_body()
        self._not_found()

    do_DELETE = do_PUT
    do_PATCH = do_PUT

    # -- endpoints

    def _show(self) -> None:
        request = self._read_json()
        if request is None:
            return
        name = (request.get("model") or request.get("name")) if isinstance(request, dict) else None
        if not isinstance(name, str) or not name:
            self._send_error(400, "model is required")
        elif canonical_model_name(name) not in self.owner.models:
            self._send_error(404, f"model '{name}' not found")
        else:
            self._send_json(200, self.owner.show(name))

    def _chat(self) -> None:
        started = time.monotonic_ns()
        request = self._read_json()
        if request is None:
            return
        self.owner.record_request(request)
        problem = chat_request_problem(request, self.owner.models)
        if problem:
            self._send_error(*problem)
            return
        if not request.get("messages"):
            self._send_load_reply(request)
            return
        reply = self.owner.next_reply(request)
        if isinstance(reply, Script):
            self._serve_script(request, reply, started)
            return
        try:
            generation = reply.generate(request, self._cancelled)
        except GenerationCancelled:
            self._client_left()
            return
        except BackendError as error:
            self._send_error(error.status, error.message)
            return
        self._send_generation(request, generation, started, Script())

    def _send_load_reply(self, request: JsonObject) -> None:
        keep_alive = request.get("keep_alive")
        unloading = keep_alive in (0, "0", "0s", "0m")
        self._send_json(
            200,
            {
                "model": request["model"],
                "created_at": created_at(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "unload" if unloading else "load",
            },
        )

    def _serve_script(self, request: JsonObject, script: Script, started: int) -> None:
        if script.delay and self._wait(script.delay):
            self._client_left()
            return
        if script.drop_connection:
            self._drop()
            return
        if script.status is not None or script.error is not None:
            status = script.status if script.status is not None else 500
            self._send_error(status, script.error or "internal server error")
            return
        self._send_generation(request, scripted_generation(script, request), started, script)

    # -- replies

    def _send_generation(
        self, request: JsonObject, generation: Generation, started: int, script: Script
    ) -> None:
        want_logprobs = bool(request.get("logprobs"))
        top = int(request.get("top_logprobs") or 0)
        model = request["model"]
        if request.get("stream", True) is False:
            if script.stream_error is not None:
                self._send_error(500, script.stream_error)
                return
            reply: JsonObject = {
                "model": model,
                "created_at": created_at(),
                "message": {"role": "assistant", "content": generation.content},
                "done": True,
                "done_reason": generation.done_reason,
            }
            entries = [entry for piece in generation.pieces for entry in piece.logprobs]
            if want_logprobs and entries:
                reply["logprobs"] = ollama_logprobs(entries, top)
            reply.update(_metrics(generation, time.monotonic_ns() - started))
            self._send_json(200, reply, drop_midway=script.drop_mid_stream)
            return
        self._stream(request, generation, started, script, want_logprobs, top)

    def _stream(
        self,
        request: JsonObject,
        generation: Generation,
        started: int,
        script: Script,
        want_logprobs: bool,
        top: int,
    ) -> None:
        model = request["model"]
        lines = []
        for piece in generation.pieces:
            line: JsonObject = {
                "model": model,
                "created_at": created_at(),
                "message": {"role": "assistant", "content": piece.text},
                "done": False,
            }
            if want_logprobs and piece.logprobs:
                line["logprobs"] = ollama_logprobs(piece.logprobs, top)
            lines.append(line)
        drop_at = max(1, len(lines) // 2) if script.drop_mid_stream else None
        if script.stream_error is not None:
            lines.append({"error": script.stream_error})
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for index, line in enumerate(lines):
                if index == drop_at:
                    self._drop()
                    return
                if index and script.chunk_delay and self._wait(script.chunk_delay):
                    self._client_left()
                    return
                self._write_chunk(_encode(line) + b"\n")
            if drop_at is not None:
                self._drop()
                return
            if script.stream_error is None:
                if lines and script.chunk_delay and self._wait(script.chunk_delay):
                    self._client_left()
                    return
                final = {
                    "model": model,
                    "created_at": created_at(),
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": generation.done_reason,
                    **_metrics(generation, time.monotonic_ns() - started),
                }
                self._write_chunk(_encode(final) + b"\n")
            self._write_chunk(b"")
        except OSError:
            self._client_left()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _send_json(
        self, status: int, document: Any, include_body: bool = True, drop_midway: bool = False
    ) -> None:
        self._send(
            status, _encode(document), "application/json; charset=utf-8", include_body, drop_midway
        )

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _not_found(self) -> None:
        self._send(404, b"404 page not found", "text/plain")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        include_body: bool = True,
        drop_midway: bool = False,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not include_body:
                return
            if drop_midway:
                self.wfile.write(body[: len(body) // 2])
                self._drop()
                return
            self.wfile.write(body)
        except OSError:
            self._client_left()

    # -- request bodies

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()

    def _read_json(self) -> Any | None:
        """The parsed body, or None after answering 400 as Ollama does."""
        body = self._read_body()
        if not body.strip():
            self._send_error(400, "missing request body")
            return None
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            self._send_error(400, f"invalid character in request body: {error}")
            return None

    # -- the client going away

    def _client_gone(self) -> bool:
        """True when the peer has closed its end (a readable socket with no data)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _cancelled(self) -> bool:
        return self.owner.stopping or self._client_gone()

    def _wait(self, seconds: float) -> bool:
        """Sleep, watching the socket; True if the client left (or the server stops)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._cancelled():
                return True
            time.sleep(min(POLL_SECONDS, remaining))
        return self._cancelled()

    def _client_left(self) -> None:
        self.owner.record_disconnect()
        self.close_connection = True

    def _drop(self) -> None:
        """Hang up without finishing the reply, as a crashing server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


__all__ = [
    "Backend",
    "BackendError",
    "Generation",
    "GenerationCancelled",
    "OllamaTestServer",
    "Piece",
    "Script",
    "canonical_model_name",
    "chat_request_problem",
    "pieces_with_logprobs",
]
