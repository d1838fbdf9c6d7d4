"""Hints a person gives about themselves, validated and normalised for resolution."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recovery.orders.schemas import Email, OrderNumber, Phone

MAX_HINTS = 10


class Hints(BaseModel):
    """What the person remembers. Every list is optional, but at least one hint is needed."""

    model_config = ConfigDict(extra="forbid")

    emails: Annotated[list[Email], Field(max_length=MAX_HINTS)] = []
    phones: Annotated[list[Phone], Field(max_length=MAX_HINTS)] = []
    order_numbers: Annotated[list[OrderNumber], Field(max_length=MAX_HINTS)] = []
    paypal_emails: Annotated[list[Email], Field(max_length=MAX_HINTS)] = []
    names: Annotated[
        list[Annotated[str, Field(min_length=2, max_length=200)]], Field(max_length=MAX_HINTS)
    ] = []

    @model_validator(mode="after")
    def _at_least_one(self) -> Hints:
        if not (
            self.emails or self.phones or self.order_numbers or self.paypal_emails or self.names
        ):
            raise ValueError("give at least one hint")
        return self
