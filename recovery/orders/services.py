"""Orders: idempotent upserts of the shop's order evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from recovery.accounts.models import Account
from recovery.db import AllOrNothing, is_postgresql, one_of, positioned_rows, upsert, utcnow
from recovery.errors import FieldError, NotFound, RecoveryError, ValidationFailed
from recovery.identity import normalise
from recovery.orders.models import Order
from recovery.orders.schemas import OrderData, OrderRecord


@dataclass(slots=True)
class Outcome:
    """What became of one record: ``created``/``updated``/``unchanged``, or why it was refused."""

    order_number: str
    result: str = "unchanged"
    error: RecoveryError | None = None


#: The columns an order's state consists of (compared to tell "updated" from "unchanged").
_COMPARED = (
    "number",
    "placed_at",
    "email",
    "email_fuzzy_key",
    "phone",
    "payment_method",
    "paypal_payer_id",
    "paypal_email",
    "guest",
    "account_id",
)


class OrderService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, number: str) -> Order:
        """The order with the (already normalised) ``number``."""
        order = self.session.scalar(select(Order).where(Order.number == number))
        if order is None:
            raise NotFound(f"no order {number!r}")
        return order

    def create_all(self, records: Sequence[OrderData]) -> list[Outcome] | None:
        """Create every one of ``records`` as a new order, in one statement, or write nothing and
        answer None when any of them is not simply new: its number exists or repeats, or it names
        an account that does not exist. ``upsert_many`` then tells those apart. The importer's fast
        path for a batch of new orders; PostgreSQL only (None elsewhere). What it creates is what
        ``upsert_many`` would."""
        plan = self.plan_create(records)
        return plan.run(self.session) if plan is not None else None

    def plan_create(self, records: Sequence[OrderData]) -> AllOrNothing[Outcome] | None:
        """``create_all``'s write, built without touching the database; None if ``records``
        cannot be created in one statement anyway (none, not PostgreSQL)."""
        if not records or not is_postgresql(self.session):
            return None
        now = utcnow()
        # The look-up of accounts may reorder the rows; their positions keep ids in line order.
        rows = [
            {
                **_order_row(record),
                "account": record.account_id,
                "created_at": now,
                "updated_at": now,
                "position": position,
            }
            for position, record in enumerate(records)
        ]
        order, account = Order.__table__, Account.__table__
        given, names = positioned_rows(order, rows, {"account": account.c.external_id}, "given")
        created = (
            postgresql.insert(Order)
            .from_select(
                [*names, "account_id"],
                select(*(given.c[name] for name in names), account.c.id)
                .select_from(given.outerjoin(account, account.c.external_id == given.c.account))
                .where(or_(given.c.account.is_(None), account.c.id.is_not(None)))
                .order_by(given.c.position),
                include_defaults=False,
            )
            .on_conflict_do_nothing(index_elements=[order.c.number])
            .returning(order.c.id)
            .cte("created")
        )
        return AllOrNothing(
            select(select(func.count()).select_from(created).scalar_subquery()),
            (len(rows),),
            [Outcome(record.order_number, "created") for record in records],
        )

    def upsert_many(self, given: Sequence[OrderRecord | OrderData]) -> list[Outcome]:
        """Create or update orders; one ``Outcome`` per record, in order.

        An order naming an account the shop has not pushed is refused (``account_id`` is reported),
        so evidence never silently loses its owner. The last record wins for a repeated number.
        """
        records = [r.data() if isinstance(r, OrderRecord) else r for r in given]
        now = utcnow()
        account_ids = {r.account_id for r in records if r.account_id is not None}
        known: dict[str, int] = {}
        if account_ids:
            found = self.session.execute(
                select(Account.external_id, Account.id).where(
                    one_of(self.session, Account.external_id, account_ids)
                )
            )
            known = {str(external_id): account_id for external_id, account_id in found}
        stored = {
            row["number"]: dict(row)
            for row in self.session.execute(
                select(*(Order.__table__.c[name] for name in _COMPARED)).where(
                    one_of(self.session, Order.number, {r.order_number for r in records})
                )
            ).mappings()
        }

        outcomes: list[Outcome] = []
        rows: dict[str, dict[str, object]] = {}
        for record in records:
            outcome = Outcome(record.order_number)
            outcomes.append(outcome)
            if record.account_id is not None and record.account_id not in known:
                outcome.error = ValidationFailed(
                    [FieldError("account_id", "no account with this id", "unknown_account")]
                )
                continue
            row = _order_row(record)
            row["account_id"] = known.get(record.account_id) if record.account_id else None
            before = stored.get(record.order_number)
            if before is None:
                outcome.result = "created"
            elif before != row:
                outcome.result = "updated"
            else:
                continue  # unchanged: nothing to write
            stored[record.order_number] = row
            rows[record.order_number] = {**row, "created_at": now, "updated_at": now}
        upsert(self.session, Order.__table__, list(rows.values()), key="number")
        return outcomes


def _order_row(record: OrderData) -> dict[str, Any]:
    """An order's columns from ``record``, but for the account's key (the caller's to find)."""
    return {
        "number": record.order_number,
        "placed_at": record.placed_at,
        "email": record.email,
        "email_fuzzy_key": normalise.email_fuzzy_key(record.email) if record.email else None,
        "phone": record.phone,
        "payment_method": record.payment_method,
        "paypal_payer_id": record.paypal_payer_id,
        "paypal_email": record.paypal_email,
        "guest": record.guest,
    }
