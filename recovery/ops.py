"""Operator endpoints: liveness and readiness."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from recovery.db import db
from recovery.extensions import limiter

log = logging.getLogger(__name__)
blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
@limiter.exempt
def healthz() -> Response:
    """The process is up; says nothing about its dependencies (that is /readyz)."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
@limiter.exempt
def readyz() -> tuple[Response, int]:
    """Ready to serve: the database answers a query and the rate-limit storage is reachable."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # any failure means "not ready"; the log says which
        log.exception("readiness: database check failed")
        checks["database"] = "unavailable"
    finally:
        db.session.rollback()
    try:
        checks["rate_limit_storage"] = "ok" if limiter.storage.check() else "unavailable"
    except Exception:
        log.exception("readiness: rate-limit storage check failed")
        checks["rate_limit_storage"] = "unavailable"
    ready = all(state == "ok" for state in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503
