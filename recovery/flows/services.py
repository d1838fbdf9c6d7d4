"""Walking the tree: start a flow, show its node, take an answer and move on.

One service serves the JSON API and the hosted wizard alike. It owns the routing; what an answer
*does* (send a code, check it, set a password) is the reset service's work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from recovery.accounts.models import Account
from recovery.config import origin_of
from recovery.db import assign, insert_alone, new_row, utcnow
from recovery.errors import (
    Conflict,
    FieldError,
    Gone,
    NotFound,
    RecoveryError,
    ValidationFailed,
)
from recovery.flows.models import FlowStatus, RecoveryFlow, new_flow_id
from recovery.flows.tree import DEFAULT_TREE, DIDNT_WORK, Node, NodeType, Tree
from recovery.identity import normalise
from recovery.resets.services import Completion, ResetService

#: Where the email-reset request of the API enters the tree.
EMAIL_NODE = "email"


class NodeNotCurrent(Conflict):
    code = "node_not_current"
    title = "That step is not the flow's current step"


class FlowFinished(Conflict):
    code = "flow_finished"
    title = "This recovery has finished already"


class FlowExpired(Gone):
    code = "flow_expired"
    title = "This recovery has expired; start again"


class MethodUnavailable(RecoveryError):
    code = "method_unavailable"
    status = 503
    title = "This way of getting back in is not available here yet"


@dataclass(frozen=True, slots=True)
class FlowSettings:
    ttl: dt.timedelta
    return_to_origins: Sequence[str]
    default_return_to: str


@dataclass(frozen=True, slots=True)
class Step:
    """Where a flow stands after an answer, and the login ticket if the walk ended in ``done``."""

    flow: RecoveryFlow
    node: Node
    completion: Completion | None = None

    @property
    def redirect_to(self) -> str | None:
        """The flow's ``return_to`` carrying the ticket, once done."""
        if self.completion is None or self.flow.return_to is None:
            return None
        return with_ticket(self.flow.return_to, self.completion.ticket)


#: The longest return_to kept (``RecoveryFlow.return_to``'s column); a longer one gets the default.
MAX_RETURN_TO = 2048


def with_ticket(return_to: str, ticket: str) -> str:
    """``return_to`` with ``ticket=`` added to its query (before any ``#fragment``, which the
    browser would keep from the shop's server), and any ``ticket`` it carried dropped: one
    planted there (``?ticket=<someone else's>``) would come first and sign the person into
    another account."""
    parts = urlsplit(return_to)
    kept = [pair for pair in parts.query.split("&") if pair and pair.split("=", 1)[0] != "ticket"]
    query = "&".join([*kept, f"ticket={ticket}"])
    return urlunsplit(parts._replace(query=query))


