"""Fixed-window rate-limit counters in this process's memory: the embedded ``memory://`` storage.

The ``limits`` library's own memory storage expires its counters by scanning every key, from a
timer thread started anew every 10 ms while requests come in. A reset request keys a counter by its
identifier, and an identifier's counter lives for the longest window (a day by default), so the
keys pile up: at 30,000 of them each scan took 9 ms, and under load a worker spent most of its time
scanning. Here a counter is dropped when a later call finds its window over (a heap ordered by
expiry, so each call looks at the counters that have just expired, not at all of them) and there
is no thread at all.

Only the fixed window is supported, which is the strategy ``create_app`` configures. Counters are
per process: with more than one worker, use Redis (``RECOVERY_RATELIMIT_STORAGE_URI``).
"""

from __future__ import annotations

import heapq
import threading
import time

from limits.storage import Storage

#: What ``create_app`` hands Flask-Limiter for the setting ``memory://``.
URI = "recovery-memory://"


class MemoryCounters(Storage):
    STORAGE_SCHEME = ["recovery-memory"]  # noqa: RUF012 (the base class declares it, the registry reads it)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, window ends at)
        self._ends: list[tuple[float, str]] = []  # (window ends at, key), a heap

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def incr(self, key: str, expiry: int | float, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            self._expire(now)
            count, ends = self._counters.get(key, (0, now))
            if ends <= now:  # a new window
                count, ends = 0, now + expiry
                heapq.heappush(self._ends, (ends, key))
            count += amount
            self._counters[key] = (count, ends)
            return count

    def decr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            count, ends = self._counters.get(key, (0, 0.0))
            if ends <= time.time():
                return 0
            count = max(count - amount, 0)
            self._counters[key] = (count, ends)
            return count

    def get(self, key: str) -> int:
        count, ends = self._counters.get(key, (0, 0.0))
        return count if ends > time.time() else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        _, ends = self._counters.get(key, (0, now))
        return ends if ends > now else now

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            dropped = len(self._counters)
            self._counters.clear()
            self._ends.clear()
            return dropped

    def clear(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)  # its heap entry goes when its time comes

    def _expire(self, now: float) -> None:
        """Drop the counters whose window is over (the lock is held)."""
        ends = self._ends
        while ends and ends[0][0] <= now:
            end, key = heapq.heappop(ends)
            entry = self._counters.get(key)
            if entry is not None and entry[1] == end:  # not since restarted in a new window
                del self._counters[key]
