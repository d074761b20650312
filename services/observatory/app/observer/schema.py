"""The observer's answer: pydantic models and the bounded JSON schema sent in ``format``.

Every array carries ``maxItems`` and every string ``maxLength``: grammar-constrained decoding
with an unbounded array lets a small model repeat items until it hits the token limit.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DIALECTIC_TYPES: tuple[str, ...] = (
    "question_answer",
    "socratic_sequence",
    "thesis_antithesis_synthesis",
    "disagreement",
    "agreement",
    "correction",
)
DialecticType = Literal[
    "question_answer",
    "socratic_sequence",
    "thesis_antithesis_synthesis",
    "disagreement",
    "agreement",
    "correction",
]

# llama.cpp refuses (and some of its bindings crash on) a string longer than 1000 characters
# when the schema is expanded into nested optional rules; 1000 is also ample for a narrative.
NARRATIVE_MAX = 1000
QUOTE_MAX = 160
Index = Annotated[int, Field(ge=0)]


def _indices(limit: int) -> Any:
    return Field(max_length=limit)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Theme(_Strict):
    label: str = Field(max_length=60)
    messages: list[Index] = _indices(6)
    quote: str = Field(max_length=QUOTE_MAX)


class Insight(_Strict):
    text: str = Field(max_length=240)
    messages: list[Index] = _indices(6)


class NotableExchange(_Strict):
    messages: list[Index] = _indices(6)
    quote: str = Field(max_length=QUOTE_MAX)
    why: str = Field(max_length=160)


class PatternJudgement(_Strict):
    type: DialecticType
    messages: list[Index] = _indices(6)
    agree: bool
    confidence: float = Field(ge=0.0, le=1.0)


class InjectionAttempt(_Strict):
    messages: list[Index] = _indices(3)
    quote: str = Field(max_length=QUOTE_MAX)


class ChunkFindings(_Strict):
    """What the model reports about one chunk of the transcript."""

    narrative: str = Field(max_length=NARRATIVE_MAX)
    themes: list[Theme] = Field(max_length=5)
    insights: list[Insight] = Field(max_length=5)
    notable_exchanges: list[NotableExchange] = Field(max_length=4)
    pattern_judgements: list[PatternJudgement] = Field(max_length=10)
    injection_attempts: list[InjectionAttempt] = Field(max_length=4)


class Synthesis(_Strict):
    """What the model reports when it merges the findings of several chunks."""

    narrative: str = Field(max_length=NARRATIVE_MAX)
    themes: list[Theme] = Field(max_length=5)
    insights: list[Insight] = Field(max_length=5)
    notable_exchanges: list[NotableExchange] = Field(max_length=4)


# Property names never collide with these keywords, so dropping them by key is safe.
_DROPPED = frozenset({"title", "description", "$defs"})


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve ``$ref`` into ``$defs`` and drop titles and descriptions: some grammar
    converters do not follow references, and the rest only costs prompt tokens."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _inline(defs[name], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k not in _DROPPED}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


@cache
def _schema_text(model: type[BaseModel]) -> str:
    raw = model.model_json_schema()
    return json.dumps(_inline(raw, raw.get("$defs", {})), separators=(",", ":"))


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The self-contained JSON schema (no ``$ref``) for ``model``; a fresh copy each call."""
    schema: dict[str, Any] = json.loads(_schema_text(model))
    return schema


def schema_text(model: type[BaseModel]) -> str:
    """The compact JSON text of :func:`json_schema`, as shown to the model in the prompt."""
    return _schema_text(model)
