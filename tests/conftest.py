"""Fixtures shared by every test.

The suite runs twice in CI: on SQLite (the embedded default) and, with ``RECOVERY_TEST_DATABASE_URL``
and ``RECOVERY_TEST_REDIS_URL`` set, on PostgreSQL and Redis. The tests are the same; only these
fixtures differ. Each test runs inside a transaction that is rolled back, so tests never see each
other's rows; the app's own commits become savepoints inside it.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import flask_babel
import pytest
import sqlalchemy as sa
from flask import Flask, g
from flask.testing import FlaskClient
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from sqlalchemy.engine import Connection, Engine
from werkzeug.test import TestResponse

from recovery import create_app, migrate
from recovery.clients.models import Scope
from recovery.clients.services import ApiClientService
from recovery.db import db, make_engine
from recovery.extensions import limiter
from recovery.models import Base

POSTGRES_URL = os.environ.get("RECOVERY_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("RECOVERY_TEST_REDIS_URL")
TEST_SECRET_KEYS = ["test-secret-key-newest-" + "n" * 20, "test-secret-key-older-" + "o" * 20]


def pytest_report_header() -> str:
    database = "PostgreSQL" if POSTGRES_URL else "SQLite"
    limits = "Redis" if REDIS_URL else "memory"
    return f"recovery: database {database}, rate limits {limits}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # PostgreSQL-only behaviour (row locks, concurrency) runs in the PostgreSQL pass of the suite.
    skip = pytest.mark.skip(reason="PostgreSQL-only; runs in the PostgreSQL pass")
    skip_redis = pytest.mark.skip(reason="needs Redis; runs in the PostgreSQL + Redis pass")
    for item in items:
        if "postgres" in item.keywords and not POSTGRES_URL:
            item.add_marker(skip)
        if "redis" in item.keywords and not REDIS_URL:
            item.add_marker(skip_redis)


# -- databases -------------------------------------------------------------------------------------


def _fresh_database(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[str]:
    """An empty database for this session: a new PostgreSQL database, or a new SQLite file."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp(name) / 'test.db'}"
        return
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    database = f"recovery_{name}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{database}"')
    try:
        yield sa.make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's database, migrated to head through Alembic (never ``create_all``)."""
    for url in _fresh_database(tmp_path_factory, "test"):
        migrate.upgrade(url)
        yield url


@pytest.fixture
def empty_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with no schema at all, for migration tests."""
    yield from _fresh_database(tmp_path_factory, "empty")


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


# -- the app -----------------------------------------------------------------------------------------


def fresh_limits() -> None:
    """Empty rate-limit counters for what follows, without touching anyone else's.

    The limiter is one object per process and Flask-Limiter keeps the key prefix of the first app
    it met, so a test's own RATELIMIT_KEY_PREFIX would be ignored; ``limiter.reset()`` instead
    would wipe every counter in the shared Redis database, other test runs' included. A new prefix
    is a namespace of fresh counters.
    """
    limiter._key_prefix = f"test-{uuid.uuid4().hex[:12]}"


def make_app(database_url: str, **overrides: Any) -> Flask:
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEYS": ",".join(TEST_SECRET_KEYS),
        "PUBLIC_URL": "https://recovery.example.test",
        "RATELIMIT_STORAGE_URI": REDIS_URL or "memory://",
        # Keys of one test never collide with another's, even on a shared Redis.
        "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        **overrides,
    }
    return create_app(config)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Override settings for one test: ``@pytest.mark.parametrize`` or a fixture of the test's own."""
    return {}


@pytest.fixture
def app(database_url: str, connection: Connection, app_config: dict[str, Any]) -> Iterator[Flask]:
    app = make_app(database_url, **app_config)

    @app.before_request
    def _fresh_request_globals() -> None:
        # Requests reuse the app context this fixture holds open (so tests can use db.session), and
        # with it ``g``; drop what a real request starts without: the language and the CSRF token.
        for name in ("locale", "csrf_token"):
            g.pop(name, None)
        flask_babel.refresh()

    with app.app_context():
        # Every session of this app joins the test's transaction; its commits become savepoints.
        db.sessions.configure(bind=connection, join_transaction_mode="create_savepoint")
        fresh_limits()
        yield app
        db.session.close()
        db.dispose()
    storage = limiter.storage
    pool = getattr(getattr(storage, "storage", None), "connection_pool", None)
    if pool is not None:
        pool.disconnect()


@pytest.fixture(scope="session")
def openapi(database_url: str) -> OpenAPI:
    """The document the service serves, loaded once; every API response is checked against it."""
    app = make_app(database_url)
    with app.app_context():
        spec = app.test_client().get("/api/v1/openapi.json").get_json()
        db.dispose()
    problem_json = {"application/problem+json": json.loads}
    return OpenAPI.from_dict(spec, config=Config(extra_media_type_deserializers=problem_json))


class _AnsweredRequest(WerkzeugOpenAPIRequest):
    """The request as the validator sees it after the app consumed its body (which it doesn't need
    to check a response)."""

    @property
    def body(self) -> bytes | None:
        return None


class ValidatingClient(FlaskClient):
    """A test client that fails the test when an API response does not match the served document."""

    openapi: OpenAPI

    def open(self, *args: Any, validate: bool = True, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        if (
            validate
            and response.request.path.startswith("/api/v1/")
            and response.request.path != "/api/v1/openapi.json"
        ):
            self.openapi.validate_response(
                _AnsweredRequest(response.request), WerkzeugOpenAPIResponse(response)
            )
        return response


@pytest.fixture
def client(app: Flask, openapi: OpenAPI) -> FlaskClient:
    app.test_client_class = ValidatingClient
    ValidatingClient.openapi = openapi
    return app.test_client()


@pytest.fixture
def make_key(app: Flask) -> Any:
    """``make_key(Scope.INGEST, ...)`` -> the ``Authorization`` header of a new API client."""

    def make(*scopes: Scope) -> dict[str, str]:
        issued = ApiClientService(db.session).create(f"client-{secrets.token_hex(4)}", scopes)
        db.session.commit()
        return {"Authorization": f"Bearer {issued.key}"}

    return make


@pytest.fixture
def ingest(make_key: Any) -> dict[str, str]:
    return make_key(Scope.INGEST)  # type: ignore[no-any-return]


@pytest.fixture
def resolver(make_key: Any) -> dict[str, str]:
    return make_key(Scope.RESOLVE)  # type: ignore[no-any-return]


@pytest.fixture
def committed_app(database_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    """An app whose requests really commit (for concurrency tests); every table is emptied after."""
    app = make_app(database_url, **app_config)
    fresh_limits()
    yield app
    with app.app_context():
        db.dispose()  # the connections its requests opened
    empty_tables(database_url)


def empty_tables(database_url: str) -> None:
    """Delete every row a test really committed, so the tests after it start from nothing."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            tables = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())
    finally:
        engine.dispose()
