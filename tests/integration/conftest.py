import re

import pytest
from flask import current_app
from sqlalchemy import event, select

from recovery.db import db
from recovery.outbox.models import Channel, OutboxMessage
from recovery.outbox.settings import DeliverySettings
from recovery.outbox.worker import Worker
from recovery.wiring import intakes, task_handlers
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


def run_tasks():
    """Run the tasks requests handed over (an email reset's lookup, secrets and mail), as
    ``recovery worker`` does; the mail they queue stays in the outbox for the test to read."""
    worker = Worker(
        db.sessions,
        None,
        None,
        DeliverySettings.from_config(current_app.config),
        tasks=task_handlers(),
        intakes=intakes(),
    )
    worker.channels = (Channel.TASK,)
    while worker.run_once():
        pass
    db.session.expire_all()


def statements_of(run):
    """``run()``'s result and the SQL it sent through the session's connection."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    connection = db.session.connection()
    event.listen(connection, "before_cursor_execute", record)
    try:
        return run(), seen
    finally:
        event.remove(connection, "before_cursor_execute", record)


@pytest.fixture
def sent_by_psycopg(monkeypatch):
    """Every statement psycopg sends, as ``(sql, autocommit)``, whichever layer calls it
    (SQLAlchemy's execution or a statement handed straight to the driver). Idle connections are
    not pinged meanwhile, so only the code under test speaks."""
    import psycopg

    from recovery import db as db_module

    sent = []
    execute = psycopg.Cursor.execute

    def recording(cursor, query, *args, **kwargs):
        sent.append((str(query), cursor.connection.autocommit))
        return execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 3600.0)
    monkeypatch.setattr(psycopg.Cursor, "execute", recording)
    return sent


def mails(to=None):
    run_tasks()
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
