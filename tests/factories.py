"""Test data through the same services the API uses, so tests never build rows by hand."""

from __future__ import annotations

import itertools
from typing import Any

from recovery.accounts.models import Account
from recovery.accounts.schemas import AccountRecord
from recovery.accounts.services import AccountService
from recovery.db import db
from recovery.orders.schemas import OrderRecord
from recovery.orders.services import OrderService

_numbers = itertools.count(1)


def account(
    account_id: str | None = None, *identities: tuple[str, str, bool], **fields: Any
) -> Account:
    """``account("c1", ("email", "a@x.pl", True), display_name="Ann")`` -> the stored account."""
    account_id = account_id or f"acct-{next(_numbers)}"
    record = AccountRecord.model_validate(
        {
            "account_id": account_id,
            "identities": [{"kind": k, "value": v, "verified": ok} for k, v, ok in identities],
            **fields,
        }
    )
    (outcome,) = AccountService(db.session).upsert_many([record])
    assert outcome.error is None, outcome.error
    db.session.commit()
    return AccountService(db.session).get(account_id)


def order(number: str | None = None, **fields: Any) -> str:
    """Store an order (defaults: card, placed 2026-01-05); returns its normalised number."""
    record = OrderRecord.model_validate(
        {
            "order_number": number or f"T-{next(_numbers)}",
            "placed_at": "2026-01-05T12:00:00+01:00",
            "payment_method": "card",
            **fields,
        }
    )
    (outcome,) = OrderService(db.session).upsert_many([record])
    assert outcome.error is None, outcome.error
    db.session.commit()
    return record.order_number
