"""Bodies of the example endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.analyses.schemas import AnalysisOptionsIn


class ExampleSummary(BaseModel):
    name: str = Field(description="What `GET /examples/{name}` takes.")
    title: str
    category: str
    format: str = Field(description="The input format of the file (`format` of a submission).")
    difficulty: str = Field(description="easy, medium or hard: how much there is to find.")
    message_count: int = Field(description="Messages the parser finds in it.")
    demonstrates: list[str] = Field(description="What an analysis of it shows.")
    description: str
    file: str = Field(description="The file in the service's examples folder.")


class ExampleList(BaseModel):
    examples: list[ExampleSummary]
    count: int
    categories: list[str] = Field(description="Every category, for `?category=`.")


class HowToAnalyze(BaseModel):
    method: str = "POST"
    path: str = Field(description="Analyses the example by name, answered as a submission is.")
    curl: str = Field(description="The same call from a shell.")
    body: str = Field(description="What the optional request body may hold.")


class ExampleDetail(ExampleSummary):
    content: Any = Field(
        description="The conversation: the text of a transcript, the JSON value of an export."
    )
    request: dict[str, Any] = Field(
        description="The body of `POST /api/v1/analyze` that analyses this example."
    )
    analyze: HowToAnalyze


class ExampleAnalyzeRequest(BaseModel):
    """Optional: the conversation is the example's; only the options may be chosen."""

    model_config = ConfigDict(extra="forbid")

    options: AnalysisOptionsIn = Field(default_factory=AnalysisOptionsIn)
