"""ResolutionService directly: every kind of exact hint in one statement, the same answers."""

from recovery.db import db
from recovery.identity.schemas import Hints
from recovery.identity.services import ResolutionService
from tests import factories
from tests.integration.conftest import statements_of


def test_all_exact_hint_kinds_together_cost_two_statements_and_keep_every_piece_of_evidence(app):
    factories.account(
        "a",
        ("email", "ann.smith@gmail.com", True),
        ("phone", "600100200", False),
        ("paypal", "PAYERANN00001", True),
    )
    factories.account("b", ("email", "bob@example.com", True))
    factories.order("O-1", email="annsmith+shop@gmail.com", account_id="a")
    factories.order("O-3", email="ann.smith@gmail.com", account_id="a")
    factories.order(
        "O-2",
        email="carol@example.com",
        phone="600100200",
        payment_method="paypal",
        paypal_payer_id="PAYERANN00001",
        paypal_email="bob@example.com",
        guest=True,
    )
    hints = Hints(
        emails=["ann.smith@gmail.com"],
        paypal_emails=["bob@example.com"],
        phones=["600 100 200"],
        order_numbers=["O-2", "NOPE"],
    )

    candidates, statements = statements_of(lambda: ResolutionService(db.session).resolve(hints))

    assert len(statements) == 2  # the evidence, then the accounts with their identities
    by_account = {c.account.external_id: c for c in candidates}
    assert list(by_account) == ["a", "b"]
    evidence = [(e.hint_kind, e.source, e.match, e.weight) for e in by_account["a"].evidence]
    assert evidence == [
        ("email", "identity", "exact", 0.9),
        ("email", "order", "fuzzy", 0.2),  # O-1's contact address with a +tag
        ("email", "order", "exact", 0.5),  # O-3's, found through the same fuzzy key
        ("phone", "identity", "exact", 0.6),  # unverified
        ("order_number", "identity", "exact", 0.6),  # O-2 was paid by a's PayPal payer
    ]
    assert by_account["a"].evidence[-1].hint == "O2"
    assert [(e.hint_kind, e.source) for e in by_account["b"].evidence] == [
        ("paypal_email", "identity")
    ]
    assert [i.kind.value for i in by_account["a"].account.identities] == [
        "email",
        "phone",
        "paypal",
    ]


def test_a_miss_costs_one_statement(app):
    hints = Hints(emails=["nobody@example.com"], phones=["+48 600 999 999"])
    candidates, statements = statements_of(lambda: ResolutionService(db.session).resolve(hints))
    assert candidates == []
    assert len(statements) == 1
