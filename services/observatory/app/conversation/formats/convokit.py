"""ConvoKit utterances: rows ``{id, speaker, text, timestamp, reply_to, conversation_id, meta}``.

Corpora written by older ConvoKit versions name the speaker ``user`` and the conversation
``root``; both spellings are read. ConvoKit corpora record conversations between people,
so every speaker is a human participant whatever the name.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.conversation.formats.common import Draft, Parsed, json_type, parse_timestamp
from app.core.errors import InputError

_ROW_KEYS = ("conversation_id", "root", "reply_to")


def looks_like_rows(items: list[Any]) -> bool:
    first = items[0] if items else None
    return (
        isinstance(first, dict)
        and "text" in first
        and ("speaker" in first or "user" in first)
        and any(k in first for k in _ROW_KEYS)
    )


def decode_jsonl(text: str, *, strict: bool) -> list[Any] | None:
    """The rows of a JSON Lines text; None when not JSONL and ``strict`` is false."""
    rows: list[Any] = []
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if not strict:
                return None
            raise InputError(
                f"ConvoKit utterances: line {line_no} is not valid JSON: {exc.msg} "
                f"(column {exc.colno}); expected one utterance object per line"
            ) from None
    return rows


def _speaker(row: dict[str, Any], where: str) -> str:
    value = row.get("speaker", row.get("user"))
    if isinstance(value, dict):  # a speaker object as some exports write it
        value = value.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"ConvoKit utterances: {where}: 'speaker' must be the speaker's name or id, "
            f"got {json_type(value)}"
        )
    return value.strip()


def _conversation_id(row: dict[str, Any]) -> str | None:
    value = row.get("conversation_id", row.get("root"))
    return None if value is None else str(value)


def parse_convokit(rows: list[Any]) -> Parsed:
    entries: list[tuple[Draft, datetime | None]] = []
    conversations: dict[str, None] = {}
    for k, row in enumerate(rows):
        where = f"utterance {k}"
        if not isinstance(row, dict):
            raise InputError(
                f"ConvoKit utterances: {where} must be an object, got {json_type(row)}"
            )
        if row.get("id") is not None:
            where = f"utterance {k} (id {row['id']})"
        text = row.get("text")
        if text is not None and not isinstance(text, str):
            raise InputError(
                f"ConvoKit utterances: {where}: 'text' must be a string, got {json_type(text)}"
            )
        conversation = _conversation_id(row)
        if conversation is not None:
            conversations.setdefault(conversation, None)
        timestamp = parse_timestamp(row.get("timestamp"), f"ConvoKit utterances: {where}")
        draft = Draft(_speaker(row, where), "human", text or "", timestamp, where)
        entries.append((draft, timestamp))
    if len(conversations) > 1:
        shown = ", ".join(list(conversations)[:5]) + (", …" if len(conversations) > 5 else "")
        raise InputError(
            f"ConvoKit utterances belong to {len(conversations)} conversations ({shown}); "
            "submit the utterances of one conversation at a time"
        )
    # Timestamps order the conversation when every row has one; otherwise the file's order
    # is the only order there is (the sort is stable, so equal times keep it too).
    dated = [(ts, draft) for draft, ts in entries if ts is not None]
    if len(dated) == len(entries):
        return Parsed([draft for _, draft in sorted(dated, key=lambda e: e[0])], "convokit")
    return Parsed([draft for draft, _ in entries], "convokit")
