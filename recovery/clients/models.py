"""Service-to-service credentials: the shop's API keys (stored hashed) and their scopes."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, BigId, Json, UTCDateTime, utcnow


class Scope(enum.StrEnum):
    INGEST = "ingest"  # push accounts, identities and orders
    RESOLVE = "resolve"  # identity resolution for staff tools (personal data)
    TICKETS = "tickets"  # redeem login tickets


class ApiClient(Base):
    __tablename__ = "api_client"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: The public part of the key, used to find the row; the secret part is only ever hashed.
    key_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(Json, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def allows(self, scope: Scope) -> bool:
        return scope.value in self.scopes
