"""Account public ids: UUIDv7, so a bulk import appends to their unique index."""

import time
import uuid

from recovery.accounts.models import new_public_id


def test_a_public_id_is_a_version_7_uuid_carrying_its_creation_time():
    before = time.time_ns() // 1_000_000
    public_id = new_public_id()
    after = time.time_ns() // 1_000_000

    assert public_id.version == 7 and public_id.variant == uuid.RFC_4122
    assert before <= public_id.int >> 80 <= after


def test_ids_of_later_milliseconds_sort_after_earlier_ones():
    first = new_public_id()
    time.sleep(0.002)
    second = new_public_id()

    assert first < second and str(first) < str(second)


def test_public_ids_do_not_repeat():
    ids = {new_public_id() for _ in range(10_000)}  # mostly within the same millisecond

    assert len(ids) == 10_000
