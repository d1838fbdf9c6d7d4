"""``db.insert_new`` and ``db.insert_alone``: the write of a request that only records itself."""

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import event, func, inspect, literal, select, text
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from recovery import db as db_module
from recovery.db import (
    AUTOCOMMIT_WRITER,
    AutocommitWriter,
    assign,
    db,
    insert_alone,
    insert_new,
    is_postgresql,
    make_autocommit_engine,
    make_engine,
    new_row,
)
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


class _Engines:
    """The app's two engines on ``database_url``, and sessions that know both (as ``db``'s do)."""

    def __init__(self, database_url):
        self.engine = make_engine(database_url)
        self.autocommit = make_autocommit_engine(database_url)
        self.writer = AutocommitWriter(self.autocommit)

    def session(self):
        return Session(self.engine, info={AUTOCOMMIT_WRITER: self.writer})

    def dispose(self):
        self.engine.dispose()
        self.writer.dispose()


@pytest.fixture
def engines(database_url):
    both = _Engines(database_url)
    yield both
    both.dispose()
    empty_tables(database_url)


@pytest.mark.postgres
def test_insert_alone_commits_at_once_in_one_autocommit_statement(engines, sent_by_psycopg):
    with engines.autocommit.connect():
        pass  # the dialect's first-connect queries, out of the way
    sent_by_psycopg.clear()
    with engines.session() as session:
        insert_alone(session, _flow("f-alone"), _task("k-alone"))
        written = list(sent_by_psycopg)
        assert not session.in_transaction()  # the session was never used
        with engines.engine.connect() as other:  # committed already, for everyone
            stored = other.execute(
                select(RecoveryFlow.node).where(RecoveryFlow.id == "f-alone")
            ).scalar_one()
            assert stored == "email_code"
    # psycopg sends no BEGIN or COMMIT of its own for a connection in autocommit.
    ((statement, autocommit),) = written
    assert autocommit and statement.startswith("WITH new_0 AS")
    assert "set_config" in statement  # and its commit does not wait for the disk
    with engines.autocommit.connect() as reused:  # the setting went with that transaction
        assert reused.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def test_insert_alone_without_an_autocommit_engine_writes_in_the_session(engine):
    """SQLite (and a session made without one): the rows wait for the session's commit."""
    with Session(engine) as session:
        insert_alone(session, _flow("f-in-session"), _task("k-in-session"))
        assert session.in_transaction()
        session.rollback()
        assert session.get(RecoveryFlow, "f-in-session") is None


@pytest.mark.postgres
def test_insert_alone_stores_every_column_as_the_unit_of_work_would(engines):
    with engines.session() as session:
        insert_alone(session, _flow("f-columns"), _task("k-columns"))
    with engines.session() as session:
        flow = session.get(RecoveryFlow, "f-columns")
        task = session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == "k-columns")
        ).one()
        assert (flow.status, flow.answers, flow.trail) == (
            FlowStatus.ACTIVE,
            {"email": "j***@example.com"},
            [],
        )
        assert flow.expires_at == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        assert (task.channel, task.status, task.attempts) == (
            Channel.TASK,
            MessageStatus.PENDING,
            0,
        )
        assert task.payload == {"task": "email_reset", "args": {}} and task.id > 0


@pytest.mark.postgres
def test_insert_alone_reports_a_lost_connection_as_sqlalchemy_does(engines, engine):
    """A connection the server dropped is a ``DBAPIError`` with ``connection_invalidated`` (the
    API's 503), and the pool is renewed: the next write gets a working connection."""
    with engines.autocommit.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    _terminate_backend(engine, pid)
    with engines.session() as session, pytest.raises(DBAPIError) as raised:
        insert_alone(session, _flow("f-lost"), _task("k-lost"))
    assert raised.value.connection_invalidated
    with engines.session() as session:
        insert_alone(session, _flow("f-after"), _task("k-after"))
    with engines.session() as session:
        assert session.get(RecoveryFlow, "f-after") is not None


@pytest.mark.postgres
def test_insert_alone_refuses_a_duplicate_as_an_integrity_error(engines):
    with engines.session() as session:
        insert_alone(session, _flow("f-twice"), _task("k-twice"))
        with pytest.raises(IntegrityError):
            insert_alone(session, _flow("f-twice"), _task("k-other"))


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
@pytest.mark.parametrize(
    ("pool", "method", "path", "served"),
    [
        # A reset request writes through the autocommit engine (``insert_alone``).
        ("autocommit", "POST", "/api/v1/recovery/email", 202),
        # Everything else through the session's engine.
        ("engine", "GET", "/api/v1/recovery/flows/no-such-flow", 404),
    ],
)
def test_a_connection_lost_under_a_request_is_a_503_problem(
    committed_app, engine, pool, method, path, served
):
    client = committed_app.test_client()
    # The one connection the next request gets.
    with committed_app.app_context():
        writer = db.sessions.kw["info"][AUTOCOMMIT_WRITER]
        pooled = db.engine if pool == "engine" else writer.engine
        with pooled.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    _terminate_backend(engine, pid)
    body = {"email": "jan@example.com"} if method == "POST" else None

    response = client.open(path, method=method, json=body)

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "unavailable"
    # The pool replaced the broken connection: the next request is served.
    assert client.open(path, method=method, json=body).status_code == served


def test_a_driver_statement_refuses_values_bound_by_the_statement_itself():
    with pytest.raises(ValueError, match="write it as a literal"):
        db_module._DriverStatement.of(select(literal(1)), psycopg.dialect())


