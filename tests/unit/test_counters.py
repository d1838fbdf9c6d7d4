"""The embedded rate-limit storage: fixed windows, expired lazily, no thread."""

import threading

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from recovery import counters
from recovery.counters import MemoryCounters


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(counters.time, "time", clock)
    return clock


def test_counts_within_a_window_and_starts_again_after_it(clock):
    storage = MemoryCounters()
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and storage.get_expiry("k") == clock.now + 60

    clock.now += 59.9
    assert storage.incr("k", 60) == 4  # the same window
    clock.now += 0.1
    assert storage.get("k") == 0
    assert storage.incr("k", 60, amount=2) == 2
    assert storage.get_expiry("k") == clock.now + 60


def test_counters_whose_window_is_over_are_dropped_by_later_calls(clock):
    storage = MemoryCounters()
    for n in range(1000):
        storage.incr(f"short-{n}", 10)
    storage.incr("long", 100)
    clock.now += 10
    storage.incr("another", 10)
    assert set(storage._counters) == {"long", "another"}
    assert [end for end, _ in storage._ends] == sorted([clock.now - 10 + 100, clock.now + 10])


def test_a_counter_restarted_in_a_new_window_is_not_dropped_with_its_old_one(clock):
    storage = MemoryCounters()
    storage.incr("k", 10)
    storage.clear("k")  # its old heap entry stays behind
    clock.now += 5
    storage.incr("k", 10)
    clock.now += 5  # the old window's end
    storage.incr("other", 10)
    assert storage.get("k") == 1


def test_decrement_clear_and_reset(clock):
    storage = MemoryCounters()
    storage.incr("a", 60, amount=3)
    storage.incr("b", 60)
    assert storage.decr("a") == 2 and storage.decr("a", 5) == 0
    assert storage.decr("missing") == 0
    storage.clear("b")
    assert storage.get("b") == 0
    assert storage.reset() == 1 and storage.get("a") == 0
    assert storage.check()


def test_no_thread_is_started(clock):
    before = threading.active_count()
    storage = MemoryCounters()
    for n in range(100):
        storage.incr(f"k{n}", 1)
        clock.now += 0.5
    assert threading.active_count() == before


def test_it_is_what_the_limits_library_builds_for_its_uri_and_limits_like_the_original(clock):
    storage = storage_from_string(counters.URI)
    assert isinstance(storage, MemoryCounters)
    limiter = FixedWindowRateLimiter(storage)
    five = parse("5/minute")
    assert [limiter.hit(five, "ip", "1.2.3.4") for _ in range(6)] == [True] * 5 + [False]
    stats = limiter.get_window_stats(five, "ip", "1.2.3.4")
    assert stats.remaining == 0 and stats.reset_time == pytest.approx(clock.now + 60)
    clock.now += 60
    assert limiter.hit(five, "ip", "1.2.3.4")
