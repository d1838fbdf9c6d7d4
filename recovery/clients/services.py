"""API keys for the shop: made once, shown once, stored as a hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.clients.models import ApiClient, Scope
from recovery.db import utcnow
from recovery.errors import Conflict, InsufficientScope, NotFound, Unauthenticated

KEY_PREFIX = "rk"
_KEY = re.compile(rf"^{KEY_PREFIX}_([A-Za-z0-9]{{12}})_([A-Za-z0-9_-]{{43}})$")
#: Ignore ``last_used_at`` updates closer together than this: no write on every request.
LAST_USED_GRANULARITY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class IssuedKey:
    client: ApiClient
    key: str  # shown to the operator once, never stored


def _hash(secret: str) -> str:
    # The secret has 256 random bits, so a fast hash is enough; a slow KDF would only slow requests.
    return hashlib.sha256(secret.encode()).hexdigest()


def key_prefix(key: str) -> str | None:
    """The public part of a well-formed key (what identifies the client), else ``None``."""
    match = _KEY.fullmatch(key)
    return match[1] if match else None


class ApiClientService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, name: str, scopes: Iterable[Scope]) -> IssuedKey:
        """A new client with a fresh key ``rk_<id>_<secret>``; the key is returned only here."""
        if self.session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
            raise Conflict(f"an API client named {name!r} exists already")
        prefix = "".join(
            secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
            for _ in range(12)
        )
        secret = secrets.token_urlsafe(32)
        client = ApiClient(
            name=name,
            key_prefix=prefix,
            key_hash=_hash(secret),
            scopes=sorted({scope.value for scope in scopes}),
        )
        self.session.add(client)
        self.session.flush()
        return IssuedKey(client, f"{KEY_PREFIX}_{prefix}_{secret}")

    def authenticate(self, key: str, scope: Scope) -> ApiClient:
        """The live client owning ``key``; ``Unauthenticated`` for any bad key (one answer for all),
        ``InsufficientScope`` when the client may not use ``scope``."""
        match = _KEY.fullmatch(key)
        client = None
        if match:
            client = self.session.scalar(select(ApiClient).where(ApiClient.key_prefix == match[1]))
        # Compare even when no client was found, so a wrong prefix costs the same as a wrong secret.
        stored = client.key_hash if client else _hash("no such client")
        supplied = _hash(match[2]) if match else ""
        if not hmac.compare_digest(stored, supplied) or client is None or client.revoked_at:
            raise Unauthenticated()
        if not client.allows(scope):
            raise InsufficientScope(f"this operation needs the {scope.value!r} scope")
        now = utcnow()
        if (
            client.last_used_at is None
            or (now - client.last_used_at).total_seconds() > LAST_USED_GRANULARITY_SECONDS
        ):
            client.last_used_at = now
        return client

    def revoke(self, name: str) -> ApiClient:
        """Revoke the client ``name``: its key stops working at once."""
        client = self.session.scalar(select(ApiClient).where(ApiClient.name == name))
        if client is None:
            raise NotFound(f"no API client named {name!r}")
        client.revoked_at = utcnow()
        return client

    def list(self) -> list[ApiClient]:
        """Every client, newest first."""
        return list(self.session.scalars(select(ApiClient).order_by(ApiClient.id.desc())))
