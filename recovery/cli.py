"""The ``recovery`` command: ``db upgrade``, ``api-client create``, ``import``, ``demo-data``, ...

Each command is a unit of work: it calls services and commits once at the end (or per batch).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import IO, Any

import click
from alembic.util import CommandError
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy.exc import SQLAlchemyError

from recovery import migrate
from recovery.clients.models import Scope
from recovery.clients.services import ApiClientService
from recovery.db import db
from recovery.errors import RecoveryError


def register(app: Flask) -> None:
    app.cli.add_command(purge_secrets_command)
    app.cli.add_command(db_group)
    app.cli.add_command(api_client_group)
    app.cli.add_command(import_command)
    app.cli.add_command(demo_data_command)
    app.cli.add_command(worker_command)


class TableCommand(click.Command):
    """A command that uses the tables. On a database the migrations have not brought to this
    version it stops before it starts, with one line saying what to run, instead of the traceback
    of its first query ("no such table", "relation does not exist", a missing column). A database
    a newer release migrated is only warned about. A database it cannot reach is one line too,
    unless ``waits_for_database(params)`` says the command waits an outage out (the worker)."""

    def __init__(
        self,
        *args: Any,
        waits_for_database: Callable[[dict[str, Any]], bool] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.waits_for_database = waits_for_database

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with db.engine.connect() as connection:
                standing = migrate.standing(connection)
        except SQLAlchemyError as exc:
            if self.waits_for_database and self.waits_for_database(ctx.params):
                return super().invoke(ctx)
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(f"cannot reach the database: {reason}") from None
        heads = ", ".join(sorted(standing.heads))
        if standing.behind:
            raise click.ClickException(
                f"the database is at revision {standing.describe()}, this version needs "
                f"{heads}: run `recovery db upgrade`"
            )
        if standing.ahead:
            click.echo(
                f"warning: the database is at revision {standing.describe()}, newer than this "
                f"version ({heads})",
                err=True,
            )
        return super().invoke(ctx)


class TableGroup(click.Group):
    """A group whose commands are each a ``TableCommand`` (its ``--help`` needs no database)."""

    command_class = TableCommand


@click.group("db", help="Database schema (Alembic migrations).")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Apply migrations up to REVISION (default: the newest).")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    with _revision_named(revision):
        migrate.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade", help="Revert migrations down to REVISION ('base' empties it).")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    with _revision_named(revision):
        migrate.downgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@contextlib.contextmanager
def _revision_named(revision: str) -> Iterator[None]:
    """Alembic's refusal of a revision it does not know, as one line instead of a traceback."""
    try:
        yield
    except CommandError as exc:
        raise click.ClickException(f"{revision}: {exc}") from None


@click.group("api-client", cls=TableGroup, help="Service-to-service API keys.")
def api_client_group() -> None:
    pass


@api_client_group.command("create", help="Create a client and print its key (shown only once).")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([s.value for s in Scope]),
    help="What the key may do; repeat for several.",
)
def api_client_create(name: str, scopes: tuple[str, ...]) -> None:
    try:
        with db.transaction() as session:
            issued = ApiClientService(session).create(name, [Scope(s) for s in scopes])
    except RecoveryError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"API client {name!r} with scopes {', '.join(issued.client.scopes)}.")
    click.echo("Its key, shown only now (send it as 'Authorization: Bearer <key>'):", err=True)
    click.echo(issued.key)


@api_client_group.command("list", help="List the clients (never their keys).")
def api_client_list() -> None:
    for client in ApiClientService(db.session).list():
        state = "revoked" if client.revoked_at else "active"
        click.echo(f"{client.name}\t{','.join(client.scopes)}\t{state}\trk_{client.key_prefix}_…")


@api_client_group.command("revoke", help="Revoke a client's key at once.")
@click.argument("name")
def api_client_revoke(name: str) -> None:
    try:
        with db.transaction() as session:
            ApiClientService(session).revoke(name)
    except RecoveryError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"revoked {name!r}")


