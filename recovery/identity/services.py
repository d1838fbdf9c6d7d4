"""Identity resolution: from a person's messy hints to candidate accounts, with the evidence.

Only exact matches on normalised values carry real weight; fuzzy matches (Gmail dots, ``+tags``,
names without diacritics) only put an account in front of staff. Nothing here signs anyone in, and
the results are personal data: they are for authenticated staff tools, never anonymous callers.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    bindparam,
    cast,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
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
    #: Not shown (the API picks the fields above): the normalised hint, since two hints may mask
    #: alike (jan@ and joe@ are both j***@), and the row it matched, since two identities may too.
    hint_key: str = field(default="", repr=False)
    matched: str = field(default="", repr=False)


#: Records one piece of evidence for an account id (``None``: an order without an account).
_Add = Callable[[int | None, "Evidence"], None]


@dataclass(slots=True)
class Candidate:
    account: Account
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Noisy-or over hints, each hint counted once at its strongest evidence, and each matched
        identity or order once (an address given as an email and as a PayPal email that matches
        one identity is one fact, not two)."""
        by_match: dict[str, Evidence] = {}
        for item in self.evidence:
            match = item.matched or f"{item.source}:{item.reference}"
            if match not in by_match or item.weight > by_match[match].weight:
                by_match[match] = item
        strongest: dict[tuple[str, str], float] = {}
        for item in by_match.values():
            hint = (item.hint_kind, item.hint_key or item.hint)
            strongest[hint] = max(strongest.get(hint, 0.0), item.weight)
        miss = 1.0
        for weight in strongest.values():
            miss *= 1.0 - weight
        return round(1.0 - miss, 4)


# -- the evidence statement -------------------------------------------------------------------------
#
# Every exact lookup of one resolution is one statement: a UNION ALL of one indexed select per hint
# kind and table, each labelled with its ``part``. A round trip and the ORM's entity loading cost
# more than the index probes themselves, so the rows come back as plain Core rows, and the
# statements are built once (their compiled form is then cached by SQLAlchemy) instead of per call.

_EMAIL_IDENTITIES, _EMAIL_ORDERS = 0, 1
_PAYPAL_ORDERS, _PAYPAL_IDENTITIES = 2, 3
_PHONE_IDENTITIES, _PHONE_ORDERS = 4, 5
_NUMBER_ORDERS, _NUMBER_PAYERS = 6, 7
_NUMBER_EMAILS, _NUMBER_PHONES = 8, 9

_ORDER_COLUMNS = (
    Order.id,
    Order.account_id,
    Order.number,
    Order.placed_at,
    Order.guest,
    Order.email,
    Order.email_fuzzy_key,
    Order.phone,
    Order.paypal_payer_id,
    Order.paypal_email,
)
_IDENTITY_COLUMNS = (
    Identity.kind,
    Identity.value,
    Identity.fuzzy_key,
    Identity.display,
    Identity.verified_at,
)


def _null(column: Any) -> Any:
    return cast(null(), column.type).label(column.key)


def _identity_part(part: int, *conditions: ColumnElement[bool]) -> Select[Any]:
    columns = [
        literal_column(str(part), Integer).label("part"),
        Identity.id,
        Identity.account_id,
        *(_null(c) for c in _ORDER_COLUMNS[2:]),
        *_IDENTITY_COLUMNS,
    ]
    return select(*columns).where(*conditions)


def _order_part(part: int, condition: ColumnElement[bool]) -> Select[Any]:
    columns = [
        literal_column(str(part), Integer).label("part"),
        *_ORDER_COLUMNS,
        *(_null(c) for c in _IDENTITY_COLUMNS),
    ]
    return select(*columns).where(condition)


def _values(name: str) -> Any:
    return bindparam(name, expanding=True)


