"""The outbox worker: delivers due messages and runs due tasks, with retries, backoff and a
dead-letter state.

A mail or a webhook is claimed in a short transaction of its own: its attempt is counted and it
is leased (``CLAIM_LEASE``: due again only after that), and the transaction commits. It is then
sent with no transaction open, and the outcome is recorded by one conditional UPDATE (the row is
still leased to this attempt). No database lock or snapshot is held while a mail server or the
shop's endpoint takes its time: on SQLite a request writing meanwhile no longer made the record
fail and the mail go out again; on PostgreSQL, claimed with ``FOR UPDATE SKIP LOCKED``, any number
of workers share the outbox and a row is in one worker's hands at a time.

What remains is a worker that dies between the receiver's "accepted" and the record: when the
lease ends the row is sent again. The mail carries a Message-ID derived from the idempotency key
and a webhook its ``webhook-id``, so the receiver can recognise the duplicate.

A task (``Channel.TASK``) touches only the database: it runs in a savepoint of its claiming
transaction, so what the handler writes (secrets, the mail it queues) commits together with the
task's ``sent`` status or not at all, and a failed one is retried like a failed delivery.

A failure where nobody answered (a mail server or endpoint down, ``DeliveryError.unreachable``)
backs off like any other but never makes a message dead: an outage delays mail, it does not
lose it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from providers.errors import DeliveryError
from providers.mail import MailboxTransport, MailTransport
from providers.webhooks import WebhookSender, signed_headers
from recovery.db import utcnow
from recovery.outbox.mail import build_message, message_id_for
from recovery.outbox.models import Channel, MessageStatus, OutboxMessage
from recovery.outbox.settings import DeliverySettings

#: What a delivered secret-carrying mail keeps of its body.
REDACTED = "[removed after delivery: it carried a link or code]"

log = logging.getLogger(__name__)

#: A retry waits between 75 % and 100 % of its backoff, so failed messages do not stampede back.
JITTER = 0.25
MAX_ERROR_LENGTH = 500
#: How long a claimed mail or webhook is left to its worker (far longer than any send may take):
#: after that it is due again, in case the worker died or hung mid-send.
CLAIM_LEASE = dt.timedelta(minutes=5)
#: Tries at recording an outcome when the database is busy (SQLite's single writer).
RECORD_TRIES = 5

#: Runs one task: the worker's session (its transaction) and the task's ``args``.
TaskHandler = Callable[[Session, dict[str, Any]], None]
#: Takes up to ``limit`` pieces of work that wait outside the outbox (the requests new flows
#: carry) in the worker's session and transaction; returns how many it took.
Intake = Callable[[Session, int], int]


@dataclass(slots=True)
class WorkerStats:
    """What a worker did since it started."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    #: Passes in which an intake failed (logged; what it would have taken waits for the next).
    intake_failures: int = 0