@click.command(
    "import",
    cls=TableCommand,
    help="Import accounts and orders from an NDJSON FILE ('-' for stdin).",
)
@click.argument("file", type=click.File("rb"))
def import_command(file: IO[bytes]) -> None:
    from recovery.ingest.services import Importer

    config = current_app.config
    importer = Importer(db.session, config["IMPORT_BATCH_SIZE"], config["IMPORT_WORKERS"])
    size = _size(file)
    with click.progressbar(length=size or 0, label="importing", hidden=size is None) as bar:
        for _ in importer.run(_lines(file, bar.update)):
            db.session.commit()  # a batch boundary: durable progress, flat memory
    summary = importer.summary
    click.echo(
        f"{summary.lines} lines: {summary.accepted} accepted ({summary.created} created, "
        f"{summary.updated} updated, {summary.unchanged} unchanged), {summary.rejected} rejected"
    )
    for error in summary.errors:
        click.echo(f"line {error.line}: {error.error.code}: {error.error.detail}", err=True)
    if summary.errors_truncated:
        click.echo(f"... and {summary.rejected - len(summary.errors)} more", err=True)
    if summary.rejected:
        raise SystemExit(1)


def _size(file: IO[bytes]) -> int | None:
    """The file's size for the progress bar; ``None`` for pipes and empty files."""
    try:
        return os.fstat(file.fileno()).st_size or None
    except (OSError, ValueError):
        return None


def _lines(file: IO[bytes], advance: Callable[[int], None]) -> Iterator[bytes]:
    from recovery.ingest.services import bounded_lines

    for line in bounded_lines(file):
        advance(len(line))
        yield line


@click.command("demo-data", cls=TableCommand, help="Load the demo personas (safe to run again).")
def demo_data_command() -> None:
    from recovery.demo import load

    if current_app.config["ENV"] == "production":
        # The personas' passwords are published in the README: anyone could sign in as them.
        raise click.ClickException("demo data is for development; RECOVERY_ENV is production")
    with db.transaction() as session:
        personas = load(session)
    click.echo("Demo personas, one per branch of the recovery tree:")
    for persona in personas:
        click.echo(f"  - {persona.title}: {persona.how_to_try}")
    click.echo(
        "Find them with POST /api/v1/resolve; make a key first with\n"
        "  recovery api-client create me --scope ingest --scope resolve"
    )


@click.command(
    "worker",
    cls=TableCommand,
    waits_for_database=lambda params: not params["once"],  # run_forever waits an outage out
    help="Run the outbox: tasks, mail and webhooks, with retries and backoff.",
)
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=None,
    help="Seconds to wait when nothing is due (default: RECOVERY_OUTBOX_POLL_INTERVAL).",
)
def worker_command(once: bool, interval: float | None) -> None:
    from providers.mail import MailboxTransport, MailTransport, SmtpTransport
    from providers.webhooks import HttpWebhookSender
    from recovery.outbox.settings import DeliverySettings
    from recovery.outbox.worker import Worker
    from recovery.wiring import intakes, task_handlers

    settings = DeliverySettings.from_config(current_app.config)
    mail: MailTransport
    if settings.mail_transport == "smtp" and settings.smtp_url:
        mail = SmtpTransport(settings.smtp_url)
    else:
        mail = MailboxTransport()
    webhooks = HttpWebhookSender()
    worker = Worker(db.sessions, mail, webhooks, settings, tasks=task_handlers(), intakes=intakes())
    try:
        if once:
            worker.run_until_idle()
            stats = worker.stats
            click.echo(f"{stats.sent} sent, {stats.retried} to retry, {stats.dead} dead")
            if stats.intake_failures:  # work may wait that this run never saw
                raise click.ClickException(
                    f"taking in waiting work failed {stats.intake_failures} time(s): see the log"
                )
        else:
            worker.run_forever(interval)
    finally:
        webhooks.close()


@click.command(
    "purge-secrets",
    cls=TableCommand,
    help="Delete links, codes and tickets that expired a day ago.",
)
def purge_secrets_command() -> None:
    """Run it hourly (cron, a systemd timer): decoys and expired secrets otherwise pile up."""
    from recovery.wiring import secret_service

    with db.transaction():
        removed = secret_service().purge()
    click.echo(f"purged {removed} expired secrets")


def main() -> None:
    from recovery import create_app
    from recovery.config import ConfigError

    def build() -> Flask:
        try:
            return create_app()
        except ConfigError as exc:  # the setting's name and what is wrong, not a traceback
            raise click.ClickException(str(exc)) from None

    FlaskGroup(create_app=build, add_version_option=False)(prog_name="recovery")
