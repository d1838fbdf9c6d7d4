"""The account-recovery and identity-resolution service."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask


class Service(Flask):
    """Flask, asking once per function whether it is a coroutine function: ``ensure_sync`` asks
    ``inspect`` about every hook and the view on every request, a few percent of a short one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        sync = self._sync.get(func)
        if sync is None:
            sync = self._sync[func] = super().ensure_sync(func)
        return sync


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``RECOVERY_*`` environment variables, then ``config``.

    The configuration is validated here, once; a bad setting raises ``ConfigError`` naming it.
    """
    from werkzeug.middleware.proxy_fix import ProxyFix

    from recovery import config as settings
    from recovery import i18n, ops, ratelimits
    from recovery.api import init_app as init_api
    from recovery.api.problems import register as register_problems
    from recovery.extensions import csrf, db, init_sparing
    from recovery.web import dev, recover

    app = Service(__name__, instance_relative_config=True)
    settings.load(app, config)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app.config.update(
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_STRATEGY="fixed-window",
        # The wizard's session cookie holds only the flow id, signed; keep it from scripts and
        # from cross-site requests, and on https only when the service is served over https.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["PUBLIC_URL"].startswith("https://"),
    )
    if app.config["TRUSTED_PROXIES"]:
        # The client's address (rate limits, audit) is what the trusted proxies say it is; with
        # none trusted, X-Forwarded-For is ignored (anyone could write it).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])  # type: ignore[method-assign]
    db.init_app(app)
    ratelimits.init_app(app)  # Flask-Limiter, but for the public paths
    # CSRF on every form; the JSON API, exempt (it takes no cookies), skips the check altogether.
    init_sparing(app, csrf.init_app, ("/api/",))
    i18n.init_app(app)
    register_problems(app, page=recover.error_page)
    app.register_blueprint(ops.blueprint)
    dev.init_app(app)  # /dev/mailbox, in development only
    recover.init_app(app)
    init_api(app)

    from recovery.cli import register as register_cli

    register_cli(app)
    return app