class FlowService:
    def __init__(
        self,
        session: Session,
        resets: ResetService,
        settings: FlowSettings,
        tree: Tree = DEFAULT_TREE,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.session = session
        self.resets = resets
        self.settings = settings
        self.tree = tree
        self.now = now

    def start(self, locale: str, return_to: str | None = None) -> Step:
        """A new flow at the start of the tree. ``return_to`` is kept only when its origin is
        allowed; otherwise the configured default is used (DESIGN §5.7: no open redirect)."""
        flow = self._new(locale, return_to)
        self.session.add(flow)
        return Step(flow, self.tree[flow.node])

    def request_email(self, flow_id: str | None, email: str, locale: str) -> Step:
        """The email-reset request of the JSON API: answer the flow's email form, starting a flow
        (or moving an unfinished one) there first when needed."""
        if flow_id is None:  # a flow that starts at the email form
            return self._apply(self._new(locale, at=EMAIL_NODE), EMAIL_NODE, email)
        flow = self._active(flow_id)
        if self.tree[flow.node].type is not NodeType.EMAIL_FORM:
            flow.record(flow.node, "jumped", to=EMAIL_NODE)
            assign(flow, node=EMAIL_NODE)
        return self._apply(flow, flow.node, email)

    def _new(
        self, locale: str, return_to: str | None = None, at: str | None = None
    ) -> RecoveryFlow:
        """A flow at the start of the tree (or at node ``at``), not yet in the session."""
        node = at or self.tree.start
        flow = new_row(
            RecoveryFlow,
            # Chosen here, not at the INSERT: the flow is written once, in its state at the end
            # of the request (a reset request starts one and moves it on before anything is sent).
            id=new_flow_id(),
            status=FlowStatus.ACTIVE,
            node=node,
            locale=locale,
            return_to=self.safe_return_to(return_to),
            answers={},
            trail=[],
            expires_at=self.now() + self.settings.ttl,
        )
        flow.record(node, "started")
        return flow

    def redirect_after(self, completion: Completion) -> str:
        """Where the browser goes after a recovery finished outside the flow API (a link)."""
        flow = completion.flow
        return_to = flow.return_to if flow and flow.return_to else self.safe_return_to(None)
        return with_ticket(return_to, completion.ticket)

    def safe_return_to(self, return_to: str | None) -> str:
        """``return_to`` if it is unambiguously on an allowed origin (and fits its column), else
        the default."""
        if (
            return_to
            and len(return_to) <= MAX_RETURN_TO
            and _unambiguous(return_to)
            and origin_of(return_to) in self.settings.return_to_origins
        ):
            return return_to
        return self.settings.default_return_to

    def get(self, flow_id: str) -> RecoveryFlow:
        """The flow ``flow_id``; ``NotFound`` or ``FlowExpired``."""
        flow = self.session.get(RecoveryFlow, flow_id) if len(flow_id) <= 32 else None
        if flow is None:
            raise NotFound("no such recovery flow")
        if flow.status is FlowStatus.ACTIVE and flow.expires_at <= self.now():
            raise FlowExpired()
        return flow

    def current(self, flow_id: str) -> Step:
        """The flow's step; a flow finished outside the walk (by the mailed link) is at its end."""
        flow = self.get(flow_id)
        node = self.tree[flow.node]
        if flow.status is FlowStatus.DONE and node.type is not NodeType.DONE:
            node = next(n for n in self.tree.nodes.values() if n.type is NodeType.DONE)
        return Step(flow, node)

    def answer(self, flow_id: str, node_id: str, value: str, *, typed: bool = False) -> Step:
        """Apply ``value`` as the answer to ``node_id``, which must be the flow's current node.
        ``typed``: the value is text the person typed, never one of the node's options (a
        password that reads "skip" is a password, not the skip button)."""
        return self._apply(self._active(flow_id), node_id, value, typed=typed)

    def _active(self, flow_id: str) -> RecoveryFlow:
        flow = self.get(flow_id)
        if flow.status is not FlowStatus.ACTIVE:
            raise FlowFinished()
        return flow

    def _apply(self, flow: RecoveryFlow, node_id: str, value: str, *, typed: bool = False) -> Step:
        if node_id != flow.node:
            raise NodeNotCurrent(f"the current step is {flow.node!r}", current=flow.node)
        node = self.tree[flow.node]
        if typed and node.type is NodeType.PASSWORD_FORM:
            return self._finish(flow, node, value)
        if value == DIDNT_WORK and node.fallback:
            flow.record(node.id, "didnt_work")
            return self._move(flow, node.fallback)
        handler = self._handlers[node.type]
        return handler(self, flow, node, value)

    def _move(self, flow: RecoveryFlow, node_id: str, completion: Completion | None = None) -> Step:
        assign(flow, node=node_id)
        return Step(flow, self.tree[node_id], completion)

    # -- one handler per node type -------------------------------------------------------------------

    def _question(self, flow: RecoveryFlow, node: Node, value: str) -> Step:
        option = next((o for o in node.options if o.value == value), None)
        if option is None:
            raise _bad_value(f"must be one of {', '.join(o.value for o in node.options)}")
        assign(flow, answers={**flow.answers, node.id: value})
        flow.record(node.id, "answered", value=value)
        return self._move(flow, option.next)

    def _email_form(self, flow: RecoveryFlow, node: Node, value: str) -> Step:
        try:
            email = normalise.email(value)
        except normalise.InvalidValue as exc:
            raise _bad_value(str(exc)) from None
        new_flow = instance_state(flow).transient
        task = self.resets.request_email_reset(flow, email, new_flow=new_flow)
        assert node.next is not None
        step = self._move(flow, node.next)
        if task is None:
            # A new flow carrying its request is all this request writes: one row, its own
            # transaction, whose commit need not wait for the disk (a request anyone may simply
            # make again). Nothing is written after it.
            insert_alone(self.session, flow)
        else:
            self.session.add(task)
        return step

    def _code_form(self, flow: RecoveryFlow, node: Node, value: str) -> Step:
        secret = self.resets.check_code(flow, value)
        self.resets.prove(flow, secret, "email_code")
        assert node.next is not None
        return self._move(flow, node.next)

    def _password_form(self, flow: RecoveryFlow, node: Node, value: str) -> Step:
        skipped = any(o.value == value for o in node.options)
        return self._finish(flow, node, None if skipped else value)

    def _finish(self, flow: RecoveryFlow, node: Node, password: str | None) -> Step:
        """The end of a walk whose person proved control: a new ``password``, or none."""
        account = self.session.get(Account, flow.account_id) if flow.account_id else None
        if account is None or flow.method is None:
            # Only a flow whose person proved control gets here; anything else is tampering.
            raise NodeNotCurrent("prove control of the account first")
        if password is not None:
            self.resets.set_password(account, password)
            flow.record(node.id, "password_set")
        else:
            flow.record(node.id, "password_skipped")
        assert node.next is not None
        completion = self.resets.complete(
            flow, account, flow.method, password_changed=password is not None
        )
        return self._move(flow, node.next, completion)

    def _oauth_choice(self, flow: RecoveryFlow, node: Node, value: str) -> Step:
        option = next((o for o in node.options if o.value == value), None)
        if option is not None:
            flow.record(node.id, "answered", value=value)
            return self._move(flow, option.next)
        if value in node.params.get("providers", "").split(","):
            raise MethodUnavailable(f"signing in with {value} is not configured")
        raise _bad_value("is not a sign-in choice of this step")

    def _unavailable(self, flow: RecoveryFlow, node: Node, value: str) -> Step:
        raise MethodUnavailable(f"the {node.type} step cannot be completed here yet")

    _handlers: ClassVar[dict[NodeType, Callable[[FlowService, RecoveryFlow, Node, str], Step]]] = {
        NodeType.QUESTION: _question,
        NodeType.EMAIL_FORM: _email_form,
        NodeType.CODE_FORM: _code_form,
        NodeType.PASSWORD_FORM: _password_form,
        NodeType.OAUTH_CHOICE: _oauth_choice,
        NodeType.PHONE_FORM: _unavailable,  # SMS codes come with the phone branch
        NodeType.HELP_FORM: _unavailable,  # help cases come with the support desk
    }


def _unambiguous(url: str) -> bool:
    """No characters that browsers and Python parse differently (``\\``, controls, spaces) and no
    userinfo: ``https://evil.example\\@shop.example/`` is evil.example to a browser."""
    if any(ch == "\\" or ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1": not a URL at all
        return False
    return parts.username is None and parts.password is None


def _bad_value(message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("value", message)])
