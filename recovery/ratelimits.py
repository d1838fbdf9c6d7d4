"""Rate limits of the public recovery endpoints and pages (DESIGN §5.3).

Anyone may call these about anyone's address, so each request spends from budgets: its client
address's (one per endpoint, and one that every request for a code shares), the identifier's it asks
a code for, and the flow's it answers. The budgets are counted as Flask-Limiter's fixed window
(the strategy ``create_app`` sets) counts them, under its keys and in its storage
(``RATELIMIT_STORAGE_URI``: Redis in production) under ``RATELIMIT_KEY_PREFIX``, but checked here
(``limited``) rather than through Flask-Limiter's decorators, which the public paths are exempt
from: its per-request resolution of decorated, shared and blueprint limits cost more than the
reset request's own work (bench/forgot.py). The rest of the service, the shop's authenticated API
with its per-key limit, keeps Flask-Limiter as it comes (``init_app``).

Limits are checked before any lookup, so a refusal looks the same for known and unknown
identifiers: 429 ``rate_limited`` with ``Retry-After`` and nothing else. The answers carry no
``X-RateLimit-*`` headers: the counter nearest its limit is an address's, and would tell anyone how
often that address was asked for. Identifiers are keyed by a keyed hash of their normalised form:
the storage never holds an email address or a phone number.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, request, session
from limits import RateLimitItem, parse_many
from pydantic import BaseModel

from recovery.errors import RateLimited
from recovery.extensions import init_sparing, limiter
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


class Asked:
    """What one request asks for, as its budgets' keys read it, each part read once: the fields of
    its JSON body as the operation validated it (the API), or of its form (the wizard)."""

    __slots__ = ("_body", "_identifier")

    def __init__(self, body: BaseModel | None) -> None:
        self._body = body
        self._identifier: str | object | None = _UNREAD

    @property
    def fields(self) -> Mapping[str, object]:
        return vars(self._body) if self._body is not None else request.form

    @property
    def identifier(self) -> str | None:
        """The email address or phone number this request asks a code for; ``None`` when it asks
        for none (an answer to a question, a code, a password)."""
        if self._identifier is _UNREAD:
            self._identifier = _identifier_in(self.fields)
        return self._identifier  # type: ignore[return-value]


_UNREAD = object()


def answer_of(fields: Mapping[str, object]) -> str:
    """The answer a flow request carries (``ANSWER_FIELDS``), or ``""``."""
    return next((str(fields[name]) for name in ANSWER_FIELDS if fields.get(name)), "")


def _identifier_in(fields: Mapping[str, object]) -> str | None:
    if "node" not in fields:  # POST /recovery/email: the address is the request
        return str(fields.get("email") or "")
    node = fields["node"]
    if isinstance(node, str) and node in _IDENTIFIER_NODES:
        return answer_of(fields)
    return None


# -- what a request is counted by ------------------------------------------------------------------


def client_key(asked: Asked) -> str:
    return f"ip:{request.remote_addr or '127.0.0.1'}"


def identifier_key(asked: Asked) -> str | None:
    """``identifier:<keyed hash of the normalised email or phone>``, of the raw text when it will
    not parse (the request then fails validation anyway, but still counts); ``None`` when the
    request asks for no code. The hash is BLAKE2b in keyed mode, a MAC: three times as fast here
    as OpenSSL's HMAC-SHA256, whose every call set up its context anew."""
    raw = asked.identifier
    if raw is None:
        return None
    try:
        value = normalise.email(raw) if "@" in raw else normalise.phone(raw)
    except normalise.InvalidValue:
        value = raw.strip().casefold()
    secret = _setup(current_app).identifier_secret
    return "identifier:" + hashlib.blake2b(value.encode(), key=secret, digest_size=16).hexdigest()


def code_request_key(asked: Asked) -> str | None:
    """The client's key when the request asks for a code, else ``None``."""
    return client_key(asked) if asked.identifier is not None else None


def flow_key(asked: Asked) -> str:
    """The flow being answered (from the path, the body, or the wizard's session), else the
    client address."""
    flow_id = (request.view_args or {}).get("flow_id") or asked.fields.get("flow_id")
    if not flow_id:
        flow_id = session.get("flow")
    return f"flow:{flow_id}" if flow_id else client_key(asked)


