"""ShareGPT: ``{id, conversations: [{from: human|gpt|system, value}]}``."""

from __future__ import annotations

from typing import Any

from app.conversation.formats.common import (
    Draft,
    Parsed,
    json_type,
    role_for_field,
    speaker_for_role_field,
)
from app.core.errors import InputError


def _draft(turn: Any, k: int) -> Draft:
    where = f"conversations[{k}]"
    if not isinstance(turn, dict):
        raise InputError(f"ShareGPT: {where} must be an object, got {json_type(turn)}")
    sender = turn.get("from")
    if not isinstance(sender, str) or not sender.strip():
        raise InputError(
            f"ShareGPT: {where}: 'from' must be a speaker such as 'human' or 'gpt', "
            f"got {json_type(sender)}"
        )
    value = turn.get("value")
    if value is not None and not isinstance(value, str):
        raise InputError(f"ShareGPT: {where}: 'value' must be a string, got {json_type(value)}")
    return Draft(speaker_for_role_field(sender), role_for_field(sender), value or "", None, where)


def parse_sharegpt(conversation: dict[str, Any]) -> Parsed:
    turns = conversation.get("conversations")
    if not isinstance(turns, list):
        raise InputError(f"ShareGPT: 'conversations' must be a list, got {json_type(turns)}")
    title = conversation.get("title")
    return Parsed(
        [_draft(turn, k) for k, turn in enumerate(turns)],
        "sharegpt",
        title if isinstance(title, str) else None,
    )


def looks_like_turns(items: list[Any]) -> bool:
    first = items[0] if items else None
    return isinstance(first, dict) and "from" in first and "value" in first
