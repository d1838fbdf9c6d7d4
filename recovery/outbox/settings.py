"""The delivery settings, read once from the validated app config into one typed value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """What the outbox service and the worker need to know (see ``recovery/config.py``)."""

    mail_from: str = "Account help <no-reply@localhost>"
    mail_transport: str = "mailbox"
    smtp_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0
    poll_interval: float = 5.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliverySettings:
        """The settings of an app whose config ``recovery.config.load`` validated."""
        return cls(
            mail_from=config["MAIL_FROM"],
            mail_transport=config["MAIL_TRANSPORT"],
            smtp_url=config["SMTP_URL"],
            webhook_url=config["WEBHOOK_URL"],
            webhook_secret=config["WEBHOOK_SECRET"],
            max_attempts=config["OUTBOX_MAX_ATTEMPTS"],
            backoff_base=float(config["OUTBOX_BACKOFF_BASE"]),
            backoff_cap=float(config["OUTBOX_BACKOFF_CAP"]),
            poll_interval=float(config["OUTBOX_POLL_INTERVAL"]),
        )

    def __repr__(self) -> str:
        # Never print the SMTP password or the webhook secret into a log or a traceback.
        return (
            f"DeliverySettings(mail_transport={self.mail_transport!r}, "
            f"webhooks={'on' if self.webhook_url else 'off'}, max_attempts={self.max_attempts})"
        )
