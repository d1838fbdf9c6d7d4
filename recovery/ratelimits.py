"""Rate-limit keys and limits for the public recovery endpoints (DESIGN §5.3).

Limits are checked before any lookup, so a refusal looks the same for known and unknown
identifiers. Identifiers are keyed by a keyed hash of their normalised form: the limiter's storage
(Redis in production) never holds an email address or a phone number.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request
from flask_limiter.util import get_remote_address

from recovery.identity import normalise


def per_ip() -> str:
    return str(current_app.config["RESET_RATE_LIMIT_PER_IP"])


def per_identifier() -> str:
    return str(current_app.config["RESET_RATE_LIMIT_PER_IDENTIFIER"])


def per_flow() -> str:
    return str(current_app.config["VERIFY_RATE_LIMIT_PER_FLOW"])


def identifier_key() -> str:
    """``identifier:<hmac of the normalised email or phone>``; the raw text when it will not parse
    (the request then fails validation anyway, but still counts)."""
    body = request.get_json(silent=True) or {}
    raw = str(body.get("email") or body.get("phone") or "") if isinstance(body, dict) else ""
    try:
        value = normalise.email(raw) if "@" in raw else normalise.phone(raw)
    except normalise.InvalidValue:
        value = raw.strip().casefold()
    key = current_app.config["SECRET_KEYS"][0].encode()
    return "identifier:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def flow_key() -> str:
    """The flow being answered (from the path or the body), else the client address."""
    flow_id = (request.view_args or {}).get("flow_id")
    if flow_id is None:
        body = request.get_json(silent=True)
        flow_id = body.get("flow_id") if isinstance(body, dict) else None
    return f"flow:{flow_id}" if flow_id else f"ip:{get_remote_address()}"
