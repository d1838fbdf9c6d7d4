"""The outbox worker: delivers due messages and runs due tasks, with retries, backoff and a
dead-letter state.

Each message is delivered in its own short transaction: lock the row, send, record the outcome,
commit. On PostgreSQL the row is claimed with ``FOR UPDATE SKIP LOCKED``, so any number of workers
(on any number of hosts) share the outbox and a row is only ever in one worker's hands; the status
it commits (``sent``) keeps every later claim away from it. SQLite has no row locks: there the
selection is plain and one worker process is the rule (the embedded setup runs one).

What remains is the crash between the receiver's "accepted" and our commit: the row is still
pending and is sent again. The mail carries a Message-ID derived from the idempotency key and a
webhook its ``webhook-id``, so the receiver can recognise the duplicate.

A task (``Channel.TASK``) runs its handler inside a savepoint of that same transaction, so what the
handler writes (secrets, the mail it queues) commits together with the task's ``sent`` status or
not at all: a task is never half done, and a failed one is retried like a failed delivery.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
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

#: Runs one task: the worker's session (its transaction) and the task's ``args``.
TaskHandler = Callable[[Session, dict[str, Any]], None]


@dataclass(slots=True)
class WorkerStats:
    """What a worker did since it started."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


class Worker:
    """Delivers the outbox's mail and webhooks and runs its tasks (``tasks`` maps each task name to
    its handler; without any, task rows wait for a worker that has them). SMS rows wait for an
    SMS-capable worker."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        mail: MailTransport,
        webhooks: WebhookSender,
        settings: DeliverySettings,
        *,
        tasks: Mapping[str, TaskHandler] | None = None,
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
        self.channels = (Channel.MAIL, Channel.WEBHOOK) + ((Channel.TASK,) if self.tasks else ())

    # -- running -----------------------------------------------------------------------------------

    def run_once(self, limit: int = 50) -> int:
        """Deliver up to ``limit`` due messages, oldest due first; return how many were attempted.

        A message whose attempt failed is rescheduled into the future, so one call never tries the
        same message twice. Stops early (after the current message) when ``stop()`` was called.
        """
        handled = 0
        while handled < limit and not self._stop.is_set():
            if not self._deliver_next():
                break
            handled += 1
        return handled

    def run_forever(self, poll_interval: float | None = None) -> None:
        """Deliver until SIGTERM or SIGINT (or ``stop()``), waiting ``poll_interval`` when idle.

        A signal lets the message in hand finish (sent and recorded) before the loop ends. A
        database outage is logged and waited out; it does not end the worker.
        """
        interval = poll_interval or self.settings.poll_interval
        previous = self._install_signal_handlers()
        log.info("outbox worker started (poll every %.1f s, %r)", interval, self.settings)
        try:
            while not self._stop.is_set():
                try:
                    busy = self.run_once() > 0
                except SQLAlchemyError:
                    log.exception("outbox worker: database error; retrying in %.1f s", interval)
                    busy = False
                if not busy:
                    self._stop.wait(interval)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            log.info("outbox worker stopped (%s)", self.stats)

    def stop(self) -> None:
        """Ask ``run_forever``/``run_once`` to return after the message in hand."""
        self._stop.set()

    def _install_signal_handlers(self) -> dict[int, signal.Handlers | Callable[..., object] | int]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # signals reach the main thread only; a threaded worker is stopped by stop()
        previous: dict[int, signal.Handlers | Callable[..., object] | int] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            old = signal.signal(signum, self._on_signal)
            previous[signum] = old if old is not None else signal.SIG_DFL
        return previous

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("outbox worker: %s received, stopping", signal.Signals(signum).name)
        self._stop.set()

    # -- one message -------------------------------------------------------------------------------

    def _deliver_next(self) -> bool:
        """Claim, send and record one due message in one transaction; ``False`` when none is due."""
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
                # ignores the clause (one worker there).
                .with_for_update(skip_locked=True)
            ).first()
            if message is None:
                return False
            self._attempt(session, message, now)
        return True

    def _attempt(self, session: Session, message: OutboxMessage, now: dt.datetime) -> None:
        try:
            if message.channel == Channel.TASK:
                self._run(session, message)
            else:
                self._send(message)
        except DeliveryError as exc:
            self._failed(message, now, str(exc), retryable=exc.retryable)
        except Exception as exc:
            # A bug or a malformed row must not wedge the queue: count it as an attempt.
            log.exception("outbox: unexpected error delivering message %s", message.id)
            self._failed(message, now, f"unexpected error: {type(exc).__name__}", retryable=True)
        else:
            message.attempts += 1
            message.status = MessageStatus.SENT
            message.sent_at = self._clock()
            if message.payload.get("secret") and not isinstance(self.mail, MailboxTransport):
                # Delivered: the link or code lives in the recipient's mailbox, not in our table.
                message.payload = {**message.payload, "text": REDACTED, "html": REDACTED}
            message.last_error = None
            self.stats.sent += 1
            log.debug("outbox: sent %s message %s", message.channel.value, message.id)

    def _run(self, session: Session, message: OutboxMessage) -> None:
        name = message.payload.get("task")
        handler = self.tasks.get(name) if isinstance(name, str) else None
        if handler is None:
            raise DeliveryError(f"no handler for the task {name!r}", retryable=False)
        # A savepoint: a failing handler takes back what it wrote, and the attempt is still
        # recorded on the task in the outer transaction.
        with session.begin_nested():
            handler(session, dict(message.payload.get("args") or {}))

    def _send(self, message: OutboxMessage) -> None:
        payload = message.payload
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
                # Rows written while webhooks were configured; they go out once it is set again.
                raise DeliveryError("RECOVERY_WEBHOOK_URL is not set", retryable=True)
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            # The signed timestamp is the real time of this attempt: receivers compare it with
            # their clock to refuse replays, whatever clock schedules our retries.
            headers = signed_headers(secret, message.idempotency_key, int(time.time()), body)
            self.webhooks.post(url, body, headers)
        else:  # pragma: no cover - excluded by the claim query
            raise DeliveryError(f"no sender for {message.channel.value}", retryable=True)

    def _failed(
        self, message: OutboxMessage, now: dt.datetime, error: str, *, retryable: bool
    ) -> None:
        message.attempts += 1
        message.last_error = error[:MAX_ERROR_LENGTH]
        if not retryable or message.attempts >= self.settings.max_attempts:
            message.status = MessageStatus.DEAD
            self.stats.dead += 1
            log.error(
                "outbox: %s message %s (key %s) is dead after %d attempt(s): %s",
                message.channel.value,
                message.id,
                message.idempotency_key,
                message.attempts,
                message.last_error,
            )
            return
        delay = self.backoff(message.attempts)
        message.next_attempt_at = now + dt.timedelta(seconds=delay)
        self.stats.retried += 1
        log.warning(
            "outbox: %s message %s failed (attempt %d of %d), next try in %.0f s: %s",
            message.channel.value,
            message.id,
            message.attempts,
            self.settings.max_attempts,
            delay,
            message.last_error,
        )

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failures: ``base * 2**attempts``, capped,
        less up to ``JITTER`` of it at random."""
        exponent = min(attempts, 32)  # keeps the float finite; the cap applies long before
        delay = min(self.settings.backoff_base * 2.0**exponent, self.settings.backoff_cap)
        return delay * (1 - JITTER * self._jitter())