def _numbered_orders_part(part: int, kind: IdentityKind, field: Any) -> Select[Any]:
    """The ``kind`` identities whose value is ``field`` of an order named by number: one IN of
    its own per field, which the planner turns into index probes (an OR of several would scan
    every identity)."""
    of_orders = select(field).where(Order.number.in_(_values("numbers")), field.is_not(None))
    return _identity_part(part, Identity.kind == kind, Identity.value.in_(of_orders))


_PARTS: dict[int, Select[Any]] = {
    # One select per table finds exact and fuzzy email matches (an exact match is also fuzzy, and
    # counts only once, as exact).
    _EMAIL_IDENTITIES: _identity_part(
        _EMAIL_IDENTITIES,
        Identity.kind == IdentityKind.EMAIL,
        or_(Identity.value.in_(_values("emails")), Identity.fuzzy_key.in_(_values("email_keys"))),
    ),
    # Orders have no index on the email itself: an order's fuzzy key is always set with its email,
    # so the fuzzy keys find the exact matches too.
    _EMAIL_ORDERS: _order_part(_EMAIL_ORDERS, Order.email_fuzzy_key.in_(_values("email_keys"))),
    _PAYPAL_ORDERS: _order_part(_PAYPAL_ORDERS, Order.paypal_email.in_(_values("paypal_emails"))),
    _PAYPAL_IDENTITIES: _identity_part(
        _PAYPAL_IDENTITIES,
        Identity.kind == IdentityKind.EMAIL,
        Identity.value.in_(_values("paypal_emails")),
    ),
    _PHONE_IDENTITIES: _identity_part(
        _PHONE_IDENTITIES,
        Identity.kind == IdentityKind.PHONE,
        Identity.value.in_(_values("phones")),
    ),
    _PHONE_ORDERS: _order_part(_PHONE_ORDERS, Order.phone.in_(_values("phones"))),
    _NUMBER_ORDERS: _order_part(_NUMBER_ORDERS, Order.number.in_(_values("numbers"))),
    # A guest order may carry only the PayPal payer: the account signed in with that payer.
    _NUMBER_PAYERS: _numbered_orders_part(
        _NUMBER_PAYERS, IdentityKind.PAYPAL, Order.paypal_payer_id
    ),
    # And the accounts that hold its contact email or phone: a guest order is often the checkout
    # of someone who also has an account.
    _NUMBER_EMAILS: _numbered_orders_part(_NUMBER_EMAILS, IdentityKind.EMAIL, Order.email),
    _NUMBER_PHONES: _numbered_orders_part(_NUMBER_PHONES, IdentityKind.PHONE, Order.phone),
}

#: Which parts each kind of hint needs, with the name of its values in the statement.
_HINT_PARTS = (
    ("emails", (_EMAIL_IDENTITIES, _EMAIL_ORDERS)),
    ("paypal_emails", (_PAYPAL_ORDERS, _PAYPAL_IDENTITIES)),
    ("phones", (_PHONE_IDENTITIES, _PHONE_ORDERS)),
    ("numbers", (_NUMBER_ORDERS, _NUMBER_PAYERS, _NUMBER_EMAILS, _NUMBER_PHONES)),
)


@functools.cache
def _evidence_statement(parts: tuple[int, ...]) -> Select[Any]:
    """The UNION ALL of ``parts``, in part order (then by id, so the evidence order is stable)."""
    union = union_all(*(_PARTS[part] for part in parts)).subquery("hits")
    return select(union).order_by(union.c.part, union.c.id)


_ACCOUNTS = (
    select(Account)
    .where(Account.id.in_(_values("ids")))
    # One query for the accounts and their identities; unique() folds the join's repeated rows.
    .options(joinedload(Account.identities))
)


