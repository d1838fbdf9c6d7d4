"""An import ANALYZEs the tables it fills once they outgrow their statistics (PostgreSQL)."""

import json

import pytest
from sqlalchemy import text

from recovery.db import db, is_postgresql
from recovery.ingest.services import Importer
from recovery.ingest.statistics import MIN_ROWS, Statistics


def reltuples(name):
    return db.session.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
    ).scalar_one()


def add_accounts(count, prefix):
    db.session.execute(
        text(
            "INSERT INTO account (public_id, external_id, status, locale, vip, created_at, "
            "updated_at) SELECT gen_random_uuid(), :prefix || n, 'active', 'pl', false, now(), "
            "now() FROM generate_series(1, :count) AS n"
        ),
        {"count": count, "prefix": prefix},
    )


@pytest.mark.postgres
def test_a_table_is_analysed_once_the_rows_added_outnumber_its_statistics(app):
    statistics = Statistics(db.session)
    add_accounts(MIN_ROWS - 1, "s")
    statistics.add(["account"], MIN_ROWS - 1)
    statistics.refresh()
    before = reltuples("account")  # a few rows short: not analysed yet
    assert before < MIN_ROWS - 1

    add_accounts(1, "t")
    statistics.add(["account"], 1)
    statistics.refresh()
    assert reltuples("account") >= MIN_ROWS
    assert statistics.added["account"] == 0

    # Next time only once the table has doubled.
    add_accounts(MIN_ROWS - 1, "u")
    statistics.add(["account"], MIN_ROWS - 1)
    statistics.refresh()
    assert statistics.added["account"] == MIN_ROWS - 1
    assert reltuples("account") < 2 * MIN_ROWS - 1


@pytest.mark.postgres
def test_an_import_analyses_the_tables_it_fills(app, monkeypatch):
    monkeypatch.setattr("recovery.ingest.statistics.MIN_ROWS", 20)
    lines = [
        json.dumps(
            {
                "type": "account",
                "account_id": f"st{n}",
                "identities": [{"kind": "email", "value": f"st{n}@example.com"}],
            }
        ).encode()
        for n in range(30)
    ]
    importer = Importer(db.session, batch_size=10)
    for _summary in importer.run(lines):
        pass
    assert importer.summary.created == 30
    assert reltuples("account") >= 20
    assert reltuples("identity") >= 20


def test_other_databases_are_left_alone(app):
    statistics = Statistics(db.session)
    statistics.add(["account"], 10 * MIN_ROWS)
    statistics.refresh()  # SQLite: nothing to do; PostgreSQL: an empty table analysed, harmlessly
    assert statistics.enabled == is_postgresql(db.session)
