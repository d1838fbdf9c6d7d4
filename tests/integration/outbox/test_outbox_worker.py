"""The worker as a process: the CLI, stopping on signals, odd rows, and several workers at once."""

import os
import signal
import threading
import time

import pytest
from sqlalchemy import update

from providers.mail import MailboxTransport, SmtpTransport
from recovery import wiring
from recovery.db import db
from recovery.outbox.models import Channel, MessageStatus, OutboxMessage
from recovery.outbox.settings import DeliverySettings
from recovery.outbox.worker import CLAIM_LEASE, Worker
from tests.integration.outbox.conftest import SmtpServer, enqueue, rows, settings


def test_recovery_worker_once_delivers_what_is_due(app):
    enqueue(3)
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "3 sent, 0 to retry, 0 dead" in result.output
    assert {r.status for r in rows()} == {MessageStatus.SENT}


def test_recovery_worker_once_fails_when_it_could_not_take_work_in(app, monkeypatch):
    enqueue(1)

    def broken(session, limit):
        raise RuntimeError("a bug in the intake")

    monkeypatch.setattr(wiring, "intakes", lambda: [broken])
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 1
    assert "1 sent, 0 to retry, 0 dead" in result.output  # the outbox was delivered anyway
    assert "taking in waiting work failed" in result.output


def test_the_worker_command_is_listed(app):
    result = app.test_cli_runner().invoke(args=["worker", "--help"])
    assert result.exit_code == 0
    assert "--once" in result.output
    assert "--interval" in result.output


def test_the_mailbox_transport_marks_mail_sent_and_keeps_it(make_worker):
    enqueue(2)
    mailbox = MailboxTransport()
    assert make_worker(mailbox).run_once() == 2
    assert [m["Subject"] for m in mailbox.sent] == [
        "Test message for Anna 0",
        "Test message for Anna 1",
    ]
    assert {r.status for r in rows()} == {MessageStatus.SENT}


def test_sms_rows_wait_for_a_worker_that_can_send_them(make_worker):
    enqueue(1)
    db.session.execute(update(OutboxMessage).values(channel=Channel.SMS))
    db.session.commit()
    assert make_worker().run_once() == 0
    (row,) = rows()
    assert (row.status, row.attempts) == (MessageStatus.PENDING, 0)


def test_an_unexpected_error_counts_as_an_attempt_and_does_not_wedge_the_queue(make_worker, caplog):
    class Broken:
        def __init__(self):
            self.calls = 0

        def send(self, message):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("bug")

    enqueue(2)
    assert make_worker(Broken()).run_once() == 2
    first, second = rows()
    assert (first.status, first.attempts) == (MessageStatus.PENDING, 1)
    assert first.last_error == "unexpected error: RuntimeError"
    assert second.status == MessageStatus.SENT
    assert "unexpected error delivering message" in caplog.text


def test_a_reply_with_control_characters_is_recorded_as_printable_text(make_worker):
    from providers.errors import DeliveryError

    class Odd:
        def send(self, message):
            raise DeliveryError("451 try\x00 later\r\n", retryable=True)

    enqueue(1)
    make_worker(Odd()).run_once()  # on PostgreSQL a NUL could not even be stored
    (row,) = rows()
    assert (row.status, row.last_error) == (MessageStatus.PENDING, "451 try  later  ")


def test_run_once_respects_its_limit_oldest_first(make_worker):
    enqueue(5)
    mailbox = MailboxTransport()
    assert make_worker(mailbox).run_once(limit=2) == 2
    assert [m["Subject"][-1] for m in mailbox.sent] == ["0", "1"]


