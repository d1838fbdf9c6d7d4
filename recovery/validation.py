"""Turning pydantic's validation errors into ``FieldError``s: paths and messages, never the input."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from recovery.errors import FieldError, MalformedRequest, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError, drop: int = 0) -> list[FieldError]:
    """One ``FieldError`` per problem; ``drop`` leading path parts (e.g. a union's tag)."""
    errors = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in error["loc"][drop:])
        if not path and error["type"].startswith("union_tag"):  # a missing or unknown "type"
            path = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
        path = path or "body"
        errors.append(FieldError(path, _message(error["msg"]), error["type"]))
    return errors


def _message(message: str) -> str:
    # pydantic prefixes errors raised by validators with "Value error, "; the field says enough.
    return message.removeprefix("Value error, ")


def validate(model: type[M], data: Any) -> M:
    """``model`` from already-parsed data, or ``ValidationFailed`` naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


def validate_json(adapter: TypeAdapter[Any], raw: bytes | str, drop: int = 0) -> Any:
    """Parse and validate one JSON document; ``MalformedRequest`` when it is not JSON at all."""
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise MalformedRequest("not valid JSON") from None
        raise ValidationFailed(field_errors(exc, drop)) from None
