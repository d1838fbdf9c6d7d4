"""Accounts and the identities (ways to sign in or reach the person) that belong to them."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
import time
import uuid

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recovery.db import Base, BigId, UTCDateTime, identifier, sparse_index, str_enum, utcnow
from recovery.identity.normalise import IdentityKind


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    MERGED = "merged"
    DISABLED = "disabled"


class IdentitySource(enum.StrEnum):
    """Who attached the identity: the shop's ingest owns only what it attached itself."""

    SHOP = "shop"
    RECOVERY = "recovery"


def new_public_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): the creation time in milliseconds, then 74 random bits.

    Ids made one after another sort together, so the unique index takes each new one near the
    last instead of at a random leaf: a million-account import then stays in a few hot pages
    rather than touching the whole index. The id is a name, not a secret (it tells the shop when
    the account was created here, which the shop knows).
    """
    milliseconds = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(secrets.token_bytes(10))  # 80 bits; 74 are kept
    value = (milliseconds & (1 << 48) - 1) << 80
    value |= 0x7 << 76  # version 7
    value |= ((random_bits >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # the RFC 9562 variant
    value |= random_bits & (1 << 62) - 1  # rand_b, 62 bits
    return uuid.UUID(int=value)


class Account(Base):
    __tablename__ = "account"
    # Almost no account is merged: the index only holds those that are.
    __table_args__ = (sparse_index("account", "merged_into_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_public_id)
    #: The shop's own id for the account (the ``{account_id}`` of the ingest API).
    external_id: Mapped[str | None] = mapped_column(identifier(64), unique=True)
    status: Mapped[AccountStatus] = mapped_column(
        str_enum(AccountStatus, "account_status"), default=AccountStatus.ACTIVE
    )
    display_name: Mapped[str | None] = mapped_column(String(200))
    #: ``name_key(display_name)``: candidate search for staff only.
    name_key: Mapped[str | None] = mapped_column(identifier(200), index=True)
    #: Guest and social-only accounts have no password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: SHA-256 of the hash the shop last sent: a replay of it must not undo a password the
    #: service set since (a recovery); only a hash the shop changed replaces the password.
    shop_password_digest: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8), default="pl")
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    identities: Mapped[list[Identity]] = relationship(
        back_populates="account", cascade="all, delete-orphan", order_by="Identity.id"
    )
    merged_into: Mapped[Account | None] = relationship(remote_side=[id])

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None


class Identity(Base):
    __tablename__ = "identity"
    __table_args__ = (
        # The rule that makes an identifier point at one person: every exact lookup uses this index.
        UniqueConstraint("kind", "value"),
        # Only e-mail identities have a fuzzy key.
        sparse_index("identity", "fuzzy_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[IdentityKind] = mapped_column(str_enum(IdentityKind, "identity_kind"))
    #: The normalised value (``normalise.identity``); compared exactly.
    value: Mapped[str] = mapped_column(identifier(255))
    #: The masked form humans see (``j***@gmail.com``).
    display: Mapped[str] = mapped_column(String(255))
    #: ``email_fuzzy_key`` for emails; candidates for staff only, never sign-in.
    fuzzy_key: Mapped[str | None] = mapped_column(identifier(255))
    source: Mapped[IdentitySource] = mapped_column(
        str_enum(IdentitySource, "identity_source"), default=IdentitySource.SHOP
    )
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="identities")

    @property
    def verified(self) -> bool:
        return self.verified_at is not None
