"""Alembic, driven from code: ``recovery db upgrade`` and the migration tests use these."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
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
    return set(_scripts().get_heads())


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


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a database stands against this version's migrations."""

    at: frozenset[str]  # its revisions, none before the first migration
    heads: frozenset[str]  # this version's newest
    unknown: frozenset[str]  # its revisions this version does not know

    @property
    def behind(self) -> bool:
        """It lacks migrations this version has (never migrated, or by an older release)."""
        return self.at != self.heads and not self.ahead

    @property
    def ahead(self) -> bool:
        """A newer release migrated it: revisions this version does not know. Releases add to
        the schema, so this version's commands still run (an older worker during a deploy)."""
        return bool(self.unknown)

    def describe(self) -> str:
        return ", ".join(sorted(self.at)) or "none"


def standing(connection: Connection) -> Standing:
    """The database's ``Standing``, reading the migration scripts once."""
    scripts = _scripts()
    at = frozenset(current(connection))
    unknown = frozenset(revision for revision in at if not _known(scripts, revision))
    return Standing(at, frozenset(scripts.get_heads()), unknown)


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False
