"""Planner statistics that keep up with an import (PostgreSQL).

The importer looks each batch's keys up in the tables it fills, and PostgreSQL plans those look-ups
from the tables' statistics. An import fills a table faster than autovacuum's ANALYZE follows (it
wakes once a minute; some servers run without it): the planner then believes a table of a million
rows to be the few pages it was, and plans a scan that compares every row with every key of the
batch, so each batch costs more than the last. ``Statistics`` ANALYZEs a table whenever the rows an
import has added to it outnumber what its statistics describe: a dozen times for a million rows,
each a fixed-size sample of the table.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from recovery.db import is_postgresql

#: Rows added before a table's first ANALYZE: below this, any plan is fast.
MIN_ROWS = 5000


class Statistics:
    """Counts the rows an import adds to each table and ANALYZEs the tables that outgrew their
    statistics (in the import's transaction, so they commit with its batch)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.enabled = is_postgresql(session)
        self.added: dict[str, int] = {}
        self.described: dict[str, float] = {}  # pg_class.reltuples when last looked at

    def add(self, tables: Iterable[str], rows: int) -> None:
        """``rows`` were added to (each of) ``tables``."""
        for name in tables:
            self.added[name] = self.added.get(name, 0) + rows

    def refresh(self) -> None:
        """ANALYZE the tables whose added rows outnumber what their statistics describe."""
        if not self.enabled:
            return
        unknown = [name for name in self.added if name not in self.described]
        if unknown:
            self.described.update(self._reltuples(unknown))
        stale = [
            name
            for name, added in self.added.items()
            if added >= max(MIN_ROWS, self.described[name])
        ]
        for name in stale:
            # A table name from the models, never from input.
            self.session.execute(text(f'ANALYZE "{name}"'))
            self.added[name] = 0
        if stale:
            self.described.update(self._reltuples(stale))

    def _reltuples(self, names: list[str]) -> dict[str, float]:
        """What the statistics of ``names`` describe: their row estimates (-1 if never analysed)."""
        rows = self.session.execute(
            text(
                "SELECT name, coalesce((SELECT reltuples FROM pg_class "
                "WHERE oid = to_regclass(quote_ident(name))), 0) "
                "FROM unnest(CAST(:names AS text[])) AS name"
            ),
            {"names": names},
        )
        return {str(name): max(float(tuples), 0.0) for name, tuples in rows}
