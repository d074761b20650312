"""ChatGPT ``conversations.json``: a tree of message nodes; only the active branch is the chat.

Regenerated answers and edited questions leave abandoned branches in ``mapping``. The
conversation the user saw is the path from ``current_node`` up through ``parent`` links,
reversed. Hidden system prompts, custom instructions, tool calls and tool output (code,
execution results, browsing) are not part of what was said and are skipped.
"""

from __future__ import annotations

import math
from typing import Any

from app.conversation.formats.common import (
    ROLE_SPEAKER,
    Draft,
    Parsed,
    as_float,
    json_type,
    parse_timestamp,
    role_for_field,
)
from app.conversation.formats.messages import PART_SEPARATOR
from app.core.errors import InputError

_TEXT_CONTENT = frozenset({"text", "multimodal_text"})


def _create_time(node: Any) -> float:
    message = node.get("message") if isinstance(node, dict) else None
    value = message.get("create_time") if isinstance(message, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = as_float(value)
        if math.isfinite(seconds):
            return seconds
    return -math.inf


def _latest_leaf(mapping: dict[str, Any]) -> str:
    """The most recently created node without children: the end of the last branch used."""
    best: str | None = None
    best_time = -math.inf
    for node_id, node in mapping.items():
        if isinstance(node, dict) and node.get("children"):
            continue
        created = _create_time(node)
        if best is None or created >= best_time:
            best, best_time = node_id, created
    if best is None:
        raise InputError("ChatGPT export: 'mapping' has no final message (every node has children)")
    return best


def _active_path(mapping: dict[str, Any], current: str) -> list[tuple[str, dict[str, Any]]]:
    path: list[tuple[str, dict[str, Any]]] = []
    visited: set[str] = set()
    node_id: Any = current
    while isinstance(node_id, str):
        if node_id in visited:
            raise InputError(
                f"ChatGPT export: node '{node_id}' is its own ancestor; "
                "'parent' links in 'mapping' must form a tree"
            )
        visited.add(node_id)
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            break  # a trimmed export may lack the root; what was found is the conversation
        path.append((node_id, node))
        node_id = node.get("parent")
    path.reverse()
    return path


def _draft(node_id: str, message: dict[str, Any]) -> Draft | None:
    metadata = message.get("metadata")
    if isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation"):
        return None
    # Messages addressed to a tool ("python", "browser", "bio") are calls, not replies.
    if message.get("recipient") not in (None, "all"):
        return None
    content = message.get("content")
    if not isinstance(content, dict) or content.get("content_type") not in _TEXT_CONTENT:
        return None
    parts = content.get("parts")
    if not isinstance(parts, list):
        return None
    text = PART_SEPARATOR.join(p for p in parts if isinstance(p, str) and p.strip())
    if not text:
        return None
    author = message.get("author")
    role_name = author.get("role") if isinstance(author, dict) else None
    if not isinstance(role_name, str):
        raise InputError(
            f"ChatGPT export: node '{node_id}': 'message.author.role' must be a string, "
            f"got {json_type(role_name)}"
        )
    role = role_for_field(role_name)
    where = f"ChatGPT export: node '{node_id}'"
    timestamp = parse_timestamp(message.get("create_time"), where, "create_time")
    return Draft(ROLE_SPEAKER[role], role, text, timestamp, f"node {node_id}")


def parse_chatgpt(conversation: dict[str, Any]) -> Parsed:
    mapping = conversation.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise InputError(
            "ChatGPT export: 'mapping' must be a non-empty object of message nodes, "
            f"got {json_type(mapping)}"
        )
    current = conversation.get("current_node")
    if isinstance(current, str) and current not in mapping:
        raise InputError(
            f"ChatGPT export: 'current_node' names '{current[:60]}', which is not in 'mapping'; "
            "it must be the id of a node in 'mapping' (or be left out to follow the latest "
            "message)"
        )
    if not isinstance(current, str):
        current = _latest_leaf(mapping)
    drafts: list[Draft] = []
    for node_id, node in _active_path(mapping, current):
        message = node.get("message")
        if isinstance(message, dict):
            draft = _draft(node_id, message)
            if draft is not None:
                drafts.append(draft)
    title = conversation.get("title")
    return Parsed(drafts, "chatgpt", title if isinstance(title, str) else None)
