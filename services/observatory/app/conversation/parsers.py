"""Every accepted input, turned into the canonical :class:`Conversation` (SPEC §3).

``parse_conversation`` takes a plain transcript, a list of message objects, or a decoded
export; detects the format unless one is named; and returns tidy, numbered messages
within the configured limits. Every rejection is an :class:`InputError` whose message
says what was wrong, where, and what is accepted. Nothing is rejected for what the text
says: code, SQL, shell, HTML and instructions aimed at a model are ordinary content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.conversation.formats.chatgpt import parse_chatgpt
from app.conversation.formats.claude import parse_claude
from app.conversation.formats.common import (
    ROLE_SPEAKER,
    Draft,
    Parsed,
    describe_keys,
    json_type,
    strip_bom,
    tidy_text,
)
from app.conversation.formats.convokit import decode_jsonl, looks_like_rows, parse_convokit
from app.conversation.formats.messages import looks_like_openai, parse_messages
from app.conversation.formats.sharegpt import looks_like_turns, parse_sharegpt
from app.conversation.formats.transcript import parse_transcript
from app.conversation.model import Conversation, Message
from app.core.errors import InputError

if TYPE_CHECKING:
    from app.core.config import Settings

__all__ = ["FORMATS", "Limits", "detect_format", "parse_conversation"]

FORMATS = ("auto", "text", "messages", "openai", "chatgpt", "claude", "sharegpt", "convokit")

_MB = 1024 * 1024
# Names are labels, not content: without a bound a "speaker" field could carry more text
# than the byte limit allows for the messages themselves.
MAX_SPEAKER_CHARS = 200


@dataclass(frozen=True)
class Limits:
    max_messages: int = 20_000
    max_conversation_bytes: int = 5 * _MB  # UTF-8 bytes of all message texts together
    max_message_chars: int = 200_000

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_messages=settings.max_messages,
            max_conversation_bytes=settings.max_conversation_bytes,
            max_message_chars=settings.max_message_chars,
        )


# An export format, the key its conversation object must have, and how to describe it.
_EXPORTS: dict[str, tuple[str, str, Callable[[dict[str, Any]], Parsed]]] = {
    "chatgpt": ("mapping", "ChatGPT conversations.json", parse_chatgpt),
    "claude": ("chat_messages", "Claude.ai", parse_claude),
    "sharegpt": ("conversations", "ShareGPT", parse_sharegpt),
}

_ACCEPTED = (
    "a plain transcript in conversation_text, a list of messages ({speaker, text} or "
    "{role, content}), a ChatGPT conversation (with 'mapping'), a Claude.ai conversation "
    "(with 'chat_messages'), a ShareGPT object (with 'conversations') or ConvoKit "
    "utterance rows"
)


def parse_conversation(
    *,
    conversation_text: str | None = None,
    messages: list[Any] | None = None,
    data: Any | None = None,
    format: str | None = None,
    limits: Limits = Limits(),
) -> Conversation:
    """Parse exactly one of ``conversation_text``, ``messages`` or ``data``.

    ``format`` names the input format; None or "auto" detects it.
    """
    fmt = _check_format(format)
    given = [
        name
        for name, value in (
            ("conversation_text", conversation_text),
            ("messages", messages),
            ("data", data),
        )
        if value is not None
    ]
    if len(given) != 1:
        got = " and ".join(given) if given else "none"
        raise InputError(f"provide exactly one of conversation_text, messages or data; got {got}")
    if conversation_text is not None:
        if not isinstance(conversation_text, str):
            raise InputError(
                f"conversation_text must be a string, got {json_type(conversation_text)}"
            )
        parsed = _from_text(conversation_text, fmt)
    elif messages is not None:
        if not isinstance(messages, list):
            raise InputError(
                f"messages must be a list of message objects, got {json_type(messages)}"
            )
        parsed = _from_value(messages, fmt, "messages")
    elif isinstance(data, str):
        parsed = _from_text(data, fmt)
    else:
        parsed = _from_value(data, fmt, "data")
    return _finish(parsed, limits)


def detect_format(value: Any) -> str | None:
    """The format a decoded JSON value is in, or None when it is none of the known ones."""
    if isinstance(value, dict):
        for fmt, (key, _, _) in _EXPORTS.items():
            if key in value and (fmt != "sharegpt" or isinstance(value[key], list)):
                return fmt
        items = value.get("messages")
        if isinstance(items, list):
            return "openai" if looks_like_openai(items) else "messages"
        return "convokit" if looks_like_rows([value]) else None
    if not isinstance(value, list):
        return None
    if not value:
        return "messages"
    first = value[0]
    if isinstance(first, dict):
        export = detect_format(first)
        if export in _EXPORTS:
            return export
    if looks_like_rows(value):
        return "convokit"
    if looks_like_turns(value):
        return "sharegpt"
    if looks_like_openai(value):
        return "openai"
    if isinstance(first, dict) and any(
        k in first for k in ("speaker", "name", "role", "text", "content")
    ):
        return "messages"
    return None


def _check_format(format: str | None) -> str:
    if format is None:
        return "auto"
    if isinstance(format, str) and format.strip().lower() in FORMATS:
        return format.strip().lower()
    if isinstance(format, str) and not format.strip():
        return "auto"
    shown = f"'{format}'" if isinstance(format, str) else json_type(format)
    raise InputError(f"unknown format {shown}; allowed: {', '.join(FORMATS)}")


def _from_text(text: str, fmt: str) -> Parsed:
    text = strip_bom(text)
    if fmt == "text":
        return parse_transcript(text)
    if fmt == "auto":
        value = _decoded_export(text)
        return parse_transcript(text) if value is None else _from_value(value, "auto", "text")
    return _from_value(_decode(text, fmt), fmt, "conversation_text")


def _decoded_export(text: str) -> Any | None:
    """The decoded value when a text is really a JSON (or JSON Lines) export, else None."""
    start = text.lstrip()[:1]
    if start not in ("{", "["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        if start == "{":
            rows = decode_jsonl(text, strict=False)
            if rows and looks_like_rows(rows):
                return rows
        return None  # "[2026-03-02 10:15] Human: …" is a transcript, not JSON
    if detect_format(value) is None:
        raise InputError(
            f"conversation_text holds JSON but not a known format: expected {_ACCEPTED}; "
            f"got {_describe(value)}"
        )
    return value


def _decode(text: str, fmt: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if fmt == "convokit":
            return decode_jsonl(text, strict=True)
        raise InputError(
            f"conversation_text is not valid JSON for format '{fmt}': {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}"
        ) from None


def _from_value(value: Any, fmt: str, source: str) -> Parsed:
    if fmt == "text":
        raise InputError(
            f"format 'text' needs a plain transcript in conversation_text, not {source}"
        )
    if fmt == "auto":
        detected = detect_format(value)
        if detected is None:
            raise InputError(
                f"could not recognise the conversation: expected {_ACCEPTED}; "
                f"got {_describe(value)}"
            )
        fmt = detected
    if fmt in _EXPORTS:
        parse = _EXPORTS[fmt][2]
        return parse(_one_conversation(value, fmt))
    if fmt == "convokit":
        return parse_convokit(_convokit_rows(value))
    items, title = _message_items(value, fmt)
    return Parsed(parse_messages(items, openai=fmt == "openai"), fmt, title)


def _one_conversation(value: Any, fmt: str) -> dict[str, Any]:
    key, label, _ = _EXPORTS[fmt]
    if isinstance(value, list):
        if fmt == "sharegpt" and looks_like_turns(value):
            return {"conversations": value}
        if not value:
            raise InputError(f"conversation is empty: the {label} export holds no conversations")
        if len(value) > 1:
            raise InputError(
                f"the {label} export holds {len(value):,} conversations; submit one "
                "conversation at a time (a batch accepts many)"
            )
        value = value[0]
    if not isinstance(value, dict) or key not in value:
        raise InputError(
            f"format '{fmt}' expects a {label} conversation with '{key}'; got {_describe(value)}"
        )
    return value


def _convokit_rows(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return decode_jsonl(value, strict=True) or []
    if isinstance(value, dict) and looks_like_rows([value]):
        return [value]
    raise InputError(
        "format 'convokit' expects utterance rows {id, speaker, text, timestamp, reply_to, "
        f"conversation_id}} as a list or JSON Lines; got {_describe(value)}"
    )


def _message_items(value: Any, fmt: str) -> tuple[list[Any], str | None]:
    if isinstance(value, list):
        return value, None
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        title = value.get("title")
        return value["messages"], title if isinstance(title, str) else None
    raise InputError(
        f"format '{fmt}' expects a list of message objects (or an object with a 'messages' "
        f"list); got {_describe(value)}"
    )


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with keys {describe_keys(value)}"
    if isinstance(value, list):
        kinds = sorted({json_type(v) for v in value[:50]})
        return f"an array of {' and '.join(kinds)}" if kinds else "an empty array"
    return f"a {json_type(value)}" if value is not None else "null"


def _where(index: int, origin: str) -> str:
    if origin == f"input item {index}":
        return f"message {index}"
    return f"message {index}, {origin}"


def _utf8_size(text: str, where: str) -> int:
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{where} is not valid Unicode text: it contains an unpaired surrogate "
            f"(\\u{ord(text[exc.start]):04x}); send UTF-8 text"
        ) from None


def _message(draft: Draft, index: int) -> Message:
    text = tidy_text(draft.text)
    if "\x00" in text:
        where = _where(index, draft.origin)
        if draft.line is not None:
            line = draft.line + draft.text.count("\n", 0, draft.text.index("\x00"))
            where = f"message {index}, line {line}"
        raise InputError(f"text contains a NUL byte ({where}); NUL is not allowed")
    speaker = draft.speaker.strip() or ROLE_SPEAKER[draft.role]
    if "\x00" in speaker:
        where = _where(index, draft.origin)
        raise InputError(f"speaker name contains a NUL byte ({where}); NUL is not allowed")
    if len(speaker) > MAX_SPEAKER_CHARS:
        raise InputError(
            f"the speaker name of {_where(index, draft.origin)} has {len(speaker):,} "
            f"characters; the limit is {MAX_SPEAKER_CHARS}"
        )
    if not speaker.isascii():
        _utf8_size(speaker, f"the speaker name of {_where(index, draft.origin)}")
    return Message(index, speaker, draft.role, text, draft.timestamp)


def _finish(parsed: Parsed, limits: Limits) -> Conversation:
    messages: list[Message] = []
    origins: list[str] = []
    for draft in parsed.drafts:
        if not draft.text.strip():
            continue
        message = _message(draft, len(messages))
        messages.append(message)
        origins.append(draft.origin)
    if not messages:
        raise InputError("conversation is empty: no messages with text were found")
    if len(messages) > limits.max_messages:
        raise InputError(
            f"conversation has {len(messages):,} messages; the limit is {limits.max_messages:,}"
        )
    total = 0
    for message, origin in zip(messages, origins, strict=True):
        if len(message.text) > limits.max_message_chars:
            raise InputError(
                f"{_where(message.index, origin)} has {len(message.text):,} characters; "
                f"the limit is {limits.max_message_chars:,} characters per message"
            )
        total += (
            len(message.text)
            if message.text.isascii()
            else _utf8_size(message.text, _where(message.index, origin))
        )
    if total > limits.max_conversation_bytes:
        raise InputError(
            f"conversation text is {total:,} bytes (UTF-8); the limit is "
            f"{_size(limits.max_conversation_bytes)}"
        )
    return Conversation(tuple(messages), parsed.source_format, _title(parsed.title))


def _size(limit: int) -> str:
    mb = f" ({limit // _MB} MB)" if limit % _MB == 0 else ""
    return f"{limit:,} bytes{mb}"


def _title(title: str | None) -> str | None:
    if title is None or not title.strip():
        return None
    if "\x00" in title:
        raise InputError("title contains a NUL byte; NUL is not allowed")
    _utf8_size(title, "the title")
    return " ".join(title.split())
