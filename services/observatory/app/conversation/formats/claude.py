"""Claude.ai data export: a conversation is ``{uuid, name, chat_messages: [...]}``.

Each message has a plain ``text`` and structured ``content`` blocks. The blocks are
preferred: for turns that used tools, ``text`` holds placeholders where the blocks hold the
actual words. Tool use, tool results and thinking blocks are not part of what was said.
"""

from __future__ import annotations

from typing import Any

from app.conversation.formats.common import (
    ROLE_SPEAKER,
    Draft,
    Parsed,
    is_role_word,
    json_type,
    parse_timestamp,
    role_for_field,
)
from app.conversation.formats.messages import PART_SEPARATOR
from app.core.errors import InputError


def _block_text(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    texts = [
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
        and block["text"].strip()
    ]
    return PART_SEPARATOR.join(texts)


def _draft(item: Any, k: int) -> Draft:
    where = f"chat_messages[{k}]"
    if not isinstance(item, dict):
        raise InputError(f"Claude.ai export: {where} must be an object, got {json_type(item)}")
    sender = item.get("sender")
    if not isinstance(sender, str) or not is_role_word(sender):
        got = f"'{sender[:40]}'" if isinstance(sender, str) else json_type(sender)
        raise InputError(
            f"Claude.ai export: {where}: 'sender' must be 'human' or 'assistant', got {got}"
        )
    text = _block_text(item.get("content"))
    if not text:
        plain = item.get("text")
        if plain is not None and not isinstance(plain, str):
            raise InputError(
                f"Claude.ai export: {where}: 'text' must be a string, got {json_type(plain)}"
            )
        text = plain or ""
    role = role_for_field(sender)
    timestamp = parse_timestamp(item.get("created_at"), f"Claude.ai export: {where}", "created_at")
    return Draft(ROLE_SPEAKER[role], role, text, timestamp, where)


def parse_claude(conversation: dict[str, Any]) -> Parsed:
    items = conversation.get("chat_messages")
    if not isinstance(items, list):
        raise InputError(
            f"Claude.ai export: 'chat_messages' must be a list, got {json_type(items)}"
        )
    drafts = [_draft(item, k) for k, item in enumerate(items)]
    title = conversation.get("name")
    return Parsed(drafts, "claude", title if isinstance(title, str) else None)
