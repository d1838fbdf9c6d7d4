"""The importer tunes the cycle collector only while it runs: the objects that existed before are set
aside and full collections are rarer; afterwards, finished or abandoned, the process collects as
before. Validating workers keep the tuning for their whole (import-only) life."""

import gc
import json

import pytest

from recovery.db import db
from recovery.ingest import services
from recovery.ingest.services import BULK_FULL_COLLECTION_THRESHOLD, Importer


def lines(count):
    for n in range(count):
        line = {"type": "account", "account_id": f"gc{n}", "identities": []}
        yield json.dumps(line).encode() + b"\n"


@pytest.fixture
def unfrozen():
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield threshold
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_objects_from_before_the_import_are_set_aside_while_it_runs(app, unfrozen):
    importer = Importer(db.session, batch_size=2)
    during = []
    for _summary in importer.run(lines(5)):
        during.append((gc.get_freeze_count(), gc.get_threshold()))
    assert len(during) == 3
    for frozen, threshold in during:
        assert frozen > 0
        assert threshold[:2] == unfrozen[:2]
        assert threshold[2] >= BULK_FULL_COLLECTION_THRESHOLD
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == unfrozen
    assert importer.summary.accepted == 5


def test_an_abandoned_import_gives_them_back(app, unfrozen):
    running = Importer(db.session, batch_size=2).run(lines(5))
    next(running)
    assert gc.get_freeze_count() > 0
    running.close()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == unfrozen


def test_an_import_that_fails_gives_them_back(app, unfrozen):
    def failing():
        yield from lines(3)
        raise OSError("the upload was cut off")

    with pytest.raises(OSError, match="cut off"):
        list(Importer(db.session, batch_size=2).run(failing()))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == unfrozen


def test_validating_workers_run_with_the_tuned_collector(monkeypatch):
    monkeypatch.setattr(services, "CHUNK_LINES", 2)
    pools = []
    real = services.ProcessPoolExecutor

    def recording(*args, **kwargs):
        pools.append(real(*args, **kwargs))
        return pools[-1]

    monkeypatch.setattr(services, "ProcessPoolExecutor", recording)
    running = services.checked_lines(list(lines(6)), workers=2)
    next(running)  # the pool is up while the lines are being checked
    (pool,) = pools
    try:
        assert pool.submit(gc.get_freeze_count).result() > 0
        assert pool.submit(gc.get_threshold).result()[2] >= BULK_FULL_COLLECTION_THRESHOLD
    finally:
        running.close()