class Worker:
    """Delivers the outbox's mail and webhooks and runs its tasks (``tasks`` maps each task name to
    its handler; without any, task rows wait for a worker that has them), after taking in the work
    its ``intakes`` find. SMS rows wait for an SMS-capable worker."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        mail: MailTransport,
        webhooks: WebhookSender,
        settings: DeliverySettings,
        *,
        tasks: Mapping[str, TaskHandler] | None = None,
        intakes: Sequence[Intake] = (),
        clock: Callable[[], dt.datetime] = utcnow,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._sessions = session_factory
        self.mail = mail
        self.webhooks = webhooks
        self.settings = settings
        self._clock = clock
        # Spreading retries over time is not a security decision; any PRNG will do.
        self._jitter = jitter or random.Random().random  # noqa: S311
        self._stop = threading.Event()
        self.stats = WorkerStats()
        self.tasks = dict(tasks or {})
        self.intakes = tuple(intakes)
        self.channels = (Channel.MAIL, Channel.WEBHOOK) + ((Channel.TASK,) if self.tasks else ())

    # -- running -----------------------------------------------------------------------------------

    def run_once(self, limit: int = 50) -> int:
        """Take in up to ``limit`` pieces of work from each intake (each intake in a transaction
        of its own), then deliver up to ``limit`` due messages, oldest due first; return how many
        were taken in and attempted. Taking in never uses up the pass's deliveries.

        A message whose attempt failed is rescheduled into the future, so one call never tries the
        same message twice. Stops early (after the current message) when ``stop()`` was called.
        """
        taken = self._take_in(limit)
        handled = 0
        while handled < limit and not self._stop.is_set():
            if not self._deliver_next():
                break
            handled += 1
        return taken + handled

    def run_forever(self, poll_interval: float | None = None) -> None:
        """Deliver until SIGTERM or SIGINT (or ``stop()``), waiting ``poll_interval`` when idle.

        A signal lets the message in hand finish (sent and recorded) before the loop ends. A
        database outage is logged and waited out; it does not end the worker.
        """
        interval = poll_interval or self.settings.poll_interval
        with self.signals_stop():
            log.info("outbox worker started (poll every %.1f s, %r)", interval, self.settings)
            while not self._stop.is_set():
                try:
                    busy = self.run_once() > 0
                except SQLAlchemyError:
                    log.exception("outbox worker: database error; retrying in %.1f s", interval)
                    busy = False
                if not busy:
                    self._stop.wait(interval)
            log.info("outbox worker stopped (%s)", self.stats)

    def run_until_idle(self) -> None:
        """Deliver until nothing is due (``recovery worker --once``); a signal stops it as it
        stops ``run_forever``: after the message in hand. Each pass reschedules what failed into
        the future, so this ends."""
        with self.signals_stop():
            while not self._stop.is_set() and self.run_once() > 0:
                pass

    def stop(self) -> None:
        """Ask ``run_forever``/``run_once`` to return after the message in hand."""
        self._stop.set()

    @contextlib.contextmanager
    def signals_stop(self) -> Iterator[None]:
        """SIGTERM and SIGINT call ``stop()`` inside the block (in the main thread only: a
        threaded worker is stopped by ``stop()``); the previous handlers come back after."""
        previous: dict[int, signal.Handlers | Callable[..., object] | int] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                old = signal.signal(signum, self._on_signal)
                previous[signum] = old if old is not None else signal.SIG_DFL
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("outbox worker: %s received, stopping", signal.Signals(signum).name)
        self._stop.set()

    def _take_in(self, limit: int) -> int:
        """Run each intake; one that fails is logged and retried on the next pass, and never
        keeps the outbox from being delivered."""
        taken = 0
        for intake in self.intakes:
            if self._stop.is_set():
                break
            try:
                with self._sessions() as session, session.begin():
                    taken += intake(session, limit)
            except Exception:
                self.stats.intake_failures += 1
                log.exception(
                    "outbox worker: intake %s failed; delivering anyway",
                    getattr(intake, "__name__", intake),
                )
        return taken

    # -- one message -------------------------------------------------------------------------------

    def _deliver_next(self) -> bool:
        """Claim one due message and deliver it (see the module's docstring); ``False`` when
        none is due."""
        with self._sessions() as session, session.begin():
            now = self._clock()
            message = session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.status == MessageStatus.PENDING,
                    OutboxMessage.next_attempt_at <= now,
                    OutboxMessage.channel.in_(self.channels),
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(1)
                # PostgreSQL: rows another worker holds are skipped, not waited for. SQLite
                # ignores the clause (its writers take turns).
                .with_for_update(skip_locked=True)
            ).first()
            if message is None:
                return False
            # Counted when claimed: the count is right even when the worker dies mid-send.
            message.attempts += 1
            if message.channel == Channel.TASK:
                for name, value in self._outcome(message, self._run(session, message)).items():
                    setattr(message, name, value)
                return True
            message.next_attempt_at = now + CLAIM_LEASE
            session.flush()
            session.expunge(message)  # keeps its loaded values once the claim commits
        self._record(message, self._outcome(message, self._send(message)))
        return True

    def _run(self, session: Session, message: OutboxMessage) -> Exception | None:
        """Run a task's handler in a savepoint: a failing one takes back what it wrote, and the
        attempt is still recorded on the task in the claiming transaction."""
        name = message.payload.get("task")
        handler = self.tasks.get(name) if isinstance(name, str) else None
        if handler is None:
            return DeliveryError(f"no handler for the task {name!r}", retryable=False)
        try:
            with session.begin_nested():
                handler(session, dict(message.payload.get("args") or {}))
        except Exception as exc:
            return exc
        return None

    def _send(self, message: OutboxMessage) -> Exception | None:
        """Hand a mail or webhook over; the error, if it failed."""
        payload = message.payload
        try:
            if message.channel == Channel.MAIL:
                if "message_id" not in payload:
                    payload = {
                        **payload,
                        "message_id": message_id_for(message.idempotency_key, payload["from"]),
                    }
                self.mail.send(build_message(payload))
            elif message.channel == Channel.WEBHOOK:
                url, secret = self.settings.webhook_url, self.settings.webhook_secret
                if not url or not secret:
                    # Rows written while webhooks were configured: they wait until it is set again.
                    raise DeliveryError(
                        "RECOVERY_WEBHOOK_URL is not set", retryable=True, unreachable=True
                    )
                body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
                # The signed timestamp is the real time of this attempt: receivers compare it
                # with their clock to refuse replays, whatever clock schedules our retries.
                headers = signed_headers(secret, message.idempotency_key, int(time.time()), body)
                self.webhooks.post(url, body, headers)
            else:  # pragma: no cover - excluded by the claim query
                raise DeliveryError(f"no sender for {message.channel.value}", retryable=True)
        except Exception as exc:
            return exc
        return None

    def _outcome(self, message: OutboxMessage, error: Exception | None) -> dict[str, Any]:
        """The columns that record this attempt (counted already) of ``message``."""
        if error is None:
            changes: dict[str, Any] = {
                "status": MessageStatus.SENT,
                "sent_at": self._clock(),
                "last_error": None,
            }
            payload = message.payload if isinstance(message.payload, dict) else {}
            if payload.get("secret") and not isinstance(self.mail, MailboxTransport):
                # Delivered: the link or code lives in the recipient's mailbox, not in our table.
                changes["payload"] = {**payload, "text": REDACTED, "html": REDACTED}
            self.stats.sent += 1
            log.debug("outbox: sent %s message %s", message.channel.value, message.id)
            return changes
        if isinstance(error, DeliveryError):
            text, retryable, unreachable = str(error), error.retryable, error.unreachable
        else:
            # A bug or a malformed row must not wedge the queue: count it as an attempt.
            log.error("outbox: unexpected error delivering message %s", message.id, exc_info=error)
            text, retryable, unreachable = f"unexpected error: {type(error).__name__}", True, False
        return self._failed(message, text, retryable=retryable, unreachable=unreachable)

    def _record(self, message: OutboxMessage, changes: dict[str, Any]) -> None:
        """Write a sent message's outcome: one UPDATE, only while the row is still leased to this
        attempt. It is retried while the database is busy (it must not be lost: the row would be
        sent again when its lease ends)."""
        statement = (
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message.id,
                OutboxMessage.attempts == message.attempts,
                OutboxMessage.status == MessageStatus.PENDING,
            )
            .values(**changes)
        )
        for tries_left in range(RECORD_TRIES - 1, -1, -1):
            try:
                with self._sessions() as session, session.begin():
                    recorded = session.execute(statement).rowcount  # type: ignore[attr-defined]
                break
            except OperationalError:
                if not tries_left:
                    raise
                log.warning("outbox: database busy recording message %s; again", message.id)
                time.sleep(0.2)
        if not recorded:
            log.warning(
                "outbox: message %s was claimed again before its outcome was recorded", message.id
            )

    def _failed(
        self, message: OutboxMessage, error: str, *, retryable: bool, unreachable: bool
    ) -> dict[str, Any]:
        # A server's reply may hold anything; a NUL would make PostgreSQL refuse the record (and
        # the row go out again when its lease ends), so only printable text is kept.
        printable = "".join(ch if ch.isprintable() else " " for ch in error)
        changes: dict[str, Any] = {"last_error": printable[:MAX_ERROR_LENGTH]}
        exhausted = message.attempts >= self.settings.max_attempts and not unreachable
        if not retryable or exhausted:
            changes["status"] = MessageStatus.DEAD
            self.stats.dead += 1
            log.error(
                "outbox: %s message %s (key %s) is dead after %d attempt(s): %s",
                message.channel.value,
                message.id,
                message.idempotency_key,
                message.attempts,
                changes["last_error"],
            )
            return changes
        delay = self.backoff(message.attempts)
        changes["next_attempt_at"] = self._clock() + dt.timedelta(seconds=delay)
        self.stats.retried += 1
        log.warning(
            "outbox: %s message %s failed (attempt %d of %d%s), next try in %.0f s: %s",
            message.channel.value,
            message.id,
            message.attempts,
            self.settings.max_attempts,
            ", unreachable: not counted towards the last" if unreachable else "",
            delay,
            changes["last_error"],
        )
        return changes

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failures: ``base * 2**attempts``, capped,
        less up to ``JITTER`` of it at random."""
        exponent = min(attempts, 32)  # keeps the float finite; the cap applies long before
        delay = min(self.settings.backoff_base * 2.0**exponent, self.settings.backoff_cap)
        return delay * (1 - JITTER * self._jitter())
