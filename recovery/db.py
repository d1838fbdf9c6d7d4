"""The database: one declarative ``Base``, one engine per app, one session per request or command.

Services receive a ``Session`` and never commit; the request boundary (the API's operation wrapper) or
the CLI command that called them does. Mail and webhooks are outbox rows in that same transaction.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from flask import Flask, current_app, g
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Enum,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    any_,
    bindparam,
    cast,
    column,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.elements import Null
from sqlalchemy.types import TypeDecorator

from recovery.errors import RecoveryError

T = TypeVar("T")

#: Deterministic constraint names, so Alembic migrations are reproducible on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: A 64-bit key on PostgreSQL; SQLite only auto-increments a column typed exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")
#: JSON documents; JSONB on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def identifier(length: int) -> String:
    """A string column of identifiers (normalised e-mails, phone numbers, order numbers, the
    shop's ids, fuzzy keys): compared only for equality, so compared byte by byte.

    On PostgreSQL the column is ``COLLATE "C"``: a database's own collation (``en_US.UTF-8``,
    even ``C.UTF-8`` before PostgreSQL 17) compares through the C library's ``strcoll``, which
    was a tenth of the server's time on a bulk import, all of it in the lookup indexes' b-trees.
    SQLite compares bytes already.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def str_enum(cls: type[enum.StrEnum], name: str, length: int = 16) -> Enum:
    """A ``StrEnum`` column stored as its values with a CHECK: portable, and new values are a migration."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=length,
        create_constraint=True,
        values_callable=lambda members: [member.value for member in members],
    )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine with the per-backend settings this service relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, json_serializer=json_document, connect_args={"timeout": 30}
        )
        _fix_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        echo=echo,
        json_serializer=json_document,
        pool_size=5,
        max_overflow=10,
        # psycopg prepares a statement after five runs and PostgreSQL may then switch to a generic
        # plan; for our "value IN (...1000 values...)" lookups that plan scans instead of probing
        # the index, and an import slows down quadratically. Plan every execution for its values.
        connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
    )
    _ping_idle_connections(engine)
    return engine


def make_autocommit_engine(url: str, *, echo: bool = False) -> Engine | None:
    """PostgreSQL's engine for ``insert_alone``: its connections stay in autocommit, so one
    statement is one transaction and one round trip, and nothing is reset when they go back to the
    pool (there is never a transaction to end). ``None`` elsewhere (SQLite writes in the session's
    transaction). Without ``plan_cache_mode=force_custom_plan``: its statements write one row per
    table, and a generic plan serves them once prepared."""
    if url.startswith("sqlite"):
        return None
    engine = create_engine(
        url,
        echo=echo,
        json_serializer=json_document,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        pool_size=2,
        max_overflow=8,
    )
    _ping_idle_connections(engine)
    return engine


#: A pooled connection unused for longer than this is pinged before a request gets it.
PING_AFTER_IDLE = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Pre-ping, but only connections that sat idle in the pool (``PING_AFTER_IDLE`` seconds).

    After a database restart or a dropped idle connection, the first request still gets a working
    connection: a failed ping makes the pool connect anew. A connection given back a moment ago
    is used as it is: pinging at every checkout (``pool_pre_ping``) was a fifth of a reset
    request. A connection that breaks mid-use is a 503 problem (``connection_invalidated``), and
    the pool then replaces every connection older than the failure.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since <= PING_AFTER_IDLE:
            return  # new, or in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc


def _fix_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over as the
    # SQLAlchemy documentation prescribes, and switch on foreign keys, which SQLite leaves off.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


class Database:
    """Flask extension holding the engine and session factory of one app."""

    def init_app(self, app: Flask) -> None:
        url, echo = app.config["DATABASE_URL"], app.config["DATABASE_ECHO"]
        engine = make_engine(url, echo=echo)
        autocommit = make_autocommit_engine(url, echo=echo)
        writer = AutocommitWriter(autocommit) if autocommit is not None else None
        sessions = sessionmaker(engine, expire_on_commit=False, info={AUTOCOMMIT_WRITER: writer})
        app.extensions["recovery.db"] = _State(engine, writer, sessions)
        app.teardown_appcontext(_close_session)

    @property
    def engine(self) -> Engine:
        return _state().engine

    def dispose(self) -> None:
        """Close the pooled connections of the app's engines (a command's or a test's end)."""
        state = _state()
        state.engine.dispose()
        if state.writer is not None:
            state.writer.dispose()

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory; tests rebind it to a connection held in a transaction."""
        return _state().sessions

    @property
    def session(self) -> Session:
        """The session of the current request or command, opened on first use."""
        session: Session | None = g.get("db_session")
        if session is None:
            session = g.db_session = self.sessions()
        return session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The unit of work of a request or command: commit when the block ends, roll back if it
        raises, unless the error asks to keep what was written before it (a counted wrong code)."""
        session = self.session
        try:
            yield session
        except RecoveryError as exc:
            session.commit() if exc.keep_changes else session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise
        if session.in_transaction():  # else it did nothing (adding an object begins one)
            session.commit()


