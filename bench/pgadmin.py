"""What the benchmarks share: a PostgreSQL server URL and statements run outside a transaction."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url


def server_url(raw: str) -> URL:
    """``raw`` as a psycopg 3 URL; anything but PostgreSQL stops the benchmark."""
    url = make_url(raw)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    if not url.drivername.startswith("postgresql"):
        raise SystemExit(f"--database-url must be a PostgreSQL URL, got {url.drivername!r}")
    return url


def admin_execute(admin: URL | str, statement: str) -> None:
    """Run ``statement`` with autocommit (CREATE/DROP DATABASE cannot run in a transaction)."""
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()
