"""Decoding and parsing a ``POST /api/v1/analyze/batch`` body, in a parse process.

The envelope (``conversations`` and ``options``) must be valid for anything to happen; each
conversation is then parsed on its own, and one that cannot be accepted is refused with its
reason while the others go on.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.analyses.schemas import AnalysisOptionsIn
from app.conversation.parsers import Limits
from app.jobs.work import Refusal, Submission, json_error, prepare_object, schema_refusal

ITEM_FIELDS = ("id", "text", "conversation_text", "messages", "data", "format")
MAX_REF_CHARS = 128


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversations: list[Any] = Field(min_length=1)
    options: AnalysisOptionsIn = Field(default_factory=AnalysisOptionsIn)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An item refused at submission, and why."""

    detail: str


@dataclass(frozen=True, slots=True)
class Item:
    position: int
    ref: str
    outcome: Submission | Rejected


@dataclass(frozen=True, slots=True)
class BatchSubmission:
    options: dict[str, Any]
    items: tuple[Item, ...]


def prepare_batch(body: bytes, limits: Limits, max_items: int) -> BatchSubmission | Refusal:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return json_error(exc)
    if isinstance(raw, dict) and isinstance(raw.get("conversations"), list):
        count = len(raw["conversations"])
        if count > max_items:
            return Refusal(
                400,
                f"a batch holds at most {max_items} conversations; this one has {count}: "
                "split it into several batches",
            )
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError as exc:
        return schema_refusal(exc, "invalid batch")
    seen: set[str] = set()
    # Ids given explicitly win over the positions that name items without one, wherever
    # they stand in the batch.
    claimed = {
        str(entry["id"])
        for entry in envelope.conversations
        if isinstance(entry, dict)
        and isinstance(entry.get("id"), str | int)
        and not isinstance(entry.get("id"), bool)
    }
    items = []
    for position, entry in enumerate(envelope.conversations):
        ref, outcome = _item(position, entry, limits, seen, claimed)
        items.append(Item(position, ref, outcome))
    return BatchSubmission(envelope.options.model_dump(), tuple(items))


def _item(
    position: int, entry: Any, limits: Limits, seen: set[str], claimed: set[str]
) -> tuple[str, Submission | Rejected]:
    # An item without a usable id is named by its position, or "#position" when another
    # item has that position as its id.
    fallback = str(position) if str(position) not in claimed else f"#{position}"
    if not isinstance(entry, dict):
        return fallback, Rejected(
            f"conversation {position} is {_json_type(entry)}; each conversation is an "
            "object with 'text' or 'messages' (and an optional 'id')"
        )
    given = entry.get("id")
    if given is None:
        ref = str(position)
    elif isinstance(given, str | int) and not isinstance(given, bool):
        ref = str(given)
        if not ref or len(ref) > MAX_REF_CHARS:
            return fallback, Rejected(
                f"conversation {position}: 'id' must be 1 to {MAX_REF_CHARS} characters"
            )
        if any(unicodedata.category(c) in UNSEEN for c in ref):
            return fallback, Rejected(
                f"conversation {position}: 'id' holds a control or formatting character "
                "(NUL, a line break, a direction override…); ids are printable text"
            )
    else:
        return fallback, Rejected(
            f"conversation {position}: 'id' must be a string or an integer, not {_json_type(given)}"
        )
    if given is None and ref in claimed:
        return fallback, Rejected(
            f"conversation {position} has no 'id', and its position '{ref}', which would "
            "name it, is the 'id' of another conversation; give it an 'id'"
        )
    if ref in seen:
        return ref, Rejected(f"conversation {position}: id '{ref}' is used twice in this batch")
    seen.add(ref)
    unknown = sorted(set(entry) - set(ITEM_FIELDS))
    if unknown:
        return ref, Rejected(
            f"conversation {position}: unknown field(s) "
            f"{', '.join(repr(visible(u[:40])) for u in unknown[:5])}; a conversation "
            f"may have {', '.join(ITEM_FIELDS)} (options are given once, for the whole batch)"
        )
    fields = {k: v for k, v in entry.items() if k != "id"}
    if "text" in fields:
        if "conversation_text" in fields:
            return ref, Rejected(
                f"conversation {position}: send 'text' or 'conversation_text', not both"
            )
        fields["conversation_text"] = fields.pop("text")
    prepared = prepare_object(fields, limits)
    if isinstance(prepared, Refusal):
        return ref, Rejected(f"conversation {position}: {visible(prepared.detail)}")
    return ref, prepared


# Control, format (bidi overrides, zero-width), surrogate and unassigned characters.
UNSEEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "an integer" if isinstance(value, int) else "a non-integer number"
    return _JSON_TYPES.get(type(value), "a value of another type")


def visible(text: str) -> str:
    """``text`` with characters that cannot be shown (or stored in PostgreSQL text, like
    NUL) replaced by U+FFFD: refusal details quote what a client sent."""
    return "".join("\ufffd" if unicodedata.category(c) in UNSEEN else c for c in text)
