"""Identity resolution: from a person's messy hints to candidate accounts, with the evidence.

Only exact matches on normalised values carry real weight; fuzzy matches (Gmail dots, ``+tags``,
names without diacritics) only put an account in front of staff. Nothing here signs anyone in, and
the results are personal data: they are for authenticated staff tools, never anonymous callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, joinedload

from recovery.accounts.models import Account, Identity
from recovery.identity import normalise
from recovery.identity.normalise import IdentityKind
from recovery.identity.schemas import Hints
from recovery.orders.models import Order

MAX_MERGE_HOPS = 5
NAME_MATCH_LIMIT = 20


class Weight:
    """How strongly one piece of evidence points at an account (combined as a noisy-or)."""

    VERIFIED_IDENTITY = 0.9
    VERIFIED_PHONE = 0.85
    UNVERIFIED_IDENTITY = 0.6
    ORDER_NUMBER = 0.7
    PAYPAL_ORDER_EMAIL = 0.6
    ORDER_PAYER = 0.6
    ORDER_CONTACT = 0.5
    FUZZY_IDENTITY = 0.3
    FUZZY_ORDER = 0.2
    NAME = 0.15


@dataclass(frozen=True, slots=True)
class Evidence:
    """One reason to believe: ``hint`` (which hint, masked) matched ``source`` (identity or order)."""

    hint_kind: str
    hint: str
    source: str  # "identity", "order" or "account"
    reference: str  # masked identity, order number, or "display name"
    match: str  # "exact" or "fuzzy"
    weight: float
    note: str | None = None


#: Records one piece of evidence for an account id (``None``: an order without an account).
_Add = Callable[[int | None, "Evidence"], None]


@dataclass(slots=True)
class Candidate:
    account: Account
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Noisy-or over hints, each hint counted once at its strongest evidence."""
        strongest: dict[tuple[str, str], float] = {}
        for item in self.evidence:
            key = (item.hint_kind, item.hint)
            strongest[key] = max(strongest.get(key, 0.0), item.weight)
        miss = 1.0
        for weight in strongest.values():
            miss *= 1.0 - weight
        return round(1.0 - miss, 4)


