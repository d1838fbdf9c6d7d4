"""The ``recovery`` command: API keys, NDJSON import and the demo data (``db upgrade`` is tested
with the migrations).

Commands run in the test's app context, so their session is the test's and their commits are
savepoints of the test transaction. ``committed()`` rolls back whatever a command left uncommitted,
so what is read after it is what the command really committed.
"""

import json
import re

import pytest
from sqlalchemy import func, select

from recovery import migrate
from recovery.accounts.models import Account, Identity
from recovery.cli import TableCommand
from recovery.clients.models import ApiClient
from recovery.db import db, make_engine
from recovery.demo import PERSONAS
from recovery.ingest.services import MAX_LINE_BYTES
from recovery.orders.models import Order
from tests.conftest import make_app

KEY = re.compile(r"rk_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args, **kwargs):
        return runner.invoke(args=list(args), **kwargs)

    return invoke


def committed():
    db.session.rollback()


def create_client(cli, name, *scopes):
    """Run ``api-client create`` and return the key it printed."""
    options = [part for scope in scopes for part in ("--scope", scope)]
    result = cli("api-client", "create", name, *options)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def api_call(client, key):
    return client.get("/api/v1/accounts/unknown", headers=bearer(key))


# -- api-client ----------------------------------------------------------------------------------------


def test_create_prints_a_key_that_authenticates(cli, client):
    result = cli("api-client", "create", "shop", "--scope", "ingest")

    assert result.exit_code == 0, result.output
    assert "'shop'" in result.stdout
    key = result.stdout.strip().splitlines()[-1]
    assert KEY.fullmatch(key), key
    committed()
    response = api_call(client, key)
    assert response.status_code == 404  # authenticated; the account just does not exist
    assert response.get_json()["code"] == "not_found"


def test_create_stores_only_a_hash_of_the_key(cli):
    key = create_client(cli, "shop", "ingest", "resolve")
    committed()

    row = db.session.scalar(select(ApiClient).where(ApiClient.name == "shop"))
    assert row is not None
    assert sorted(row.scopes) == ["ingest", "resolve"]
    secret = key.split("_", 2)[2]
    assert row.key_hash != key
    assert secret not in row.key_hash
    assert key.startswith(f"rk_{row.key_prefix}_")
    assert all(secret not in str(value) for value in vars(row).values())


def test_create_with_a_taken_name_fails_clearly(cli, client):
    key = create_client(cli, "shop", "ingest")

    result = cli("api-client", "create", "shop", "--scope", "resolve")

    assert result.exit_code != 0
    assert "an API client named 'shop' exists already" in result.stderr
    assert not KEY.search(result.output)
    committed()
    assert db.session.scalar(select(func.count()).where(ApiClient.name == "shop")) == 1
    assert api_call(client, key).status_code == 404  # the first key still works


def test_list_never_prints_a_key(cli):
    keys = [create_client(cli, "shop", "ingest"), create_client(cli, "staff-tool", "resolve")]

    result = cli("api-client", "list")

    assert result.exit_code == 0, result.output
    assert "shop" in result.stdout
    assert "staff-tool" in result.stdout
    for key in keys:
        assert key not in result.output
        assert key.split("_", 2)[2] not in result.output
    assert not KEY.search(result.output)


def test_revoke_makes_the_key_fail(cli, client):
    key = create_client(cli, "shop", "ingest")
    assert api_call(client, key).status_code == 404

    result = cli("api-client", "revoke", "shop")

    assert result.exit_code == 0, result.output
    committed()
    response = api_call(client, key)
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthenticated"
    listed = cli("api-client", "list").stdout
    assert "revoked" in next(line for line in listed.splitlines() if line.startswith("shop\t"))


def test_revoking_an_unknown_client_fails(cli):
    result = cli("api-client", "revoke", "nobody")

    assert result.exit_code != 0
    assert "no API client named 'nobody'" in result.stderr


# -- import ----------------------------------------------------------------------------------------


def account(account_id, **fields):
    return json.dumps({"type": "account", "account_id": account_id, **fields})


def order(number, account_id):
    return json.dumps(
        {
            "type": "order",
            "order_number": number,
            "placed_at": "2026-05-04T08:00:00+02:00",
            "payment_method": "blik",
            "account_id": account_id,
        }
    )


def ndjson_file(tmp_path, *lines):
    path = tmp_path / "upload.ndjson"
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def stored_account_ids():
    return set(db.session.scalars(select(Account.external_id)))


def test_import_stores_good_lines_and_reports_bad_ones_by_number(cli, tmp_path):
    path = ndjson_file(
        tmp_path,
        account("c-1"),
        "{not json",
        "",
        account("c-2", identities=[{"kind": "phone", "value": "12"}]),
        order("ORDER-1", "c-1"),
        order("ORDER-2", "ghost"),
        account("c-3"),
    )

    result = cli("import", str(path))

    assert result.exit_code == 1
    assert "7 lines: 3 accepted (3 created, 0 updated, 0 unchanged), 3 rejected" in result.stdout
    assert result.stderr.splitlines() == [
        "line 2: malformed_request: not valid JSON",
        "line 4: validation_failed: identities.0.value: is not a valid phone number",
        "line 6: validation_failed: account_id: no account with this id",
    ]
    committed()
    assert stored_account_ids() == {"c-1", "c-3"}
    assert set(db.session.scalars(select(Order.number))) == {"ORDER1"}


def test_import_exits_0_when_every_line_is_accepted(cli, tmp_path):
    path = ndjson_file(tmp_path, account("c-1"), order("ORDER-1", "c-1"))

    result = cli("import", str(path))

    assert result.exit_code == 0, result.output
    assert "2 lines: 2 accepted (2 created, 0 updated, 0 unchanged), 0 rejected" in result.stdout
    assert result.stderr == ""
    committed()
    assert stored_account_ids() == {"c-1"}


def test_import_refuses_an_over_long_line_by_number_and_goes_on(cli, tmp_path):
    huge = account("huge", display_name="x" * (3 * MAX_LINE_BYTES))
    path = ndjson_file(tmp_path, account("c-1"), huge, account("c-2"))

    result = cli("import", str(path))

    assert result.exit_code == 1
    assert "3 lines: 2 accepted (2 created, 0 updated, 0 unchanged), 1 rejected" in result.stdout
    (error,) = result.stderr.splitlines()
    assert error.startswith("line 2: validation_failed: ")
    assert str(MAX_LINE_BYTES) in error
    committed()
    assert stored_account_ids() == {"c-1", "c-2"}


def test_import_reads_stdin(cli):
    result = cli("import", "-", input=f"{account('from-stdin')}\n")

    assert result.exit_code == 0, result.output
    assert "1 lines: 1 accepted" in result.stdout
    committed()
    assert stored_account_ids() == {"from-stdin"}


# -- demo-data -------------------------------------------------------------------------------------


def stored_state():
    tables = (Account.__table__, Identity.__table__, Order.__table__)
    return {
        table.name: [
            dict(row) for row in db.session.execute(select(table).order_by(table.c.id)).mappings()
        ]
        for table in tables
    }


def test_demo_data_is_idempotent_and_names_every_persona(cli):
    first = cli("demo-data")
    assert first.exit_code == 0, first.output
    committed()
    after_first = stored_state()

    second = cli("demo-data")

    assert second.exit_code == 0, second.output
    committed()
    expected_accounts = {a["account_id"] for p in PERSONAS for a in p.accounts}
    assert stored_account_ids() == expected_accounts
    assert len(after_first["account"]) == len(expected_accounts)
    assert stored_state() == after_first
    for result in (first, second):
        for persona in PERSONAS:
            assert f"  - {persona.title}: {persona.how_to_try}" in result.stdout


@pytest.mark.parametrize("command", ["upgrade", "downgrade"])
def test_an_unknown_revision_is_one_line_not_a_traceback(app, command):
    result = app.test_cli_runner().invoke(args=["db", command, "nonsense"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: nonsense: Can't locate revision identified by 'nonsense'"
    )


def test_demo_data_is_refused_in_production(app, cli):
    app.config["ENV"] = "production"
    result = cli("demo-data")
    assert result.exit_code == 1
    assert "demo data is for development; RECOVERY_ENV is production" in result.output
    assert stored_account_ids() == set()


# -- a database the migrations have not brought to this version ---------------------------------------

#: Every command that uses the tables (all but ``db``).
TABLE_COMMANDS = [
    ("api-client", "create", "shop", "--scope", "ingest"),
    ("api-client", "list"),
    ("api-client", "revoke", "shop"),
    ("import", "-"),
    ("demo-data",),
    ("worker", "--once"),
    ("purge-secrets",),
]
NOT_MIGRATED = re.compile(
    r"Error: the database is at revision (\S+), this version needs (\S+): "
    r"run `recovery db upgrade`\n"
)


def run_on(database_url, *args):
    """``recovery ARGS`` in an app of its own on ``database_url`` (not the test's database)."""
    app = make_app(database_url)
    with app.app_context():
        try:
            return app.test_cli_runner().invoke(args=list(args), input=f"{account('c-1')}\n")
        finally:
            db.session.close()  # the command ran in this app context: its session is this one
            db.dispose()


@pytest.mark.parametrize("args", TABLE_COMMANDS, ids=" ".join)
def test_a_command_on_a_database_never_migrated_says_to_migrate_it(empty_database_url, args):
    result = run_on(empty_database_url, *args)

    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert result.exit_code == 1
    assert result.stdout == ""
    assert NOT_MIGRATED.fullmatch(result.stderr), result.stderr
    assert NOT_MIGRATED.fullmatch(result.stderr).group(1) == "none"


def test_a_command_on_a_database_behind_the_migrations_says_to_upgrade_it(empty_database_url):
    migrate.upgrade(empty_database_url)
    migrate.downgrade(empty_database_url, "-1")  # the previous release's schema

    behind = run_on(empty_database_url, "api-client", "list")

    assert behind.exit_code == 1
    at, needed = NOT_MIGRATED.fullmatch(behind.stderr).groups()
    assert at not in ("none", needed)
    assert run_on(empty_database_url, "db", "upgrade").exit_code == 0  # db itself is never refused
    upgraded = run_on(empty_database_url, "api-client", "list")
    assert (upgraded.exit_code, upgraded.stderr) == (0, "")


def test_a_database_a_newer_release_migrated_is_only_warned_about(empty_database_url):
    """An older worker during a deploy, or a rolled-back release: releases add to the schema, so
    the command runs, saying so; ``db upgrade`` could not help (it does not know that revision)."""
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'f0f0f0f0f0f0'")
    finally:
        engine.dispose()

    result = run_on(empty_database_url, "api-client", "list")

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: the database is at revision f0f0f0f0f0f0, newer than this version "
        f"({', '.join(sorted(migrate.heads()))})\n"
    )


def test_a_database_it_cannot_reach_is_one_line(tmp_path):
    result = run_on(
        f"sqlite:///{tmp_path / 'no-such-folder' / 'recovery.db'}", "api-client", "list"
    )

    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert result.exit_code == 1
    assert result.stderr == "Error: cannot reach the database: unable to open database file\n"


def test_the_migrations_have_one_head():
    """``recovery db upgrade`` (to ``head``) is the advice the commands give."""
    assert len(migrate.heads()) == 1


def test_a_command_that_waits_for_the_database_starts_without_it(tmp_path):
    """``recovery worker`` (without --once) starts and waits an outage out in its loop."""
    ran = []
    app = make_app(f"sqlite:///{tmp_path / 'no-such-folder' / 'recovery.db'}")
    app.cli.add_command(
        TableCommand("waits", callback=lambda: ran.append(True), waits_for_database=lambda p: True)
    )
    with app.app_context():
        try:
            result = app.test_cli_runner().invoke(args=["waits"])
        finally:
            db.session.close()
            db.dispose()
    assert (result.exit_code, ran) == (0, [True]), result.output
