"""The account-recovery and identity-resolution service."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``RECOVERY_*`` environment variables, then ``config``.

    The configuration is validated here, once; a bad setting raises ``ConfigError`` naming it.
    """
    from werkzeug.middleware.proxy_fix import ProxyFix

    from recovery import config as settings
    from recovery import i18n, ops, ratelimits
    from recovery.api import init_app as init_api
    from recovery.api.problems import register as register_problems
    from recovery.extensions import csrf, db
    from recovery.web import dev, recover

    app = Flask(__name__, instance_relative_config=True)
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
    csrf.init_app(app)
    i18n.init_app(app)
    register_problems(app, page=recover.error_page)
    app.register_blueprint(ops.blueprint)
    dev.init_app(app)  # /dev/mailbox, in development only
    recover.init_app(app)
    init_api(app)

    from recovery.cli import register as register_cli

    register_cli(app)
    return app
