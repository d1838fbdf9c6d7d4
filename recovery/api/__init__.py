"""The JSON API under ``/api/v1``: parse, call one service, render. No business rules here."""

from __future__ import annotations

from importlib.metadata import version

from flask import Blueprint, Flask, Response, current_app, jsonify

from recovery.api.operations import Registry
from recovery.extensions import api_key_or_address, csrf, limiter

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
registry = Registry(blueprint)
#: Every API call counts against its API key (or, without one, its address).
limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=api_key_or_address)(blueprint)


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    from recovery.api.openapi import document

    return jsonify(document(registry.operations, version("recovery"), "/api/v1"))


def init_app(app: Flask) -> None:
    # The modules register their operations on import.
    from recovery.api import ingest, recovery, resolve  # noqa: F401

    csrf.exempt(blueprint)  # bearer keys and public JSON: no cookies to ride on
    app.register_blueprint(blueprint)
