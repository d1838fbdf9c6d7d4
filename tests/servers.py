"""Are the test servers reachable? ``python -m tests.servers PG_URL REDIS_URL`` exits 0 if both are.

The Makefile asks before the PostgreSQL + Redis run on a developer's machine; CI never asks, it runs.
"""

from __future__ import annotations

import sys

import redis
import sqlalchemy


def reachable(database_url: str, redis_url: str) -> bool:
    try:
        engine = sqlalchemy.create_engine(database_url, connect_args={"connect_timeout": 2})
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        engine.dispose()
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception:
        return False
    return True


if __name__ == "__main__":
    sys.exit(0 if reachable(sys.argv[1], sys.argv[2]) else 1)
