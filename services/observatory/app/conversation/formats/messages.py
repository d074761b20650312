"""Lists of message objects: ``{speaker|name|role, text|content, timestamp?}`` and OpenAI chat.

OpenAI (and Anthropic Messages API) content may be a list of parts; text parts are joined,
images, audio, files and tool calls are not conversation text and are left out.
"""

from __future__ import annotations

from typing import Any

from app.conversation.formats.common import (
    Draft,
    describe_keys,
    json_type,
    parse_timestamp,
    role_for_field,
    role_for_name,
    speaker_for_role_field,
)
from app.core.errors import InputError

_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
PART_SEPARATOR = "\n\n"


def content_text(value: Any, where: str, field: str) -> str:
    """A string, or the text parts of a list of content parts, joined."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise InputError(
            f"{where}: '{field}' must be a string or a list of text parts, got {json_type(value)}"
        )
    texts: list[str] = []
    for j, part in enumerate(value):
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise InputError(
                f"{where}: content part {j} must be an object such as "
                f'{{"type": "text", "text": "…"}} or a string, got {json_type(part)}'
            )
        kind = part.get("type")
        key = "refusal" if kind == "refusal" else "text"
        if kind in _TEXT_PARTS or kind == "refusal" or (kind is None and "text" in part):
            text = part.get(key)
            if not isinstance(text, str):
                raise InputError(
                    f"{where}: content part {j} of type '{kind or 'text'}' needs a string "
                    f"'{key}', got {json_type(text)}"
                )
            texts.append(text)
    return PART_SEPARATOR.join(t for t in texts if t.strip())


def _optional_string(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: '{key}' must be a string, got {json_type(value)}")
    return value.strip() or None


def _draft(item: Any, k: int, *, require_role: bool) -> Draft | None:
    where = f"message {k}"
    if not isinstance(item, dict):
        raise InputError(
            f'{where} must be an object such as {{"speaker": "Ana", "text": "…"}} or '
            f'{{"role": "user", "content": "…"}}, got {json_type(item)}'
        )
    role_value = _optional_string(item, "role", where)
    name = _optional_string(item, "speaker", where) or _optional_string(item, "name", where)
    if require_role and role_value is None:
        raise InputError(f"{where}: OpenAI chat messages need a 'role' field (user, assistant…)")
    if name is not None:
        role = role_for_field(role_value) if role_value else role_for_name(name)
        speaker = name
    elif role_value is not None:
        role, speaker = role_for_field(role_value), speaker_for_role_field(role_value)
    else:
        raise InputError(
            f"{where}: needs a 'speaker', 'name' or 'role' field; it has {describe_keys(item)}"
        )

    field = "text" if item.get("text") is not None else "content"
    value = item.get(field)
    if value is None:
        if field not in item and "text" not in item and not _calls_tools(item):
            raise InputError(
                f"{where}: needs a 'text' or 'content' field; it has {describe_keys(item)}"
            )
        return None  # an assistant turn that only calls tools, or an empty message
    text = content_text(value, where, field)
    stamp_field = "timestamp" if "timestamp" in item else "created_at"
    timestamp = parse_timestamp(item.get(stamp_field), where, stamp_field)
    return Draft(speaker, role, text, timestamp, f"input item {k}")


def _calls_tools(item: dict[str, Any]) -> bool:
    return bool(item.get("tool_calls") or item.get("function_call"))


def parse_messages(items: list[Any], *, openai: bool = False) -> list[Draft]:
    drafts: list[Draft] = []
    for k, item in enumerate(items):
        draft = _draft(item, k, require_role=openai)
        if draft is not None:
            drafts.append(draft)
    return drafts


def looks_like_openai(items: list[Any]) -> bool:
    """Every item is ``{role, content|tool_calls}`` with no generic ``speaker``/``text``."""
    return bool(items) and all(
        isinstance(item, dict)
        and "role" in item
        and ("content" in item or "tool_calls" in item)
        and "speaker" not in item
        and "text" not in item
        for item in items
    )


def looks_like_messages(items: list[Any]) -> bool:
    return bool(items) and all(
        isinstance(item, dict)
        and any(k in item for k in ("speaker", "name", "role"))
        and any(k in item for k in ("text", "content", "tool_calls"))
        for item in items
    )
