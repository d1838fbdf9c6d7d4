"""Extensions created once at import time and bound to an app in ``create_app`` (Flask's pattern)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, request
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


def init_sparing(app: Flask, init_app: Callable[[Flask], None], prefixes: tuple[str, ...]) -> None:
    """Run an extension's ``init_app`` on ``app``; the app-wide request hooks it adds are skipped
    on paths under ``prefixes``, where they have nothing to do (and would still run on every
    request, each costing a reset request a few percent)."""
    registries: tuple[dict[str | None, list[Any]], ...] = (
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
    )
    earlier = [list(registry.get(None, ())) for registry in registries]
    init_app(app)
    for registry, kept in zip(registries, earlier, strict=True):
        hooks = registry.get(None, [])
        registry[None] = [hook if hook in kept else skipped_on(prefixes, hook) for hook in hooks]


def skipped_on(prefixes: tuple[str, ...], hook: Callable[..., Any]) -> Callable[..., Any]:
    """``hook`` (a before-request, after-request or teardown function), skipped on paths under
    ``prefixes``: there an after-request hook hands the response on untouched, the others do
    nothing."""

    def unless_under(*args: Any) -> Any:
        if request.path.startswith(prefixes):
            return args[0] if args else None
        return hook(*args)

    return unless_under


__all__ = ["api_key_or_address", "csrf", "db", "init_sparing", "limiter", "skipped_on"]
