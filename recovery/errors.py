"""The error hierarchy every layer shares.

Each error has a stable machine ``code`` (clients switch on it, so it never changes once published), an
HTTP ``status`` the faces use, and a human ``title``. Messages never contain submitted secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: a dotted path into the request (``identities.0.value``), a message, a code."""

    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


class RecoveryError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "The request could not be processed"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        #: Commit the request's work although it failed: a counted wrong code must stay counted.
        self.keep_changes = False

    def kept(self) -> RecoveryError:
        """This error, marked so that the request boundary commits what was written before it."""
        self.keep_changes = True
        return self


class ValidationFailed(RecoveryError):
    code = "validation_failed"
    status = 422
    title = "Some fields are invalid"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class MalformedRequest(RecoveryError):
    code = "malformed_request"
    status = 400
    title = "The request body is not valid JSON"


class Unauthenticated(RecoveryError):
    code = "unauthenticated"
    status = 401
    title = "A valid API key is required"


class InsufficientScope(RecoveryError):
    code = "insufficient_scope"
    status = 403
    title = "The API key does not have the scope this operation needs"


class NotFound(RecoveryError):
    code = "not_found"
    status = 404
    title = "Not found"


class MethodNotAllowed(RecoveryError):
    code = "method_not_allowed"
    status = 405
    title = "This method is not allowed here"


class Conflict(RecoveryError):
    code = "conflict"
    status = 409
    title = "The request conflicts with stored data"


class IdentityConflict(Conflict):
    code = "identity_conflict"
    title = "An identity in the request belongs to another account"


class PayloadTooLarge(RecoveryError):
    code = "payload_too_large"
    status = 413
    title = "The request body is too large"


class UnsupportedMediaType(RecoveryError):
    code = "unsupported_media_type"
    status = 415
    title = "The request body has an unsupported content type"


class RateLimited(RecoveryError):
    code = "rate_limited"
    status = 429
    title = "Too many requests; try again later"

    def __init__(self, detail: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(detail)
        #: Seconds until the exceeded budget starts again (the ``Retry-After`` header).
        self.retry_after = retry_after


class ServiceUnavailable(RecoveryError):
    code = "unavailable"
    status = 503
    title = "A dependency of the service is unavailable"


class InternalError(RecoveryError):
    code = "internal_error"
    status = 500
    title = "Something went wrong on our side"


class InvalidToken(RecoveryError):
    """One answer for unknown, tampered, used and superseded links or codes: no oracle."""

    code = "invalid_token"
    status = 400
    title = "This link or code is not valid"


class TokenExpired(RecoveryError):
    code = "token_expired"
    status = 400
    title = "This link or code has expired"


class TooManyAttempts(RecoveryError):
    code = "too_many_attempts"
    status = 429
    title = "Too many wrong codes; ask for a new one"


class WeakPassword(RecoveryError):
    code = "weak_password"
    status = 422
    title = "Choose a different password"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason


class Gone(RecoveryError):
    code = "gone"
    status = 410
    title = "This has been used already"
