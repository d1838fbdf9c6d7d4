"""Writing to the outbox: rendered at once, in the caller's transaction, never twice for one key."""

import threading

import pytest
from jinja2 import UndefinedError
from sqlalchemy import func, select

from recovery.db import db, utcnow
from recovery.outbox.models import Channel, MessageStatus, OutboxMessage
from recovery.outbox.services import OutboxService
from tests.integration.outbox.conftest import outbox, renderer, rows, settings

CONTEXT = {"name": "Anna", "link": "https://recovery.example.test/recover/reset?token=abc"}


def test_a_mail_is_rendered_now_and_stored_whole(app):
    row = outbox().enqueue_mail("anna@example.com", "test_message", "en", CONTEXT, "k-1")
    assert row.channel == Channel.MAIL
    assert row.status == MessageStatus.PENDING
    assert row.attempts == 0
    assert row.next_attempt_at <= utcnow()  # due at once
    payload = row.payload
    assert payload["to"] == "anna@example.com"
    assert payload["from"] == "Shop help <help@shop.example>"
    assert payload["subject"] == "Test message for Anna"
    assert (
        "open this link: https://recovery.example.test/recover/reset?token=abc" in payload["text"]
    )
    assert '<a href="https://recovery.example.test/recover/reset?token=abc">' in payload["html"]
    assert payload["message_id"] == "<k-1@shop.example>"
    assert (payload["template"], payload["locale"]) == ("test_message", "en")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("pl", "pl"), ("pl-PL", "pl"), ("PL_pl", "pl"), ("en-GB", "en"), ("de", "en"), ("", "en")],
)
def test_mail_is_rendered_in_the_recipients_locale(app, locale, expected):
    row = outbox().enqueue_mail("anna@example.com", "test_message", locale, CONTEXT, "k")
    assert row.payload["locale"] == expected
    greeting = {"pl": "Dzień dobry Anna", "en": "Hello Anna"}[expected]
    assert greeting in row.payload["text"]
    assert f'<html lang="{expected}">' in row.payload["html"]


def test_html_escapes_the_context_and_text_does_not(app):
    context = {"name": "<b>Ann & Bob</b>", "link": "https://x.test/?a=1&b=2"}
    row = outbox().enqueue_mail("anna@example.com", "test_message", "en", context, "k")
    assert "&lt;b&gt;Ann &amp; Bob&lt;/b&gt;" in row.payload["html"]
    assert 'href="https://x.test/?a=1&amp;b=2"' in row.payload["html"]
    assert "Hello <b>Ann & Bob</b>" in row.payload["text"]


def test_a_missing_variable_fails_loudly_and_writes_nothing(app):
    with pytest.raises(UndefinedError):
        outbox().enqueue_mail("anna@example.com", "test_message", "en", {"name": "A"}, "k")
    assert rows() == []


def test_the_same_key_twice_makes_one_row(app):
    first = outbox().enqueue_mail("anna@example.com", "test_message", "en", CONTEXT, "same")
    second = outbox().enqueue_mail("other@example.com", "test_message", "pl", CONTEXT, "same")
    assert first is not None
    assert second is None
    db.session.commit()
    (row,) = rows()
    assert row.payload["to"] == "anna@example.com"


def test_a_key_taken_by_another_transaction_is_not_duplicated(app):
    # The early check misses it (bypassed here); the INSERT itself must not duplicate or raise.
    service = outbox()
    assert service.enqueue_mail("a@example.com", "test_message", "en", CONTEXT, "raced")
    service._exists = lambda key: False
    assert service.enqueue_mail("a@example.com", "test_message", "en", CONTEXT, "raced") is None
    # ... and the caller's transaction is still usable afterwards.
    assert service.enqueue_mail("a@example.com", "test_message", "en", CONTEXT, "next")
    db.session.commit()
    assert [r.idempotency_key for r in rows()] == ["raced", "next"]


def test_rows_are_part_of_the_callers_transaction(app):
    outbox().enqueue_mail("anna@example.com", "test_message", "en", CONTEXT, "rolled-back")
    db.session.rollback()
    assert rows() == []


@pytest.mark.parametrize("to", ["", "not an address", "a@x.test, b@x.test", "a@x.test\r\nBcc: c@x"])
def test_a_mail_goes_to_exactly_one_address(app, to):
    with pytest.raises(ValueError, match="exactly one address"):
        outbox().enqueue_mail(to, "test_message", "en", CONTEXT, "k")


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "zażółć"])
def test_keys_are_short_printable_ascii(app, key):
    with pytest.raises(ValueError, match="idempotency key"):
        outbox().enqueue_mail("a@example.com", "test_message", "en", CONTEXT, key)


def test_the_service_takes_the_apps_settings_by_default(app):
    app.config["MAIL_FROM"] = "Sklep <pomoc@sklep.example>"
    service = OutboxService(db.session, renderer=renderer())
    row = service.enqueue_mail("anna@example.com", "test_message", "pl", CONTEXT, "k")
    assert row.payload["from"] == "Sklep <pomoc@sklep.example>"
    assert row.payload["message_id"] == "<k@sklep.example>"
    assert service.enqueue_webhook("account.recovered", {}, "w") is None  # no URL configured


def test_the_package_ships_the_layouts_real_templates_extend():
    from recovery.outbox.mail import TEMPLATE_DIR

    assert (TEMPLATE_DIR / "base.html").is_file()
    assert (TEMPLATE_DIR / "base.txt").is_file()


@pytest.mark.postgres
def test_concurrent_enqueues_with_one_key_store_one_row(committed_app):
    """Eight transactions race with one key: one row, and nobody's transaction is aborted."""
    writers = 8
    barrier = threading.Barrier(writers)
    results: list[object] = []
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            with committed_app.app_context():
                service = outbox(settings())
                barrier.wait()
                row = service.enqueue_mail(
                    f"w{index}@example.com", "test_message", "en", CONTEXT, "contended"
                )
                db.session.commit()
                results.append(row is not None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(results) == [False] * (writers - 1) + [True]
    with committed_app.app_context():
        count = db.session.scalar(select(func.count()).select_from(OutboxMessage))
        assert count == 1
