"""The recovery flow for the shop's app: the same walk as the hosted wizard, as JSON.

These endpoints are public (a person who cannot sign in has no credentials); rate limits per
address, per identifier and per flow stand in for authentication. Answers never depend on whether
an account exists.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recovery import errors
from recovery.api import registry
from recovery.api.operations import Reply
from recovery.clients.models import ApiClient, Scope
from recovery.flows import messages
from recovery.flows.services import (
    FlowExpired,
    FlowFinished,
    MethodUnavailable,
    NodeNotCurrent,
    Step,
)
from recovery.flows.tree import DIDNT_WORK, Node
from recovery.i18n import select_locale
from recovery.orders.schemas import Email
from recovery.ratelimits import PER_FLOW, PER_IP, answer_limits, code_request_limits, limited
from recovery.wiring import flow_service, reset_service, secret_service


class OptionOut(BaseModel):
    value: str
    label: str


class NodeOut(BaseModel):
    id: str
    type: str = Field(
        description="question, email_form, oauth_choice, phone_form, code_form, "
        "password_form, help_form, done or help"
    )
    prompt: str
    options: list[OptionOut]
    providers: list[str] = Field(default_factory=list, description="for oauth_choice")

    @classmethod
    def of(cls, node: Node, locale: str) -> NodeOut:
        """The node in ``locale``, built once per node and locale (tree nodes and the catalogues
        do not change while the process runs; nobody changes a ``NodeOut`` after it is built)."""
        key = (id(node), locale)
        known = _NODES_OUT.get(key)
        if known is not None and known[0] is node:
            return known[1]
        if len(_NODES_OUT) >= _NODES_OUT_MAX:  # trees built on the fly (tests): start over
            _NODES_OUT.clear()
        built = cls._build(node, locale)
        _NODES_OUT[key] = (node, built)
        return built

    @classmethod
    def _build(cls, node: Node, locale: str) -> NodeOut:
        def text(message_id: str) -> str:
            return messages.text_in(message_id, locale)

        options = [OptionOut(value=o.value, label=text(o.label)) for o in node.options]
        if node.fallback:
            options.append(OptionOut(value=DIDNT_WORK, label=text(DIDNT_WORK)))
        providers = [p for p in node.params.get("providers", "").split(",") if p]
        return cls(
            id=node.id,
            type=node.type.value,
            prompt=text(node.prompt),
            options=options,
            providers=providers,
        )


#: ``NodeOut.of``'s answers, by the node's identity and the locale (the node is kept with its
#: answer, so an id cannot be reused by another node while its entry lives).
_NODES_OUT: dict[tuple[int, str], tuple[Node, NodeOut]] = {}
_NODES_OUT_MAX = 1024


class FlowOut(BaseModel):
    id: str
    expires_at: dt.datetime
    locale: str
    status: str
    node: NodeOut
    redirect_to: str | None = Field(None, description="once done: return_to with ?ticket=")

    @classmethod
    def of(cls, step: Step) -> FlowOut:
        node = NodeOut.of(step.node, step.flow.locale)
        return cls(
            id=step.flow.id,
            expires_at=step.flow.expires_at,
            locale=step.flow.locale,
            status=step.flow.status.value,
            node=node,
            redirect_to=step.redirect_to,
        )


class StartFlow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    locale: Literal["pl", "en"] = "pl"
    return_to: str | None = Field(
        None,
        max_length=2048,
        description="must be on an allowed origin, else the configured default is used",
    )


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str = Field(max_length=32, description="the id of the node being answered")
    value: str = Field(
        max_length=1024, description="an option value, a form's value, or didnt_work"
    )


class EmailReset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    flow_id: str | None = Field(None, max_length=32)


class Accepted(BaseModel):
    flow_id: str
    node: NodeOut
    message: str


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=1024)
    token: str | None = Field(None, max_length=512)
    flow_id: str | None = Field(None, max_length=32)
    code: str | None = Field(None, max_length=16)

    @model_validator(mode="after")
    def _one_proof(self) -> NewPassword:
        if bool(self.token) == bool(self.flow_id and self.code):
            raise ValueError("send either token, or flow_id and code")
        return self


class Finished(BaseModel):
    ticket: str = Field(description="single use, valid for 2 minutes; the shop redeems it")
    redirect_to: str


class Redeem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket: str = Field(max_length=512)


class Redeemed(BaseModel):
    account_id: str | None = Field(description="the shop's id of the account")
    id: str = Field(description="this service's public id of the account")
    method: str = Field(description="how the person proved control, e.g. email_code, email_link")
    authenticated_at: dt.datetime


FLOW_ERRORS = (errors.NotFound, FlowExpired, errors.ValidationFailed)


@registry.operation(
    "POST",
    "/recovery/flows",
    summary="Start a recovery flow",
    tag="recovery",
    body=StartFlow,
    responses={201: (FlowOut, "the new flow at its first question")},
    raises=(errors.ValidationFailed,),
)
@limited(PER_IP)
def start_flow(body: StartFlow) -> Reply:
    """Starts at "Do you receive emails about your orders?" (DESIGN §4)."""
    step = flow_service().start(body.locale, body.return_to)
    return Reply(201, FlowOut.of(step))


@registry.operation(
    "GET",
    "/recovery/flows/{flow_id}",
    summary="A flow's current node",
    tag="recovery",
    responses={200: (FlowOut, "the flow")},
    raises=(errors.NotFound, FlowExpired),
)
@limited(PER_IP)
def get_flow(flow_id: str) -> Reply:
    return Reply(200, FlowOut.of(flow_service().current(flow_id)))


@registry.operation(
    "POST",
    "/recovery/flows/{flow_id}/answer",
    summary="Answer the flow's current node",
    tag="recovery",
    body=Answer,
    responses={200: (FlowOut, "the next node")},
    raises=(
        *FLOW_ERRORS,
        NodeNotCurrent,
        FlowFinished,
        MethodUnavailable,
        errors.InvalidToken,
        errors.TokenExpired,
        errors.TooManyAttempts,
        errors.WeakPassword,
    ),
)
@answer_limits
def answer_flow(flow_id: str, body: Answer) -> Reply:
    """An answer for a node that is not current is a 409 ``node_not_current``. ``didnt_work`` moves
    on to the next question. Email forms always move to the code form, whether or not the address
    has an account; a wrong code is ``invalid_token`` (five tries)."""
    step = flow_service().answer(flow_id, body.node, body.value)
    return Reply(200, FlowOut.of(step))


@registry.operation(
    "POST",
    "/recovery/email",
    summary="Send a reset link and code to an email address",
    tag="recovery",
    body=EmailReset,
    responses={202: (Accepted, "the same answer whether or not an account uses the address")},
    raises=(*FLOW_ERRORS, FlowFinished),
)
@code_request_limits
def request_email_reset(body: EmailReset) -> Reply:
    """Always 202 with the same body for known and unknown addresses (DESIGN §5.1). Creates a flow
    when none is given; the flow then waits at the code form."""
    step = flow_service().request_email(body.flow_id, body.email, select_locale())
    message = messages.text_in(step.node.prompt, step.flow.locale)
    node = NodeOut.of(step.node, step.flow.locale)
    return Reply(202, Accepted(flow_id=step.flow.id, node=node, message=message))


@registry.operation(
    "POST",
    "/recovery/password",
    summary="Set a new password with a link token or a flow's code",
    tag="recovery",
    body=NewPassword,
    responses={200: (Finished, "the login ticket")},
    raises=(
        errors.ValidationFailed,
        errors.InvalidToken,
        errors.TokenExpired,
        errors.TooManyAttempts,
        errors.WeakPassword,
        errors.NotFound,
        FlowExpired,
    ),
)
@limited(PER_IP, PER_FLOW)
def set_password(body: NewPassword) -> Reply:
    """The password is checked before the link or code is used, so a weak password costs nothing.
    ``invalid_token`` is one answer for unknown, tampered, used and superseded links."""
    resets, flows = reset_service(), flow_service()
    if body.flow_id and body.code:
        completion = resets.finish_with_code(flows.get(body.flow_id), body.code, body.password)
    else:  # the model guarantees a token when there is no flow_id and code
        completion = resets.finish_with_link(body.token or "", body.password)
    return Reply(
        200, Finished(ticket=completion.ticket, redirect_to=flows.redirect_after(completion))
    )


@registry.operation(
    "POST",
    "/tickets/redeem",
    summary="Redeem a login ticket",
    tag="tickets",
    scope=Scope.TICKETS,
    body=Redeem,
    responses={200: (Redeemed, "who proved control, how and when")},
    raises=(errors.InvalidToken, errors.TokenExpired, errors.Gone),
)
def redeem_ticket(body: Redeem, client: ApiClient) -> Reply:
    """Single use: a second redemption is a 410 ``gone``. Tickets live two minutes."""
    secret = secret_service().redeem_ticket(body.ticket)
    account = reset_service().account_of(secret)
    return Reply(
        200,
        Redeemed(
            account_id=account.external_id,
            id=str(account.public_id),
            method=secret.channel or "",
            authenticated_at=secret.created_at,
        ),
    )