#: ``Session.info`` key of the ``AutocommitWriter`` ``insert_alone`` writes through (``None``: it
#: writes in the session).
AUTOCOMMIT_WRITER = "recovery.autocommit_writer"


class _State:
    def __init__(
        self, engine: Engine, writer: AutocommitWriter | None, sessions: sessionmaker[Session]
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.sessions = sessions


def _state() -> _State:
    state: _State = current_app.extensions["recovery.db"]
    return state


def _close_session(exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return
    if not session.in_transaction() and not session.identity_map and not session.new:
        return  # never began and holds nothing: nothing to roll back, release or forget
    if exc is not None:
        session.rollback()
    session.close()


db = Database()


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# -- batches as one parameter (PostgreSQL) ------------------------------------------------------------
#
# A thousand-value ``IN`` or a multi-row ``VALUES`` is a new statement text for every batch size:
# psycopg re-parses its placeholders each time and the server parses a long statement. These helpers
# send a batch as ONE JSON document that the server expands (``json_to_recordset``,
# ``json_array_elements_text``): one short statement for any size, planned once. JSON rather than
# arrays because psycopg adapts a Python list element by element in Python (a regex per value), the
# largest Python cost of a bulk import, while orjson encodes in C (ten times faster than
# ``json.dumps``, which called back into Python for every datetime and UUID). Other backends get
# the plain forms.


@functools.lru_cache(maxsize=256)  # a batch's rows share their created_at/updated_at
def _utc_iso(value: dt.datetime) -> str:
    if value.tzinfo is None:  # as UTCDateTime refuses it
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(dt.UTC).isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _utc_iso(value)
    raise TypeError(f"cannot send {type(value).__name__} in a JSON batch")


#: Datetimes still come to ``_json_default``: orjson would write a naive one without an offset, which
#: the server would read in its own time zone; refusing it is what ``UTCDateTime`` does.
_JSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


def json_document(value: Any) -> str:
    """A JSON column's value as the text the driver sends (the engines' ``json_serializer``), by
    orjson in C, several times faster than ``json.dumps``. For what the service stores (strings,
    numbers, booleans, ``None``, lists and objects; string enums as their values) the text reads
    back as ``json.dumps``'s would: integer keys become strings, and a datetime is refused rather
    than written without its offset. Unlike ``json.dumps`` it writes a UUID as its text and NaN as
    null, and refuses integers beyond 64 bits.
    """
    return orjson.dumps(value, option=_DOCUMENT_OPTIONS, default=_not_json).decode()


_DOCUMENT_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_batch(values: Any) -> str:
    """``values`` (rows or a list) as the JSON text the helpers below send."""
    return orjson.dumps(values, default=_json_default, option=_JSON_OPTIONS).decode()


def one_of(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL the values go as one JSON array (strings, numbers).

    ``column = ANY(ARRAY(SELECT ... FROM json_array_elements_text(:values)))``: the array is an
    init-plan parameter, which the planner can use as an index condition on ``column``, probing once
    per value. A semi-join (``IN (SELECT ...)``) was planned, on a large table without statistics,
    as a scan of every row hashed against the values. Neither form survives statistics that claim
    a large table is a few pages (the planner then filters a scan with the array): a bulk import
    keeps them current itself (``recovery.ingest.statistics``).
    """
    values = list(values)
    if not is_postgresql(session):
        return column.in_(values)  # type: ignore[no-any-return]
    elements = func.json_array_elements_text(
        cast(bindparam(None, json_batch(values), type_=Text), JSON)
    ).table_valued("value")
    array = select(cast(elements.c.value, column.type)).scalar_subquery()
    return column == any_(func.array(array))  # type: ignore[no-any-return]


#: A row's place in a ``json_records`` batch, for rows that carry one as ``position``: a statement
#: that joins the rows to a table orders by it, so the ids it makes follow the batch.
POSITION = column("position", Integer)


def json_records(
    rows: list[dict[str, Any]], columns: Mapping[str, Any] | ReadOnlyColumnCollection[str, Any]
) -> Any:
    """``SELECT`` of ``rows`` (the same keys each), sent as one JSON document the server expands
    (PostgreSQL): each key typed as the column ``columns[key]`` is (a key may name a column of
    another table, or be an alias for one)."""
    document = cast(bindparam(None, json_batch(rows), type_=Text), JSON)
    record = (
        func.json_to_recordset(document)
        .table_valued(*(column(name, columns[name].type) for name in rows[0]))
        .render_derived(with_types=True)
    )
    return select(*record.c)


def positioned_rows(
    table: Any, rows: list[dict[str, Any]], references: Mapping[str, Any], name: str
) -> tuple[Any, list[str]]:
    """``rows`` bound for ``table`` as the subquery ``name`` of ``json_records``, and the keys of
    theirs that are ``table``'s columns. Each row also carries its ``position`` in the batch and
    the keys of ``references``, typed as the columns they map to (another table's key, which the
    statement turns into the row's foreign key)."""
    extra = {**references, "position": POSITION}
    subquery = json_records(rows, {**table.c, **extra}).subquery(name)
    return subquery, [key for key in rows[0] if key not in extra]


@dataclass(slots=True)
class AllOrNothing(Generic[T]):
    """A batch written whole or not at all: a statement whose one row counts what it did, the
    counts that mean it wrote everything, and what to answer then. Building one touches no
    database, so a batch can be planned while the previous one is being written.

    The bulk "all new" paths use it: one ``INSERT ... ON CONFLICT DO NOTHING`` statement creates
    a whole batch when nothing in it exists yet, and anything else (a row that exists, a value
    another row holds) shows as a count short, which sends the batch down the careful path.
    """

    statement: Any
    expected: tuple[int, ...]
    outcomes: list[T]

    def run(self, session: Session) -> list[T] | None:
        """The outcomes if the statement wrote the whole batch; None if not, and then nothing it
        did stays (a savepoint)."""
        savepoint = session.begin_nested()
        try:
            done = tuple(session.execute(self.statement).one())
        except BaseException:
            savepoint.rollback()
            raise
        if done == self.expected:
            savepoint.commit()
            return self.outcomes
        savepoint.rollback()
        return None


def insert_rows(
    session: Session, table: Any, rows: list[dict[str, Any]], returning: Sequence[Any] = ()
) -> list[Any]:
    """``INSERT`` all ``rows`` (the same keys each); the ``returning`` columns of each, if any.

    On PostgreSQL one ``INSERT ... SELECT FROM json_to_recordset(:rows)``; elsewhere an
    executemany. Column defaults computed in Python are not applied on PostgreSQL: ``rows`` must
    carry them.
    """
    if not rows:
        return []
    statement: Any
    if is_postgresql(session):
        statement = table.insert().from_select(
            list(rows[0]), json_records(rows, table.c), include_defaults=False
        )
        if returning:
            return list(session.execute(statement.returning(*returning)))
        session.execute(statement)
        return []
    if returning:
        return list(session.execute(table.insert().returning(*returning), rows))
    session.execute(table.insert(), rows)
    return []


def upsert(session: Session, table: Any, rows: list[dict[str, Any]], key: str) -> None:
    """``INSERT ... ON CONFLICT (key) DO UPDATE``, writing only rows whose values differ.

    Unchanged rows are not rewritten, so replaying an import is cheap and leaves ``updated_at`` alone.
    A key repeated in ``rows`` ends with its last row's values, as if the rows were run in order.
    """
    if not rows:
        return
    statement: postgresql.Insert | sqlite.Insert
    postgres = is_postgresql(session)
    if postgres:
        # One statement for all rows (see insert_rows); it may touch each key only once.
        rows = list({row[key]: row for row in rows}.values())
        statement = postgresql.insert(table).from_select(
            list(rows[0]), json_records(rows, table.c), include_defaults=False
        )
    else:
        statement = sqlite.insert(table)
    compared = [name for name in rows[0] if name not in (key, "created_at", "updated_at")]
    changed = or_(*(table.c[name].is_distinct_from(statement.excluded[name]) for name in compared))
    assignments = {name: statement.excluded[name] for name in compared}
    if "updated_at" in rows[0]:
        assignments["updated_at"] = statement.excluded["updated_at"]
    upserting = statement.on_conflict_do_update(
        index_elements=[key], set_=assignments, where=changed
    )
    if postgres:
        session.execute(upserting)
    else:
        session.execute(upserting, rows)


def sparse_index(table: str, column_name: str, *, ordered_by: str | None = None) -> Index:
    """An index on ``column_name`` (or on ``ordered_by``) holding only the rows where
    ``column_name`` is set (``IS NOT NULL``).

    For columns most rows leave empty, or that are only ever looked up by a value: an equality or
    ``IN`` on the column implies ``IS NOT NULL``, so PostgreSQL and SQLite still probe the index,
    and a bulk insert does not pay an index entry for every row without a value. ``ordered_by``
    serves a queue: the rows where the column is set, read in that column's order.
    """
    predicate = text(f"{column_name} IS NOT NULL")
    return Index(
        f"ix_{table}_{column_name}",
        ordered_by or column_name,
        postgresql_where=predicate,
        sqlite_where=predicate,
    )


# -- rows a request writes once -------------------------------------------------------------------
#
# A request that only records itself (an email-reset request: the new flow carrying it) should cost
# one round trip, not the unit of work's bookkeeping for objects it never reads again.


B = TypeVar("B", bound=Base)


def new_row(model: type[B], **values: Any) -> B:
    """A new ``model`` object holding ``values`` and its columns' Python-side defaults, built
    without the ORM constructor's attribute events.

    For rows a request writes once (``insert_alone``, ``insert_new``, or ``Session.add``): the
    constructor fires a change event per attribute, recording a history no INSERT reads (a flush
    inserts what a new object holds). That was a tenth of a reset request's Python. The object
    is an ordinary transient one; whatever is set on it later is tracked as usual. An unknown
    name is a ``TypeError``, as with the constructor.
    """
    unknown = values.keys() - _attribute_names(model)
    if unknown:
        raise TypeError(f"{', '.join(sorted(unknown))}: not attributes of {model.__name__}")
    obj: B = model.__mapper__.class_manager.new_instance()
    state = vars(obj)  # what a flush inserts; written here without the attribute machinery
    state.update(values)
    for key, default in _defaults(model):
        if state.get(key) is None:
            state[key] = default.arg(None) if default.is_callable else default.arg
    return obj


def assign(obj: Base, **values: Any) -> None:
    """Set attributes of ``obj``. A transient one (``new_row``'s, in no session yet) takes them
    straight into its state, like ``new_row``: nothing tracks it, and its INSERT writes what it
    holds. Any other goes through ``setattr`` (change events, the history a flush reads)."""
    state = instance_state(obj)
    if state.key is None and state.session_id is None:
        vars(obj).update(values)
        return
    for key, value in values.items():
        setattr(obj, key, value)


@functools.lru_cache(maxsize=64)
def _attribute_names(model: type[Base]) -> frozenset[str]:
    return frozenset(sa_inspect(model).attrs.keys())


@functools.lru_cache(maxsize=64)
def _defaults(model: type[Base]) -> tuple[tuple[str, Any], ...]:
    """The attributes of ``model``'s columns with a Python-side default, and that default."""
    return tuple(
        (key, default) for key, _, default, _, _ in _insert_columns(model) if default is not None
    )


def insert_new(session: Session, *objects: Base, durable: bool = True) -> None:
    """Write new ``objects`` in the session's transaction with one statement.

    On PostgreSQL each object's ``INSERT`` but the last is a CTE of the last one's (data-modifying
    CTEs all run, in one statement); elsewhere one ``INSERT`` each, in order (mind foreign keys).
    The objects stay outside the session: their Python-side column defaults are filled in on them
    first, but keys the server generates (an identity column) are not read back.

    ``durable=False`` lets the transaction's COMMIT return before its WAL is on disk (PostgreSQL's
    ``synchronous_commit = off``, for this transaction only, set by the same statement; SQLite is
    left as it is). A crash of the database server may then lose the last fraction of a second of
    such transactions: whole ones, never half of one, and nothing else is at risk. Only for writes
    the client may simply make again (a reset request: the person asks again).
    """
    if is_postgresql(session):
        session.execute(*_insert_of(objects, durable))
        return
    rows, params = _rows_and_params(objects)
    for i, (obj, row) in enumerate(zip(objects, rows, strict=True)):
        session.execute(_single_insert(i, type(obj).__table__, tuple(row)), params)


def _insert_of(objects: Sequence[Base], durable: bool) -> tuple[Any, dict[str, Any]]:
    """PostgreSQL's one statement for ``objects`` (``_chained_insert``) and its parameters."""
    rows, params = _rows_and_params(objects)
    shape = tuple((type(obj).__table__, tuple(row)) for obj, row in zip(objects, rows, strict=True))
    return _chained_insert(shape, durable), params


def _rows_and_params(objects: Sequence[Base]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each object's column values, and all of them as one statement's parameters."""
    rows = [_column_values(obj, _insert_columns(type(obj))) for obj in objects]
    params = {_param(i, name): value for i, row in enumerate(rows) for name, value in row.items()}
    return rows, params


def insert_alone(session: Session, *objects: Base) -> None:
    """Write new ``objects`` as the whole of a request's writing: ``insert_new`` with
    ``durable=False``, in a transaction of its own when the session has not begun one.

    On PostgreSQL that transaction is one round trip: the statement runs on a connection of the
    session's ``AutocommitWriter`` (named in ``Session.info``), in autocommit, so BEGIN
    and COMMIT are not round trips of their own (a third of a reset request's database time under
    load), and the rows are committed when this returns. The statement goes straight to the
    driver (``_DriverStatement``): SQLAlchemy's execution machinery around one INSERT cost more
    than the round trip itself. The caller writes nothing after it: a request that failed
    afterwards would not take the rows back. When the session has already begun (it read or wrote
    something), is bound to a connection (held in a transaction, as in tests), or has no
    autocommit engine (SQLite), the rows go into the session's transaction instead and are
    committed with it.
    """
    writer: AutocommitWriter | None = session.info.get(AUTOCOMMIT_WRITER)
    if writer is None or session.in_transaction() or not isinstance(session.bind, Engine):
        insert_new(session, *objects, durable=False)
        return
    dialect = writer.engine.dialect
    params: dict[str, Any] = {}
    shape = []
    for index, obj in enumerate(objects):
        row = _column_values(obj, _driver_columns(type(obj), index, dialect))
        params.update(row)
        shape.append((type(obj), tuple(row)))
    writer.run(_DriverStatement.for_rows(tuple(shape), dialect), params)


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    """A statement compiled once for the driver."""

    sql: str

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def of(statement: Any, dialect: Dialect) -> _DriverStatement:
        compiled = statement.compile(dialect=dialect)
        for name, bound in compiled.binds.items():
            if not bound.required:  # a value of its own would have to travel with every call
                raise ValueError(f"the statement binds {name!r} itself; write it as a literal")
        return _DriverStatement(str(compiled))

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def for_rows(
        shape: tuple[tuple[type[Base], tuple[str, ...]], ...], dialect: Dialect
    ) -> _DriverStatement:
        """``insert_alone``'s statement for rows of these models with these parameters
        (``_driver_columns``' names: ``r<row>_<column>``)."""
        tables = tuple(
            (model.__table__, tuple(param.partition("_")[2] for param in params))
            for model, params in shape
        )
        return _DriverStatement.of(_chained_insert(tables, durable=False), dialect)


class AutocommitWriter:
    """``insert_alone``'s way to PostgreSQL: an autocommit engine (``make_autocommit_engine``) and
    the connections it keeps checked out between statements.

    A statement takes an idle connection (the last one given back) or checks one out of the pool,
    and gives it back here, not to the pool: checking out and in around one INSERT was 5% of a
    reset request's instructions (the pool's queue, lock and events). So there are as many
    connections as statements ever ran at once, at most the pool's size and overflow. Like the
    pool (``_ping_idle_connections``), a connection idle for longer than ``PING_AFTER_IDLE`` is
    pinged before use and replaced if the server dropped it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._idle: list[tuple[PoolProxiedConnection, float]] = []  # (connection, idle since)

    def run(self, statement: _DriverStatement, params: dict[str, Any]) -> None:
        """Run ``statement`` with ``params``, converted for the driver already.

        Driver errors come out as SQLAlchemy's: ``DBAPIError`` (parameters hidden when the engine
        hides them), with ``connection_invalidated`` when the connection was lost, after which the
        pool is replaced and the idle connections closed (they are as old as the lost one).
        Anything else that interrupts the statement leaves the connection in an unknown state: it
        is invalidated, never used again as it is (nothing resets this engine's connections).
        ``DATABASE_ECHO`` does not log this statement: it never passes through SQLAlchemy.
        """
        engine = self.engine
        dialect = engine.dialect
        error = dialect.loaded_dbapi.Error
        try:
            pooled = self._take()
        except error as exc:  # could not connect, as SQLAlchemy's own Connection would report it
            raise DBAPIError.instance(
                None, None, exc, error, hide_parameters=engine.hide_parameters, dialect=dialect
            ) from exc
        try:
            driver: Any = pooled.driver_connection
            driver.execute(statement.sql, params, prepare=True)
        except error as exc:
            lost = dialect.is_disconnect(exc, pooled.dbapi_connection, None)
            if lost:
                pooled.invalidate(exc)
                self.dispose()
            else:
                self._give_back(pooled)  # autocommit: a failed statement leaves nothing open
            raise DBAPIError.instance(
                statement.sql,
                params,
                exc,
                error,
                hide_parameters=engine.hide_parameters,
                connection_invalidated=lost,
                dialect=dialect,
            ) from exc
        except BaseException:
            pooled.invalidate()
            raise
        self._give_back(pooled)

    def _give_back(self, pooled: PoolProxiedConnection) -> None:
        self._idle.append((pooled, time.monotonic()))

    def _pop_idle(self) -> tuple[PoolProxiedConnection, float] | None:
        """The connection given back last, with when; ``None`` when none is idle (``pop`` is
        atomic: each thread gets its own)."""
        try:
            return self._idle.pop()
        except IndexError:
            return None

    def _take(self) -> PoolProxiedConnection:
        error = self.engine.dialect.loaded_dbapi.Error
        while (idle := self._pop_idle()) is not None:
            pooled, since = idle
            if time.monotonic() - since <= PING_AFTER_IDLE:
                return pooled
            try:
                self.engine.dialect.do_ping(pooled.dbapi_connection)  # type: ignore[arg-type]
            except error:
                pooled.invalidate()  # dropped while idle: try the next, or a new one
                continue
            return pooled
        return self.engine.raw_connection()

    def dispose(self) -> None:
        """Give the idle connections back to the pool and close the pool's connections."""
        while (idle := self._pop_idle()) is not None:
            idle[0].close()
        self.engine.dispose()


#: One column of an INSERT's row: the attribute's key, the name the value goes under, the
#: column's Python-side default, whether a missing value is the server's to fill (an
#: autoincrementing key, or NULL in a nullable column without a server default), and the
#: conversion for the driver (``None``: none, or left to SQLAlchemy).
_Column = tuple[str, str, Any, bool, Callable[[Any], Any] | None]


def _column_values(obj: Base, columns: tuple[_Column, ...]) -> dict[str, Any]:
    """The values to insert for ``obj``, under the names ``columns`` give: its Python-side
    defaults filled in, and without the columns the server fills (fewer parameters to send)."""
    values: dict[str, Any] = {}
    state = vars(obj)  # what was set on the new object, read without the attribute machinery
    for key, name, default, left_to_server, process in columns:
        value = state.get(key)
        if value is None:
            if default is not None:
                value = default.arg(None) if default.is_callable else default.arg
                set_committed_value(obj, key, value)  # no change events: nothing tracks a new row
            elif left_to_server:
                continue
        values[name] = value if process is None else process(value)
    return values


@functools.lru_cache(maxsize=64)
def _insert_columns(model: type[Base]) -> tuple[_Column, ...]:
    """``model``'s columns, their values under the column's name, as SQLAlchemy takes them."""
    return tuple(
        (
            attribute.key,
            column.name,
            column.default,
            bool(column.primary_key and column.autoincrement in (True, "auto"))
            or bool(column.nullable and column.server_default is None and not column.primary_key),
            None,
        )
        for attribute in sa_inspect(model).column_attrs
        for column in attribute.columns[:1]
    )


@functools.lru_cache(maxsize=64)
def _driver_columns(model: type[Base], index: int, dialect: Dialect) -> tuple[_Column, ...]:
    """``model``'s columns as row ``index`` of a statement sent to the driver: each value under
    its parameter's name and converted as SQLAlchemy would convert it."""
    table = model.__table__
    return tuple(
        (key, _param(index, name), default, left, _driver_processor(table.c[name].type, dialect))
        for key, name, default, left, _ in _insert_columns(model)
    )


def _driver_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, JSON):
        return _json_text(impl)
    processor: Callable[[Any], Any] | None = impl.bind_processor(dialect)
    return processor


def _json_text(type_: JSON) -> Callable[[Any], Any]:
    """A JSON column's value as its text (``json_document``), which the statement casts: what
    SQLAlchemy's processor sends, without the driver's wrapper object and its dumper (a third of
    the cost of sending an insert's parameters)."""
    none_as_null = type_.none_as_null

    def process(value: Any) -> str | None:
        if value is None:
            return None if none_as_null else "null"
        if value is JSON.NULL:
            return "null"
        if isinstance(value, Null):  # SQL's NULL, as SQLAlchemy's processor takes it
            return None
        return json_document(value)

    return process


def _param(index: int, name: str) -> str:
    return f"r{index}_{name}"


def _bound(index: int, table: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: bindparam(_param(index, name), type_=table.c[name].type) for name in names}


@functools.lru_cache(maxsize=64)
def _single_insert(index: int, table: Any, names: tuple[str, ...]) -> Any:
    return insert(table).values(_bound(index, table, names))


@functools.lru_cache(maxsize=64)
def _chained_insert(shape: tuple[tuple[Any, tuple[str, ...]], ...], durable: bool) -> Any:
    *first, (table, names) = shape
    if durable:
        statement = _single_insert(len(first), table, names)
    else:
        # INSERT ... SELECT <values> WHERE set_config(...): the setting rides on the statement
        # instead of costing a round trip of its own.
        values = _bound(len(first), table, names)
        relax = text("set_config('synchronous_commit', 'off', true) = 'off'")
        row = select(*(cast(values[name], table.c[name].type) for name in names)).where(relax)
        statement = insert(table).from_select(list(names), row, include_defaults=False)
    for i, (earlier, earlier_names) in enumerate(first):
        statement = statement.add_cte(_single_insert(i, earlier, earlier_names).cte(f"new_{i}"))
    return statement
