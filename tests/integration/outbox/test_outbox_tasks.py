"""Tasks: work a request hands to the worker, run in the worker's transaction, all or nothing."""

import pytest

from providers.mail import MailboxTransport
from recovery.db import db
from recovery.outbox.models import Channel, MessageStatus
from recovery.outbox.services import OutboxService
from recovery.outbox.worker import Worker
from tests.integration.outbox.conftest import outbox, renderer, rows, settings


def _worker(**tasks):
    return Worker(db.sessions, MailboxTransport(), None, settings(), tasks=tasks, jitter=lambda: 0)


def _mail(session, key, name="Anna"):
    """What a task queues: a mail, on the worker's session."""
    OutboxService(session, settings(), renderer()).enqueue_mail(
        "anna@example.com",
        "test_message",
        "en",
        {"name": name, "link": "https://recovery.example.test/x"},
        key,
    )


def _queue(task="greet", **args):
    outbox().enqueue_task(task, args)
    db.session.commit()


def test_a_task_runs_once_with_its_args_and_what_it_queues_is_delivered(app):
    seen = []

    def greet(session, args):
        seen.append(args)
        _mail(session, "greeting-1", args["name"])

    _queue(name="Anna")
    worker = _worker(greet=greet)
    assert worker.run_once() == 2  # the task, then the mail it queued
    assert worker.run_once() == 0
    assert seen == [{"name": "Anna"}]
    task, mail = rows()
    assert (task.channel, task.status, task.attempts) == (Channel.TASK, MessageStatus.SENT, 1)
    assert (mail.channel, mail.status) == (Channel.MAIL, MessageStatus.SENT)
    assert [m["Subject"] for m in worker.mail.sent] == ["Test message for Anna"]


def test_a_failing_task_keeps_nothing_it_wrote_and_is_retried(app, caplog):
    calls = []

    def flaky(session, args):
        _mail(session, f"flaky-{len(calls)}")
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug")

    _queue("flaky")
    worker = _worker(flaky=flaky)
    assert worker.run_once() == 1
    (task,) = rows()  # the mail of the failed run is gone with it
    assert (task.status, task.attempts) == (MessageStatus.PENDING, 1)
    assert task.last_error == "unexpected error: RuntimeError"
    worker._clock = lambda: task.next_attempt_at  # the retry is due
    assert worker.run_once() == 2
    assert [r.status for r in rows()] == [MessageStatus.SENT, MessageStatus.SENT]
    assert [r.idempotency_key for r in rows()][1] == "flaky-1"


def test_a_task_nobody_handles_is_dead_at_once(app):
    _queue("unheard_of")
    assert _worker(greet=lambda s, a: None).run_once() == 1
    (task,) = rows()
    assert task.status == MessageStatus.DEAD
    assert task.last_error == "no handler for the task 'unheard_of'"


def test_a_worker_without_tasks_leaves_them_waiting(app):
    _queue("greet")
    worker = Worker(db.sessions, MailboxTransport(), None, settings())
    assert worker.run_once() == 0
    assert rows()[0].status == MessageStatus.PENDING


@pytest.mark.parametrize("name", ["", "Greet", "greet now", "a" * 65, "ünï"])
def test_task_names_are_checked(app, name):
    with pytest.raises(ValueError, match="task names are lower-case words"):
        outbox().enqueue_task(name, {})


def test_work_taken_in_runs_first_and_never_holds_up_delivery(app):
    _mail(db.session, "due-mail")
    db.session.commit()
    asked = []

    def always_more(session, limit):  # as if requests kept coming faster than it takes them
        asked.append(limit)
        return limit

    worker = Worker(
        db.sessions, MailboxTransport(), None, settings(), intakes=[always_more], jitter=lambda: 0
    )
    assert worker.run_once(limit=5) == 6  # five taken in, then the due mail delivered
    assert asked == [5] and len(worker.mail.sent) == 1


def test_a_failing_intake_is_logged_and_the_outbox_is_delivered_anyway(app, caplog):
    _mail(db.session, "due-mail")
    db.session.commit()

    def broken(session, limit):
        raise RuntimeError("a bug in the intake")

    worker = Worker(
        db.sessions, MailboxTransport(), None, settings(), intakes=[broken], jitter=lambda: 0
    )
    assert worker.run_once() == 1  # the mail
    assert len(worker.mail.sent) == 1
    assert "intake broken failed; delivering anyway" in caplog.text
