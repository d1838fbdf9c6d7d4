"""Response models of the JSON API (request models live with their domain: accounts, orders, ...)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from recovery.accounts.models import Account, AccountStatus, Identity
from recovery.identity.normalise import IdentityKind
from recovery.identity.schemas import Hints
from recovery.identity.services import Candidate, Evidence
from recovery.ingest.services import Summary
from recovery.orders.models import Order, PaymentMethod


class IdentityOut(BaseModel):
    kind: IdentityKind
    display: str = Field(description="masked form, safe to show")
    verified: bool
    last_used_at: dt.datetime | None

    @classmethod
    def of(cls, identity: Identity) -> IdentityOut:
        return cls(
            kind=identity.kind,
            display=identity.display,
            verified=identity.verified,
            last_used_at=identity.last_used_at,
        )


class AccountOut(BaseModel):
    account_id: str | None = Field(description="the shop's id")
    id: uuid.UUID = Field(description="this service's public id")
    status: AccountStatus
    display_name: str | None
    locale: str
    vip: bool
    has_password: bool
    identities: list[IdentityOut]

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            account_id=account.external_id,
            id=account.public_id,
            status=account.status,
            display_name=account.display_name,
            locale=account.locale,
            vip=account.vip,
            has_password=account.has_password,
            identities=[IdentityOut.of(i) for i in account.identities],
        )


class OrderOut(BaseModel):
    order_number: str
    placed_at: dt.datetime
    email: str | None
    phone: str | None
    payment_method: PaymentMethod
    paypal_payer_id: str | None
    paypal_email: str | None
    guest: bool
    account_id: str | None

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            order_number=order.number,
            placed_at=order.placed_at,
            email=order.email,
            phone=order.phone,
            payment_method=order.payment_method,
            paypal_payer_id=order.paypal_payer_id,
            paypal_email=order.paypal_email,
            guest=order.guest,
            account_id=order.account.external_id if order.account else None,
        )


class LineProblem(BaseModel):
    line: int = Field(description="1-based line number in the upload")
    code: str
    detail: str
    errors: list[dict[str, str]] | None = None


class ImportSummaryOut(BaseModel):
    lines: int
    accepted: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    errors: list[LineProblem] = Field(description="the first 1,000 rejected lines")
    errors_truncated: bool

    @classmethod
    def of(cls, summary: Summary) -> ImportSummaryOut:
        return cls(
            lines=summary.lines,
            accepted=summary.accepted,
            created=summary.created,
            updated=summary.updated,
            unchanged=summary.unchanged,
            rejected=summary.rejected,
            errors=[LineProblem(**e.as_dict()) for e in summary.errors],
            errors_truncated=summary.errors_truncated,
        )


class ResolveRequest(Hints):
    limit: int = Field(10, ge=1, le=50, description="at most this many candidates")


class EvidenceOut(BaseModel):
    hint_kind: str = Field(description="email, paypal_email, phone, order_number or name")
    hint: str = Field(description="the hint, masked")
    source: str = Field(description="identity, order or account")
    reference: str = Field(description="masked identity, order number, or display name")
    match: str = Field(description="exact or fuzzy (fuzzy never signs anyone in)")
    weight: float
    note: str | None

    @classmethod
    def of(cls, evidence: Evidence) -> EvidenceOut:
        return cls(**{name: getattr(evidence, name) for name in cls.model_fields})


class SignInMethod(BaseModel):
    kind: str = Field(description="password, or an identity kind")
    display: str | None
    verified: bool


class CandidateOut(BaseModel):
    account: AccountOut
    score: float = Field(ge=0, le=1)
    evidence: list[EvidenceOut]
    sign_in_methods: list[SignInMethod]

    @classmethod
    def of(cls, candidate: Candidate) -> CandidateOut:
        account = candidate.account
        methods = (
            [SignInMethod(kind="password", display=None, verified=True)]
            if account.has_password
            else []
        )
        methods += [
            SignInMethod(kind=i.kind.value, display=i.display, verified=i.verified)
            for i in account.identities
        ]
        return cls(
            account=AccountOut.of(account),
            score=candidate.score,
            evidence=[EvidenceOut.of(e) for e in candidate.evidence],
            sign_in_methods=methods,
        )


class ResolveResponse(BaseModel):
    candidates: list[CandidateOut]


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = {}
