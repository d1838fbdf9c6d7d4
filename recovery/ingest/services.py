"""The importer: NDJSON lines of accounts and orders, validated one by one, written in batches.

A bad line is reported with its number and never keeps the good lines around it out. The importer
never commits: it yields after each batch so the caller (the API request or the CLI command) commits
there, keeping memory flat and progress durable on imports of millions of lines.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import itertools
import logging
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Annotated, Any, Literal

from pydantic import Field, RootModel, TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery.accounts.models import Account, Identity
from recovery.accounts.schemas import AccountData, AccountRecord
from recovery.accounts.services import AccountService, PreparedAccount, prepare
from recovery.db import AllOrNothing
from recovery.errors import (
    Conflict,
    FieldError,
    MalformedRequest,
    RecoveryError,
    ValidationFailed,
)
from recovery.ingest.statistics import Statistics
from recovery.orders.models import Order
from recovery.orders.schemas import OrderData, OrderRecord
from recovery.orders.services import OrderService
from recovery.validation import validate_json

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 1000
MAX_LINE_BYTES = 64 * 1024


class AccountLine(AccountRecord):
    type: Literal["account"]


class OrderLine(OrderRecord):
    type: Literal["order"]


class ImportLine(RootModel[Annotated[AccountLine | OrderLine, Field(discriminator="type")]]):
    """One line of an NDJSON import: an account or an order, told apart by ``type``."""


LINE: TypeAdapter[ImportLine] = TypeAdapter(ImportLine)


@dataclass(slots=True)
class LineError:
    line: int
    error: RecoveryError

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "line": self.line,
            "code": self.error.code,
            "detail": self.error.detail,
        }
        if isinstance(self.error, ValidationFailed):
            body["errors"] = [e.as_dict() for e in self.error.errors]
        return body


@dataclass(slots=True)
class Summary:
    lines: int = 0
    accepted: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def errors_truncated(self) -> bool:
        return self.rejected > len(self.errors)

    def reject(self, line: int, error: RecoveryError) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(LineError(line, error))

    def accept(self, result: str) -> None:
        self.accepted += 1
        setattr(self, result, getattr(self, result) + 1)


def bounded_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of ``stream``, each read with a bounded buffer: a line over ``MAX_LINE_BYTES`` is
    cut short (and so refused by the importer) and its rest skipped, so one endless line cannot
    exhaust memory. A UTF-8 byte order mark in front of the first line (spreadsheet exports
    write one) is dropped."""
    cap = MAX_LINE_BYTES + 2  # room for "\r\n"
    first = True
    while line := stream.readline(cap):
        if len(line) == cap and not line.endswith(b"\n"):
            while (rest := stream.readline(cap)) and not rest.endswith(b"\n"):
                pass
        if first:
            first = False
            line = line.removeprefix(codecs.BOM_UTF8)
        yield line


#: What checking one line gives: its data, the error that refuses it, or None for a blank line.
Checked = PreparedAccount | OrderData | RecoveryError | None
#: What the importer writes: an account or an order.
Record = PreparedAccount | OrderData

#: Lines each worker process validates at a time; an input shorter than this is checked in-process.
CHUNK_LINES = 2000

#: The cycle collector's third threshold while importing: full collections that many times rarer.
BULK_FULL_COLLECTION_THRESHOLD = 1000


