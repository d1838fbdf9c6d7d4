"""Accounts prepared where their lines are checked store exactly what the service derives itself."""

import json

import pytest
from sqlalchemy import select

from recovery.accounts.models import Account, Identity
from recovery.accounts.schemas import AccountRecord
from recovery.accounts.services import AccountService, prepare
from recovery.db import db
from recovery.ingest import services
from recovery.ingest.services import Importer

RECORD = {
    "account_id": "p1",
    "display_name": "Łukasz  Wójcik-Nowak",
    "identities": [
        {"kind": "email", "value": "Lukasz.Wojcik+shop@GoogleMail.com", "verified": True},
        {"kind": "phone", "value": "600 100 200"},
        {"kind": "phone", "value": "+48600100200", "verified": True},  # a repeat, now verified
        {"kind": "paypal", "value": "abcdefghijk12"},
    ],
}


def stored(external_id):
    account = db.session.scalars(select(Account).where(Account.external_id == external_id)).one()
    identities = db.session.execute(
        select(Identity.kind, Identity.value, Identity.display, Identity.fuzzy_key)
        .where(Identity.account_id == account.id)
        .order_by(Identity.value)
    ).all()
    verified = db.session.scalars(
        select(Identity.value)
        .where(Identity.account_id == account.id, Identity.verified_at.is_not(None))
        .order_by(Identity.value)
    ).all()
    return account.name_key, [tuple(row) for row in identities], verified


def test_prepare_derives_what_the_service_stores():
    prepared = prepare(AccountRecord.model_validate(RECORD).data())
    assert prepared.name_key == "lukasz nowak wojcik"
    assert [
        (k.value, v, w.verified, w.display, w.fuzzy_key)
        for (k, v), w in prepared.identities.items()
    ] == [
        (
            "email",
            "lukasz.wojcik+shop@googlemail.com",
            True,
            "l***@googlemail.com",
            "lukaszwojcik@gmail.com",
        ),
        ("phone", "+48600100200", True, "+48 *** *** 200", None),
        ("paypal", "ABCDEFGHIJK12", False, "***JK12", None),
    ]


@pytest.mark.parametrize("workers", [0, 2])
def test_imported_accounts_store_what_a_put_stores(app, monkeypatch, workers):
    monkeypatch.setattr(services, "CHUNK_LINES", 1)  # worker processes even for one line
    (outcome,) = AccountService(db.session).upsert_many([AccountRecord.model_validate(RECORD)])
    assert outcome.result == "created"
    by_put = stored("p1")
    db.session.rollback()

    importer = Importer(db.session, 10, workers)
    list(importer.run([json.dumps({"type": "account", **RECORD}).encode() + b"\n"]))

    assert importer.summary.created == 1
    assert stored("p1") == by_put
