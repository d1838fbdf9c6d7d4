"""Mail through a real SMTP server (aiosmtpd on 127.0.0.1): parts, headers, outages, dead letters, TLS."""

import datetime as dt
import logging

import pytest

from providers.errors import DeliveryError
from providers.mail import SmtpTransport
from recovery.db import db
from recovery.outbox.models import Channel, MessageStatus
from recovery.wiring import intakes, task_handlers
from tests import factories
from tests.integration.conftest import request_reset
from tests.integration.outbox.conftest import SmtpServer, enqueue, free_port, rows


def test_a_mail_arrives_with_text_and_html_parts_and_the_right_headers(make_worker, smtp_server):
    enqueue(1, to="Anna Nowak <anna@example.com>", prefix="reset:flow-1")
    assert make_worker(smtp=smtp_server).run_once() == 1

    (envelope,) = smtp_server.inbox.envelopes
    assert envelope.mail_from == "help@shop.example"
    assert envelope.rcpt_tos == ["anna@example.com"]
    (message,) = smtp_server.inbox.messages()
    assert message["To"] == "Anna Nowak <anna@example.com>"
    assert message["From"] == "Shop help <help@shop.example>"
    assert message["Subject"] == "Test message for Anna 0"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "en"
    assert message["Date"]
    # The Message-ID comes from the idempotency key: a resend after a crash is recognisable.
    assert message["Message-ID"].startswith("<reset.flow-1-0.")
    assert message["Message-ID"].endswith("@shop.example>")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "open this link: https://recovery.example.test/recover/reset?token=t0" in text
    assert '<a href="https://recovery.example.test/recover/reset?token=t0">' in html
    assert "<title>Test message for Anna 0</title>" in html

    (row,) = rows()
    assert row.status == MessageStatus.SENT
    assert row.attempts == 1
    assert row.sent_at is not None
    assert row.last_error is None


def test_polish_recipients_get_polish_mail_encoded_properly(make_worker, smtp_server):
    from tests.integration.outbox.conftest import outbox

    outbox().enqueue_mail(
        "ewa@example.pl",
        "test_message",
        "pl_PL",
        {"name": "Ewa", "link": "https://x.test/"},
        "pl-1",
    )
    make_worker(smtp=smtp_server).run_once()
    (message,) = smtp_server.inbox.messages()
    assert message["Subject"] == "Wiadomość testowa dla Ewa"
    assert message["Content-Language"] == "pl"
    assert "Dzień dobry Ewa" in message.get_body(("plain",)).get_content()


def test_a_server_outage_delays_mail_and_loses_none_then_each_arrives_once(make_worker):
    server = SmtpServer()  # its port is chosen but nothing listens yet
    enqueue(200)
    worker = make_worker(smtp=server)

    before = make_worker.clock()
    assert worker.run_once(limit=500) == 200  # each tried once, none twice in one pass
    after = make_worker.clock()
    stored = rows()
    assert {r.status for r in stored} == {MessageStatus.PENDING}
    assert {r.attempts for r in stored} == {1}
    assert all("SMTP connection failed" in r.last_error for r in stored)
    # Backoff: base 10 s * 2**1 = 20 s after the attempt (jitter off in tests).
    wait = dt.timedelta(seconds=20)
    assert all(before + wait <= r.next_attempt_at <= after + wait for r in stored)
    assert worker.run_once(limit=500) == 0  # nothing is due yet

    server.start()
    try:
        make_worker.clock.advance(20 + (after - before).total_seconds())
        assert worker.run_once(limit=500) == 200
        assert worker.run_once(limit=500) == 0
        make_worker.clock.advance(3600)
        assert worker.run_once(limit=500) == 0
        ids = [m["Message-ID"] for m in server.inbox.messages()]
    finally:
        server.stop()
    assert len(ids) == 200
    assert len(set(ids)) == 200
    stored = rows()
    assert {r.status for r in stored} == {MessageStatus.SENT}
    assert {r.attempts for r in stored} == {2}


