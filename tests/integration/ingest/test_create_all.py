"""The importer's "all new" fast path: a batch created in one statement, or nothing written.

``create_all`` must store exactly what ``upsert_many`` stores, and hand back (None, nothing
written) every batch it cannot simply create, so the careful path reports what is wrong with it.
"""

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from recovery.accounts.models import Account, Identity
from recovery.accounts.schemas import AccountRecord
from recovery.accounts.services import AccountService, prepare
from recovery.db import db
from recovery.ingest.services import Importer
from recovery.orders.models import Order
from recovery.orders.schemas import OrderRecord
from recovery.orders.services import OrderService
from tests import factories
from tests.integration.conftest import statements_of

pytestmark = pytest.mark.postgres


def account(account_id, *identities, **fields):
    record = {
        "account_id": account_id,
        "display_name": "Zażółć Gęślą",
        "identities": [
            {"kind": kind, "value": value, "verified": verified}
            for kind, value, verified in identities
        ],
        **fields,
    }
    return prepare(AccountRecord.model_validate(record).data())


def order(number, account_id=None, **fields):
    record = {
        "order_number": number,
        "placed_at": "2026-03-01T12:00:00+01:00",
        "email": "Guest.Buyer+x@gmail.com",
        "payment_method": "paypal",
        "paypal_payer_id": "ABCDEFGHIJK12",
        "guest": account_id is None,
        "account_id": account_id,
        **fields,
    }
    return OrderRecord.model_validate(record).data()


IDENTITY = {"kind": "email", "value": "f1@example.com", "verified": True}
ORDER = {"order_number": "PL-77", "placed_at": "2026-03-01T12:00:00Z", "payment_method": "card"}

BATCH = [
    account(
        "n1",
        ("email", "ola@example.com", True),
        ("phone", "600 100 201", False),
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    ),
    account("n2", ("phone", "600 100 202", True), ("paypal", "PAYER0000002X", True), vip=True),
    account("n3"),  # no identities at all
    account("n4", ("email", "Four@Example.com", False), locale="en"),
]


def accounts_as_stored():
    """Every account and identity, without what differs by nature (ids, clocks, public ids)."""
    accounts = db.session.execute(
        select(
            Account.external_id,
            Account.status,
            Account.display_name,
            Account.name_key,
            Account.locale,
            Account.vip,
            Account.password_hash,
            Account.shop_password_digest,
            Account.password_changed_at.is_not(None),
        ).order_by(Account.id)
    ).all()
    identities = db.session.execute(
        select(
            Account.external_id,
            Identity.kind,
            Identity.value,
            Identity.display,
            Identity.fuzzy_key,
            Identity.source,
            Identity.verified_at.is_not(None),
        )
        .join(Account)
        .order_by(Identity.id)
    ).all()
    return [tuple(row) for row in accounts], [tuple(row) for row in identities]


def counts():
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Account, Identity, Order)
    )


def test_a_new_batch_is_stored_as_the_careful_path_stores_it(app):
    outcomes = AccountService(db.session).upsert_many(BATCH)
    assert [o.result for o in outcomes] == ["created"] * 4
    careful = accounts_as_stored()
    db.session.rollback()

    outcomes = AccountService(db.session).create_all(BATCH)

    assert [(o.account_id, o.result, o.error) for o in outcomes] == [
        (p.record.account_id, "created", None) for p in BATCH
    ]
    assert accounts_as_stored() == careful  # the same rows, identities in the same id order
    first = db.session.scalar(select(Account).where(Account.external_id == "n1"))
    assert first.created_at == first.updated_at == first.password_changed_at
    assert first.created_at > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)


