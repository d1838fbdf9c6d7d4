"""Rate limits hold across service instances that share Redis (two real server processes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.conftest import REDIS_URL, TEST_SECRET_KEYS, empty_tables

pytestmark = pytest.mark.redis

SERVER = """
import sys
from werkzeug.serving import make_server
from wsgi import app
make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_instances(database_url):
    env = {
        **os.environ,
        "RECOVERY_DATABASE_URL": database_url,
        "RECOVERY_SECRET_KEYS": ",".join(TEST_SECRET_KEYS),
        "RECOVERY_RATELIMIT_STORAGE_URI": REDIS_URL or "",
        "RECOVERY_RATELIMIT_KEY_PREFIX": f"shared-{uuid.uuid4().hex[:8]}",
        "RECOVERY_RESET_RATE_LIMIT_PER_IDENTIFIER": "3 per minute",
        "RECOVERY_UNKNOWN_ADDRESS_MAIL": "false",
    }
    ports = [_free_port(), _free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port)],
            env=env,
            cwd=os.getcwd(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 20
        for base in bases:
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the service at {base} did not start")
                time.sleep(0.1)
        yield bases
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        empty_tables(database_url)  # their requests committed flows and tasks


def test_the_identifier_limit_is_shared_by_two_processes(two_instances):
    first, second = two_instances
    statuses = [
        httpx.post(
            f"{base}/api/v1/recovery/email", json={"email": "shared@example.com"}
        ).status_code
        for base in (first, second, first, second, first)
    ]
    assert statuses == [202, 202, 202, 429, 429]