def test_run_forever_delivers_and_stops_when_asked(make_worker):
    enqueue(3)
    mailbox = MailboxTransport()
    worker = make_worker(mailbox)
    thread = threading.Thread(target=worker.run_forever, args=(0.02,))
    thread.start()
    deadline = time.monotonic() + 10
    while len(mailbox.sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(mailbox.sent) == 3


def test_sigterm_stops_the_worker_gracefully_and_restores_the_handlers(make_worker):
    enqueue(1)
    worker = make_worker(MailboxTransport())
    previous = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    worker.run_forever(0.05)  # in the main thread, where signals arrive
    timer.join()
    assert time.monotonic() - started < 5
    assert signal.getsignal(signal.SIGTERM) is previous
    assert worker.stats.sent == 1


def test_a_message_in_hand_is_finished_before_a_stop(make_worker):
    class Slow(MailboxTransport):
        def send(self, message):
            worker.stop()  # the signal arrives mid-send
            super().send(message)

    enqueue(3)
    mail = Slow()
    worker = make_worker(mail)
    assert worker.run_once() == 1
    first, *rest = rows()
    assert first.status == MessageStatus.SENT
    assert {r.status for r in rest} == {MessageStatus.PENDING}


def test_webhook_rows_wait_while_no_endpoint_is_configured(make_worker):
    from tests.integration.outbox.conftest import WEBHOOK_SECRET, outbox

    outbox(
        settings(webhook_url="http://127.0.0.1:9/", webhook_secret=WEBHOOK_SECRET)
    ).enqueue_webhook("account.recovered", {"id": "x"}, "evt")
    db.session.commit()

    class NoCalls:
        def post(self, url, body, headers):
            raise AssertionError("must not be called")

    worker = make_worker(webhooks=NoCalls(), max_attempts=2)
    for _ in range(4):  # past the attempts: a worker's missing setting is not the message's fault
        worker.run_once()
        make_worker.clock.advance(10_000)
    (row,) = rows()
    assert (row.status, row.last_error) == (
        MessageStatus.PENDING,
        "RECOVERY_WEBHOOK_URL is not set",
    )


def test_sigterm_during_once_lets_the_message_in_hand_be_recorded(make_worker):
    class Signalled(MailboxTransport):
        def send(self, message):
            os.kill(os.getpid(), signal.SIGTERM)  # `recovery worker --once` told to stop mid-send
            super().send(message)

    enqueue(3)
    previous = signal.getsignal(signal.SIGTERM)
    make_worker(Signalled()).run_until_idle()
    first, *rest = rows()
    assert first.status == MessageStatus.SENT  # not killed between "accepted" and the record
    assert {r.status for r in rest} == {MessageStatus.PENDING}
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_worker_that_dies_mid_send_leaves_the_message_to_the_next_after_its_lease(make_worker):
    class Dies(MailboxTransport):
        def send(self, message):
            raise SystemExit("killed")  # the process goes; nothing is recorded

    enqueue(1)
    with pytest.raises(SystemExit):
        make_worker(Dies()).run_once()
    (row,) = rows()
    assert (row.status, row.attempts) == (MessageStatus.PENDING, 1)
    survivor = make_worker(MailboxTransport())
    assert survivor.run_once() == 0  # still leased to the dead worker
    make_worker.clock.advance(CLAIM_LEASE.total_seconds() + 1)
    assert survivor.run_once() == 1
    (row,) = rows()
    assert (row.status, row.attempts) == (MessageStatus.SENT, 2)


def test_a_request_writing_while_a_mail_is_sent_does_not_make_it_go_twice(committed_app):
    """Nothing of the database is held while a mail server takes its time: a request committing
    meanwhile (on SQLite, the one writer) cannot make the worker's record fail and the mail be
    sent again."""
    with committed_app.app_context():
        enqueue(2, prefix="busy")
        sessions = db.sessions

        class RequestMeanwhile(MailboxTransport):
            def send(self, message):
                with db.engine.begin() as connection:  # a request's own connection
                    connection.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.idempotency_key == "busy-1")
                        .values(last_error="touched by a request")
                    )
                super().send(message)

        mail = RequestMeanwhile()
        worker = Worker(sessions, mail, None, DeliverySettings(max_attempts=3))
        worker.run_until_idle()
        assert [m["Message-ID"] for m in mail.sent] == [
            "<busy-0@shop.example>",
            "<busy-1@shop.example>",
        ]
        assert {(r.status, r.attempts) for r in rows()} == {(MessageStatus.SENT, 1)}


# -- several workers on PostgreSQL -------------------------------------------------------------------


class Recording:
    """Wraps a transport: records which worker sent which Message-ID, slowly enough to overlap."""

    def __init__(self, inner, name, log):
        self.inner, self.name, self.log = inner, name, log

    def send(self, message):
        time.sleep(0.005)
        self.inner.send(message)
        self.log.append((self.name, message["Message-ID"]))


@pytest.mark.postgres
def test_two_workers_deliver_each_message_exactly_once(committed_app):
    total = 100
    with committed_app.app_context():
        enqueue(total, prefix="race")
        sessions = db.sessions
    server = SmtpServer().start()
    sent: list[tuple[str, str]] = []
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            transport = Recording(SmtpTransport(server.url, local_hostname="w.test"), name, sent)
            worker = Worker(sessions, transport, None, DeliverySettings(max_attempts=3))
            barrier.wait()
            while worker.run_once(limit=10):
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("w1", "w2")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        received = [m["Message-ID"] for m in server.inbox.messages()]
    finally:
        server.stop()

    assert errors == []
    assert len(received) == total
    assert len(set(received)) == total
    assert sorted(mid for _, mid in sent) == sorted(received)
    # Both took part: SKIP LOCKED let them work side by side instead of in turn.
    assert {name for name, _ in sent} == {"w1", "w2"}
    with committed_app.app_context():
        stored = rows()
        assert len(stored) == total
        assert {(r.status, r.attempts) for r in stored} == {(MessageStatus.SENT, 1)}
