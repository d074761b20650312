"""Request and response bodies of the analysis endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.analyses.status import Status

PatternType = Literal["dialectic", "sentiment", "topics", "dynamics"]
ALL_PATTERN_TYPES: tuple[PatternType, ...] = ("dialectic", "sentiment", "topics", "dynamics")
ObserverMode = Literal["auto", "off", "required"]
Priority = Literal["low", "normal", "high"]


class AnalysisOptionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern_types: list[PatternType] = Field(
        default_factory=lambda: list(ALL_PATTERN_TYPES),
        min_length=1,
        description="Which pattern families to compute (default: all four).",
    )
    include_insights: bool = Field(
        # Strict: 0, 1 or "false" are not taken for a boolean.
        True,
        strict=True,
        description="Add themes, key moments, summary points.",
    )
    observer: ObserverMode | None = Field(
        None,
        description=(
            "auto: use the observer model if reachable; off; required: fail without it. "
            "Default: the service's OBSERVATORY_OBSERVER_MODE."
        ),
    )
    priority: Priority = "normal"
    callback_url: str | None = Field(
        None,
        max_length=2048,
        description=(
            "POSTed to when the analysis (or the batch) ends, signed per Standard Webhooks "
            "with your secret (POST /api/v1/webhooks/secret). Needs an API key or a partner "
            "token; must resolve to public addresses only."
        ),
    )


# An export is a JSON object or array, or a string holding one; a number or a boolean is none.
DATA_TYPES: list[JsonValue] = ["object", "array", "string"]


class AnalyzeRequest(BaseModel):
    """Exactly one of ``conversation_text``, ``messages`` or ``data`` carries the conversation."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # Exactly one input field, present and not null (null counts as absent).
            "oneOf": [
                {
                    "required": ["conversation_text"],
                    "properties": {"conversation_text": {"type": "string"}},
                },
                {"required": ["messages"], "properties": {"messages": {"type": "array"}}},
                {"required": ["data"], "properties": {"data": {"type": DATA_TYPES}}},
            ],
            "examples": [
                {
                    "conversation_text": "Human: Why is the sky blue?\nAI: Rayleigh scattering.",
                    "options": {"pattern_types": ["dialectic", "dynamics"]},
                },
                {
                    "messages": [
                        {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello!"},
                    ]
                },
            ],
        },
    )

    conversation_text: str | None = Field(
        None, description="A plain transcript (`Speaker: text` lines)."
    )
    messages: list[Any] | None = Field(
        None,
        description="`{speaker|name|role, text|content, timestamp?}` items; OpenAI messages as they are.",
    )
    data: Any | None = Field(
        None,
        description="A known export: ChatGPT conversations.json, Claude.ai, ShareGPT, ConvoKit rows.",
        json_schema_extra={"anyOf": [{"type": DATA_TYPES}, {"type": "null"}]},
    )
    format: str | None = Field(
        None,
        description="auto (default), text, messages, openai, chatgpt, claude, sharegpt, convokit.",
    )
    options: AnalysisOptionsIn = Field(default_factory=AnalysisOptionsIn)


class AnalysisAccepted(BaseModel):
    id: str
    status: Status
    created_at: datetime
    expires_at: datetime


class AnalysisResult(BaseModel):
    """Status and, once completed, the full result (SPEC §4 fields at the top level)."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: Status
    stage: str | None = None
    processing_time: float | None = Field(None, description="Seconds from start to finish.")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime
    error: str | None = None
    message_count: int
    fingerprint: str
    options: dict[str, Any] = Field(description="The options the analysis runs with.")


class CancelResponse(BaseModel):
    id: str
    status: Status


class SubmissionHelp(BaseModel):
    content_type: str
    one_of: dict[str, str] = Field(
        description="Exactly one of these fields holds the conversation."
    )
    optional: dict[str, str]
    example: dict[str, Any]


class SubmissionLimits(BaseModel):
    max_messages: int
    max_conversation_bytes: int = Field(description="UTF-8 bytes of all message texts.")
    max_message_chars: int
    max_body_bytes: int = Field(description="The request body (JSON escapes count).")
    max_wait_seconds: float = Field(description="The longest `Prefer: wait=N` honoured.")
    max_batch_conversations: int
    max_batch_bytes: int


class AnalyzeCollection(BaseModel):
    """What `/api/v1/analyze` offers."""

    methods: dict[str, str]
    request: SubmissionHelp
    formats: list[str] = Field(description="Values of `format` (auto: detect).")
    pattern_types: list[str]
    observer_modes: list[str]
    priorities: list[str]
    limits: SubmissionLimits
    links: dict[str, str]


class Erased(BaseModel):
    """What ``DELETE /api/v1/analyze`` erased."""

    analyses: int = Field(description="Analyses erased (each leaves a tombstone of its id).")
    batches: int = Field(description="Batches deleted, with their aggregates.")
    deliveries: int = Field(description="Callback deliveries deleted.")