class ResolutionService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def resolve(self, hints: Hints, limit: int = 10) -> list[Candidate]:
        """Candidate accounts for ``hints``, best first, each with the evidence behind its score."""
        found: dict[int, list[Evidence]] = {}

        def add(account_id: int | None, evidence: Evidence) -> None:
            if account_id is not None:
                found.setdefault(account_id, []).append(evidence)

        self._emails(hints.emails, "email", add)
        self._paypal_emails(hints.paypal_emails, add)
        self._phones(hints.phones, add)
        self._order_numbers(hints.order_numbers, add)
        self._names(hints.names, add)
        return self._candidates(found, limit)

    # -- one method per hint kind; each is one or two indexed queries ---------------------------------

    def _emails(self, emails: list[str], hint_kind: str, add: _Add) -> None:
        if not emails:
            return
        shown = {email: normalise.mask_email(email) for email in emails}
        fuzzy = {normalise.email_fuzzy_key(email): shown[email] for email in emails}
        # One query per table finds exact and fuzzy matches (an exact match is also fuzzy, and
        # counts only once, as exact): every statement is a round trip on the lookup's hot path.
        identities = self._identities(
            IdentityKind.EMAIL, or_(Identity.value.in_(emails), Identity.fuzzy_key.in_(fuzzy))
        )
        for identity in identities:
            if identity.value in shown:
                evidence = _identity_evidence(hint_kind, shown[identity.value], identity)
            else:
                evidence = Evidence(
                    hint_kind,
                    fuzzy[identity.fuzzy_key or ""],
                    "identity",
                    identity.display,
                    "fuzzy",
                    Weight.FUZZY_IDENTITY,
                    "same mailbox ignoring dots and +tags",
                )
            add(identity.account_id, evidence)
        for order in self._orders(or_(Order.email.in_(emails), Order.email_fuzzy_key.in_(fuzzy))):
            if order.email in shown:
                evidence = _order_evidence(
                    hint_kind, shown[order.email], order, Weight.ORDER_CONTACT, "contact email"
                )
            else:
                evidence = _order_evidence(
                    hint_kind,
                    fuzzy[order.email_fuzzy_key or ""],
                    order,
                    Weight.FUZZY_ORDER,
                    "contact email ignoring dots and +tags",
                    match="fuzzy",
                )
            add(order.account_id, evidence)

    def _paypal_emails(self, emails: list[str], add: _Add) -> None:
        if not emails:
            return
        shown = {email: normalise.mask_email(email) for email in emails}
        for order in self._orders(Order.paypal_email.in_(emails)):
            assert order.paypal_email is not None
            add(
                order.account_id,
                _order_evidence(
                    "paypal_email",
                    shown[order.paypal_email],
                    order,
                    Weight.PAYPAL_ORDER_EMAIL,
                    "PayPal email",
                ),
            )
        # People often pay with the address they shop with.
        for identity in self._identities(IdentityKind.EMAIL, Identity.value.in_(emails)):
            add(
                identity.account_id,
                _identity_evidence("paypal_email", shown[identity.value], identity),
            )

    def _phones(self, phones: list[str], add: _Add) -> None:
        if not phones:
            return
        shown = {phone: normalise.mask_phone(phone) for phone in phones}
        for identity in self._identities(IdentityKind.PHONE, Identity.value.in_(phones)):
            add(identity.account_id, _identity_evidence("phone", shown[identity.value], identity))
        for order in self._orders(Order.phone.in_(phones)):
            assert order.phone is not None
            add(
                order.account_id,
                _order_evidence(
                    "phone", shown[order.phone], order, Weight.ORDER_CONTACT, "contact phone"
                ),
            )

    def _order_numbers(self, numbers: list[str], add: _Add) -> None:
        if not numbers:
            return
        orders = self._orders(Order.number.in_(numbers))
        for order in orders:
            add(
                order.account_id,
                _order_evidence("order_number", order.number, order, Weight.ORDER_NUMBER),
            )
        # A guest order may carry only the PayPal payer: the account signed in with that payer.
        payers = {o.paypal_payer_id: o for o in orders if o.paypal_payer_id}
        if payers:
            for identity in self._identities(IdentityKind.PAYPAL, Identity.value.in_(payers)):
                order = payers[identity.value]
                add(
                    identity.account_id,
                    Evidence(
                        "order_number",
                        order.number,
                        "identity",
                        identity.display,
                        "exact",
                        Weight.ORDER_PAYER,
                        "the order was paid by this PayPal account",
                    ),
                )

    def _names(self, names: list[str], add: _Add) -> None:
        keys = {normalise.name_key(name): name for name in names}
        keys.pop("", None)
        if not keys:
            return
        rows = self.session.execute(
            select(Account.id, Account.name_key, Account.display_name)
            .where(Account.name_key.in_(keys))
            .order_by(Account.id)
            .limit(NAME_MATCH_LIMIT)
        )
        for account_id, key, display_name in rows:
            add(
                account_id,
                Evidence(
                    "name",
                    keys[key or ""],
                    "account",
                    display_name or "",
                    "fuzzy",
                    Weight.NAME,
                    "same name ignoring case, accents and word order",
                ),
            )

    # -- shared lookups ------------------------------------------------------------------------

    def _identities(self, kind: IdentityKind, condition: ColumnElement[bool]) -> list[Identity]:
        return list(self.session.scalars(select(Identity).where(Identity.kind == kind, condition)))

    def _orders(self, condition: ColumnElement[bool]) -> list[Order]:
        return list(self.session.scalars(select(Order).where(condition)))

    def _candidates(self, found: dict[int, list[Evidence]], limit: int) -> list[Candidate]:
        if not found:
            return []
        accounts = self._accounts(found)
        candidates: dict[int, Candidate] = {}
        for account_id, evidence in found.items():
            account, hops = accounts[account_id], 0
            # Evidence for a merged account is evidence for the account it was merged into.
            while account.merged_into_id is not None and hops < MAX_MERGE_HOPS:
                target = (
                    accounts.get(account.merged_into_id)
                    or self._accounts([account.merged_into_id])[account.merged_into_id]
                )
                note = f"via merged account {account.public_id}"
                evidence = [_with_note(item, note) for item in evidence]
                account, hops = target, hops + 1
            candidates.setdefault(account.id, Candidate(account)).evidence.extend(evidence)
        ranked = sorted(candidates.values(), key=lambda c: (-c.score, str(c.account.public_id)))
        return ranked[:limit]

    def _accounts(self, ids: Iterable[int]) -> dict[int, Account]:
        # One query for the accounts and their identities; unique() folds the join's repeated rows.
        rows = self.session.scalars(
            select(Account).where(Account.id.in_(list(ids))).options(joinedload(Account.identities))
        ).unique()
        return {account.id: account for account in rows}


def _identity_evidence(hint_kind: str, hint: str, identity: Identity) -> Evidence:
    if identity.verified:
        weight = (
            Weight.VERIFIED_PHONE
            if identity.kind is IdentityKind.PHONE
            else Weight.VERIFIED_IDENTITY
        )
    else:
        weight = Weight.UNVERIFIED_IDENTITY
    state = "verified" if identity.verified else "unverified"
    return Evidence(
        hint_kind,
        hint,
        "identity",
        identity.display,
        "exact",
        weight,
        f"{state} {identity.kind.value} of the account",
    )


def _order_evidence(
    hint_kind: str,
    hint: str,
    order: Order,
    weight: float,
    what: str | None = None,
    match: str = "exact",
) -> Evidence:
    """Evidence from an order; ``what`` names the matching field (none: the order number itself)."""
    guest = "guest " if order.guest else ""
    note = f"{guest}order {order.number} placed {order.placed_at:%Y-%m-%d}"
    if what:
        note = f"{what} of {note}"
    return Evidence(hint_kind, hint, "order", order.number, match, weight, note)


def _with_note(item: Evidence, note: str) -> Evidence:
    joined = f"{item.note}; {note}" if item.note else note
    return Evidence(
        item.hint_kind, item.hint, item.source, item.reference, item.match, item.weight, joined
    )
