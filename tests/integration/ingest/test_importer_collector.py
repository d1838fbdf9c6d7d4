"""The importer sets the objects that existed before it aside from the cycle collector, only while
it runs: afterwards, finished or abandoned, the process collects them as before."""

import gc
import json

import pytest

from recovery.db import db
from recovery.ingest.services import Importer


def lines(count):
    for n in range(count):
        line = {"type": "account", "account_id": f"gc{n}", "identities": []}
        yield json.dumps(line).encode() + b"\n"


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_from_before_the_import_are_set_aside_while_it_runs(app, unfrozen):
    importer = Importer(db.session, batch_size=2)
    frozen_during = []
    for _summary in importer.run(lines(5)):
        frozen_during.append(gc.get_freeze_count())
    assert all(count > 0 for count in frozen_during)
    assert gc.get_freeze_count() == 0
    assert importer.summary.accepted == 5


def test_an_abandoned_import_gives_them_back(app, unfrozen):
    running = Importer(db.session, batch_size=2).run(lines(5))
    next(running)
    assert gc.get_freeze_count() > 0
    running.close()
    assert gc.get_freeze_count() == 0
