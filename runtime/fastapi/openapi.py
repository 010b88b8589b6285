"""The OpenAPI document names every answer an operation can get, not only its
own: the contract's errors (docs/contract.md, section 3) that the runtime
answers for it, with the contract's error body. FastAPI names only a 422, with
a body of its own (``HTTPValidationError``) that the service never sends.

Each operation of every router is described from what the document says of it
(its parameters and its request body), so a new router needs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from . import errors
from .json_body import is_json_media_type

ERROR = "ErrorBody"
VALIDATION_ERROR = "ValidationErrorBody"
PROBLEM = "ValidationProblem"
_SCHEMAS = "#/components/schemas/"
# FastAPI's own 422, replaced where FastAPI put it.
_FASTAPI_422 = _SCHEMAS + "HTTPValidationError"
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

_ID = {"type": "string", "description": "The request's id, as in its X-Request-ID header."}
_PROPERTIES: dict[str, Any] = {
    "error": {"type": "string", "description": "What went wrong, for machines: not_found, ..."},
    "message": {"type": "string", "description": "What went wrong, in a sentence."},
    "request_id": _ID,
}
COMPONENTS: dict[str, Any] = {
    ERROR: {
        "title": ERROR,
        "description": "The body of every error answer.",
        "type": "object",
        "properties": _PROPERTIES,
        "required": ["error", "message", "request_id"],
    },
    VALIDATION_ERROR: {
        "title": VALIDATION_ERROR,
        "description": "The body of a 422: the request is well-formed, its content is not valid.",
        "type": "object",
        "properties": {
            **_PROPERTIES,
            "details": {"type": "array", "items": {"$ref": _SCHEMAS + PROBLEM}},
        },
        "required": ["error", "message", "request_id", "details"],
    },
    PROBLEM: {
        "title": PROBLEM,
        "description": "One problem: where it is, why, and its pydantic error type.",
        "type": "object",
        "properties": {
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "description": 'Where: ["body"], ["body", "name"], ["path", "item_id"], ...',
            },
            "msg": {"type": "string"},
            "type": {"type": "string", "description": "string_too_long, missing, ..."},
        },
        "required": ["loc", "msg", "type"],
    },
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def _answer(status: int, *codes: str) -> dict[str, Any]:
    codes = codes or (errors.code_for(status),)
    schema = VALIDATION_ERROR if status == 422 else ERROR
    example: dict[str, Any] = {
        "error": codes[0],
        "message": errors.message_for(codes[0], status),
        "request_id": "4bf92f3577b34da6",
    }
    if status == 422:
        example["details"] = [
            {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
        ]
    body = {"schema": {"$ref": _SCHEMAS + schema}, "example": example}
    answer: dict[str, Any] = {
        "description": " ".join(errors.message_for(code, status) for code in codes),
        "content": {"application/json": body},
    }
    if status == 503:
        answer["headers"] = _RETRY_AFTER
    return answer


def _statuses(operation: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The contract's errors ``operation`` can be answered with."""
    parameters = operation.get("parameters", [])
    body = operation.get("requestBody")
    found: dict[int, dict[str, Any]] = {}
    if body is not None:
        found[413] = _answer(413)
        if any(is_json_media_type(media) for media in body.get("content", {})):
            found[400] = _answer(400, "invalid_json")
            found[415] = _answer(415)
    if any(parameter.get("in") == "path" for parameter in parameters):
        found[404] = _answer(404)  # names nothing that exists
    if parameters or body is not None:
        found[422] = _answer(422)
    found[500] = _answer(500)
    found[503] = _answer(503, "overloaded", "database_unavailable")
    return found


def describe_errors(document: dict[str, Any]) -> None:
    """Add the contract's errors to every operation of ``document``, in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in COMPONENTS.items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"a schema named {name!r} is the runtime's: rename yours")
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status, answer in _statuses(operation).items():
                declared = responses.get(str(status))
                if declared is None or _is_fastapis(declared):
                    responses[str(status)] = answer
            operation["responses"] = dict(sorted(responses.items()))
    for name in _FASTAPI_SCHEMAS:  # HTTPValidationError first: it names the other
        if f'"{_SCHEMAS}{name}"' not in json.dumps(document):
            schemas.pop(name, None)


def _is_fastapis(answer: dict[str, Any]) -> bool:
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_422)


def install(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # FastAPI keeps it: it is described once
            describe_errors(document)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # as FastAPI's docs extend it
