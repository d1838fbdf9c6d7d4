"""Rate limits of the public recovery endpoints and pages (DESIGN §5.3).

Anyone may call these about anyone's address, so each request spends from budgets: its client
address's (one per endpoint, and one that every request for a code shares), the identifier's it asks
a code for, and the flow's it answers. The budgets are counted by Flask-Limiter's rate limiter, in
its storage (``RATELIMIT_STORAGE_URI``: Redis in production) under ``RATELIMIT_KEY_PREFIX``, but
checked here (``limited``) rather than through Flask-Limiter's decorators, which the public paths
are exempt from: its per-request resolution of decorated, shared and blueprint limits cost more
than the reset request's own work (bench/forgot.py). The rest of the service, the shop's
authenticated API with its per-key limit, keeps Flask-Limiter as it comes (``init_app``).

Limits are checked before any lookup, so a refusal looks the same for known and unknown
identifiers: 429 ``rate_limited`` with ``Retry-After`` and nothing else. The answers carry no
``X-RateLimit-*`` headers: the counter nearest its limit is an address's, and would tell anyone how
often that address was asked for. Identifiers are keyed by a keyed hash of their normalised form:
the storage never holds an email address or a phone number.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request, session
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many

from recovery.errors import RateLimited
from recovery.extensions import limiter
from recovery.flows.tree import DEFAULT_TREE, NodeType
from recovery.identity import normalise

#: A view function, as ``limited`` wraps it.
View = Callable[..., Any]

#: The public recovery endpoints and pages: anyone may call them about anyone's address.
PUBLIC_PREFIXES = ("/api/v1/recovery/", "/recover")

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
    asks for none (an answer to a question, a code, a password). Read once per request: two
    budgets ask."""
    environ = request.environ
    if _IDENTIFIER in environ:
        identifier: str | None = environ[_IDENTIFIER]
        return identifier
    identifier = environ[_IDENTIFIER] = _identifier_in(_fields())
    return identifier


#: Where ``requested_identifier`` keeps its answer: in the request's own WSGI environment.
_IDENTIFIER = "recovery.requested_identifier"


def _identifier_in(fields: dict[str, object]) -> str | None:
    if "node" not in fields:  # POST /recovery/email: the address is the request
        return str(fields.get("email") or "")
    node = fields["node"]
    if isinstance(node, str) and node in _IDENTIFIER_NODES:
        return answer_of(fields)
    return None


# -- what a request is counted by ------------------------------------------------------------------


def client_key() -> str:
    return f"ip:{get_remote_address()}"


def identifier_key() -> str | None:
    """``identifier:<hmac of the normalised email or phone>``, the raw text when it will not parse
    (the request then fails validation anyway, but still counts); ``None`` when the request asks
    for no code."""
    raw = requested_identifier()
    if raw is None:
        return None
    try:
        value = normalise.email(raw) if "@" in raw else normalise.phone(raw)
    except normalise.InvalidValue:
        value = raw.strip().casefold()
    key = current_app.config["SECRET_KEYS"][0].encode()
    return "identifier:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def code_request_key() -> str | None:
    """The client's key when the request asks for a code, else ``None``."""
    return client_key() if requested_identifier() is not None else None


def flow_key() -> str:
    """The flow being answered (from the path, the body, or the wizard's session), else the
    client address."""
    flow_id = (request.view_args or {}).get("flow_id") or _fields().get("flow_id")
    if not flow_id:
        flow_id = session.get("flow")
    return f"flow:{flow_id}" if flow_id else client_key()


@dataclass(frozen=True, slots=True)
class Budget:
    """What one kind of request may spend: the limit in setting ``setting`` (``"5 per minute;20
    per day"``), counted per ``key`` (``None``: this request is not counted), in ``scope``: a name
    that requests through several doors share, or ``None`` for the endpoint's own budget."""

    setting: str
    key: Callable[[], str | None]
    scope: str | None = None


