"""Accounts: idempotent upserts from the shop, in batches, without ever moving an identity."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, selectinload

from recovery.accounts.models import Account, AccountStatus, Identity, IdentitySource, new_public_id
from recovery.accounts.schemas import AccountData, AccountRecord, IdentityData
from recovery.db import (
    AllOrNothing,
    insert_rows,
    is_postgresql,
    json_records,
    one_of,
    positioned_rows,
    utcnow,
)
from recovery.errors import IdentityConflict, NotFound, RecoveryError
from recovery.identity import normalise
from recovery.identity.normalise import IdentityKind

IdentityKey = tuple[IdentityKind, str]


@dataclass(slots=True)
class Outcome:
    """What became of one record: ``created``/``updated``/``unchanged``, or the error that kept it out."""

    account_id: str
    result: str = "unchanged"
    error: RecoveryError | None = None


@dataclass(slots=True)
class _Existing:
    account: dict[str, Any]
    identities: dict[IdentityKey, dict[str, Any]] = field(default_factory=dict)


_ACCOUNT_FIELDS = ("display_name", "locale", "vip")


class WantedIdentity(NamedTuple):
    verified: bool
    display: str  # normalise.mask of the value
    fuzzy_key: str | None


class PreparedAccount(NamedTuple):
    """An ``AccountData`` with what ``upsert_many`` derives from it alone (its name key, each
    identity once with its masked form and fuzzy key). Pure functions of the record, so the
    importer computes them in its worker processes, next to validation; parsing a phone number
    again to mask it is a good part of the cost of an account line."""

    record: AccountData
    name_key: str | None
    identities: dict[IdentityKey, WantedIdentity]


def prepare(record: AccountData) -> PreparedAccount:
    """``record`` with its derived values (see ``PreparedAccount``)."""
    wanted = {
        key: WantedIdentity(
            verified,
            normalise.mask(*key),
            normalise.email_fuzzy_key(key[1]) if key[0] is IdentityKind.EMAIL else None,
        )
        for key, verified in _dedupe(record.identities).items()
    }
    name_key = normalise.name_key(record.display_name) if record.display_name else None
    return PreparedAccount(record, name_key, wanted)


class AccountService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, external_id: str) -> Account:
        """The account the shop knows as ``external_id``, with its identities."""
        account = self.session.scalar(
            select(Account)
            .where(Account.external_id == external_id)
            .options(selectinload(Account.identities))
        )
        if account is None:
            raise NotFound(f"no account with id {external_id!r}")
        return account

    def upsert_many(
        self, records: Sequence[AccountRecord | AccountData | PreparedAccount]
    ) -> list[Outcome]:
        """Create or update accounts and their shop-provided identities, one ``Outcome`` per record.

        The same records twice leave the same state (the second time reports ``unchanged``). A record
        naming an identity that belongs to another account is refused whole with ``IdentityConflict``:
        an identifier never moves between accounts by ingest, because that would hand one person's
        sign-in to another. Identities the service attached itself (``source=recovery``) are never
        removed by the shop. Repeats of one account id are applied in order.
        """
        outcomes: list[Outcome] = []
        chunk: list[PreparedAccount] = []
        in_chunk: set[str] = set()
        for record in records:
            if isinstance(record, AccountRecord):
                record = record.data()
            prepared = record if isinstance(record, PreparedAccount) else prepare(record)
            if prepared.record.account_id in in_chunk:
                outcomes += self._upsert_chunk(chunk)
                chunk, in_chunk = [], set()
            chunk.append(prepared)
            in_chunk.add(prepared.record.account_id)
        if chunk:
            outcomes += self._upsert_chunk(chunk)
        return outcomes

    def create_all(self, records: Sequence[PreparedAccount]) -> list[Outcome] | None:
        """Create every one of ``records`` as a new account with its identities, in one statement,
        or write nothing and answer None when any of them is not simply new: its id exists or
        repeats, or an identity is held by an account or named twice. ``upsert_many`` then tells
        those apart. The importer's fast path for a batch of new accounts; PostgreSQL only (None
        elsewhere). What it creates is what ``upsert_many`` would."""
        plan = self.plan_create(records)
        return plan.run(self.session) if plan is not None else None

    def plan_create(self, records: Sequence[PreparedAccount]) -> AllOrNothing[Outcome] | None:
        """``create_all``'s write, built without touching the database; None if ``records``
        cannot be created in one statement anyway (none, an id repeated, not PostgreSQL)."""
        if not records or not is_postgresql(self.session):
            return None
        if len({prepared.record.account_id for prepared in records}) < len(records):
            return None
        now = utcnow()
        accounts = [_new_account_row(prepared, now) for prepared in records]
        owned = ((p.record.account_id, *item) for p in records for item in p.identities.items())
        identities = [
            {"position": position, "external_id": owner, **_identity_row(key, wanted, now)}
            for position, (owner, key, wanted) in enumerate(owned)
        ]
        return AllOrNothing(
            _create_statement(accounts, identities),
            (len(accounts), len(identities)),
            [Outcome(prepared.record.account_id, "created") for prepared in records],
        )

    # -- one chunk: account ids unique ---------------------------------------------------------

    def _upsert_chunk(self, chunk: list[PreparedAccount]) -> list[Outcome]:
        now = utcnow()
        existing = self._load_existing([p.record.account_id for p in chunk])
        owners = self._owners({key for p in chunk for key in p.identities})
        claimed: dict[IdentityKey, str] = {}
        outcomes = []
        accepted: list[tuple[PreparedAccount, Outcome]] = []
        for prepared in chunk:
            record, wanted = prepared.record, prepared.identities
            outcome = Outcome(record.account_id)
            outcomes.append(outcome)
            clash = next(
                (
                    (key, owner)
                    for key in wanted
                    for owner in (owners.get(key), claimed.get(key))
                    if owner is not None and owner != record.account_id
                ),
                None,
            )
            if clash is not None:
                (kind, value), owner = clash
                outcome.error = IdentityConflict(
                    f"{kind} {normalise.mask(kind, value)} belongs to account {owner!r}",
                    identity={"kind": kind.value, "display": normalise.mask(kind, value)},
                    account_id=owner,
                )
                continue
            claimed.update(dict.fromkeys(wanted, record.account_id))
            accepted.append((prepared, outcome))

        new_accounts = [
            _new_account_row(prepared, now)
            for prepared, _ in accepted
            if prepared.record.account_id not in existing
        ]
        table = Account.__table__
        for account_id, external_id in insert_rows(
            self.session, table, new_accounts, returning=(table.c.id, table.c.external_id)
        ):
            existing[str(external_id)] = _Existing({"id": account_id}, {})

        account_updates: list[dict[str, Any]] = []
        identity_inserts: list[dict[str, Any]] = []
        identity_updates: list[dict[str, Any]] = []
        identity_deletes: list[int] = []
        for prepared, outcome in accepted:
            state = existing[prepared.record.account_id]
            created = "external_id" not in state.account  # inserted just now
            changes = {} if created else _account_changes(state.account, prepared, now)
            if changes:
                account_updates.append({"id": state.account["id"], **changes})
            identities_changed = _diff_identities(
                state,
                prepared.identities,
                now,
                identity_inserts,
                identity_updates,
                identity_deletes,
            )
            if created:
                outcome.result = "created"
            elif changes or identities_changed:
                outcome.result = "updated"

        # Deletes first: an account may swap an identity for its own new spelling in one request.
        if identity_deletes:
            self.session.execute(
                delete(Identity).where(one_of(self.session, Identity.id, identity_deletes))
            )
        if account_updates:
            self.session.execute(update(Account), account_updates)
        if identity_updates:
            self.session.execute(update(Identity), identity_updates)
        # Core, not the ORM: every row has the same columns (None included), so it is one statement.
        insert_rows(self.session, Identity.__table__, identity_inserts)
        return outcomes

    def _load_existing(self, external_ids: list[str]) -> dict[str, _Existing]:
        accounts = self.session.execute(
            select(
                Account.id,
                Account.external_id,
                Account.display_name,
                Account.locale,
                Account.vip,
                Account.password_hash,
                Account.shop_password_digest,
            ).where(one_of(self.session, Account.external_id, external_ids))
        ).mappings()
        existing = {row["external_id"]: _Existing(dict(row)) for row in accounts}
        by_id = {state.account["id"]: state for state in existing.values()}
        if by_id:
            identities = self.session.execute(
                select(
                    Identity.id,
                    Identity.account_id,
                    Identity.kind,
                    Identity.value,
                    Identity.source,
                    Identity.verified_at,
                ).where(one_of(self.session, Identity.account_id, by_id))
            ).mappings()
            for row in identities:
                by_id[row["account_id"]].identities[(row["kind"], row["value"])] = dict(row)
        return existing

    def _owners(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
        """Which account (by the shop's id) holds each of ``keys`` now; one indexed query per kind."""
        by_kind: dict[IdentityKind, list[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        owners: dict[IdentityKey, str] = {}
        for kind, values in by_kind.items():
            rows = self.session.execute(
                select(Identity.value, Account.external_id, Account.public_id)
                .join(Account, Identity.account_id == Account.id)
                .where(Identity.kind == kind, one_of(self.session, Identity.value, values))
            )
            for value, external_id, public_id in rows:
                # An account the service made itself has no shop id: name it by its public id.
                owners[(kind, value)] = external_id or str(public_id)
        return owners


def _digest(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()


def _dedupe(identities: Iterable[IdentityData]) -> dict[IdentityKey, bool]:
    """Each identity once, with whether it is verified (by any of its repeats)."""
    wanted: dict[IdentityKey, bool] = {}
    for kind, value, verified in identities:
        key = (kind, value)
        wanted[key] = verified or wanted.get(key, False)
    return wanted


def _account_row(prepared: PreparedAccount, now: dt.datetime) -> dict[str, Any]:
    record = prepared.record
    password_hash = record.password_hash.get_secret_value() if record.password_hash else None
    return {
        "external_id": record.account_id,
        "display_name": record.display_name,
        "name_key": prepared.name_key,
        "locale": record.locale,
        "vip": record.vip,
        "password_hash": password_hash,
        "shop_password_digest": _digest(password_hash) if password_hash else None,
        "password_changed_at": now if password_hash else None,
        "created_at": now,
        "updated_at": now,
    }


def _new_account_row(prepared: PreparedAccount, now: dt.datetime) -> dict[str, Any]:
    return {
        **_account_row(prepared, now),
        "public_id": new_public_id(),
        "status": AccountStatus.ACTIVE,
    }


def _identity_row(key: IdentityKey, wanted: WantedIdentity, now: dt.datetime) -> dict[str, Any]:
    """A new shop identity's row, but for the account it belongs to."""
    kind, value = key
    return {
        "kind": kind,
        "value": value,
        "display": wanted.display,
        "fuzzy_key": wanted.fuzzy_key,
        "source": IdentitySource.SHOP,
        "verified_at": now if wanted.verified else None,
        "created_at": now,
    }


def _create_statement(accounts: list[dict[str, Any]], identities: list[dict[str, Any]]) -> Any:
    """``create_all``'s statement: insert the accounts that are new, then the identities of those
    that are new too; one row counting both. An identity names its account by the shop's id, and
    its position in ``identities`` orders the inserts, so ids are given as ``upsert_many`` would."""
    account, identity = Account.__table__, Identity.__table__
    created = (
        postgresql.insert(Account)
        .from_select(list(accounts[0]), json_records(accounts, account.c), include_defaults=False)
        .on_conflict_do_nothing(index_elements=[account.c.external_id])
        .returning(account.c.id, account.c.external_id)
        .cte("created")
    )
    counts: list[Any] = [select(func.count()).select_from(created).scalar_subquery()]
    if identities:
        by_owner = {"external_id": account.c.external_id}
        wanted, names = positioned_rows(identity, identities, by_owner, "wanted")
        attached = (
            postgresql.insert(Identity)
            .from_select(
                ["account_id", *names],
                select(created.c.id, *(wanted.c[name] for name in names))
                .join_from(wanted, created, created.c.external_id == wanted.c.external_id)
                .order_by(wanted.c.position),
                include_defaults=False,
            )
            .on_conflict_do_nothing(index_elements=[identity.c.kind, identity.c.value])
            .returning(identity.c.id)
            .cte("attached")
        )
        counts.append(select(func.count()).select_from(attached).scalar_subquery())
    else:
        counts.append(literal(0))
    return select(*counts)


def _account_changes(
    current: dict[str, Any], prepared: PreparedAccount, now: dt.datetime
) -> dict[str, Any]:
    wanted = _account_row(prepared, now)
    changes = {name: wanted[name] for name in _ACCOUNT_FIELDS if current[name] != wanted[name]}
    if "display_name" in changes:
        changes["name_key"] = wanted["name_key"]
    # An absent hash leaves the password alone: the shop may not export hashes at all. The same
    # hash as the shop's last one leaves it alone too, even when the service has set another
    # since (a recovery): only a password the shop itself changed replaces ours.
    digest = wanted["shop_password_digest"]
    if digest is not None and digest != current["shop_password_digest"]:
        changes["shop_password_digest"] = digest
        if wanted["password_hash"] != current["password_hash"]:
            changes["password_hash"] = wanted["password_hash"]
            changes["password_changed_at"] = now
    if changes:
        changes["updated_at"] = now
    return changes


def _diff_identities(
    state: _Existing,
    wanted: dict[IdentityKey, WantedIdentity],
    now: dt.datetime,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    deletes: list[int],
) -> bool:
    """Queue the identity writes that make ``state`` match ``wanted``; True if there are any."""
    before = len(inserts) + len(updates) + len(deletes)
    account_id = state.account["id"]
    for key, current in state.identities.items():
        if key not in wanted and current["source"] == IdentitySource.SHOP:
            deletes.append(current["id"])
    for key, identity in wanted.items():
        if key not in state.identities:
            inserts.append({"account_id": account_id, **_identity_row(key, identity, now)})
            continue
        current = state.identities[key]
        verified = identity.verified
        if verified and current["verified_at"] is None:
            updates.append({"id": current["id"], "verified_at": now})
        elif (
            not verified
            and current["verified_at"] is not None
            # Proof the service collected itself outlives the shop's opinion.
            and current["source"] == IdentitySource.SHOP
        ):
            updates.append({"id": current["id"], "verified_at": None})
    return len(inserts) + len(updates) + len(deletes) > before
