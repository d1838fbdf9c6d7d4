"""Concurrent writers on PostgreSQL: races end in a clear answer, never a 500 or a half-write."""

import threading

import pytest
from sqlalchemy import func, select

from recovery.accounts.models import Identity
from recovery.clients.models import Scope
from recovery.clients.services import ApiClientService
from recovery.db import db

pytestmark = pytest.mark.postgres

WRITERS = 8


def test_concurrent_claims_of_one_identity_store_it_once(committed_app):
    with committed_app.app_context():
        service = ApiClientService(db.session)
        keys = [service.create(f"shop-{i}", [Scope.INGEST]).key for i in range(WRITERS)]
        db.session.commit()

    barrier = threading.Barrier(WRITERS)
    statuses: list[int] = []

    def claim(index: int) -> None:
        client = committed_app.test_client()
        barrier.wait()
        response = client.put(
            f"/api/v1/accounts/racer-{index}",
            json={"identities": [{"kind": "email", "value": "shared@example.com"}]},
            headers={"Authorization": f"Bearer {keys[index]}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [201] + [409] * (WRITERS - 1)
    with committed_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Identity)) == 1
