"""``application/problem+json`` (RFC 9457) for every error the API returns."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from flask import Flask, Response, request
from flask_limiter.errors import RateLimitExceeded
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from werkzeug import exceptions as werkzeug_errors
from werkzeug.exceptions import HTTPException

from recovery import errors
from recovery.errors import RecoveryError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://recovery.invalid/problems/"


class FieldProblem(BaseModel):
    field: str = Field(description="dotted path into the request, e.g. identities.0.value")
    message: str
    code: str


class Problem(BaseModel):
    """An error. Switch on ``code``: it is stable; ``title`` and ``detail`` are for people."""

    type: str
    title: str
    status: int
    code: str = Field(description="stable machine-readable error code")
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = Field(None, description="for validation_failed")
    model_config = {"extra": "allow"}


def problem_response(error: RecoveryError) -> Response:
    body: dict[str, object] = {
        "type": TYPE_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "detail": error.detail,
        "instance": request.path,
    }
    if isinstance(error, errors.ValidationFailed):
        body["errors"] = [e.as_dict() for e in error.errors]
    body.update(error.extra)
    return Response(json.dumps(body), status=error.status, mimetype=PROBLEM_MEDIA_TYPE)


#: HTTP errors raised by Flask/Werkzeug themselves (routing, body size), as our coded errors.
_HTTP_ERRORS: dict[int, type[RecoveryError]] = {
    400: errors.MalformedRequest,
    401: errors.Unauthenticated,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType,
    429: errors.RateLimited,
}


#: Where the hosted pages live: their errors are pages too (``register``'s ``page``).
PAGE_PREFIXES = ("/recover", "/dev/")


def register(app: Flask, page: Callable[[RecoveryError], Response] | None = None) -> None:
    """Render every error as a problem: ours, Werkzeug's, the rate limiter's, and crashes. Under
    ``PAGE_PREFIXES`` ``page`` renders it instead, for a person (in their language)."""

    def answer(error: RecoveryError) -> Response:
        response: Response | None = None
        if page is not None and request.path.startswith(PAGE_PREFIXES):
            try:
                response = page(error)
            except Exception:  # the page itself failed: the problem still says what happened
                log.exception("error page failed on %s %s", request.method, request.path)
        if response is None:
            response = problem_response(error)
        if isinstance(error, errors.RateLimited) and error.retry_after:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(RecoveryError)
    def _ours(error: RecoveryError) -> Response:
        return answer(error)

    @app.errorhandler(RateLimitExceeded)
    def _limited(error: RateLimitExceeded) -> Response:
        # Flask-Limiter's refusal (the authenticated API's per-key limit); it adds Retry-After and
        # X-RateLimit-* headers to this response itself.
        return answer(errors.RateLimited())

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        kind = _HTTP_ERRORS.get(error.code or 500, errors.InternalError)
        response = answer(kind())
        if isinstance(error, werkzeug_errors.MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(DBAPIError)
    def _database(error: DBAPIError) -> Response:
        if not error.connection_invalidated:
            return _crash(error)
        # The database went away under the request (a restart): it may not have been kept.
        log.warning("database connection lost on %s %s: %s", request.method, request.path, error)
        return answer(errors.ServiceUnavailable("the database is unavailable"))

    @app.errorhandler(Exception)
    def _crash(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return answer(errors.InternalError())
