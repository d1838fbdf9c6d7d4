"""Writing the audit log. Rows are only ever added, in the transaction of the action they record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from recovery.audit.models import AuditEvent


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: ``api_client``, ``staff``, ``customer`` or ``system``, and their id."""

    type: str
    id: str | None = None
    ip: str | None = None


class AuditService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        actor: Actor,
        action: str,
        subject: tuple[str, str] | None = None,
        **data: Any,
    ) -> AuditEvent:
        """Add an event; ``data`` must hold no secrets and identifiers only masked or hashed."""
        event = AuditEvent(
            actor_type=actor.type,
            actor_id=actor.id,
            ip=actor.ip,
            action=action,
            subject_type=subject[0] if subject else None,
            subject_id=subject[1] if subject else None,
            data=data,
        )
        self.session.add(event)
        return event
