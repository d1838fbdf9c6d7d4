"""Demo personas: one per branch of the recovery decision tree (DESIGN §4), loaded idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from recovery.accounts.schemas import AccountRecord
from recovery.accounts.services import AccountService
from recovery.errors import RecoveryError
from recovery.orders.schemas import OrderRecord
from recovery.orders.services import OrderService

#: argon2id of "demo-password-2026", fixed so that loading the demo twice changes nothing.
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - published demo credentials
_DEMO_HASH = "$argon2id$v=19$m=19456,t=2,p=1$5pzTutc6xxijdK71XmstpQ$jSABJNis+dPGtAmCfj/cPz8wwJaCeSwbCQ+6XhQg78o"


@dataclass(frozen=True, slots=True)
class Persona:
    title: str
    how_to_try: str
    accounts: tuple[dict[str, Any], ...]
    orders: tuple[dict[str, Any], ...] = ()


def _email(value: str, verified: bool = True) -> dict[str, Any]:
    return {"kind": "email", "value": value, "verified": verified}


PERSONAS = (
    Persona(
        "Anna Nowak, email and password",
        "she receives order emails at anna.nowak@example.com: the email reset branch",
        (
            {
                "account_id": "demo-anna",
                "display_name": "Anna Nowak",
                "password_hash": _DEMO_HASH,
                "identities": [_email("anna.nowak@example.com")],
            },
        ),
        (
            {
                "order_number": "DEMO-1001",
                "placed_at": "2026-10-02T10:15:00+02:00",
                "email": "anna.nowak@example.com",
                "payment_method": "card",
                "account_id": "demo-anna",
            },
        ),
    ),
    Persona(
        "Piotr Wiśniewski, PayPal guest buyer",
        "paid order DEMO-2001 with PayPal (payer id PIOTRPAYER001, piotr.paypal@example.net) "
        "without registering: the PayPal branch",
        (
            {
                "account_id": "demo-piotr-guest",
                "display_name": "Piotr Wiśniewski",
                "identities": [{"kind": "paypal", "value": "PIOTRPAYER001", "verified": True}],
            },
        ),
        (
            {
                "order_number": "DEMO-2001",
                "placed_at": "2026-11-03T18:40:00+01:00",
                "email": "piotr.paypal@example.net",
                "payment_method": "paypal",
                "paypal_payer_id": "PIOTRPAYER001",
                "paypal_email": "piotr.paypal@example.net",
                "guest": True,
                "account_id": "demo-piotr-guest",
            },
        ),
    ),
    Persona(
        "Katarzyna Lewandowska, Google only",
        "signs in with Google (kasia.lewandowska@gmail.com, no password): the Google branch",
        (
            {
                "account_id": "demo-kasia",
                "display_name": "Katarzyna Lewandowska",
                "locale": "pl",
                "identities": [
                    {"kind": "google", "value": "104729384756102938475", "verified": True},
                    _email("kasia.lewandowska@gmail.com"),
                ],
            },
        ),
    ),
    Persona(
        "John Smith, Facebook only",
        "signs in with Facebook (john.smith@example.org): the Facebook branch",
        (
            {
                "account_id": "demo-john",
                "display_name": "John Smith",
                "locale": "en",
                "identities": [
                    {"kind": "facebook", "value": "10158273645192837", "verified": True},
                    _email("john.smith@example.org", verified=False),
                ],
            },
        ),
    ),
    Persona(
        "Tomasz Kamiński, phone login",
        "signs in with his phone 600 100 200: the SMS code branch",
        (
            {
                "account_id": "demo-tomasz",
                "display_name": "Tomasz Kamiński",
                "identities": [{"kind": "phone", "value": "+48 600 100 200", "verified": True}],
            },
        ),
        (
            {
                "order_number": "DEMO-3001",
                "placed_at": "2026-09-12T09:00:00+02:00",
                "phone": "600100200",
                "payment_method": "blik",
                "account_id": "demo-tomasz",
            },
        ),
    ),
    Persona(
        "Ewa Wójcik, VIP",
        "a VIP with a password (ewa.wojcik@example.com): her help cases get the urgent target",
        (
            {
                "account_id": "demo-ewa",
                "display_name": "Ewa Wójcik",
                "vip": True,
                "password_hash": _DEMO_HASH,
                "identities": [_email("ewa.wojcik@example.com")],
            },
        ),
    ),
    Persona(
        "Marek Zieliński, one person in two accounts",
        "a guest PayPal order DEMO-4001 (paid as marek.z@example.net) and a Google account "
        "(marek.zielinski@gmail.com): resolve both with his order number and emails",
        (
            {
                "account_id": "demo-marek-guest",
                "display_name": "Marek Zieliński",
                "identities": [{"kind": "paypal", "value": "MAREKPAYER001", "verified": True}],
            },
            {
                "account_id": "demo-marek-google",
                "display_name": "Marek Zielinski",
                "identities": [
                    {"kind": "google", "value": "117263540918273645011", "verified": True},
                    _email("marek.zielinski@gmail.com"),
                ],
            },
        ),
        (
            {
                "order_number": "DEMO-4001",
                "placed_at": "2026-08-30T20:05:00+02:00",
                "email": "marek.z@example.net",
                "payment_method": "paypal",
                "paypal_payer_id": "MAREKPAYER001",
                "paypal_email": "marek.z@example.net",
                "guest": True,
                "account_id": "demo-marek-guest",
            },
        ),
    ),
)


def load(session: Session) -> tuple[Persona, ...]:
    """Upsert every persona through the same services the ingest API uses."""
    accounts = [AccountRecord.model_validate(a) for p in PERSONAS for a in p.accounts]
    orders = [OrderRecord.model_validate(o) for p in PERSONAS for o in p.orders]
    errors: list[RecoveryError | None] = [
        *(o.error for o in AccountService(session).upsert_many(accounts)),
        *(o.error for o in OrderService(session).upsert_many(orders)),
    ]
    failed = [error for error in errors if error is not None]
    if failed:  # e.g. the demo identities were pushed under other ids by real data
        raise failed[0]
    return PERSONAS
