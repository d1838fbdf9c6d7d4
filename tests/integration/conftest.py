import re

import pytest
from sqlalchemy import select

from recovery.db import db
from recovery.outbox.models import Channel, OutboxMessage
from tests import factories

STRONG = "a long passphrase nobody guesses 2026"


@pytest.fixture
def anna():
    """A customer with a password and a verified email (and an unverified second one)."""
    return factories.account(
        "anna",
        ("email", "anna@example.com", True),
        ("email", "anna.old@example.com", False),
        password_hash="$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        locale="en",
    )


def mails(to=None):
    rows = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.channel == Channel.MAIL)
        .order_by(OutboxMessage.id)
    ).all()
    return [m.payload for m in rows if to is None or m.payload["to"] == to]


def link_token(mail):
    return re.search(r"/recover/reset\?token=([\w.\-]+)", mail["text"]).group(1)


def code_of(mail):
    return re.search(r"\b(\d{6})\b", mail["text"]).group(1)


def request_reset(client, email, flow_id=None, **headers):
    body = {"email": email} | ({"flow_id": flow_id} if flow_id else {})
    return client.post("/api/v1/recovery/email", json=body, headers=headers)


def new_password(client, **body):
    return client.post("/api/v1/recovery/password", json={"password": STRONG} | body)
