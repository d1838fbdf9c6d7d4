"""When the importer tries its "all new" fast path: backing off while it fails."""

from recovery.ingest.services import Optimism


def test_optimism_backs_off_after_failures_and_returns_after_a_success():
    optimism = Optimism()
    outcomes = iter([False, False, False, True, False])
    tried = []
    for batch in range(12):
        if optimism.should_try():
            tried.append(batch)
            optimism.tried(next(outcomes))

    # Fails at 0; waits 1 (1); fails at 2; waits 2 (3, 4); fails at 5; waits 4 (6-9);
    # succeeds at 10; so tries again at once at 11, which fails.
    assert tried == [0, 2, 5, 10, 11]


def test_optimism_waits_at_most_max_wait_batches():
    optimism = Optimism()
    for _ in range(20):
        while not optimism.should_try():
            pass
        optimism.tried(False)
    waited = 0
    while not optimism.should_try():
        waited += 1
    assert waited == Optimism.MAX_WAIT
