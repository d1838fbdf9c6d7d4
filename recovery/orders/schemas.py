"""What the shop may tell us about an order: validated and normalised on the way in."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from recovery.accounts.schemas import ExternalId
from recovery.identity import normalise
from recovery.orders.models import PaymentMethod


def _checked(function: normalise.Normaliser) -> AfterValidator:
    def check(value: str) -> str:
        try:
            return function(value)
        except normalise.InvalidValue as exc:
            raise PydanticCustomError("invalid_identifier", str(exc)) from None

    return AfterValidator(check)


Email = Annotated[str, Field(max_length=320), _checked(normalise.email)]
Phone = Annotated[str, Field(max_length=32), _checked(normalise.phone)]
PayerId = Annotated[str, Field(max_length=32), _checked(normalise.paypal_payer_id)]
OrderNumber = Annotated[str, Field(min_length=1, max_length=80), _checked(normalise.order_number)]


def _in_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is a moment before year 1
        raise PydanticCustomError("out_of_range", "is out of the range of dates") from None


#: An aware datetime, moved to UTC (how it is stored and compared).
UTCDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class OrderIn(BaseModel):
    """The body of ``PUT /orders/{order_number}``."""

    model_config = ConfigDict(extra="forbid")

    placed_at: UTCDatetime = Field(description="with a time zone offset")
    email: Email | None = None
    phone: Phone | None = None
    payment_method: PaymentMethod
    paypal_payer_id: PayerId | None = None
    paypal_email: Email | None = None
    guest: bool = False
    account_id: ExternalId | None = Field(None, description="the shop's id of the owning account")


class OrderRecord(OrderIn):
    order_number: OrderNumber

    def data(self) -> OrderData:
        return OrderData(
            self.order_number,
            self.placed_at,
            self.email,
            self.phone,
            self.payment_method,
            self.paypal_payer_id,
            self.paypal_email,
            self.guest,
            self.account_id,
        )


class OrderData(NamedTuple):
    """A validated ``OrderRecord`` as plain values (``placed_at`` in UTC): what
    ``OrderService.upsert_many`` works on, and cheap to send between processes."""

    order_number: str
    placed_at: dt.datetime
    email: str | None
    phone: str | None
    payment_method: PaymentMethod
    paypal_payer_id: str | None
    paypal_email: str | None
    guest: bool
    account_id: str | None