class ResolutionService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def resolve(self, hints: Hints, limit: int = 10) -> list[Candidate]:
        """Candidate accounts for ``hints``, best first, each with the evidence behind its score."""
        found: dict[int, list[Evidence]] = {}

        def add(account_id: int | None, evidence: Evidence) -> None:
            if account_id is not None:
                found.setdefault(account_id, []).append(evidence)

        self._exact(hints, add)
        self._names(hints.names, add, set(found))
        return self._candidates(found, limit)

    # -- exact (and fuzzy email) matches: one statement for every kind of hint -------------------

    def _exact(self, hints: Hints, add: _Add) -> None:
        values: dict[str, list[str]] = {
            "emails": hints.emails,
            "paypal_emails": hints.paypal_emails,
            "phones": hints.phones,
            "numbers": hints.order_numbers,
        }
        parts = tuple(part for name, pair in _HINT_PARTS if values[name] for part in pair)
        if not parts:
            return
        params: dict[str, list[str]] = {name: given for name, given in values.items() if given}
        email_keys = {normalise.email_fuzzy_key(email): email for email in hints.emails}
        if hints.emails:
            params["email_keys"] = list(email_keys)
        rows: dict[int, list[Row[Any]]] = {part: [] for part in parts}
        for row in self.session.execute(_evidence_statement(parts), params):
            rows[row.part].append(row)

        if hints.emails:
            shown = {email: normalise.mask_email(email) for email in hints.emails}
            fuzzy = {key: shown[email] for key, email in email_keys.items()}
            for identity in rows[_EMAIL_IDENTITIES]:
                if identity.value in shown:
                    evidence = _identity_evidence(
                        "email", shown[identity.value], identity, identity.value
                    )
                else:
                    hint = email_keys[identity.fuzzy_key or ""]
                    evidence = Evidence(
                        "email",
                        fuzzy[identity.fuzzy_key or ""],
                        "identity",
                        identity.display,
                        "fuzzy",
                        Weight.FUZZY_IDENTITY,
                        "same mailbox ignoring dots and +tags",
                        hint_key=hint,
                        matched=f"identity:{identity.id}",
                    )
                add(identity.account_id, evidence)
            for order in rows[_EMAIL_ORDERS]:
                if order.email in shown:
                    evidence = _order_evidence(
                        "email",
                        shown[order.email],
                        order,
                        Weight.ORDER_CONTACT,
                        "contact email",
                        hint_key=order.email,
                    )
                else:
                    evidence = _order_evidence(
                        "email",
                        fuzzy[order.email_fuzzy_key or ""],
                        order,
                        Weight.FUZZY_ORDER,
                        "contact email ignoring dots and +tags",
                        match="fuzzy",
                        hint_key=email_keys[order.email_fuzzy_key or ""],
                    )
                add(order.account_id, evidence)

        if hints.paypal_emails:
            shown = {email: normalise.mask_email(email) for email in hints.paypal_emails}
            for order in rows[_PAYPAL_ORDERS]:
                evidence = _order_evidence(
                    "paypal_email",
                    shown[order.paypal_email],
                    order,
                    Weight.PAYPAL_ORDER_EMAIL,
                    "PayPal email",
                    hint_key=order.paypal_email,
                )
                add(order.account_id, evidence)
            # People often pay with the address they shop with.
            for identity in rows[_PAYPAL_IDENTITIES]:
                evidence = _identity_evidence(
                    "paypal_email", shown[identity.value], identity, identity.value
                )
                add(identity.account_id, evidence)

        if hints.phones:
            shown = {phone: normalise.mask_phone(phone) for phone in hints.phones}
            for identity in rows[_PHONE_IDENTITIES]:
                add(
                    identity.account_id,
                    _identity_evidence("phone", shown[identity.value], identity, identity.value),
                )
            for order in rows[_PHONE_ORDERS]:
                evidence = _order_evidence(
                    "phone",
                    shown[order.phone],
                    order,
                    Weight.ORDER_CONTACT,
                    "contact phone",
                    hint_key=order.phone,
                )
                add(order.account_id, evidence)

        if hints.order_numbers:
            orders = rows[_NUMBER_ORDERS]
            for order in orders:
                evidence = _order_evidence(
                    "order_number", order.number, order, Weight.ORDER_NUMBER, hint_key=order.number
                )
                add(order.account_id, evidence)
            payers = {o.paypal_payer_id: o for o in orders if o.paypal_payer_id}
            for identity in rows[_NUMBER_PAYERS]:
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
                        hint_key=order.number,
                        matched=f"identity:{identity.id}",
                    ),
                )
            contacts = [
                (part, {getattr(o, field): o for o in orders if getattr(o, field)})
                for part, field in ((_NUMBER_EMAILS, "email"), (_NUMBER_PHONES, "phone"))
            ]
            for part, by_contact in contacts:
                for identity in rows[part]:
                    order = by_contact[identity.value]
                    add(identity.account_id, _contact_evidence(order, identity))

    def _names(self, names: list[str], add: _Add, found: set[int]) -> None:
        """Accounts of the same name: those other hints found, and at most ``NAME_MATCH_LIMIT``
        more (a common name alone names many people)."""
        keys = {normalise.name_key(name): name for name in names}
        keys.pop("", None)
        if not keys:
            return
        named = select(Account.id, Account.name_key, Account.display_name).where(
            Account.name_key.in_(keys)
        )
        rows = list(self.session.execute(named.order_by(Account.id).limit(NAME_MATCH_LIMIT)))
        missed = found - {row.id for row in rows}
        if missed:
            rows += self.session.execute(named.where(Account.id.in_(missed)))
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
                    hint_key=key or "",
                    matched=f"account:{account_id}",
                ),
            )

    # -- the candidates ------------------------------------------------------------------------

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
        rows = self.session.scalars(_ACCOUNTS, {"ids": list(ids)}).unique()
        return {account.id: account for account in rows}


