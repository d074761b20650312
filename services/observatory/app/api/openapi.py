"""The OpenAPI document, made to match what the server does: request bodies that endpoints
read as bytes are declared with their schema, and every error is ``application/problem+json``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from app.models.schemas import AnalyzeRequest, Problem

PROBLEM = "application/problem+json"
_REF = "#/components/schemas/{model}"
# Bodies declared through ``openapi_extra`` (read as bytes by their endpoint).
RAW_BODY_MODELS: tuple[type[BaseModel], ...] = (AnalyzeRequest,)


def _problem_content() -> dict[str, Any]:
    return {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def install_openapi(app: FastAPI) -> None:
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
        models: tuple[type[BaseModel], ...] = (*RAW_BODY_MODELS, Problem)
        for model in models:
            schema = model.model_json_schema(ref_template=_REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        # FastAPI's default 422 body is replaced by our problem document.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path in doc.get("paths", {}).values():
            for operation in path.values():
                for code, response in operation.get("responses", {}).items():
                    if code[:1] in ("4", "5"):
                        response["content"] = _problem_content()
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
