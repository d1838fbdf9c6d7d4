import pytest
from sqlalchemy import select, update

from recovery.accounts.models import Account, AccountStatus
from recovery.audit.models import AuditEvent
from recovery.clients.models import Scope
from recovery.db import db
from tests import factories


def resolve(client, headers, **hints):
    return client.post("/api/v1/resolve", json=hints, headers=headers)


def candidates(response):
    assert response.status_code == 200, response.get_json()
    return response.get_json()["candidates"]


@pytest.fixture
def guest_buyer():
    """A guest who paid with PayPal: the shop made a guest account holding the payer id."""
    factories.account("guest-7", ("paypal", "GUESTPAYER007", True), display_name="Jan Kowalski")
    return factories.order(
        "PL-2026-0007",
        email="jan.k@example.com",
        payment_method="paypal",
        paypal_payer_id="GUESTPAYER007",
        paypal_email="jan.paypal@example.com",
        guest=True,
        account_id="guest-7",
    )


def test_a_guest_orders_number_finds_its_account_with_evidence_naming_it(
    client, resolver, guest_buyer
):
    (found,) = candidates(resolve(client, resolver, order_numbers=["pl 2026 0007"]))
    assert found["account"]["account_id"] == "guest-7"
    assert found["score"] >= 0.7
    order_evidence = [e for e in found["evidence"] if e["source"] == "order"]
    assert order_evidence[0]["reference"] == "PL20260007"
    assert "guest order PL20260007" in order_evidence[0]["note"]
    assert found["sign_in_methods"] == [{"kind": "paypal", "display": "***R007", "verified": True}]


def test_a_guest_order_without_an_account_resolves_through_its_payer(client, resolver):
    factories.account("paypal-user", ("paypal", "PAYERONLY0001", True))
    factories.order("G-1", payment_method="paypal", paypal_payer_id="PAYERONLY0001", guest=True)
    (found,) = candidates(resolve(client, resolver, order_numbers=["G-1"]))
    assert found["account"]["account_id"] == "paypal-user"
    assert found["evidence"][0]["note"] == "the order was paid by this PayPal account"


def test_exact_email_and_phone_hits(client, resolver):
    factories.account("a", ("email", "ann@example.com", True), ("phone", "600100200", True))
    factories.account("b", ("email", "bob@example.com", False))
    by_email = candidates(resolve(client, resolver, emails=["ANN@example.com"]))
    by_phone = candidates(resolve(client, resolver, phones=["+48 600 100 200"]))
    unverified = candidates(resolve(client, resolver, emails=["bob@example.com"]))
    assert [c["account"]["account_id"] for c in by_email] == ["a"]
    assert [c["account"]["account_id"] for c in by_phone] == ["a"]
    assert by_email[0]["score"] == 0.9
    assert unverified[0]["score"] == 0.6  # an unverified identity counts for less
    assert by_email[0]["evidence"][0]["hint"] == "a***@example.com"  # hints come back masked


def test_several_hints_add_up_and_rank_candidates(client, resolver):
    factories.account("strong", ("email", "ann@example.com", True), ("phone", "600100200", True))
    factories.account("weak", ("phone", "600100201", False))
    factories.order("O-1", phone="600100201", account_id="strong")
    found = candidates(resolve(client, resolver, emails=["ann@example.com"], phones=["600100201"]))
    assert [c["account"]["account_id"] for c in found] == ["strong", "weak"]
    assert found[0]["score"] > 0.9


def test_a_miss_is_an_empty_list(client, resolver, guest_buyer):
    assert candidates(resolve(client, resolver, emails=["nobody@example.com"])) == []
    assert candidates(resolve(client, resolver, order_numbers=["NOPE-1"])) == []


def test_gmail_dots_and_tags_are_fuzzy_candidates_only(client, resolver):
    factories.account("g", ("email", "jan.kowalski@gmail.com", True))
    (found,) = candidates(resolve(client, resolver, emails=["jankowalski+shop@googlemail.com"]))
    assert found["account"]["account_id"] == "g"
    assert found["evidence"][0]["match"] == "fuzzy"
    assert found["score"] < 0.5
    # Dots matter outside Gmail.
    factories.account("o", ("email", "jan.kowalski@example.com", True))
    assert candidates(resolve(client, resolver, emails=["jankowalski@example.com"])) == []