def _identity_evidence(hint_kind: str, hint: str, identity: Row[Any], hint_key: str) -> Evidence:
    """Evidence from an identity row (the ``_IDENTITY_COLUMNS`` of an evidence row)."""
    verified = identity.verified_at is not None
    if verified:
        weight = (
            Weight.VERIFIED_PHONE
            if identity.kind is IdentityKind.PHONE
            else Weight.VERIFIED_IDENTITY
        )
    else:
        weight = Weight.UNVERIFIED_IDENTITY
    state = "verified" if verified else "unverified"
    return Evidence(
        hint_kind,
        hint,
        "identity",
        identity.display,
        "exact",
        weight,
        f"{state} {identity.kind.value} of the account",
        hint_key=hint_key,
        matched=f"identity:{identity.id}",
    )


def _contact_evidence(order: Row[Any], identity: Row[Any]) -> Evidence:
    """Evidence from an identity holding the contact email or phone of an order found by number."""
    verified = identity.verified_at is not None
    kind = identity.kind.value
    guest = "guest " if order.guest else ""
    return Evidence(
        "order_number",
        order.number,
        "identity",
        identity.display,
        "exact",
        Weight.ORDER_CONTACT if verified else Weight.FUZZY_IDENTITY,
        f"contact {kind} of {guest}order {order.number}, "
        f"{'a verified' if verified else 'an unverified'} {kind} of the account",
        hint_key=order.number,
        matched=f"identity:{identity.id}",
    )


def _order_evidence(
    hint_kind: str,
    hint: str,
    order: Row[Any],
    weight: float,
    what: str | None = None,
    match: str = "exact",
    *,
    hint_key: str,
) -> Evidence:
    """Evidence from an order; ``what`` names the matching field (none: the order number itself)."""
    guest = "guest " if order.guest else ""
    note = f"{guest}order {order.number} placed {order.placed_at:%Y-%m-%d}"
    if what:
        note = f"{what} of {note}"
    return Evidence(
        hint_kind,
        hint,
        "order",
        order.number,
        match,
        weight,
        note,
        hint_key=hint_key,
        matched=f"order:{order.id}",
    )


def _with_note(item: Evidence, note: str) -> Evidence:
    return dataclasses.replace(item, note=f"{item.note}; {note}" if item.note else note)