#: The endpoint's own budget per client address.
PER_IP = Budget("RESET_RATE_LIMIT_PER_IP", client_key)
#: The requests that send a code (the email endpoint, and an answer to an email or phone form in
#: the API or the wizard) share one per-address budget: asking through another door does not
#: double it (DESIGN §5.3, "20/min per IP for requests").
CODE_REQUESTS = Budget("RESET_RATE_LIMIT_PER_IP", code_request_key, scope="code-requests")
#: And each address or number one budget, whichever door it is asked through.
IDENTIFIERS = Budget("RESET_RATE_LIMIT_PER_IDENTIFIER", identifier_key, scope="identifiers")
#: Each flow's budget for answers and codes.
PER_FLOW = Budget("VERIFY_RATE_LIMIT_PER_FLOW", flow_key)


def limited(*budgets: Budget) -> Callable[[View], View]:
    """Spend from ``budgets`` before the view runs; past any of them, ``RateLimited``."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            spend(budgets)
            return view(*args, **kwargs)

        return checked

    return decorate


def spend(budgets: tuple[Budget, ...]) -> None:
    """Count this request in each budget, in order, and stop at the first it exceeds (the ones
    before it stay counted, as Flask-Limiter counts)."""
    if not limiter.enabled:
        return
    items = _items(current_app)
    strategy = limiter.limiter
    prefix: str = current_app.config["RATELIMIT_KEY_PREFIX"]
    for budget in budgets:
        key = budget.key()
        if key is None:
            continue
        scope = budget.scope or request.endpoint or ""
        for item in items[budget.setting]:
            if not strategy.hit(item, prefix, key, scope):
                reset = strategy.get_window_stats(item, prefix, key, scope).reset_time
                raise RateLimited(retry_after=max(1, math.ceil(reset - time.time())))


def _items(app: Flask) -> dict[str, list[RateLimitItem]]:
    """Each budget setting parsed once per app (the configuration does not change after
    ``create_app``, which validated it)."""
    items: dict[str, list[RateLimitItem]] | None = app.extensions.get(__name__)
    if items is None:
        settings = {b.setting for b in (PER_IP, CODE_REQUESTS, IDENTIFIERS, PER_FLOW)}
        items = app.extensions[__name__] = {s: parse_many(app.config[s]) for s in settings}
    return items


def init_app(app: Flask) -> None:
    """Install Flask-Limiter on ``app`` for everything but the public paths, whose budgets
    ``limited`` counts: the hooks it adds skip them (even with no limit to apply, resolving that
    took it longer than the rest of a reset request's checks). And parse the budgets' settings
    now rather than at the first request."""
    registries: tuple[dict[str | None, list[Any]], ...] = (
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
    )
    earlier = [list(registry.get(None, ())) for registry in registries]
    limiter.init_app(app)
    for registry, kept in zip(registries, earlier, strict=True):
        hooks = registry.get(None, [])
        registry[None] = [hook if hook in kept else _off_public_paths(hook) for hook in hooks]
    _items(app)


def _off_public_paths(hook: Callable[..., Any]) -> Callable[..., Any]:
    """``hook`` (a before-request, after-request or teardown function), skipped on the public
    paths: there an after-request hook hands the response on untouched, the others do nothing."""

    def unless_public(*args: Any) -> Any:
        if request.path.startswith(PUBLIC_PREFIXES):
            return args[0] if args else None
        return hook(*args)

    return unless_public


#: The limits of a request answering a flow's step (the API's answer, the wizard's post): per
#: client and per flow, and, when the step asks for an email or phone, the per-client and
#: per-address budgets every request for a code shares.
answer_limits = limited(PER_IP, PER_FLOW, CODE_REQUESTS, IDENTIFIERS)
#: The limits of a request that always asks for a code (``POST /recovery/email``).
code_request_limits = limited(CODE_REQUESTS, IDENTIFIERS)