def test_a_new_batch_of_orders_is_stored_as_the_careful_path_stores_it(app):
    factories.account("shop-7", ("email", "seven@example.com", True))
    batch = [order("PL-1"), order("PL-2", "shop-7"), order("PL-3", phone="600 100 300")]
    columns = [c for c in Order.__table__.c if c.name not in ("id", "created_at", "updated_at")]

    def stored():
        return [tuple(row) for row in db.session.execute(select(*columns).order_by(Order.id))]

    assert [o.result for o in OrderService(db.session).upsert_many(batch)] == ["created"] * 3
    careful = stored()
    db.session.rollback()

    outcomes = OrderService(db.session).create_all(batch)

    assert [(o.order_number, o.result) for o in outcomes] == [
        ("PL1", "created"),  # numbers are normalised
        ("PL2", "created"),
        ("PL3", "created"),
    ]
    assert stored() == careful


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param([account("x1", ("email", "x1@example.com", True)), BATCH[0]], id="id-exists"),
        pytest.param([account("x1", ("email", "OLA@example.com", True))], id="identity-held"),
        pytest.param(
            [
                account("x1", ("phone", "+48 600 100 999", True)),
                account("x2", ("phone", "600100999", False)),
            ],
            id="identity-named-twice",
        ),
        pytest.param([account("x1"), account("x1", locale="en")], id="id-repeated"),
    ],
)
def test_a_batch_that_is_not_all_new_writes_nothing(app, batch):
    AccountService(db.session).upsert_many([BATCH[0]])
    before = counts(), accounts_as_stored()

    assert AccountService(db.session).create_all(batch) is None

    assert (counts(), accounts_as_stored()) == before
    # ... and the careful path tells what is wrong, creating what it can.
    outcomes = AccountService(db.session).upsert_many(batch)
    assert any(o.error is not None or o.result != "created" for o in outcomes)


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param([order("PL-9"), order("PL-1")], id="number-exists"),
        pytest.param([order("PL-9", "nobody")], id="unknown-account"),
        pytest.param([order("PL-9"), order("PL-9", phone="600 100 300")], id="number-repeated"),
    ],
)
def test_a_batch_of_orders_that_is_not_all_new_writes_nothing(app, batch):
    OrderService(db.session).upsert_many([order("PL-1")])
    before = counts()

    assert OrderService(db.session).create_all(batch) is None

    assert counts() == before
    assert db.session.scalar(select(Order).where(Order.number == "PL9")) is None


def test_only_postgresql_has_the_fast_path(app, monkeypatch):
    monkeypatch.setattr("recovery.accounts.services.is_postgresql", lambda session: False)
    monkeypatch.setattr("recovery.orders.services.is_postgresql", lambda session: False)
    assert AccountService(db.session).create_all(BATCH) is None
    assert OrderService(db.session).create_all([order("PL-1")]) is None
    assert counts() == (0, 0, 0)


def test_a_first_import_takes_the_fast_path_and_a_replay_the_careful_one(app):
    lines = [
        json.dumps({"type": "account", "account_id": "f1", "identities": [IDENTITY]}).encode(),
        json.dumps({"type": "account", "account_id": "f2"}).encode(),
        json.dumps({"type": "order", **ORDER, "account_id": "f1"}).encode(),
    ]

    def run():
        importer = Importer(db.session, batch_size=10)
        list(importer.run(lines))
        return importer.summary

    first, sent = statements_of(run)
    assert (first.created, first.rejected) == (3, 0)
    fast = [s for s in sent if "ON CONFLICT" in s and "DO NOTHING" in s]
    assert len(fast) == 2  # one statement for the accounts, one for the orders
    assert not [s for s in sent if s.startswith("SELECT account.")]  # no look-ups first

    replay, sent = statements_of(run)
    assert (replay.unchanged, replay.rejected) == (3, 0)
    assert [s for s in sent if s.startswith("SELECT account.")]  # the careful path


def test_a_run_the_fast_path_refuses_is_written_carefully_after_the_runs_before_it(app):
    lines = [
        json.dumps({"type": "account", "account_id": "g1", "identities": [IDENTITY]}).encode(),
        json.dumps({"type": "order", **ORDER, "account_id": "g1"}).encode(),
        json.dumps(
            {"type": "order", **ORDER, "order_number": "PL-78", "account_id": "nobody"}
        ).encode(),
        json.dumps({"type": "account", "account_id": "g2"}).encode(),
    ]
    importer = Importer(db.session, batch_size=10)
    list(importer.run(lines))

    summary = importer.summary
    assert (summary.lines, summary.created, summary.rejected) == (4, 3, 1)
    assert [(e.line, e.error.errors[0].code) for e in summary.errors] == [(3, "unknown_account")]
    order = db.session.scalar(select(Order).where(Order.number == "PL77"))
    assert order.account_id == db.session.scalar(
        select(Account.id).where(Account.external_id == "g1")
    )
    assert db.session.scalar(select(Account).where(Account.external_id == "g2")) is not None
