"""Signed webhooks to a real HTTP receiver (werkzeug on 127.0.0.1), checked with ``standardwebhooks``."""

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from recovery.db import db
from recovery.outbox.models import MessageStatus
from tests.integration.outbox.conftest import WEBHOOK_SECRET, outbox, rows, settings

EVENT = {
    "account_id": "c-1",
    "id": "0b6c1c5e-0000-4000-8000-000000000001",
    "recovered_at": "2026-11-21T22:30:00+00:00",
    "end_sessions_before": "2026-11-21T22:30:00+00:00",
}


def enqueue_event(receiver, key="account.recovered:1:2026-11-21T22:30:00+00:00", **changes):
    delivery = settings(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, **changes)
    row = outbox(delivery).enqueue_webhook("account.recovered", EVENT, key)
    db.session.commit()
    return row, delivery


def webhook_worker(make_worker, receiver, **changes):
    return make_worker(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, **changes)


def test_the_shop_receives_a_standard_webhook_it_can_verify(make_worker, receiver):
    enqueue_event(receiver)
    before = int(time.time())
    assert webhook_worker(make_worker, receiver).run_once() == 1

    ((path, headers, body),) = receiver.requests
    assert path == "/hooks/recovery"
    assert headers["Content-Type"] == "application/json"
    assert headers["Webhook-Id"] == "account.recovered:1:2026-11-21T22:30:00+00:00"
    assert before <= int(headers["Webhook-Timestamp"]) <= int(time.time())
    # Verified independently, with the reference implementation of the specification.
    event = Webhook(WEBHOOK_SECRET).verify(body, headers)
    assert event["type"] == "account.recovered"
    assert event["data"] == EVENT
    assert event["timestamp"].endswith("Z")
    (row,) = rows()
    assert (row.status, row.attempts) == (MessageStatus.SENT, 1)


def test_a_tampered_body_or_another_secret_fails_verification(make_worker, receiver):
    enqueue_event(receiver)
    webhook_worker(make_worker, receiver).run_once()
    ((_, headers, body),) = receiver.requests
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(body.replace(b"c-1", b"c-2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(body, headers)


def test_a_5xx_is_retried_with_the_same_id_and_a_fresh_signature(make_worker, receiver):
    enqueue_event(receiver)
    worker = webhook_worker(make_worker, receiver)
    receiver.status = 503
    worker.run_once()
    (row,) = rows()
    assert (row.status, row.attempts, row.last_error) == (
        MessageStatus.PENDING,
        1,
        "webhook answered HTTP 503",
    )
    receiver.status = 200
    make_worker.clock.advance(3600)
    worker.run_once()
    first, second = receiver.requests
    assert first[1]["Webhook-Id"] == second[1]["Webhook-Id"]  # the receiver can deduplicate
    assert json.loads(first[2]) == json.loads(second[2])
    Webhook(WEBHOOK_SECRET).verify(second[2], second[1])
    (row,) = rows()
    assert (row.status, row.attempts) == (MessageStatus.SENT, 2)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_4xx_is_final_and_the_message_dead_at_once(make_worker, receiver, status):
    enqueue_event(receiver)
    receiver.status = status
    webhook_worker(make_worker, receiver).run_once()
    (row,) = rows()
    assert (row.status, row.attempts) == (MessageStatus.DEAD, 1)
    assert row.last_error == f"webhook answered HTTP {status}"


@pytest.mark.parametrize("status", [408, 429, 500, 502])
def test_timeouts_throttling_and_server_errors_are_retried(make_worker, receiver, status):
    enqueue_event(receiver)
    receiver.status = status
    webhook_worker(make_worker, receiver).run_once()
    (row,) = rows()
    assert (row.status, row.attempts) == (MessageStatus.PENDING, 1)


def test_an_endpoint_that_is_down_keeps_the_event_pending(make_worker):
    from tests.integration.outbox.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/hooks?token=do-not-log-me"
    row = outbox(settings(webhook_url=url, webhook_secret=WEBHOOK_SECRET)).enqueue_webhook(
        "account.recovered", EVENT, "evt-down"
    )
    db.session.commit()
    make_worker(webhook_url=url, webhook_secret=WEBHOOK_SECRET).run_once()
    (row,) = rows()
    assert row.status == MessageStatus.PENDING
    assert row.last_error == "webhook failed (ConnectError)"  # never the URL and its token


def test_without_a_configured_endpoint_no_webhook_row_is_written(app):
    assert (
        outbox(settings(webhook_url=None)).enqueue_webhook("account.recovered", EVENT, "k") is None
    )
    assert rows() == []


def test_the_webhook_id_is_the_idempotency_key_and_repeats_write_nothing(app, receiver):
    first, _ = enqueue_event(receiver, key="evt-1")
    again, _ = enqueue_event(receiver, key="evt-1")
    assert first is not None
    assert again is None
    (row,) = rows()
    assert row.idempotency_key == "evt-1"
    assert set(row.payload) == {"type", "timestamp", "data"}
