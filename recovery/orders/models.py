"""Orders pushed by the shop: evidence for resolving a person to an account, nothing more."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recovery.accounts.models import Account
from recovery.db import Base, BigId, UTCDateTime, identifier, sparse_index, str_enum, utcnow


class PaymentMethod(enum.StrEnum):
    CARD = "card"
    PAYPAL = "paypal"
    BLIK = "blik"
    BANK_TRANSFER = "bank_transfer"
    CASH_ON_DELIVERY = "cash_on_delivery"
    OTHER = "other"


class Order(Base):
    __tablename__ = "shop_order"  # "order" is an SQL keyword
    # Each lookup column is only ever probed for a value, and many orders leave it empty (few are
    # paid with PayPal, guests have no account): the indexes skip the rows without one. ``email``
    # has none of its own: every order with an email has its ``email_fuzzy_key``, the same for all
    # spellings of the address, so resolution finds exact and fuzzy matches through that one index
    # and tells them apart itself. A second index on nearly every order slowed a bulk import's order
    # lines by a tenth to a sixth at a million orders (bench/resolve.py, migration 0006).
    __table_args__ = tuple(
        sparse_index("shop_order", name)
        for name in (
            "email_fuzzy_key",
            "phone",
            "paypal_payer_id",
            "paypal_email",
            "account_id",
        )
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: ``normalise.order_number``: upper case, no spaces or dashes.
    number: Mapped[str] = mapped_column(identifier(64), unique=True)
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    email: Mapped[str | None] = mapped_column(identifier(255))
    email_fuzzy_key: Mapped[str | None] = mapped_column(identifier(255))
    phone: Mapped[str | None] = mapped_column(identifier(32))
    payment_method: Mapped[PaymentMethod] = mapped_column(
        str_enum(PaymentMethod, "payment_method", length=24)
    )
    paypal_payer_id: Mapped[str | None] = mapped_column(identifier(13))
    paypal_email: Mapped[str | None] = mapped_column(identifier(255))
    guest: Mapped[bool] = mapped_column(Boolean, default=False)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    account: Mapped[Account | None] = relationship()
