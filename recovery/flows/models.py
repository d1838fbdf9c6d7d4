"""A recovery flow: one walk of one person through the decision tree, kept for the help case."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, Json, UTCDateTime, assign, sparse_index, str_enum, utcnow


class FlowStatus(enum.StrEnum):
    ACTIVE = "active"
    DONE = "done"  # the person proved control of an account
    HELP = "help"  # handed to a person


def new_flow_id() -> str:
    # Unguessable: the flow id is what a browser or app holds to continue the walk.
    return secrets.token_urlsafe(18)


class RecoveryFlow(Base):
    __tablename__ = "recovery_flow"
    #: Flows carrying a request the worker has yet to take (``pending_email``), oldest first:
    #: the worker's pick-up reads this index, which holds only those rows.
    __table_args__ = (sparse_index("recovery_flow", "pending_email", ordered_by="created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_flow_id)
    node: Mapped[str] = mapped_column(String(32))
    status: Mapped[FlowStatus] = mapped_column(
        str_enum(FlowStatus, "flow_status"), default=FlowStatus.ACTIVE
    )
    #: Answers by node id (masked where personal: an email is kept as ``j***@x.pl``).
    answers: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    #: What was tried and what happened, oldest first: the help case shows it to staff.
    trail: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    locale: Mapped[str] = mapped_column(String(8), default="pl")
    return_to: Mapped[str | None] = mapped_column(String(2048))
    #: Set once the person proved control of an account (never shown to the person before that).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    method: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The (normalised) address of the email-reset request that started this flow, until the
    #: worker takes it (``ResetService.take_requests``): the request writes this one row instead
    #: of the flow and an outbox task.
    pending_email: Mapped[str | None] = mapped_column(String(320))

    def record(self, node: str, event: str, **detail: Any) -> None:
        """Append to the trail (a new list, so the JSON column is seen as changed)."""
        entry = {"at": utcnow().isoformat(), "node": node, "event": event, **detail}
        assign(self, trail=[*self.trail, entry])
