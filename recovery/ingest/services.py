"""The importer: NDJSON lines of accounts and orders, validated one by one, written in batches.

A bad line is reported with its number and never keeps the good lines around it out. The importer
never commits: it yields after each batch so the caller (the API request or the CLI command) commits
there, keeping memory flat and progress durable on imports of millions of lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Annotated, Any, Literal

from pydantic import Field, RootModel, TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery.accounts.schemas import AccountRecord
from recovery.accounts.services import AccountService
from recovery.errors import Conflict, FieldError, RecoveryError, ValidationFailed
from recovery.orders.schemas import OrderRecord
from recovery.orders.services import OrderService
from recovery.validation import validate_json

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
    exhaust memory."""
    cap = MAX_LINE_BYTES + 2  # room for "\r\n"
    while line := stream.readline(cap):
        if len(line) == cap and not line.endswith(b"\n"):
            while (rest := stream.readline(cap)) and not rest.endswith(b"\n"):
                pass
        yield line


class Importer:
    def __init__(self, session: Session, batch_size: int = 1000) -> None:
        self.session = session
        self.batch_size = batch_size
        self.summary = Summary()

    def run(self, lines: Iterable[bytes]) -> Iterator[Summary]:
        """Import ``lines`` (1-based numbers in errors); yields the running summary after each batch."""
        batch: list[tuple[int, AccountLine | OrderLine]] = []
        for number, raw in enumerate(lines, start=1):
            self.summary.lines = number
            if not raw.strip():
                continue
            if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                too_long = FieldError("line", f"longer than {MAX_LINE_BYTES} bytes", "too_long")
                self.summary.reject(number, ValidationFailed([too_long]))
                continue
            try:
                batch.append((number, validate_json(LINE, raw, drop=1).root))
            except RecoveryError as exc:
                self.summary.reject(number, exc)
                continue
            if len(batch) >= self.batch_size:
                self._write(batch)
                batch = []
                yield self.summary
        if batch:
            self._write(batch)
        yield self.summary

    def _write(self, batch: list[tuple[int, AccountLine | OrderLine]]) -> None:
        try:
            with self.session.begin_nested():
                results = self._apply(batch)
        except IntegrityError:
            # Another writer got in between our reads and writes (a concurrent import or PUT).
            # Redo the lines one by one so only the lines that really collide are refused.
            results = []
            for item in batch:
                try:
                    with self.session.begin_nested():
                        results += self._apply([item])
                except IntegrityError:
                    results.append((item[0], None, Conflict("changed concurrently; send it again")))
        for number, result, error in sorted(results, key=lambda r: r[0]):
            if error is None:
                assert result is not None
                self.summary.accept(result)
            else:
                self.summary.reject(number, error)

    def _apply(
        self, batch: list[tuple[int, AccountLine | OrderLine]]
    ) -> list[tuple[int, str | None, RecoveryError | None]]:
        # Accounts first, so an order may name an account from the same batch.
        accounts = [(n, r) for n, r in batch if isinstance(r, AccountLine)]
        orders = [(n, r) for n, r in batch if isinstance(r, OrderLine)]
        results: list[tuple[int, str | None, RecoveryError | None]] = []
        if accounts:
            outcomes = AccountService(self.session).upsert_many([r for _, r in accounts])
            results += [
                (n, o.result, o.error) for (n, _), o in zip(accounts, outcomes, strict=True)
            ]
        if orders:
            order_outcomes = OrderService(self.session).upsert_many([r for _, r in orders])
            results += [
                (n, o.result, o.error) for (n, _), o in zip(orders, order_outcomes, strict=True)
            ]
        self.session.flush()
        return results
