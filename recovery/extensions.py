"""Extensions created once at import time and bound to an app in ``create_app`` (Flask's pattern)."""

from __future__ import annotations

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from recovery.clients.services import key_prefix
from recovery.db import db


def api_key_or_address() -> str:
    """Rate-limit key for service-to-service calls: the API key's public prefix, else the address."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    prefix = key_prefix(token.strip()) if scheme.lower() == "bearer" else None
    return f"client:{prefix}" if prefix else f"ip:{get_remote_address()}"


#: CSRF on every hosted form; the JSON API is exempt (it takes no cookies, only bearer keys).
csrf = CSRFProtect()

#: Storage comes from ``RATELIMIT_STORAGE_URI`` (memory:// embedded, Redis in production).
limiter = Limiter(key_func=get_remote_address)

__all__ = ["api_key_or_address", "csrf", "db", "limiter"]