def test_a_message_is_dead_after_the_configured_attempts(make_worker, smtp_server, caplog):
    smtp_server.inbox.refuse["full@example.com"] = "452 4.2.2 Mailbox full"  # answered, each time
    enqueue(1, prefix="doomed", to="full@example.com")
    worker = make_worker(smtp=smtp_server, max_attempts=3)
    waits = []
    for _ in range(3):
        assert worker.run_once() == 1
        (row,) = rows()
        waits.append((row.next_attempt_at - worker._clock()).total_seconds())
        make_worker.clock.advance(10_000)
    (row,) = rows()
    assert row.status == MessageStatus.DEAD
    assert row.attempts == 3
    assert waits[0] == pytest.approx(20, abs=1)
    assert waits[1] == pytest.approx(40, abs=1)
    assert worker.run_once() == 0  # dead letters are never tried again
    dead = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(dead) == 1
    assert "doomed-0" in dead[0].getMessage()
    assert "dead after 3 attempt(s)" in dead[0].getMessage()


def test_a_server_that_stays_down_delays_mail_and_never_loses_it(make_worker):
    server = SmtpServer()  # never started: nobody answers
    enqueue(1, prefix="patient")
    worker = make_worker(smtp=server, max_attempts=3)
    for _ in range(10):  # far past the attempts a refusing server gets, hours apart
        assert worker.run_once() == 1
        make_worker.clock.advance(4 * 3600)
    (row,) = rows()
    assert (row.status, row.attempts) == (MessageStatus.PENDING, 10)
    assert row.last_error.startswith("SMTP connection failed")


def test_backoff_doubles_up_to_the_cap(make_worker):
    worker = make_worker(backoff_base=30, backoff_cap=3600)
    assert [worker.backoff(n) for n in (1, 2, 3, 6, 7, 40)] == [60, 120, 240, 1920, 3600, 3600]


def test_jitter_only_ever_shortens_the_wait():
    from recovery.outbox.worker import JITTER, Worker
    from tests.integration.outbox.conftest import settings

    worker = Worker(lambda: None, None, None, settings(backoff_base=30), jitter=lambda: 1.0)
    assert worker.backoff(1) == pytest.approx(60 * (1 - JITTER))


def test_a_refused_recipient_is_dead_at_once_and_the_rest_still_go(make_worker, smtp_server):
    smtp_server.inbox.refuse["gone@example.com"] = "550 5.1.1 No such user"
    smtp_server.inbox.refuse["full@example.com"] = "452 4.2.2 Mailbox full"
    enqueue(1, to="gone@example.com", prefix="gone")
    enqueue(1, to="full@example.com", prefix="full")
    enqueue(1, to="anna@example.com", prefix="fine")
    make_worker(smtp=smtp_server).run_once()

    gone, full, fine = rows()
    assert (gone.status, gone.attempts) == (MessageStatus.DEAD, 1)
    assert gone.last_error == "SMTP recipient refused (550)"
    assert (full.status, full.attempts) == (MessageStatus.PENDING, 1)  # 4xx: try again later
    assert fine.status == MessageStatus.SENT
    assert [m["To"] for m in smtp_server.inbox.messages()] == ["anna@example.com"]


def test_errors_stored_on_the_row_never_hold_the_smtp_password(make_worker):
    server = SmtpServer()
    enqueue(1)
    worker = make_worker()
    worker.mail = SmtpTransport(f"smtp://mailer:hunter2-secret@127.0.0.1:{server.port}")
    worker.run_once()
    (row,) = rows()
    assert row.last_error.startswith("SMTP connection failed")
    assert "hunter2" not in row.last_error


# -- TLS ------------------------------------------------------------------------------------------


def _message():
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "help@shop.example", "a@example.com", "Hi"
    message.set_content("hello")
    return message


@pytest.fixture
def starttls_server(server_tls):
    server = SmtpServer(
        tls_context=server_tls, require_starttls=True, authenticator=True, auth_required=True
    ).start()
    yield server
    server.stop()


def test_starttls_required_delivers_over_tls_with_login(starttls_server, client_tls):
    url = f"smtp://mailer:p%40ss%3Aw%2Frd@127.0.0.1:{starttls_server.port}?starttls=true"
    SmtpTransport(url, ssl_context=client_tls).send(_message())
    assert starttls_server.inbox.logins == [(b"mailer", b"p@ss:w/rd")]
    assert [m["Subject"] for m in starttls_server.inbox.messages()] == ["Hi"]


def test_a_server_demanding_tls_refuses_clear_text_and_the_mail_waits(starttls_server):
    with pytest.raises(DeliveryError) as caught:
        SmtpTransport(starttls_server.url).send(_message())
    assert caught.value.retryable
    assert starttls_server.inbox.envelopes == []


