"""``db.insert_new`` and ``db.insert_alone``: the write of a request that only records itself."""

import datetime as dt

import pytest
from sqlalchemy import event, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery import db as db_module
from recovery.db import db, insert_alone, insert_new, is_postgresql, make_engine
from recovery.flows.models import FlowStatus, RecoveryFlow
from recovery.outbox.models import Channel, MessageStatus, OutboxMessage
from tests.conftest import empty_tables
from tests.integration.conftest import statements_of


def _flow(flow_id="f-insert-new"):
    return RecoveryFlow(
        id=flow_id,
        node="email_code",
        expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        answers={"email": "j***@example.com"},
    )


def _task(key="task:email_reset:k1"):
    return OutboxMessage(
        channel=Channel.TASK, idempotency_key=key, payload={"task": "email_reset", "args": {}}
    )


def test_insert_new_writes_every_column_with_the_models_defaults(app):
    flow, task = _flow(), _task()
    insert_new(db.session, flow, task)

    # Python-side defaults are filled in on the objects, which stay out of the session.
    assert flow.status is FlowStatus.ACTIVE and flow.trail == [] and flow.locale == "pl"
    assert task.status is MessageStatus.PENDING and task.attempts == 0
    assert inspect(flow).transient and inspect(task).transient

    stored = db.session.get(RecoveryFlow, "f-insert-new")
    assert stored.answers == {"email": "j***@example.com"}
    assert stored.status is FlowStatus.ACTIVE and stored.created_at == flow.created_at
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == "task:email_reset:k1")
    ).one()
    assert message.id is not None  # the server's key
    assert message.payload == {"task": "email_reset", "args": {}}
    assert message.next_attempt_at == task.next_attempt_at


def test_insert_new_is_one_statement_on_postgresql(app):
    _, statements = statements_of(lambda: insert_new(db.session, _flow(), _task()))

    inserts = [s for s in statements if "INSERT" in s]
    assert len(inserts) == (1 if is_postgresql(db.session) else 2)


def test_insert_new_writes_all_or_nothing(app):
    db.session.add(_task("task:email_reset:taken"))
    db.session.flush()

    with pytest.raises(IntegrityError), db.session.begin_nested():
        insert_new(db.session, _flow("f-half"), _task("task:email_reset:taken"))

    assert db.session.get(RecoveryFlow, "f-half") is None


@pytest.mark.parametrize("durable", [True, False])
def test_a_write_that_need_not_be_durable_relaxes_only_its_own_transaction(engine, durable):
    setting = text("SHOW synchronous_commit")
    with engine.connect() as connection:
        session = Session(bind=connection)
        with session.begin():
            insert_new(
                session, _flow(f"f-durable-{durable}"), _task(f"k-{durable}"), durable=durable
            )
            stored = session.get(RecoveryFlow, f"f-durable-{durable}")
            assert stored.answers == {"email": "j***@example.com"} and stored.trail == []
            assert stored.expires_at == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
            task = session.scalars(
                select(OutboxMessage).where(OutboxMessage.idempotency_key == f"k-{durable}")
            ).one()
            assert task.payload == {"task": "email_reset", "args": {}}
            if is_postgresql(session):
                assert session.scalar(setting) == ("on" if durable else "off")
            session.rollback()
        if is_postgresql(session):
            with session.begin():
                assert session.scalar(setting) == "on"


@pytest.mark.postgres
def test_insert_alone_commits_at_once_in_one_autocommit_statement(database_url):
    engine = make_engine(database_url)
    sent = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        # psycopg sends no BEGIN or COMMIT of its own for a connection in autocommit.
        sent.append((statement, conn.connection.driver_connection.autocommit))

    try:
        with Session(engine) as session:
            insert_alone(session, _flow("f-alone"), _task("k-alone"))
            written = list(sent)
            assert not session.in_transaction()  # the session was never used
            with engine.connect() as other:  # committed already, for everyone
                stored = other.execute(
                    select(RecoveryFlow.node).where(RecoveryFlow.id == "f-alone")
                ).scalar_one()
                assert stored == "email_code"
        ((statement, autocommit),) = written
        assert autocommit and statement.startswith("WITH new_0 AS")
        assert "set_config" in statement  # and its commit does not wait for the disk
    finally:
        engine.dispose()
        empty_tables(database_url)


def test_insert_alone_joins_a_transaction_the_session_has_begun(engine):
    with engine.connect() as connection:
        session = Session(bind=connection)
        with session.begin():
            session.scalar(select(RecoveryFlow.id).limit(1))  # the session has begun
            insert_alone(session, _flow("f-joined"), _task("k-joined"))
            assert session.get(RecoveryFlow, "f-joined") is not None
            session.rollback()
        assert session.get(RecoveryFlow, "f-joined") is None  # it went with the rollback


# -- connections the database dropped ----------------------------------------------------------------


def _terminate_backend(engine, pid):
    """End server process ``pid`` from a connection of ``engine`` (another pool than pid's)."""
    with engine.connect() as other:
        other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")


@pytest.mark.postgres
def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    database_url, engine, monkeypatch
):
    pooled = make_engine(database_url)
    try:
        with pooled.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        _terminate_backend(engine, pid)
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)  # "idle for long enough"

        with pooled.connect() as connection:
            assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    finally:
        pooled.dispose()


@pytest.mark.postgres
def test_a_connection_in_steady_use_is_not_pinged(database_url):
    engine = make_engine(database_url)
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        for _ in range(3):
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 42")
        assert statements == ["SELECT 42"] * 3
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_connection_lost_under_a_request_is_a_503_problem(committed_app, engine):
    client = committed_app.test_client()
    # The one connection the next request gets.
    with committed_app.app_context(), db.engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    _terminate_backend(engine, pid)

    response = client.post("/api/v1/recovery/email", json={"email": "jan@example.com"})

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "unavailable"
    # The pool replaced the broken connection: the next request is served.
    again = client.post("/api/v1/recovery/email", json={"email": "jan@example.com"})
    assert again.status_code == 202
