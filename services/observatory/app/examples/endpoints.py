"""The curated examples: list, show, and analyse one by name."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.analyses.endpoints import PREFER, SUBMIT_RESPONSES, answer_submission, refuse
from app.analyses.schemas import AnalysisAccepted
from app.api.body import json_body
from app.api.deps import StateDep
from app.api.openapi import json_body as openapi_body
from app.auth.dependencies import AnalystDep
from app.core.problems import Problem
from app.examples.schemas import (
    ExampleAnalyzeRequest,
    ExampleDetail,
    ExampleList,
    ExampleSummary,
    HowToAnalyze,
)
from app.examples.service import Example, catalogue_for
from app.jobs.work import json_error, schema_errors

router = APIRouter(prefix="/examples", tags=["examples"])

OPTIONS_BODY = (
    'optional JSON {"options": {...}} as in POST /api/v1/analyze (pattern_types, '
    "include_insights, observer, priority, callback_url); the conversation is the example's"
)


def _summary(example: Example) -> ExampleSummary:
    return ExampleSummary(**example.metadata())


@router.get("", response_model=ExampleList)
async def list_examples(
    state: StateDep,
    category: str | None = Query(None, description="Only the examples of this category."),
) -> ExampleList:
    """The curated example conversations with their manifest metadata; `?category=` filters (`categories` lists them all)."""
    catalogue = catalogue_for(state.settings)
    examples = [_summary(e) for e in catalogue.listed(category)]
    return ExampleList(examples=examples, count=len(examples), categories=catalogue.categories)


@router.get("/{name}", response_model=ExampleDetail, responses={404: {"model": Problem}})
async def show_example(name: str, state: StateDep, request: Request) -> ExampleDetail:
    """One example: its content, its metadata, and how to analyse it."""
    example = catalogue_for(state.settings).get(name)
    path = f"/examples/{example.name}/analyze"
    base = str(request.base_url).rstrip("/")
    return ExampleDetail(
        **example.metadata(),
        content=example.content(),
        request=example.request(),
        analyze=HowToAnalyze(
            path=path,
            curl=f"curl -s -X POST -H 'Prefer: wait=10' {base}{path}",
            body=OPTIONS_BODY,
        ),
    )


@router.post(
    "/{name}/analyze",
    status_code=202,
    response_model=AnalysisAccepted,
    responses={**SUBMIT_RESPONSES, 404: {"model": Problem}},
    openapi_extra=openapi_body("ExampleAnalyzeRequest", required=False),
)
async def analyze_example(
    name: str,
    state: StateDep,
    principal: AnalystDep,
    request: Request,
    response: Response,
    prefer: str | None = PREFER,
) -> Any:
    """Analyse an example by name: the same limits, owner and answer as `POST /api/v1/analyze`."""
    example = catalogue_for(state.settings).get(name)
    raw = await json_body(request)
    options = None
    if raw.strip():
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            refuse(json_error(exc))
        try:
            # Strictly: the documented types, as the schema states them (no 0 for false).
            ExampleAnalyzeRequest.model_validate(value, strict=True)
        except ValidationError as exc:
            raise RequestValidationError(list(schema_errors(exc))) from None
        options = value.get("options")
    body = orjson.dumps(example.request(options))
    return await answer_submission(state, principal, request, response, body)
