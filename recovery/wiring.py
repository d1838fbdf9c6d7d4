"""The composition root of a request: services built from the app's settings and session.

Faces (API, pages, CLI) get their services here, so no face repeats how they are put together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from recovery.db import db
from recovery.flows.services import FlowService, FlowSettings
from recovery.outbox.services import OutboxService
from recovery.outbox.settings import DeliverySettings
from recovery.outbox.worker import Intake, TaskHandler
from recovery.resets.services import EMAIL_RESET_TASK, ResetService, Settings
from recovery.tokens.services import EMAIL_CODE, RESET_LINK, SMS_CODE, SecretService

#: Where the app keeps its ``_Settings`` (``app.extensions``).
_SETTINGS = "recovery.wiring"


@dataclass(frozen=True, slots=True)
class _Settings:
    """The services' settings, read from the app's configuration once (it is validated once, in
    ``create_app``, and not changed after)."""

    secret_keys: tuple[str, ...]
    lifetimes: dict[str, dt.timedelta]
    resets: Settings
    flows: FlowSettings
    delivery: DeliverySettings

    @staticmethod
    def of(config: Mapping[str, Any]) -> _Settings:
        minutes = {
            RESET_LINK.name: config["RESET_LINK_MINUTES"],
            EMAIL_CODE.name: config["EMAIL_CODE_MINUTES"],
            SMS_CODE.name: config["SMS_CODE_MINUTES"],
        }
        return _Settings(
            secret_keys=tuple(config["SECRET_KEYS"]),
            lifetimes={name: dt.timedelta(minutes=m) for name, m in minutes.items()},
            resets=Settings(
                public_url=config["PUBLIC_URL"],
                unknown_address_mail=config["UNKNOWN_ADDRESS_MAIL"],
                mails_per_account_per_hour=config["RESET_MAILS_PER_ACCOUNT_PER_HOUR"],
            ),
            flows=FlowSettings(
                ttl=dt.timedelta(minutes=config["FLOW_TTL_MINUTES"]),
                return_to_origins=config["RETURN_TO_ORIGINS"],
                default_return_to=config["DEFAULT_RETURN_TO"],
            ),
            delivery=DeliverySettings.from_config(config),
        )


def _settings() -> _Settings:
    extensions = current_app.extensions
    settings: _Settings | None = extensions.get(_SETTINGS)
    if settings is None:
        settings = extensions[_SETTINGS] = _Settings.of(current_app.config)
    return settings


def secret_service(session: Session | None = None) -> SecretService:
    return _secrets(session or db.session, _settings())


def reset_service(session: Session | None = None) -> ResetService:
    """The reset service on the request's session, or on ``session`` (the worker's)."""
    return _resets(session or db.session, _settings())


def flow_service() -> FlowService:
    session, settings = db.session, _settings()
    return FlowService(session, _resets(session, settings), settings.flows)


def _secrets(session: Session, settings: _Settings) -> SecretService:
    return SecretService(session, settings.secret_keys, lifetimes=settings.lifetimes)


def _resets(session: Session, settings: _Settings) -> ResetService:
    return ResetService(
        session,
        _secrets(session, settings),
        OutboxService(session, settings.delivery),
        settings.resets,
    )


def _send_email_reset(session: Session, args: dict[str, Any]) -> None:
    reset_service(session).send_email_reset(args["flow_id"], args["email"], args["locale"])


def task_handlers() -> dict[str, TaskHandler]:
    """What ``recovery worker`` runs for each task a request hands over (``enqueue_task``)."""
    return {EMAIL_RESET_TASK: _send_email_reset}


def _take_email_requests(session: Session, limit: int) -> int:
    return reset_service(session).take_requests(limit)


def intakes() -> list[Intake]:
    """What ``recovery worker`` takes in before it delivers: the email-reset requests that new
    flows carry (``ResetService.take_requests``)."""
    return [_take_email_requests]
