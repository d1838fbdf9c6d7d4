"""Rate-limit keys and limits for the public recovery endpoints (DESIGN §5.3).

Limits are checked before any lookup, so a refusal looks the same for known and unknown
identifiers. Identifiers are keyed by a keyed hash of their normalised form: the limiter's storage
(Redis in production) never holds an email address or a phone number.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, current_app, request, session
from flask_limiter.util import get_remote_address

from recovery.extensions import limiter
from recovery.flows.tree import DEFAULT_TREE, NodeType
from recovery.identity import normalise

#: A view function, as the limiter decorates it.
View = Callable[..., Any]


def per_ip() -> str:
    return str(current_app.config["RESET_RATE_LIMIT_PER_IP"])


def per_identifier() -> str:
    return str(current_app.config["RESET_RATE_LIMIT_PER_IDENTIFIER"])


def per_flow() -> str:
    return str(current_app.config["VERIFY_RATE_LIMIT_PER_FLOW"])


#: The requests that send a code (the email endpoint, and an answer to an email or phone form in
#: the API or the wizard) share one per-address budget: asking through another door does not
#: double it (DESIGN §5.3, "20/min per IP for requests").
CODE_REQUESTS = "code-requests"
#: And each address or number one budget, whichever door it is asked through.
IDENTIFIERS = "identifiers"

#: Where an answer travels, in the order it is read: the API's ``value``, then the wizard's
#: fields (each form names its input after what it asks for).
ANSWER_FIELDS = ("value", "choice", "email", "phone", "code", "password")

_IDENTIFIER_NODES = frozenset(
    node.id
    for node in DEFAULT_TREE.nodes.values()
    if node.type in (NodeType.EMAIL_FORM, NodeType.PHONE_FORM)
)


def _fields() -> dict[str, object]:
    """The request's fields: the JSON body of the API (read and size-checked before the limits
    are, see ``api.operations.read_json_body``), or the form of a hosted page."""
    if request.blueprint == "api":
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return dict(request.form.items())


def answer_of(fields: Mapping[str, object]) -> str:
    """The answer a flow request carries (``ANSWER_FIELDS``), or ``""``."""
    return next((str(fields[name]) for name in ANSWER_FIELDS if fields.get(name)), "")


def requested_identifier() -> str | None:
    """The email address or phone number this request asks a code for, as sent; ``None`` when it
    asks for none (an answer to a question, a code, a password)."""
    fields = _fields()
    if "node" not in fields:  # POST /recovery/email: the address is the request
        return str(fields.get("email") or "")
    node = fields["node"]
    if isinstance(node, str) and node in _IDENTIFIER_NODES:
        return answer_of(fields)
    return None


def asks_for_no_code() -> bool:
    """``exempt_when`` of the limits that only concern requests for a code."""
    return requested_identifier() is None


def identifier_key() -> str:
    """``identifier:<hmac of the normalised email or phone>``; the raw text when it will not parse
    (the request then fails validation anyway, but still counts)."""
    raw = requested_identifier() or ""
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


#: The public recovery endpoints and pages: anyone may call them about anyone's address.
PUBLIC_PREFIXES = ("/api/v1/recovery/", "/recover")
COUNTER_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def hide_counters(app: Flask) -> None:
    """Keep the limiter's counters off the public recovery answers.

    There the counter nearest its limit is an address's: ``X-RateLimit-Remaining`` told anyone
    how often an address had been asked for today (someone trying to get into an account there),
    and the reset time when that began. A refusal keeps ``Retry-After``, which a client needs.
    Must be called before ``limiter.init_app``: Flask runs ``after_request`` functions in reverse,
    so this one then runs after the limiter has added its headers.
    """

    @app.after_request
    def _hide(response: Response) -> Response:
        if request.path.startswith(PUBLIC_PREFIXES):
            for name in COUNTER_HEADERS:
                del response.headers[name]
            if response.status_code != 429:
                del response.headers["Retry-After"]
        return response


def answer_limits(view: View) -> View:
    """The limits of a request answering a flow's step (the API's answer, the wizard's post): per
    client and per flow, and, when the step asks for an email or phone, the per-client and
    per-address budgets every request for a code shares (``code_request_limits``)."""
    view = limiter.shared_limit(
        per_identifier, scope=IDENTIFIERS, key_func=identifier_key, exempt_when=asks_for_no_code
    )(view)
    view = limiter.shared_limit(per_ip, scope=CODE_REQUESTS, exempt_when=asks_for_no_code)(view)
    view = limiter.limit(per_flow, key_func=flow_key)(view)
    return limiter.limit(per_ip)(view)


def code_request_limits(view: View) -> View:
    """The limits of a request that always asks for a code (``POST /recovery/email``)."""
    view = limiter.shared_limit(per_identifier, scope=IDENTIFIERS, key_func=identifier_key)(view)
    return limiter.shared_limit(per_ip, scope=CODE_REQUESTS)(view)
