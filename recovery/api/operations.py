"""A small operation registry: each endpoint declares its models once, and that declaration both
drives request parsing and generates the OpenAPI document. Handlers stay a few lines long.

The wrapper is also the request boundary of the API: it commits the session when the handler
returns and rolls back when it raises (DESIGN §2, STYLE 4).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Request, Response, current_app, g, request
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from recovery import errors
from recovery.audit.services import Actor
from recovery.clients.models import ApiClient, Scope
from recovery.clients.services import ApiClientService
from recovery.db import db
from recovery.validation import refuse_nul, validate_json

JSON_MEDIA_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler returns: a status and a response model."""

    status: int
    body: BaseModel
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Operation:
    method: str
    path: str  # OpenAPI style: /accounts/{account_id}
    operation_id: str
    summary: str
    description: str
    tag: str
    scope: Scope | None
    body: type[BaseModel] | None
    body_media_type: str
    responses: dict[int, tuple[type[BaseModel] | None, str]]
    raises: tuple[type[errors.RecoveryError], ...]


@dataclass(slots=True)
class Registry:
    blueprint: Blueprint
    operations: list[Operation] = field(default_factory=list)

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        responses: dict[int, tuple[type[BaseModel] | None, str]],
        scope: Scope | None = None,
        body: type[BaseModel] | None = None,
        body_media_type: str = JSON_MEDIA_TYPE,
        raises: tuple[type[errors.RecoveryError], ...] = (),
    ) -> Callable[[Callable[..., Reply | Response]], Callable[..., Response]]:
        """Register a handler. It receives path parameters, ``body`` (the parsed model, when the
        operation takes JSON) and ``client`` (when it needs a scope), and returns a ``Reply``."""

        def decorate(handler: Callable[..., Reply | Response]) -> Callable[..., Response]:
            self.operations.append(
                Operation(
                    method=method,
                    path=path,
                    operation_id=handler.__name__,
                    summary=summary,
                    description=(handler.__doc__ or "").strip(),
                    tag=tag,
                    scope=scope,
                    body=body,
                    body_media_type=body_media_type,
                    responses=responses,
                    raises=raises,
                )
            )
            adapter = (
                TypeAdapter(body)
                if body is not None and body_media_type == JSON_MEDIA_TYPE
                else None
            )

            @functools.wraps(handler)
            def view(**kwargs: Any) -> Response:
                for name, value in kwargs.items():  # path parameters
                    refuse_nul(name, value)
                if scope is not None:
                    kwargs["client"] = authenticate(scope)
                if adapter is not None:
                    kwargs["body"] = validate_json(adapter, read_json_body())
                try:
                    with db.transaction():
                        reply = handler(**kwargs)
                except IntegrityError:
                    # A concurrent writer won a race the handler's reads could not see.
                    raise errors.Conflict("changed concurrently; send the request again") from None
                if isinstance(reply, Response):
                    return reply
                response = Response(
                    reply.body.model_dump_json(exclude_none=False),
                    status=reply.status,
                    mimetype=JSON_MEDIA_TYPE,
                )
                response.headers.update(reply.headers)
                return response

            flask_path = path.replace("{", "<").replace("}", ">")
            self.blueprint.add_url_rule(flask_path, handler.__name__, view, methods=[method])
            return view

        return decorate


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated()
    return token.strip()


def authenticate(scope: Scope) -> ApiClient:
    client = ApiClientService(db.session).authenticate(bearer_token(), scope)
    g.api_client = client
    return client


def actor(client: ApiClient) -> Actor:
    return Actor("api_client", client.name, request.remote_addr)


def read_json_body() -> bytes:
    """The raw JSON body, refusing other media types and bodies over ``MAX_JSON_BYTES``."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]  # once, not per use
    mimetype = req.mimetype
    if mimetype != JSON_MEDIA_TYPE and not mimetype.endswith("+json"):
        raise errors.UnsupportedMediaType(f"send {JSON_MEDIA_TYPE}")
    limit: int = current_app.config["MAX_JSON_BYTES"]
    length = req.content_length
    if length is not None and length > limit:
        raise errors.PayloadTooLarge(f"the body may be at most {limit} bytes")
    # Read through Werkzeug with a cap (a chunked body has no Content-Length).
    # Werkzeug cuts a chunked body at the cap instead of refusing it, so the cap is one byte over
    # the limit and a body that reaches it was longer than allowed.
    req.max_content_length = limit + 1
    try:
        data = req.get_data()
    except RequestEntityTooLarge:
        data = None
    if data is None or len(data) > limit:
        raise errors.PayloadTooLarge(f"the body may be at most {limit} bytes")
    return data
