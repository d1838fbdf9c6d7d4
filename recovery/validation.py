"""Turning pydantic's validation errors into ``FieldError``s: paths and messages, never the input."""

from __future__ import annotations

import json
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


#: What a text field holding a NUL character is told: PostgreSQL cannot store one in text.
NUL_MESSAGE = "must not contain NUL characters"


def refuse_nul(name: str, value: str) -> None:
    """``ValidationFailed`` naming ``name`` if ``value`` holds a NUL character."""
    if "\x00" in value:
        raise ValidationFailed([FieldError(name, NUL_MESSAGE, "nul_character")])


def validate_json(adapter: TypeAdapter[Any], raw: bytes | str, drop: int = 0) -> Any:
    """Parse and validate one JSON document; ``MalformedRequest`` when it is not JSON at all.

    A string holding a NUL character (``\\u0000``: raw control characters are not JSON) is
    refused naming its field, whatever the model: no text column can store it."""
    escaped_nul = b"\\u0000" in raw if isinstance(raw, bytes) else "\\u0000" in raw
    if escaped_nul:
        _refuse_nul_in_document(raw)
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise MalformedRequest("not valid JSON") from None
        raise ValidationFailed(field_errors(exc, drop)) from None


def _refuse_nul_in_document(raw: bytes | str) -> None:
    try:
        document = json.loads(raw)
    except ValueError:
        return  # not JSON: validation says so
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                refuse_nul(path.removesuffix(".") or "body", key)  # a key: name its object
                stack.append((f"{path}{key}.", item))
        elif isinstance(value, list):
            stack.extend((f"{path}{index}.", item) for index, item in enumerate(value))
        elif isinstance(value, str):
            refuse_nul(path.removesuffix(".") or "body", value)
