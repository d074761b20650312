"""The OpenAPI document, made to match what the server does: request bodies that endpoints
read as bytes are declared with their schema, every error is ``application/problem+json``,
and the errors the body-limit middleware answers are declared on each operation it guards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from app.analyses.schemas import AnalyzeRequest
from app.batches.schemas import BatchConversation, BatchRequest
from app.core.problems import Problem, ValidationProblem
from app.examples.schemas import ExampleAnalyzeRequest
from app.middleware.limits import BODY_METHODS

PROBLEM = "application/problem+json"
_REF = "#/components/schemas/{model}"
# Bodies declared through ``openapi_extra`` (read as bytes by their endpoint).
RAW_BODY_MODELS: tuple[type[BaseModel], ...] = (AnalyzeRequest, BatchRequest, ExampleAnalyzeRequest)
# Schemas the document points at by hand (a batch item is checked on its own, not by the
# envelope's schema).
REFERENCED_MODELS: tuple[type[BaseModel], ...] = (BatchConversation,)
# FastAPI's own error schemas, replaced by our problem documents.
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")

# What BodyLimitMiddleware answers for a request with a body: 415 on every path; the size,
# time and text limits only on paths that have a size limit.
ENCODING_ERROR = {"415": "The body is compressed (`Content-Encoding` other than identity)."}
BODY_LIMIT_ERRORS = {
    "400": "The body is not valid UTF-8 or holds a NUL byte.",
    "408": "The body paused or took too long to arrive (the connection is closed).",
    "413": "The body is over the size limit (the connection is closed).",
}


def _problem_content(model: type[BaseModel]) -> dict[str, Any]:
    return {PROBLEM: {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def _is_problem(response: dict[str, Any]) -> bool:
    """An error response declared without content, or with a problem or FastAPI error schema
    (an error with a body of its own, like readiness's 503, keeps it)."""
    content = response.get("content")
    if not content:
        return True
    names = {
        str(media.get("schema", {}).get("$ref", "")).rpartition("/")[2]
        for media in content.values()
    }
    return names <= {Problem.__name__, ValidationProblem.__name__, *_FASTAPI_ERRORS}


def install_openapi(app: FastAPI, *, body_limited: Callable[[str], bool]) -> None:
    """``body_limited(path)``: whether the body-limit middleware checks size, time and text
    of bodies sent to ``path``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        models: tuple[type[BaseModel], ...] = (
            *RAW_BODY_MODELS,
            *REFERENCED_MODELS,
            Problem,
            ValidationProblem,
        )
        for model in models:
            schema = model.model_json_schema(ref_template=_REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        # Items are checked one by one: anything is accepted into the batch and a bad item is
        # refused on its own, so the envelope's schema may not reject it.
        conversations = schemas[BatchRequest.__name__]["properties"]["conversations"]
        conversations["items"] = {
            "anyOf": [{"$ref": _REF.format(model=BatchConversation.__name__)}, {}]
        }
        for name in _FASTAPI_ERRORS:
            schemas.pop(name, None)
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                if method.upper() in BODY_METHODS:
                    errors = {**ENCODING_ERROR, **(BODY_LIMIT_ERRORS if body_limited(path) else {})}
                    for code, description in errors.items():
                        responses.setdefault(code, {"description": description})
                for code, response in responses.items():
                    if code[:1] in ("4", "5") and _is_problem(response):
                        model = ValidationProblem if code == "422" else Problem
                        response["content"] = _problem_content(model)
                if "security" in operation:
                    # Every credential is optional: without one a request is public-tier.
                    if {} not in operation["security"]:
                        operation["security"].append({})
                    responses.setdefault(
                        "401",
                        {
                            "description": "A credential was sent and is malformed, unknown, "
                            "revoked or expired.",
                            "content": _problem_content(Problem),
                        },
                    )
                    responses.setdefault(
                        "429",
                        {
                            "description": "A rate limit was reached; retry after `Retry-After` "
                            "seconds (`X-RateLimit-*` headers on every response say how much is "
                            "left).",
                            "content": _problem_content(Problem),
                        },
                    )
                    responses.setdefault(
                        "403",
                        {
                            "description": "The key lacks the scope this operation needs.",
                            "content": _problem_content(Problem),
                        },
                    )
                operation["responses"] = dict(sorted(responses.items()))
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def json_body(schema: str, *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for an endpoint that reads its JSON body itself (to refuse bad
    bodies with its own errors): the body documented as the named component schema."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }
