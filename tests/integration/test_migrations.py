"""Migrations are the only way the schema changes: they must build it, tear it down and match the models."""

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from recovery import migrate
from recovery.accounts.models import Account, Identity
from recovery.db import make_engine
from recovery.flows.models import RecoveryFlow
from recovery.models import Base
from recovery.tokens.models import Secret, SecretKind


def _tables(url):
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_to_head_and_downgrade_to_base(empty_database_url):
    migrate.upgrade(empty_database_url)
    assert _tables(empty_database_url) == set(Base.metadata.tables)
    migrate.downgrade(empty_database_url, "base")
    assert _tables(empty_database_url) == set()
    migrate.upgrade(empty_database_url)  # and up again: downgrade left nothing behind
    assert _tables(empty_database_url) == set(Base.metadata.tables)


def test_models_and_migrations_do_not_drift(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models differ from migrations; write a migration: {diff}"


def test_resolution_lookups_are_indexed(database_url):
    """Every exact resolution lookup (DESIGN §3) has an index to use."""
    engine = make_engine(database_url)
    try:
        inspector = sa.inspect(engine)
        indexed = {
            table: {tuple(i["column_names"]) for i in inspector.get_indexes(table)}
            | {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
            for table in ("identity", "shop_order", "account")
        }
    finally:
        engine.dispose()
    assert ("kind", "value") in indexed["identity"]
    assert ("fuzzy_key",) in indexed["identity"]
    # An order's email is found through its fuzzy key (always set with it): exact and fuzzy alike.
    for column in (
        "number",
        "phone",
        "paypal_email",
        "paypal_payer_id",
        "email_fuzzy_key",
    ):
        assert (column,) in indexed["shop_order"], column
    assert ("external_id",) in indexed["account"]
    assert ("name_key",) in indexed["account"]


@pytest.mark.postgres
def test_identifier_columns_compare_bytes_on_postgresql(database_url):
    """The columns the models declare ``identifier`` are ``COLLATE "C"`` once migrated (the
    drift check does not compare collations), and no other column is."""
    declared = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if getattr(column.type.dialect_impl(postgresql.dialect()), "collation", None) == "C"
    }
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            collated = {
                tuple(row)
                for row in connection.execute(
                    sa.text(
                        "SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND collation_name = 'C'"
                    )
                )
            }
    finally:
        engine.dispose()
    assert declared == collated
    assert ("identity", "value") in declared and ("shop_order", "number") in declared


def test_downgrades_that_drop_a_column_keep_every_row(empty_database_url):
    """A column is dropped in place: rebuilding its table (Alembic's batch mode on SQLite, with
    foreign keys on) would delete the rows of every table that cascades from it."""
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    try:
        with Session(engine) as session:
            account = Account()
            session.add(account)
            session.add(RecoveryFlow(id="f-kept", node="email_code", expires_at=later))
            session.flush()
            session.add(
                Identity(
                    account_id=account.id,
                    kind="email",
                    value="a@example.com",
                    display="a@example.com",
                )
            )
            session.add(
                Secret(
                    kind=SecretKind.CODE,
                    purpose="email_code",
                    digest="d" * 64,
                    fingerprint="f" * 64,
                    expires_at=later,
                    account_id=account.id,
                    flow_id="f-kept",
                )
            )
            session.commit()
        migrate.downgrade(empty_database_url, "0006")  # through 0009 and 0007
        with engine.connect() as connection:
            counts = [
                connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
                for table in ("account", "identity", "recovery_flow", "secret")
            ]
    finally:
        engine.dispose()
        migrate.downgrade(empty_database_url, "base")
    assert counts == [1, 1, 1, 1]
