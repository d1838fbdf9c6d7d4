"""The composition root of a request: services built from the app's settings and session.

Faces (API, pages, CLI) get their services here, so no face repeats how they are put together.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app

from recovery.db import db
from recovery.flows.services import FlowService, FlowSettings
from recovery.outbox.services import OutboxService
from recovery.resets.services import ResetService, Settings
from recovery.tokens.services import SecretService


def secret_service() -> SecretService:
    return SecretService(db.session, current_app.config["SECRET_KEYS"])


def reset_service() -> ResetService:
    config = current_app.config
    return ResetService(
        db.session,
        secret_service(),
        OutboxService(db.session),
        Settings(
            public_url=config["PUBLIC_URL"], unknown_address_mail=config["UNKNOWN_ADDRESS_MAIL"]
        ),
    )


def flow_service() -> FlowService:
    config = current_app.config
    return FlowService(
        db.session,
        reset_service(),
        FlowSettings(
            ttl=dt.timedelta(minutes=config["FLOW_TTL_MINUTES"]),
            return_to_origins=config["RETURN_TO_ORIGINS"],
            default_return_to=config["DEFAULT_RETURN_TO"],
        ),
    )
