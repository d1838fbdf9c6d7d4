"""Rate-limit keys and limits for the public recovery endpoints (DESIGN §5.3).

Limits are checked before any lookup, so a refusal looks the same for known and unknown
identifiers. Identifiers are keyed by a keyed hash of their normalised form: the limiter's storage
(Redis in production) never holds an email address or a phone number.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request, session
from flask_limiter.util import get_remote_address

from recovery.identity import normalise


def per_ip() -> str:
    return str(current_app.config["RESET_RATE_LIMIT_PER_IP"])


def per_identifier() -> str:
    return str(current_app.config["RESET_RATE_LIMIT_PER_IDENTIFIER"])


def per_flow() -> str:
    return str(current_app.config["VERIFY_RATE_LIMIT_PER_FLOW"])


def _fields() -> dict[str, object]:
    """The request's fields: the JSON body of the API, or the form of a hosted page."""
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        return body
    return dict(request.form.items())


def identifier_key() -> str:
    """``identifier:<hmac of the normalised email or phone>``; the raw text when it will not parse
    (the request then fails validation anyway, but still counts)."""
    fields = _fields()
    raw = str(fields.get("email") or fields.get("phone") or "")
    try:
        value = normalise.email(raw) if "@" in raw else normalise.phone(raw)
    except normalise.InvalidValue:
        value = raw.strip().casefold()
    key = current_app.config["SECRET_KEYS"][0].encode()
    return "identifier:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def flow_key() -> str:
    """The flow being answered (from the path, the body, or the wizard's session), else the
    client address."""
    flow_id = (request.view_args or {}).get("flow_id") or _fields().get("flow_id")
    if not flow_id:
        flow_id = session.get("flow")
    return f"flow:{flow_id}" if flow_id else f"ip:{get_remote_address()}"
