"""Short-lived single-use secrets: reset links, one-time codes and login tickets. Only digests are stored."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, BigId, UTCDateTime, str_enum, utcnow


class SecretKind(enum.StrEnum):
    LINK = "link"  # a signed URL token
    CODE = "code"  # digits typed by a person
    TICKET = "ticket"  # the login ticket the shop redeems


class Secret(Base):
    """One issued secret. ``digest`` is all that is kept of it; the secret itself lives in the mail,
    SMS or redirect that carried it."""

    __tablename__ = "secret"
    __table_args__ = (Index("ix_secret_account_purpose", "account_id", "purpose"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[SecretKind] = mapped_column(str_enum(SecretKind, "secret_kind"))
    purpose: Mapped[str] = mapped_column(String(32))
    #: SHA-256 of a link's random id, or an HMAC of a code bound to its flow; never the secret.
    digest: Mapped[str] = mapped_column(String(64), index=True)
    #: ``None`` for the decoy issued when no account matched (same work on both paths, DESIGN §5.1).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    flow_id: Mapped[str | None] = mapped_column(
        ForeignKey("recovery_flow.id", ondelete="CASCADE"), index=True
    )
    #: Which identity the secret was sent to, for the trail and "what was proven" (e.g. ``email``).
    channel: Mapped[str | None] = mapped_column(String(16))
    #: Binds the secret to the password at issue time: a password change kills it.
    fingerprint: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Set when a newer request for the same account and purpose replaced it.
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