def test_order_contact_and_paypal_emails_are_evidence(client, resolver, guest_buyer):
    by_contact = candidates(resolve(client, resolver, emails=["jan.k@example.com"]))
    by_paypal = candidates(resolve(client, resolver, paypal_emails=["jan.paypal@example.com"]))
    assert [c["account"]["account_id"] for c in by_contact] == ["guest-7"]
    assert [c["account"]["account_id"] for c in by_paypal] == ["guest-7"]
    assert by_paypal[0]["evidence"][0]["note"].startswith("PayPal email of guest order")


def test_names_match_without_accents_case_or_order(client, resolver):
    factories.account("n", display_name="Łukasz Wójcik")
    (found,) = candidates(resolve(client, resolver, names=["wojcik lukasz"]))
    assert found["account"]["account_id"] == "n"
    assert found["evidence"][0]["match"] == "fuzzy"


def test_evidence_for_a_merged_account_points_at_the_survivor(client, resolver):
    factories.account("old", ("email", "old@example.com", True))
    survivor = factories.account("new", ("email", "new@example.com", True))
    db.session.execute(
        update(Account)
        .where(Account.external_id == "old")
        .values(merged_into_id=survivor.id, status=AccountStatus.MERGED)
    )
    db.session.commit()
    (found,) = candidates(resolve(client, resolver, emails=["old@example.com"]))
    assert found["account"]["account_id"] == "new"
    assert "via merged account" in found["evidence"][0]["note"]


def test_the_one_person_in_two_accounts_persona_finds_both(client, resolver):
    from recovery.demo import load

    load(db.session)
    found = candidates(
        resolve(client, resolver, order_numbers=["DEMO-4001"], emails=["marek.zielinski@gmail.com"])
    )
    assert {c["account"]["account_id"] for c in found} == {"demo-marek-guest", "demo-marek-google"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"emails": ["nope"]}, "emails.0"),
        ({"phones": ["12"]}, "phones.0"),
        ({"emails": ["a@b.pl"] * 11}, "emails"),
        ({"emails": ["a@b.pl"], "limit": 0}, "limit"),
        ({"names": ["x"]}, "names.0"),
    ],
)
def test_bad_hints_are_field_errors(client, resolver, body, field):
    response = client.post("/api/v1/resolve", json=body, headers=resolver)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == field


def test_resolution_needs_the_resolve_scope(client, make_key):
    response = resolve(client, make_key(Scope.INGEST), emails=["a@example.com"])
    assert response.status_code == 403
    assert resolve(client, {}, emails=["a@example.com"]).status_code == 401


def test_every_resolution_is_audited_without_the_hints(client, resolver, guest_buyer):
    resolve(client, resolver, emails=["jan.k@example.com"], order_numbers=["PL-2026-0007"])
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "identity.resolve")
    ).one()
    assert event.data["hints"] == {"emails": 1, "order_numbers": 1}
    assert len(event.data["candidates"]) == 1
    assert "jan.k" not in str(event.data)


def test_a_guest_orders_number_finds_the_accounts_holding_its_contact_email_and_phone(
    client, resolver
):
    factories.account("by-mail", ("email", "kasia@example.com", True))
    factories.account("by-phone", ("phone", "600100777", False))
    factories.account("elsewhere", ("email", "someone.else@example.com", True))
    factories.order("G-2", email="Kasia@example.com", phone="600 100 777", guest=True)

    found = candidates(resolve(client, resolver, order_numbers=["G-2"]))

    assert [(c["account"]["account_id"], c["score"]) for c in found] == [
        ("by-mail", 0.5),  # a verified email of the account
        ("by-phone", 0.3),  # an unverified phone counts for less
    ]
    assert found[0]["evidence"][0]["note"] == (
        "contact email of guest order G2, a verified email of the account"
    )
    assert found[1]["evidence"][0]["reference"] == "+48 *** *** 777"


def test_an_orders_contact_adds_no_score_to_the_account_it_belongs_to(client, resolver):
    factories.account("owner", ("email", "owner@example.com", True))
    factories.order("O-9", email="owner@example.com", account_id="owner")

    (found,) = candidates(resolve(client, resolver, order_numbers=["O-9"]))

    assert found["score"] == 0.7  # the order number, counted once at its strongest
    assert [e["source"] for e in found["evidence"]] == ["order", "identity"]