@pytest.fixture
def node_sets():
    """The values set on any flow's ``node`` through the ORM's attribute events, in order."""
    sets = []

    def on_set(target, value, *args):
        sets.append(value)

    event.listen(RecoveryFlow.node, "set", on_set)
    yield sets
    event.remove(RecoveryFlow.node, "set", on_set)


def test_new_row_holds_its_values_and_the_models_defaults_without_change_events(app, node_sets):
    flow = new_row(
        RecoveryFlow,
        id="f-new-row",
        node="start",
        expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        status=None,  # None takes the default, as a NULL column with a default would
    )
    assert node_sets == []  # the constructor would have fired one
    flow.node = "email"
    assert node_sets == ["email"]  # set later: tracked as on any object
    assert inspect(flow).transient
    assert flow.status is FlowStatus.ACTIVE and flow.trail == [] and flow.answers == {}
    assert flow.locale == "pl" and flow.return_to is None and flow.created_at is not None
    assert new_row(RecoveryFlow).answers is not flow.answers  # each row its own default

    flow.record("start", "started")
    db.session.add(flow)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(RecoveryFlow, "f-new-row")
    assert stored.node == "email" and stored.status is FlowStatus.ACTIVE
    assert [entry["event"] for entry in stored.trail] == ["started"]


def test_assign_skips_change_events_only_while_no_session_has_the_object(app, node_sets):
    flow = new_row(
        RecoveryFlow, id="f-assign", node="start", expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )
    assign(flow, node="email", answers={"email": "j***@example.com"})
    assert node_sets == [] and flow.node == "email"  # transient: nothing tracks it
    db.session.add(flow)
    assign(flow, node="email_code")  # pending: tracked as any change
    assert node_sets == ["email_code"]
    db.session.commit()
    assign(flow, node="done")  # persistent: tracked, and flushed
    assert node_sets == ["email_code", "done"]
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(RecoveryFlow, "f-assign")
    assert stored.node == "done" and stored.answers == {"email": "j***@example.com"}


@pytest.mark.postgres
def test_insert_alone_sends_json_columns_as_documents(engines):
    flow = _flow("f-json")
    flow.trail = [{"event": "started", "n": 1}]
    with engines.session() as session:
        insert_alone(session, flow, _task("k-json"))
    with engines.engine.connect() as connection:
        kinds = connection.execute(
            text(
                "SELECT jsonb_typeof(answers), jsonb_typeof(trail), trail->0->>'event'"
                " FROM recovery_flow WHERE id = 'f-json'"
            )
        ).one()
        payload = connection.execute(
            text("SELECT payload FROM outbox_message WHERE idempotency_key = 'k-json'")
        ).scalar_one()
    assert tuple(kinds) == ("object", "array", "started")
    assert payload == {"task": "email_reset", "args": {}}


def test_new_row_refuses_names_that_are_not_attributes():
    with pytest.raises(TypeError, match="colour: not attributes of RecoveryFlow"):
        new_row(RecoveryFlow, id="f", colour="red")


# -- the autocommit writer's connections -------------------------------------------------------------


def _alive(engine, pids):
    """Which of the server processes ``pids`` are still there."""
    query = text("SELECT pid FROM pg_stat_activity WHERE pid = ANY(:pids)")
    with engine.connect() as connection:
        return set(connection.execute(query, {"pids": list(pids)}).scalars())


@pytest.mark.postgres
def test_the_writer_keeps_its_connection_between_statements(engines):
    checkouts = []
    event.listen(engines.autocommit, "checkout", lambda *args: checkouts.append(args))
    for n in range(3):
        with engines.session() as session:
            insert_alone(session, _flow(f"f-kept-{n}"), _task(f"k-kept-{n}"))
    assert len(checkouts) == 1  # taken from the pool once, then held
    with engines.session() as session:
        assert session.scalar(select(func.count()).select_from(RecoveryFlow)) == 3


@pytest.mark.postgres
def test_a_held_connection_the_server_dropped_while_idle_is_replaced(engines, engine, monkeypatch):
    with engines.session() as session:
        insert_alone(session, _flow("f-before"), _task("k-before"))
    ((held, _),) = engines.writer._idle
    pid = held.driver_connection.info.backend_pid
    _terminate_backend(engine, pid)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)  # "idle for long enough"

    with engines.session() as session:
        insert_alone(session, _flow("f-after"), _task("k-after"))  # no error: pinged, replaced
    ((replaced, _),) = engines.writer._idle
    assert replaced.driver_connection.info.backend_pid != pid


@pytest.mark.postgres
def test_the_writer_serves_threads_at_once_and_closes_its_connections_on_dispose(engines, engine):
    start = threading.Barrier(6)

    def write(n):
        start.wait()
        with engines.session() as session:
            insert_alone(session, _flow(f"f-thread-{n}"), _task(f"k-thread-{n}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engines.session() as session:
        assert session.scalar(select(func.count()).select_from(RecoveryFlow)) == 6
    assert 1 <= len(engines.writer._idle) <= 6  # one per statement that ran at once
    pids = {held.driver_connection.info.backend_pid for held, _ in engines.writer._idle}
    assert _alive(engine, pids) == pids

    engines.writer.dispose()
    assert engines.writer._idle == []
    deadline = time.monotonic() + 5  # a server process ends a moment after its client hangs up
    while _alive(engine, pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _alive(engine, pids) == set()  # closed, not merely given back
