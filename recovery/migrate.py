"""Alembic, driven from code: ``recovery db upgrade`` and the migration tests use these."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config for ``url`` (or an open ``connection``), without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def heads() -> set[str]:
    """The newest revisions of the migrations: the schema this version of the code uses."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current(connection: Connection) -> set[str]:
    """The revisions the database on ``connection`` is at; none before its first migration."""
    # Alembic announces its context at INFO whenever one is made: before every command that
    # only asks, that is noise on the operator's terminal.
    announcer = logging.getLogger("alembic.runtime.migration")
    level = announcer.level
    announcer.setLevel(logging.WARNING)
    try:
        return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        announcer.setLevel(level)