def test_an_untrusted_certificate_stops_delivery(starttls_server):
    # The default context trusts only the system's CAs, not our self-signed test certificate.
    with pytest.raises(DeliveryError) as caught:
        SmtpTransport(f"{starttls_server.url}?starttls=true").send(_message())
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert caught.value.retryable
    assert starttls_server.inbox.envelopes == []


def test_required_starttls_never_falls_back_to_clear_text(smtp_server, client_tls):
    # A server (or a man in the middle) that does not offer STARTTLS gets nothing.
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as caught:
        SmtpTransport(f"{smtp_server.url}?starttls=true", ssl_context=client_tls).send(_message())
    assert caught.value.retryable
    assert smtp_server.inbox.envelopes == []


def test_smtps_is_tls_from_the_first_byte(server_tls, client_tls):
    server = SmtpServer(ssl_context=server_tls).start()
    try:
        SmtpTransport(f"smtps://127.0.0.1:{server.port}", ssl_context=client_tls).send(_message())
        assert [m["Subject"] for m in server.inbox.messages()] == ["Hi"]
    finally:
        server.stop()


def test_a_closed_port_is_a_retryable_failure():
    with pytest.raises(DeliveryError) as caught:
        SmtpTransport(f"smtp://127.0.0.1:{free_port()}", timeout=2).send(_message())
    assert caught.value.retryable
    assert "ConnectionRefusedError" in str(caught.value)


def test_a_delivered_mail_that_carried_a_secret_keeps_no_body(make_worker, smtp_server):
    from recovery.outbox.worker import REDACTED
    from tests.integration.outbox.conftest import outbox

    context = {"name": "Anna", "link": "https://x.test/reset?token=SECRET"}
    outbox().enqueue_mail("anna@example.com", "test_message", "en", context, "s-1", secret=True)
    outbox().enqueue_mail("ewa@example.com", "test_message", "en", context, "p-1")
    make_worker(smtp=smtp_server).run_once()
    assert all(
        "token=SECRET" in m.get_body(("plain",)).get_content() for m in smtp_server.inbox.messages()
    )  # both were delivered whole
    secret_row, plain_row = sorted(rows(), key=lambda r: r.idempotency_key, reverse=True)
    assert (secret_row.payload["text"], secret_row.payload["html"]) == (REDACTED, REDACTED)
    assert "token=SECRET" in plain_row.payload["text"]


@pytest.mark.parametrize("app_config", [{"RESET_RATE_LIMIT_PER_IP": "1000 per minute"}])
def test_reset_requests_during_an_outage_are_all_answered_once_the_server_is_back(
    client, make_worker
):
    """The acceptance test of the outbox: 200 reset requests while nothing listens on the SMTP
    port, then the server comes back and every mail arrives, once."""
    known = [f"customer{i}@example.com" for i in range(100)]
    for address in known:
        factories.account(None, ("email", address, True))
    db.session.commit()
    unknown = [f"nobody{i}@example.com" for i in range(100)]
    server = SmtpServer()  # its port is chosen but nothing listens yet

    answers = [request_reset(client, address) for address in [*known, *unknown]]
    assert {a.status_code for a in answers} == {202}
    assert rows() == []  # the requests wrote their flows and nothing else: no mail yet

    worker = make_worker(smtp=server, intakes=intakes(), tasks=task_handlers())
    worker.run_once(limit=1000)  # each request answered (a mail queued), each mail tried once
    mail = [r for r in rows() if r.channel is Channel.MAIL]
    assert len(mail) == 200 and {(r.status, r.attempts) for r in mail} == {
        (MessageStatus.PENDING, 1)
    }
    server.start()
    try:
        make_worker.clock.advance(3600)
        assert worker.run_once(limit=1000) == 200
        make_worker.clock.advance(3600)
        assert worker.run_once(limit=1000) == 0
        received = server.inbox.messages()
    finally:
        server.stop()
    assert len({m["Message-ID"] for m in received}) == len(received) == 200
    by_address = {m["To"]: m for m in received}
    assert sorted(by_address) == sorted([*known, *unknown])
    assert all(
        "/recover/reset?token=" in by_address[a].get_body(("plain",)).get_content() for a in known
    )
    assert not any("token=" in by_address[a].get_body(("plain",)).get_content() for a in unknown)
