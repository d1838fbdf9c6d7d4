"""The thinnest Flask app that answers like the reset-request endpoint: the yardstick of bench/forgot.py.

``POST /api/v1/recovery/email`` with ``{"email": ...}`` runs one indexed SELECT (the unique
``(kind, value)`` index of ``identity``) on the service's database and answers 202 with a fixed
body, whether or not the address matched. No validation, no ORM, no rate limiting, no writes: it is
the floor that Flask, gunicorn and one PostgreSQL round trip put under any endpoint.

Served the same way as the service (``bench/forgot.py`` starts it)::

    RECOVERY_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/recovery_bench_... \\
        .venv/bin/gunicorn -w 2 -k sync -b 127.0.0.1:8001 bench.thin_app:app

Each gunicorn sync worker serves one request at a time, so one psycopg connection per worker
process (opened on the first request, after the fork; autocommit, so no transaction is left open)
is all it needs. psycopg prepares the statement server-side after a few executions.
"""

from __future__ import annotations

import os

import psycopg
from flask import Flask, Response, request

QUERY = (
    "SELECT account_id FROM identity "
    "WHERE kind = 'email' AND value = %s AND verified_at IS NOT NULL"
)
BODY = b'{"message":"accepted"}'

app = Flask(__name__)
_connection: psycopg.Connection[tuple[int]] | None = None


def _conninfo() -> str:
    url = os.environ["RECOVERY_DATABASE_URL"]
    scheme, sep, rest = url.partition("://")
    # SQLAlchemy spells the driver into the scheme; libpq wants a plain postgresql:// URL.
    return f"postgresql{sep}{rest}" if scheme.startswith("postgres") else url


def _cursor() -> psycopg.Cursor[tuple[int]]:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(_conninfo(), autocommit=True)
    return _connection.cursor()


@app.post("/api/v1/recovery/email")
def request_email_reset() -> Response:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    with _cursor() as cursor:
        cursor.execute(QUERY, (str(email or "").strip().lower(),))
        cursor.fetchone()
    return Response(BODY, status=202, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', mimetype="application/json")
