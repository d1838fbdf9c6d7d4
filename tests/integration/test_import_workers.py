"""The importer's worker processes: validating lines elsewhere changes nothing but the speed.

``checked_lines`` hands chunks of lines to worker processes when there are more than ``CHUNK_LINES``;
here the chunks are made tiny so a short input crosses many chunk boundaries, and every result,
summary and reported error must equal the in-process path's, in the same order.
"""

import json

import pytest
from sqlalchemy import func, select

from recovery.accounts.models import Account, Identity
from recovery.db import db
from recovery.errors import MalformedRequest, ValidationFailed
from recovery.ingest import services
from recovery.ingest.services import MAX_LINE_BYTES, Importer, checked_lines
from recovery.orders.models import Order


def account(account_id, *identities, **fields):
    line = {"type": "account", "account_id": account_id, "identities": list(identities), **fields}
    return json.dumps(line).encode() + b"\n"


def order(number, account_id=None, **fields):
    line = {
        "type": "order",
        "order_number": number,
        "placed_at": "2026-03-01T12:30:00+01:00",
        "payment_method": "card",
        "account_id": account_id,
        **fields,
    }
    return json.dumps(line).encode() + b"\n"


def email(value, verified=False):
    return {"kind": "email", "value": value, "verified": verified}


def phone(value, verified=False):
    return {"kind": "phone", "value": value, "verified": verified}


LINES = [
    account("a1", email("Anna@Example.com", True), phone("600 100 200"), display_name="Anna"),
    b"\n",
    order("pl-1", "a1", email="anna@example.com", phone="+48600100200"),
    b"{not json\n",
    account("a2", email("not an address")),
    order("pl-2", "nobody"),  # refused when written: an unknown account
    b'{"type": "invoice"}\n',
    account("a3", email("anna@example.com")),  # refused when written: a1 holds that address
    b"x" * (MAX_LINE_BYTES + 1) + b"\n",
    account("a4", phone("+48 600 100 201", True), email("a4@example.com"), locale="en", vip=True),
    order("PL 3", "a4", paypal_payer_id="abcdefghijk12", payment_method="paypal"),
    order("pl-1", "a1", email="anna@example.com"),  # the same order again, changed
    account("a1", email("anna@example.com", True)),  # a repeat: drops the phone
    b"   \r\n",
    order("pl-4", placed_at="yesterday"),
    account("a5"),
    order("pl-5", guest=True, phone="+48 600 100 202"),
]


@pytest.fixture
def tiny_chunks(monkeypatch):
    monkeypatch.setattr(services, "CHUNK_LINES", 3)


def test_workers_check_every_line_as_the_importing_process_does(tiny_chunks):
    alone = list(checked_lines(LINES, workers=0))
    parallel = list(checked_lines(LINES, workers=2))

    assert [n for n, _ in parallel] == list(range(1, len(LINES) + 1))
    assert [type(c) for _, c in parallel] == [type(c) for _, c in alone]
    for (_, mine), (_, theirs) in zip(parallel, alone, strict=True):
        if isinstance(theirs, ValidationFailed | MalformedRequest):
            assert (mine.code, mine.detail) == (theirs.code, theirs.detail)
            assert getattr(mine, "errors", None) == getattr(theirs, "errors", None)
        else:
            assert mine == theirs
    assert isinstance(dict(parallel)[4], MalformedRequest)
    assert dict(parallel)[2] is None


def test_short_input_never_starts_workers(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no worker processes for a short input")

    monkeypatch.setattr(services, "ProcessPoolExecutor", refuse)
    assert len(list(checked_lines(LINES, workers=4))) == len(LINES)


def run(workers, batch_size):
    importer = Importer(db.session, batch_size, workers)
    summaries = [
        (s.lines, s.accepted, s.created, s.updated, s.unchanged, s.rejected)
        for s in importer.run(iter(LINES))
    ]
    errors = [error.as_dict() for error in importer.summary.errors]
    state = (
        db.session.scalars(select(Account.external_id).order_by(Account.external_id)).all(),
        db.session.execute(
            select(Identity.kind, Identity.value, Identity.verified_at.is_not(None)).order_by(
                Identity.value
            )
        ).all(),
        db.session.execute(
            select(Order.number, Order.email, Order.phone).order_by(Order.number)
        ).all(),
    )
    return summaries, errors, state


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_importing_with_workers_gives_the_same_summaries_errors_and_rows(
    app, tiny_chunks, batch_size
):
    session = db.session
    with session.begin_nested() as alone_savepoint:
        alone = run(0, batch_size)
        alone_savepoint.rollback()
    assert session.scalar(select(func.count()).select_from(Account)) == 0

    with session.begin_nested() as parallel_savepoint:
        parallel = run(2, batch_size)
        parallel_savepoint.rollback()

    assert parallel == alone
    summaries, errors, (accounts, _, orders) = alone
    assert summaries[-1] == (len(LINES), 8, 6, 2, 0, 7)
    assert sorted(e["line"] for e in errors) == [4, 5, 6, 7, 8, 9, 15]
    assert accounts == ["a1", "a4", "a5"]
    assert [number for number, _, _ in orders] == ["PL1", "PL3", "PL5"]


@pytest.mark.parametrize("app_config", [{"IMPORT_WORKERS": 2, "IMPORT_BATCH_SIZE": 2}])
def test_the_api_import_uses_the_configured_workers(client, ingest, tiny_chunks, monkeypatch):
    started = []
    real = services.ProcessPoolExecutor

    def counting(workers, **kwargs):
        started.append(workers)
        return real(workers, **kwargs)

    monkeypatch.setattr(services, "ProcessPoolExecutor", counting)
    response = client.post(
        "/api/v1/import",
        data=b"".join(LINES),
        headers={**ingest, "Content-Type": "application/x-ndjson"},
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    assert started == [2]
    body = response.get_json()
    assert (body["lines"], body["accepted"], body["rejected"]) == (len(LINES), 8, 7)
