"""The outbox: mail, SMS, webhooks and tasks, written with the change that caused them, run later."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, BigId, Json, UTCDateTime, str_enum, utcnow


class Channel(enum.StrEnum):
    MAIL = "mail"
    SMS = "sms"
    WEBHOOK = "webhook"
    #: Work a request hands over instead of doing it while the client waits (e.g. an email reset:
    #: the account lookup, its secrets and the mail), run by the worker in its own transaction.
    TASK = "task"


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # gave up after the configured number of attempts


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        # The worker's claim query: due pending messages, oldest first. ``id`` completes its
        # ORDER BY, so a claim reads the first entry instead of sorting every due row.
        Index("ix_outbox_message_due", "status", "next_attempt_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "outbox_channel"))
    #: A retry or a repeated request with the same key never produces a second message.
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    status: Mapped[MessageStatus] = mapped_column(
        str_enum(MessageStatus, "outbox_status"), default=MessageStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
