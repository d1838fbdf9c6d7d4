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
        ("order_number", "identity", "exact", 0.3),  # and its contact phone is a's, unverified
    ]
    assert by_account["a"].evidence[-2].hint == by_account["a"].evidence[-1].hint == "O2"
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


def _resolve(**hints):
    return ResolutionService(db.session).resolve(Hints.model_validate(hints))


def test_two_hints_that_mask_alike_are_two_pieces_of_evidence(app):
    factories.account("a", ("email", "jan@example.com", True), ("email", "joe@example.com", True))
    (candidate,) = _resolve(emails=["jan@example.com", "joe@example.com"])
    assert [e.hint for e in candidate.evidence] == ["j***@example.com"] * 2
    assert candidate.score == 0.99  # two verified addresses, not one counted once


def test_one_identity_found_by_two_kinds_of_hint_is_one_fact(app):
    factories.account("a", ("email", "jan@example.com", True))
    (candidate,) = _resolve(emails=["jan@example.com"], paypal_emails=["jan@example.com"])
    assert len(candidate.evidence) == 2  # both shown ...
    assert candidate.score == 0.9  # ... but one verified address counts once


def test_a_common_name_still_counts_for_the_account_other_hints_found(app):
    for number in range(25):  # more namesakes than a name alone lists
        factories.account(f"namesake-{number}", display_name="Jan Kowalski")
    factories.account("target", ("email", "jk@example.com", True), display_name="Jan Kowalski")
    candidates = _resolve(emails=["jk@example.com"], names=["Jan Kowalski"])
    best = candidates[0]
    assert best.account.external_id == "target"
    assert sorted(e.hint_kind for e in best.evidence) == ["email", "name"]
    assert best.score == 0.915  # 1 - (1 - 0.9) * (1 - 0.15)
