"""When the importer tries its "all new" fast path: backing off while it fails."""

from recovery.ingest.services import Optimism


def test_optimism_backs_off_after_failures_and_returns_after_a_success():
    optimism = Optimism()
    answers = iter([None, None, None, ["ok"], None])
    tried = []

    def create_all(records):
        tried.append(records)
        return next(answers)

    results = [optimism.attempt(create_all, [n]) for n in range(12)]

    # Fails at 0; waits 1 (1); fails at 2; waits 2 (3, 4); fails at 5; waits 4 (6-9);
    # succeeds at 10; so tries again at once at 11, which fails.
    assert [records[0] for records in tried] == [0, 2, 5, 10, 11]
    assert results[10] == ["ok"]
    assert results.count(None) == 11