@contextlib.contextmanager
def bulk_collection() -> Iterator[None]:
    """The cycle collector tuned for a bulk import in this process, for the ``with`` block.

    An import allocates tens of thousands of containers a batch, so the collector runs often, and
    each full collection walked every object the process had before (the app, SQLAlchemy, pydantic
    and phonenumbers metadata) and every record waiting in a batch or a worker's answer: four tenths
    of the writing process's time, a quarter of a validating worker's. Those older objects are set
    aside (``gc.freeze``) and full collections run a hundred times less often; the young
    generations, where an import's cyclic garbage dies, are collected as usual, so memory stays
    flat. Both are undone afterwards.
    """
    threshold = _tune_collector()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _tune_collector() -> tuple[int, int, int]:
    """``bulk_collection``'s tuning; the thresholds it replaced."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold[0], threshold[1], max(threshold[2], BULK_FULL_COLLECTION_THRESHOLD))
    return threshold


def _start_worker() -> None:
    """A validating worker's initializer: it does nothing but bulk work, so the collector is tuned
    for its whole life (``bulk_collection``)."""
    _tune_collector()


def check_line(raw: bytes) -> Checked:
    """Validate one raw NDJSON line (``None`` if it is blank).

    An account comes back prepared (``accounts.services.prepare``): what its write derives from the
    record alone (masked identities above all, which parse phone numbers again) is then computed
    where the line is checked, in the worker processes when there are any, not in the writer.
    """
    if not raw.strip():
        return None
    if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
        too_long = FieldError("line", f"longer than {MAX_LINE_BYTES} bytes", "too_long")
        return ValidationFailed([too_long])
    try:
        data: AccountData | OrderData = validate_json(LINE, raw, drop=1).root.data()
        return prepare(data) if isinstance(data, AccountData) else data
    except RecoveryError as exc:
        return exc
    except Exception:
        # A line that trips a fault of ours must not end an import of millions: it is refused by
        # number like any bad line, and the fault is logged for us to mend.
        log.exception("import line could not be checked")
        return ValidationFailed([FieldError("line", "could not be read", "unreadable")])


# Between processes an error travels as plain values: exceptions pickle by calling the class with
# ``args``, which ``ValidationFailed.__init__`` does not take.
_WireError = tuple[str, str, list[tuple[str, str, str]]]
_Wire = PreparedAccount | OrderData | _WireError | None


def _to_wire(checked: Checked) -> _Wire:
    if isinstance(checked, ValidationFailed):
        fields = [(e.field, e.message, e.code) for e in checked.errors]
        return ("validation_failed", checked.detail, fields)
    if isinstance(checked, MalformedRequest):
        return ("malformed_request", checked.detail, [])
    if isinstance(checked, RecoveryError):  # validation raises only the two above
        raise TypeError(f"cannot send {type(checked).__name__} between processes")
    return checked


def _from_wire(sent: _Wire) -> Checked:
    if isinstance(sent, PreparedAccount | OrderData) or sent is None:
        return sent
    code, detail, fields = sent
    if code == "malformed_request":
        return MalformedRequest(detail)
    return ValidationFailed([FieldError(*field) for field in fields], detail)


def check_chunk(lines: list[bytes]) -> list[_Wire]:
    """``check_line`` for each of ``lines``, in a worker process (accounts come back prepared)."""
    return [_to_wire(check_line(raw)) for raw in lines]


def checked_lines(lines: Iterable[bytes], workers: int = 0) -> Iterator[tuple[int, Checked]]:
    """``(number, check_line(line))`` for each of ``lines`` in order, numbered from 1.

    With ``workers`` > 1 and more than ``CHUNK_LINES`` lines, chunks of lines are validated by that
    many worker processes while the caller works on the results of earlier chunks (validation,
    email and phone parsing above all, is most of an import's CPU time). The results are the same.
    The workers start from a fork server, which imports the program's main module again: a script
    that imports with workers must keep its work under ``if __name__ == "__main__":``.
    """
    numbered = enumerate(lines, start=1)
    first = list(itertools.islice(numbered, CHUNK_LINES))
    if workers <= 1 or len(first) < CHUNK_LINES:
        for number, raw in itertools.chain(first, numbered):
            yield number, check_line(raw)
        return
    # forkserver, not fork: the API may import from a threaded server, and a forked child of a
    # threaded process can inherit a lock held by another thread. The workers only validate.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker)
    try:
        pending: deque[tuple[int, Future[list[Any]]]] = deque()
        chunks = itertools.chain([first], _chunks(numbered))
        for chunk in chunks:
            pending.append((chunk[0][0], pool.submit(check_chunk, [raw for _, raw in chunk])))
            if len(pending) > 2 * workers:  # keep every worker busy, memory bounded
                yield from _results(*pending.popleft())
        while pending:
            yield from _results(*pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _chunks(numbered: Iterator[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    while chunk := list(itertools.islice(numbered, CHUNK_LINES)):
        yield chunk


def _results(first: int, future: Future[list[Any]]) -> Iterator[tuple[int, Checked]]:
    for number, sent in enumerate(future.result(), start=first):
        yield number, _from_wire(sent)


class Optimism:
    """When the importer tries a batch's "all new" fast path (``plan_create``) before the careful
    one (``upsert_many``).

    A first import is all new lines, and the fast path writes a batch in one statement with no
    look-ups first. A replay or an update of known accounts fails it every time, and each failure
    costs a statement that wrote nothing: after a failure the next attempt waits 1, 2, 4, ... up
    to ``MAX_WAIT`` batches, and a success makes it try every batch again.
    """

    MAX_WAIT = 64

    def __init__(self) -> None:
        self.failures = 0
        self.skip = 0

    def should_try(self) -> bool:
        """Whether to try the next batch's fast path (each call is one batch)."""
        if self.skip:
            self.skip -= 1
            return False
        return True

    def tried(self, succeeded: bool) -> None:
        if succeeded:
            self.failures = 0
        else:
            self.skip = min(2**self.failures, self.MAX_WAIT)
            self.failures += 1


#: One line's result: created/updated/unchanged, or the error that refused it.
Result = tuple[int, str | None, RecoveryError | None]


@dataclass(slots=True)
class _Run:
    """Consecutive lines of one type in a batch, with the fast write planned for them, if any."""

    lines: list[tuple[int, Record]]
    is_order: bool
    plan: AllOrNothing[Any] | None = None


@dataclass(slots=True)
class _Batch:
    runs: list[_Run]
    rejected: list[tuple[int, RecoveryError]]
    last_line: int
    writing: Future[int] | None = None  # the fast writes running: how many runs they wrote


class Importer:
    def __init__(self, session: Session, batch_size: int = 1000, workers: int = 0) -> None:
        """``workers``: processes validating lines (see ``checked_lines``); 0 or 1 for none."""
        self.session = session
        self.batch_size = batch_size
        self.workers = workers
        self.summary = Summary()
        self.statistics = Statistics(session)
        self.optimism = Optimism()

    def run(self, lines: Iterable[bytes]) -> Iterator[Summary]:
        """Import ``lines`` (1-based numbers in errors); yields the running summary after each batch."""
        with bulk_collection():
            yield from self._run(lines)

    def _run(self, lines: Iterable[bytes]) -> Iterator[Summary]:
        # The fast writes of a batch run in a helper thread while the next batch is read and
        # planned (building its statement is Python work the database need not wait for), so the
        # server is kept busy. The session is used by one thread at a time: the helper between
        # submit and result, this thread otherwise (careful writes, statistics, the caller's
        # commit after each yield).
        with ThreadPoolExecutor(1, thread_name_prefix="import-writer") as writer:
            previous: _Batch | None = None
            for batch in self._batches(lines):
                if previous is not None:
                    self._finish(previous)
                    yield self.summary
                if batch.runs and all(run.plan is not None for run in batch.runs):
                    batch.writing = writer.submit(self._write_planned, batch.runs)
                previous = batch
            if previous is not None:
                self._finish(previous)
        yield self.summary

    def _batches(self, lines: Iterable[bytes]) -> Iterator[_Batch]:
        """The lines in batches of ``batch_size`` records (the refused lines on the side), each
        run with its fast write planned when the optimism allows."""
        records: list[tuple[int, Record]] = []
        rejected: list[tuple[int, RecoveryError]] = []
        number = batched = 0
        for number, checked in checked_lines(lines, self.workers):
            if checked is None:
                continue
            if isinstance(checked, RecoveryError):
                rejected.append((number, checked))
                continue
            records.append((number, checked))
            if len(records) >= self.batch_size:
                yield self._batch(records, rejected, number)
                records, rejected, batched = [], [], number
        if number > batched:  # the rest, if only refused or blank lines
            yield self._batch(records, rejected, number)

    def _batch(
        self,
        records: list[tuple[int, Record]],
        rejected: list[tuple[int, RecoveryError]],
        last: int,
    ) -> _Batch:
        # Runs of accounts and of orders are written in the order of their lines: an order may
        # name an account from an earlier line, in this batch or before, never from a later one,
        # whatever the batch size (a file of accounts, then orders, is two runs at most).
        runs = [
            _Run(list(lines), is_order)
            for is_order, lines in itertools.groupby(
                records, key=lambda item: isinstance(item[1], OrderData)
            )
        ]
        if runs and self.optimism.should_try():
            for run in runs:
                run.plan = self._service(run).plan_create([r for _, r in run.lines])
        return _Batch(runs, rejected, last)

    def _service(self, run: _Run) -> Any:
        return OrderService(self.session) if run.is_order else AccountService(self.session)

    def _write_planned(self, runs: list[_Run]) -> int:
        """The helper thread's part: the planned writes in order, up to the first that fails
        (it wrote nothing); how many succeeded."""
        for done, run in enumerate(runs):
            assert run.plan is not None
            try:
                if run.plan.run(self.session) is None:
                    return done
            except IntegrityError:  # a concurrent writer; the careful path sorts it out
                return done
        return len(runs)

    def _finish(self, batch: _Batch) -> None:
        """Wait for the batch's fast writes, write the rest carefully, and count it all."""
        written = 0
        if batch.writing is not None:
            written = batch.writing.result()
            self.optimism.tried(written == len(batch.runs))
        results: list[Result] = [(number, None, error) for number, error in batch.rejected]
        for run in batch.runs[:written]:
            assert run.plan is not None
            results += self._counted(run, run.plan.outcomes)
        rest = [line for run in batch.runs[written:] for line in run.lines]
        if rest:
            results += self._write(rest)
        for number, result, error in sorted(results, key=lambda r: r[0]):
            if error is None:
                assert result is not None
                self.summary.accept(result)
            else:
                self.summary.reject(number, error)
        self.summary.lines = batch.last_line
        self.statistics.refresh()

    def _counted(self, run: _Run, outcomes: list[Any]) -> list[Result]:
        """The run's results; the rows it created are counted for the statistics."""
        created = sum(o.result == "created" for o in outcomes)
        if run.is_order:
            self.statistics.add((Order.__tablename__,), created)
        else:
            # Counted in accounts, identities (about two an account) are analysed a little later.
            self.statistics.add((Account.__tablename__, Identity.__tablename__), created)
        return [(n, o.result, o.error) for (n, _), o in zip(run.lines, outcomes, strict=True)]

    def _write(self, batch: list[tuple[int, Record]]) -> list[Result]:
        """The careful write of ``batch`` (records checked against what is stored)."""
        try:
            with self.session.begin_nested():
                return self._apply(batch)
        except IntegrityError:
            # Another writer got in between our reads and writes (a concurrent import or PUT).
            # Redo the lines one by one so only the lines that really collide are refused.
            results: list[Result] = []
            for item in batch:
                try:
                    with self.session.begin_nested():
                        results += self._apply([item])
                except IntegrityError:
                    results.append((item[0], None, Conflict("changed concurrently; send it again")))
            return results

    def _apply(self, batch: list[tuple[int, Record]]) -> list[Result]:
        results: list[Result] = []
        for is_order, lines in itertools.groupby(
            batch, key=lambda item: isinstance(item[1], OrderData)
        ):
            run = _Run(list(lines), is_order)
            results += self._counted(run, self._service(run).upsert_many([r for _, r in run.lines]))
        self.session.flush()
        return results