@dataclass(frozen=True, slots=True)
class Budget:
    """What one kind of request may spend: the limit in setting ``setting`` (``"5 per minute;20
    per day"``), counted per ``key`` (``None``: this request is not counted), in ``scope``: a name
    that requests through several doors share, or ``None`` for the endpoint's own budget."""

    setting: str
    key: Callable[[Asked], str | None]
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
    """Spend from ``budgets`` before the view runs; past any of them, ``RateLimited``. An API
    operation's keys read its validated ``body`` (the operation passes it), a page's its form."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            spend(budgets, Asked(kwargs.get("body")))
            return view(*args, **kwargs)

        return checked

    return decorate


def spend(budgets: tuple[Budget, ...], asked: Asked) -> None:
    """Count this request in each budget, in order, and stop at the first it exceeds (the ones
    before it stay counted, as Flask-Limiter counts)."""
    if not limiter.enabled:
        return
    setup = _setup(current_app)
    strategy = limiter.limiter
    storage = strategy.storage
    endpoint = request.endpoint or ""
    for budget in budgets:
        key = budget.key(asked)
        if key is None:
            continue
        scope = budget.scope or endpoint
        for window in setup.windows(budget.setting, scope):
            if storage.incr(window.head + key + window.tail, window.seconds) > window.item.amount:
                stats = strategy.get_window_stats(window.item, setup.prefix, key, scope)
                raise RateLimited(retry_after=max(1, math.ceil(stats.reset_time - time.time())))


@dataclass(frozen=True, slots=True)
class _Window:
    """One limit of a budget in one scope, as the fixed window counts it: the counter of a key is
    ``head + key + tail`` (the key ``RateLimitItem.key_for`` makes, its fixed parts made once
    instead of on every hit), and lives ``seconds``."""

    item: RateLimitItem
    head: str
    tail: str
    seconds: int

    @staticmethod
    def of(item: RateLimitItem, prefix: str, scope: str) -> _Window:
        head, _, tail = item.key_for(prefix, _KEY, scope).partition(_KEY)
        return _Window(item, head, tail, item.get_expiry())


_KEY = "\x00"  # marks where the key goes in ``key_for``'s name (no prefix or scope holds it)


@dataclass(frozen=True, slots=True)
class _Setup:
    """One app's budgets: each setting parsed, the storage's key prefix, and the secret that
    keys identifiers (the configuration does not change after ``create_app`` validated it)."""

    items: dict[str, list[RateLimitItem]]
    prefix: str
    identifier_secret: bytes
    _windows: dict[tuple[str, str], tuple[_Window, ...]] = field(default_factory=dict)

    def windows(self, setting: str, scope: str) -> tuple[_Window, ...]:
        """The limits of ``setting`` counted in ``scope`` (a budget's shared scope, or an
        endpoint: a handful per app)."""
        windows = self._windows.get((setting, scope))
        if windows is None:
            windows = tuple(_Window.of(item, self.prefix, scope) for item in self.items[setting])
            self._windows[setting, scope] = windows
        return windows


def _setup(app: Flask) -> _Setup:
    setup: _Setup | None = app.extensions.get(__name__)
    if setup is None:
        settings = {b.setting for b in (PER_IP, CODE_REQUESTS, IDENTIFIERS, PER_FLOW)}
        setup = app.extensions[__name__] = _Setup(
            items={s: parse_many(app.config[s]) for s in settings},
            prefix=app.config["RATELIMIT_KEY_PREFIX"],
            # BLAKE2b takes keys of up to 64 bytes: one derived from the newest secret key.
            identifier_secret=hashlib.blake2b(
                app.config["SECRET_KEYS"][0].encode(), digest_size=32, person=b"rate-limit-keys"
            ).digest(),
        )
    return setup


def init_app(app: Flask) -> None:
    """Install Flask-Limiter on ``app`` for everything but the public paths, whose budgets
    ``limited`` counts: the hooks it adds skip them (even with no limit to apply, resolving that
    took it longer than the rest of a reset request's checks). And read the budgets' settings
    now rather than at the first request."""
    init_sparing(app, limiter.init_app, PUBLIC_PREFIXES)
    _setup(app)


#: The limits of a request answering a flow's step (the API's answer, the wizard's post): per
#: client and per flow, and, when the step asks for an email or phone, the per-client and
#: per-address budgets every request for a code shares.
answer_limits = limited(PER_IP, PER_FLOW, CODE_REQUESTS, IDENTIFIERS)
#: The limits of a request that always asks for a code (``POST /recovery/email``).
code_request_limits = limited(CODE_REQUESTS, IDENTIFIERS)
