"""The OpenAPI 3.1 document, generated from the operation registry and the pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from recovery.api.operations import JSON_MEDIA_TYPE, Operation
from recovery.api.problems import PROBLEM_MEDIA_TYPE, Problem
from recovery.errors import (
    Conflict,
    InsufficientScope,
    InternalError,
    MalformedRequest,
    PayloadTooLarge,
    RateLimited,
    RecoveryError,
    ServiceUnavailable,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)

REF = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]


def document(operations: list[Operation], version: str, server: str) -> dict[str, Any]:
    used: list[tuple[type[BaseModel], Mode]] = [(Problem, "serialization")]
    for op in operations:
        if op.body is not None:
            used.append((op.body, "validation"))
        used += [(model, "serialization") for model, _ in op.responses.values() if model]
    refs, components = models_json_schema(list(dict.fromkeys(used)), ref_template=REF)
    schemas = components.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Account recovery and identity resolution",
            "version": version,
            "description": "Service-to-service API of the account-recovery service. Errors are "
            "`application/problem+json` with a stable `code`.",
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `recovery api-client create`",
                }
            },
        },
    }


def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "responses": {},
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_parameters(op.path)
    ]
    if parameters:
        spec["parameters"] = parameters
    if op.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {op.body_media_type: {"schema": refs[(op.body, "validation")]}},
        }
    for status, (model, description) in sorted(op.responses.items()):
        response: dict[str, Any] = {"description": description}
        if model is not None:
            response["content"] = {JSON_MEDIA_TYPE: {"schema": refs[(model, "serialization")]}}
        spec["responses"][str(status)] = response
    # Any operation may be rate limited, lose a race to a concurrent writer (409, see
    # ``operations.view``), find the database gone (503) or crash.
    problems: list[type[RecoveryError]] = [
        *op.raises,
        Conflict,
        RateLimited,
        ServiceUnavailable,
        InternalError,
    ]
    if op.scope is not None:
        spec["security"] = [{"apiKey": []}]
        spec["x-scope"] = op.scope.value
        problems += [Unauthenticated, InsufficientScope]
    if op.body is not None:
        problems += [MalformedRequest, UnsupportedMediaType, PayloadTooLarge, ValidationFailed]
    if parameters:  # a path parameter with a NUL character in it names nothing
        problems.append(ValidationFailed)
    problem_schema = refs[(Problem, "serialization")]
    for status in sorted({error.status for error in problems}):
        codes = sorted({e.code for e in problems if e.status == status})
        spec["responses"][str(status)] = {
            "description": "problem: " + ", ".join(codes),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_schema}},
        }
    return spec


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
